"""Learners for the AdaSplit allocation MDP, resolved by name or ``package.module:Class``."""

from __future__ import annotations

import importlib

from adasplit_env.errors import ConfigError
from agents.base import Agent, Rollout, run_episodes

AGENTS = {
    "reinforce": "agents.reinforce:ReinforceAgent",
    "a2c": "agents.a2c:ActorCriticAgent",
    "ppo": "agents.ppo:PPOAgent",
}


def resolve_agent(name: str) -> type[Agent]:
    """A registered name, or ``package.module:Class`` naming an :class:`Agent` subclass."""
    target = AGENTS.get(name, name)
    if ":" not in target:
        raise ConfigError(
            f"unknown algo {name!r}; choose one of {', '.join(sorted(AGENTS))} "
            "or name your own as package.module:Class"
        )
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"cannot import {module_name!r} for --algo {name!r} ({err})") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        raise ConfigError(f"{target!r} is not an agents.base.Agent subclass")
    return cls


__all__ = ["AGENTS", "Agent", "Rollout", "resolve_agent", "run_episodes"]
