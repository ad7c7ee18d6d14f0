"""Gymnasium faces of the allocation MDP."""

from adasplit_env.envs.allocation_env import AllocationEnv, render_allocation, render_episode
from adasplit_env.envs.core import EnvParts, EpisodeBatch, build_env_parts
from adasplit_env.envs.vector_env import AllocationVectorEnv

__all__ = [
    "AllocationEnv",
    "AllocationVectorEnv",
    "EnvParts",
    "EpisodeBatch",
    "build_env_parts",
    "render_allocation",
    "render_episode",
]
