"""Stable-Baselines3 and sb3-contrib on ``AdaSplit/Allocation-v0``.

- ``MaskablePPO`` (sb3-contrib) with ``MultiInputPolicy`` on the Dict
  observation; it reads the valid actions from ``action_masks()``;
- ``PPO`` and ``DQN`` (SB3) with ``MlpPolicy`` on the flat observation
  (``flat_observation=True``): no masks, and none needed, since every action of
  ``Discrete(max_groups)`` means something (an empty slot opens a new group).

``make_vec_env`` builds one env (model and data) per copy; for many envs use
``AllocationSB3VecEnv``, SB3's VecEnv over the one batched process.

    python examples/rl_libraries/sb3.py --algo maskable_ppo --steps 20000
"""

from __future__ import annotations

import argparse

import gymnasium as gym
from sb3_contrib import MaskablePPO
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.env_util import make_vec_env

import adasplit_env
from adasplit_env.envs.sb3_vec_env import AllocationSB3VecEnv

ALGOS = ("maskable_ppo", "ppo", "dqn")


def make_model(algo: str, env_id: str = adasplit_env.ENV_ID, seed: int = 0, **env_kwargs):
    """The SB3 model for ``algo`` on its env (SB3's own defaults, smaller rollouts)."""
    if algo == "maskable_ppo":
        # Eight episodes stepped together by the batched process, not eight copies.
        env = AllocationSB3VecEnv.from_vector_env(gym.make_vec(env_id, 8, **env_kwargs), seed=seed)
        return MaskablePPO("MultiInputPolicy", env, n_steps=64, batch_size=128, seed=seed)
    env = make_vec_env(
        env_id, n_envs=4, seed=seed, env_kwargs=dict(flat_observation=True, **env_kwargs)
    )
    if algo == "ppo":
        return PPO("MlpPolicy", env, n_steps=128, batch_size=128, seed=seed)
    if algo == "dqn":
        return DQN("MlpPolicy", env, learning_starts=100, buffer_size=10_000, seed=seed)
    raise ValueError(f"unknown algo {algo!r}; choose one of {', '.join(ALGOS)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", choices=ALGOS, default="maskable_ppo")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--env-id", default=adasplit_env.ENV_ID)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model = make_model(args.algo, args.env_id, args.seed)
    model.learn(total_timesteps=args.steps, progress_bar=False)
    model.save(f"{args.algo}-adasplit")
    print(f"trained {args.algo} for {args.steps} steps; saved {args.algo}-adasplit.zip")
