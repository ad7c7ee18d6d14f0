"""skrl: PPO on the native vector env of ``AdaSplit/Allocation-v0``.

skrl treats a Gymnasium vector env as resetting within the step that ends an
episode, so the env is made with ``autoreset_mode="same-step"`` (the native
vector env supports it; ``gymnasium.make_vec`` builds that env, not copies).

    python examples/rl_libraries/skrl_ppo.py --steps 20000
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import torch
from skrl.agents.torch.ppo import PPO, PPO_CFG
from skrl.envs.wrappers.torch import wrap_env
from skrl.memories.torch import RandomMemory
from skrl.models.torch import CategoricalMixin, DeterministicMixin, Model
from skrl.trainers.torch import SequentialTrainer

import adasplit_env


class Policy(CategoricalMixin, Model):
    def __init__(self, observation_space, action_space, device):
        Model.__init__(
            self, observation_space=observation_space, action_space=action_space, device=device
        )
        CategoricalMixin.__init__(self, unnormalized_log_prob=True)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(self.num_observations, 64),
            torch.nn.Tanh(),
            torch.nn.Linear(64, self.num_actions),
        )

    def compute(self, inputs, role=""):
        return self.net(inputs["observations"]), {}


class Value(DeterministicMixin, Model):
    def __init__(self, observation_space, action_space, device):
        Model.__init__(
            self, observation_space=observation_space, action_space=action_space, device=device
        )
        DeterministicMixin.__init__(self)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(self.num_observations, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1)
        )

    def compute(self, inputs, role=""):
        return self.net(inputs["observations"]), {}


def train(
    steps: int = 20_000,
    env_id: str = adasplit_env.ENV_ID,
    seed: int = 0,
    num_envs: int = 8,
    directory: str = "runs/skrl",
    **env_kwargs,
) -> PPO:
    """Train; skrl writes TensorBoard curves and checkpoints under ``directory``."""
    torch.manual_seed(seed)
    vector_env = gym.make_vec(
        env_id, num_envs, autoreset_mode="same-step", flat_observation=True, **env_kwargs
    )
    env = wrap_env(vector_env)
    env._seed = seed  # skrl's wrapper passes it to the first reset
    rollouts = 32
    models = {
        "policy": Policy(env.observation_space, env.action_space, env.device),
        "value": Value(env.observation_space, env.action_space, env.device),
    }
    agent = PPO(
        models=models,
        memory=RandomMemory(memory_size=rollouts, num_envs=env.num_envs, device=env.device),
        observation_space=env.observation_space,
        action_space=env.action_space,
        device=env.device,
        cfg=PPO_CFG(
            rollouts=rollouts,
            learning_epochs=4,
            mini_batches=4,
            learning_rate=3e-4,
            experiment={"directory": directory},
        ),
    )
    trainer = SequentialTrainer(
        env=env,
        agents=agent,
        cfg={
            "timesteps": steps // num_envs,
            "headless": True,
            "disable_progressbar": True,
            "close_environment_at_exit": False,  # closed here, not by an atexit hook
        },
    )
    trainer.train()
    env.close()
    return agent


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--env-id", default=adasplit_env.ENV_ID)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train(args.steps, args.env_id, args.seed)
    print(f"trained skrl PPO for {args.steps} steps")
