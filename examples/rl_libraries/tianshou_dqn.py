"""Tianshou 2: DQN on ``AdaSplit/Allocation-v0`` with its ``Net`` MLP.

``flat_observation=True`` gives the one float32 vector Tianshou's ``Net``
expects. No action mask: every action of ``Discrete(max_groups)`` means
something (an empty slot opens a new group). Tianshou vectorises with its own
``DummyVectorEnv``, one env (model and data) per copy.

    python examples/rl_libraries/tianshou_dqn.py --steps 20000
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch
from tianshou.algorithm import DQN
from tianshou.algorithm.modelfree.dqn import DiscreteQLearningPolicy
from tianshou.algorithm.optim import AdamOptimizerFactory
from tianshou.data import Collector, VectorReplayBuffer
from tianshou.env import DummyVectorEnv
from tianshou.trainer import OffPolicyTrainerParams
from tianshou.utils.net.common import Net

import adasplit_env


def train(
    steps: int = 20_000,
    env_id: str = adasplit_env.ENV_ID,
    seed: int = 0,
    num_envs: int = 4,
    **env_kwargs,
):
    """Train; returns the algorithm and Tianshou's training statistics."""
    torch.manual_seed(seed)
    np.random.seed(seed)

    def make_env():
        return gym.make(env_id, flat_observation=True, **env_kwargs)

    train_envs = DummyVectorEnv([make_env for _ in range(num_envs)])
    test_envs = DummyVectorEnv([make_env for _ in range(2)])
    train_envs.seed(seed)
    test_envs.seed(seed + 1000)
    probe = make_env()
    net = Net(
        state_shape=probe.observation_space.shape,
        action_shape=probe.action_space.n,
        hidden_sizes=[64, 64],
    )
    policy = DiscreteQLearningPolicy(
        model=net, action_space=probe.action_space, eps_training=0.1, eps_inference=0.0
    )
    algorithm = DQN(
        policy=policy, optim=AdamOptimizerFactory(lr=1e-3), gamma=0.99, target_update_freq=200
    )
    buffer = VectorReplayBuffer(10_000, num_envs)
    train_collector = Collector(algorithm, train_envs, buffer, exploration_noise=True)
    test_collector = Collector(algorithm, test_envs)
    train_collector.reset()
    train_collector.collect(n_step=min(256, steps), random=True)
    epoch_steps = min(steps, 1_000)
    stats = algorithm.run_training(
        OffPolicyTrainerParams(
            training_collector=train_collector,
            test_collector=test_collector,
            max_epochs=max(1, steps // epoch_steps),
            epoch_num_steps=epoch_steps,
            collection_step_num_env_steps=num_envs * 4,
            test_step_num_episodes=10,
            batch_size=64,
            update_step_num_gradient_steps_per_sample=0.25,
            show_progress=False,
            verbose=False,
        )
    )
    return algorithm, stats


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--env-id", default=adasplit_env.ENV_ID)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    _, stats = train(args.steps, args.env_id, args.seed)
    print(f"trained Tianshou DQN for {args.steps} steps; best test return {stats.best_reward:.3f}")
