"""Versioned environment ids. Registration is idempotent and imports nothing heavy."""

from __future__ import annotations

import gymnasium as gym

#: The step-imitation environments (no code runs; they share the StepImitationEnv arguments).
ENV_IDS = {
    "SRL-SWE-v0": "srl_swe.envs.srl_swe:SRLSWEEnv",
    "SRL-Math-v0": "srl_swe.envs.srl_math:SRLMathEnv",
}
#: Environments that execute actions in a sandbox. Their module imports the runtimes and swebench only
#: when an env is made, so registering them keeps ``import srl_swe`` cheap.
EXEC_ENV_IDS = {
    "SRL-SWE-Exec-v0": "srl_swe.envs.srl_swe_exec:SRLSWEExecEnv",
}


def register_envs() -> None:
    for env_id, entry_point in {**ENV_IDS, **EXEC_ENV_IDS}.items():
        if env_id not in gym.registry:
            # order_enforce=False: every env here raises on step() before reset() (or after the episode
            # ended) itself, so gymnasium's OrderEnforcing layer would only add a call to each step.
            # vector_entry_point: gym.make_vec(env_id, num_envs=N) runs the envs in worker processes without
            # shared memory, which text observations cannot use (srl_swe/envs/vector.py says why).
            gym.register(id=env_id, entry_point=entry_point, vector_entry_point=f"srl_swe.envs.vector:{env_id}",
                         order_enforce=False, disable_env_checker=False)
