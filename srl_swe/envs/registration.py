"""Versioned environment ids. Registration is idempotent and imports nothing heavy."""

from __future__ import annotations

import gymnasium as gym

ENV_IDS = {
    "SRL-SWE-v0": "srl_swe.envs.srl_swe:SRLSWEEnv",
    "SRL-Math-v0": "srl_swe.envs.srl_math:SRLMathEnv",
}


def register_envs() -> None:
    for env_id, entry_point in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, disable_env_checker=False)
