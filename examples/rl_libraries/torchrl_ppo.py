"""TorchRL: PPO with a masked categorical policy on ``AdaSplit/Allocation-v0``.

The env's ``flat_observation`` + ``mask_in_observation`` layout gives TorchRL the
keys it expects, ``observation`` (float32) and ``action_mask`` (bool), so
``ActionMask`` and ``MaskedCategorical`` work with no glue.

    python examples/rl_libraries/torchrl_ppo.py --steps 20000
"""

from __future__ import annotations

import argparse

import torch
from tensordict.nn import TensorDictModule
from torchrl.collectors import Collector
from torchrl.envs import GymEnv, TransformedEnv
from torchrl.envs.transforms import ActionMask
from torchrl.modules import MLP, MaskedCategorical, ProbabilisticActor, ValueOperator
from torchrl.objectives import ClipPPOLoss
from torchrl.objectives.value import GAE

import adasplit_env  # noqa: F401  (registers the env ids)


def make_env(env_id: str = "AdaSplit/Allocation-v0", **env_kwargs) -> TransformedEnv:
    base = GymEnv(
        env_id,
        flat_observation=True,
        mask_in_observation=True,
        categorical_action_encoding=True,
        **env_kwargs,
    )
    return TransformedEnv(base, ActionMask())


def train(
    steps: int = 20_000, env_id: str = "AdaSplit/Allocation-v0", seed: int = 0, **env_kwargs
) -> tuple[ProbabilisticActor, list[float]]:
    """Train; returns the actor and the mean reward per step of each collected batch."""
    torch.manual_seed(seed)
    env = make_env(env_id, **env_kwargs)
    env.set_seed(seed)
    num_actions = env.action_spec.space.n
    num_inputs = env.observation_spec["observation"].shape[-1]
    actor = ProbabilisticActor(
        TensorDictModule(
            MLP(in_features=num_inputs, out_features=num_actions, num_cells=[64, 64]),
            in_keys=["observation"],
            out_keys=["logits"],
        ),
        in_keys={"logits": "logits", "mask": "action_mask"},
        distribution_class=MaskedCategorical,
        spec=env.action_spec,
        return_log_prob=True,
    )
    critic = ValueOperator(
        MLP(in_features=num_inputs, out_features=1, num_cells=[64, 64]), in_keys=["observation"]
    )
    batch = min(256, steps)
    collector = Collector(
        env,
        actor,
        frames_per_batch=batch,
        total_frames=steps,
        auto_register_policy_transforms=False,
    )
    advantage = GAE(gamma=0.99, lmbda=0.95, value_network=critic)
    loss_module = ClipPPOLoss(actor, critic, entropy_coeff=0.01)
    optimizer = torch.optim.Adam(loss_module.parameters(), lr=3e-4)
    mean_rewards = []
    for data in collector:
        with torch.no_grad():
            advantage(data)
        for _ in range(4):
            losses = loss_module(data)
            loss = losses["loss_objective"] + losses["loss_critic"] + losses["loss_entropy"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        mean_rewards.append(float(data["next", "reward"].mean()))
    collector.shutdown()
    return actor, mean_rewards


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--env-id", default="AdaSplit/Allocation-v0")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    _, rewards = train(args.steps, args.env_id, args.seed)
    print(f"mean reward per step: first batch {rewards[0]:.4f}, last batch {rewards[-1]:.4f}")
