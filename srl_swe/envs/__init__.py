"""Gymnasium environments. Classes are imported lazily by gymnasium through their entry points."""

from srl_swe.envs.registration import ENV_IDS, EXEC_ENV_IDS, register_envs

__all__ = ["ENV_IDS", "EXEC_ENV_IDS", "register_envs"]
