"""``gym.make_vec(ID, num_envs=N)`` for every srl-swe id: N copies of ``gym.make(ID, **kwargs)``, one per process.

An observation (a prompt of any length, a variable number of chat messages, any Unicode) has no fixed-size
layout, and gymnasium's shared memory needs one: ``AsyncVectorEnv``'s default ``shared_memory=True`` raises
``TypeError`` on the ``Sequence`` of messages, and its ``Text`` buffer stores character indices of the space's
charset, so any character outside printable ASCII would fail there too. So the workers send each observation
back pickled over their pipe (``shared_memory=False``), where any ``str`` travels as it is.

Every id is registered with ``vector_entry_point="srl_swe.envs.vector:ID"``, which ``gym.make_vec`` uses when
no ``vectorization_mode`` is named. Naming ``"async"`` bypasses it: gymnasium (1.x) then builds
``AsyncVectorEnv(**vector_kwargs)`` itself with shared memory on, and no registration hook reaches that
path, so there pass ``vector_kwargs={"shared_memory": False}``. ``"sync"`` needs nothing.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import gymnasium as gym
from gymnasium.vector import AsyncVectorEnv

from srl_swe.envs.registration import ENV_IDS, EXEC_ENV_IDS


def make_vector_env(env_id: str, num_envs: int = 1, **kwargs: Any) -> AsyncVectorEnv:
    """``num_envs`` copies of ``gym.make(env_id, **kwargs)`` in worker processes, observations over pipes."""
    # The spec, not the id, travels to the workers: they need no registry (a spawn context starts empty).
    make_one = partial(gym.make, gym.spec(env_id), **kwargs)
    return AsyncVectorEnv([make_one] * num_envs, shared_memory=False)


def __getattr__(name: str) -> Any:
    # gymnasium calls a vector entry point as fn(num_envs=N, **env_kwargs), without the id, and loads a string
    # entry point "module:attribute" by getattr (a string, unlike a callable, keeps EnvSpec.to_json working):
    # so the attribute is the id itself, one entry point per id with nothing to add when an id is added.
    if name in ENV_IDS or name in EXEC_ENV_IDS:
        return partial(make_vector_env, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
