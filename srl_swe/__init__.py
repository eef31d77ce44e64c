"""srl-swe: Supervised Reinforcement Learning for coder agents.

Importing the package registers ``SRL-SWE-v0`` and ``SRL-Math-v0`` with Gymnasium and imports nothing
heavy (no torch, docker or vllm), so ``import srl_swe; gym.make("SRL-SWE-v0")`` is cheap.
"""

from srl_swe.envs.registration import ENV_IDS, register_envs

__version__ = "0.1.0"

register_envs()

__all__ = ["ENV_IDS", "__version__", "register_envs"]
