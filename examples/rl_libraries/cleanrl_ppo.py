"""CleanRL-style single-file PPO with action masks on ``AdaSplit/Allocation-v0``.

Everything in one file, in CleanRL's shape: the native vector env
(``gymnasium.make_vec``, all episodes stepped by one batched process, resetting
within the step that ends an episode), the Dict observation with its
``action_mask``, rollouts of ``num_steps`` per env, GAE, clipped PPO updates.
Invalid logits are set to -1e8 before sampling. Two policy networks:

- ``mlp``: an MLP over all the fields flattened (what a generic library does);
- ``affinity``: a join's logit compares the item with the group,
  ``(W v) . p_i / sqrt(d)``, the create logit is read from the item: the
  structure of the problem, as the project's ``--join-logit affinity``.

    python examples/rl_libraries/cleanrl_ppo.py --steps 200000 --network affinity \
        --env-id AdaSplit/PlantedAllocation-v0
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical

import adasplit_env

FIELDS = ("item", "groups", "group_mask", "user", "is_target")


class Agent(nn.Module):
    """Actor and critic over the Dict observation (tensors with a batch dimension)."""

    def __init__(self, dim: int, num_groups: int, network: str = "mlp") -> None:
        super().__init__()
        if network not in NETWORKS:
            raise ValueError(f"unknown network {network!r}; choose one of {', '.join(NETWORKS)}")
        self.network = network
        num_inputs = dim * (num_groups + 2) + num_groups + 1
        self.critic = nn.Sequential(nn.Linear(num_inputs, 64), nn.Tanh(), nn.Linear(64, 1))
        if network == "mlp":
            self.actor = nn.Sequential(
                nn.Linear(num_inputs, 64), nn.Tanh(), nn.Linear(64, num_groups)
            )
        else:
            self.query = nn.Linear(dim, dim, bias=False)
            nn.init.eye_(self.query.weight)
            self.create = nn.Linear(dim, 1)
            self.scale = dim**-0.5

    @staticmethod
    def flat(obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([obs[key].flatten(1) for key in FIELDS], dim=1)

    def value(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.critic(self.flat(obs)).squeeze(-1)

    def logits(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.network == "mlp":
            return self.actor(self.flat(obs))
        joins = torch.einsum("bd,bgd->bg", self.query(obs["item"]), obs["groups"]) * self.scale
        # slots past the groups (the create slot among them) read the create logit
        return torch.where(obs["group_mask"] > 0, joins, self.create(obs["item"]))

    def act(self, obs: dict[str, torch.Tensor], action: torch.Tensor | None = None):
        logits = self.logits(obs).masked_fill(~obs["action_mask"], -1e8)
        dist = Categorical(logits=logits)
        if action is None:
            action = dist.sample()
        return action, dist.log_prob(action), dist.entropy(), self.value(obs)


NETWORKS = ("mlp", "affinity")


def train(
    steps: int = 50_000,
    env_id: str = adasplit_env.ENV_ID,
    seed: int = 0,
    network: str = "mlp",
    num_envs: int = 16,
    num_steps: int = 32,
    lr: float = 3e-4,
    gamma: float = 0.99,
    gae_lambda: float = 0.95,
    clip: float = 0.2,
    epochs: int = 4,
    minibatches: int = 4,
    **env_kwargs,
) -> tuple[Agent, list[float]]:
    """Train; returns the agent and the mean return of each rollout's finished episodes."""
    torch.manual_seed(seed)
    envs = gym.make_vec(
        env_id, num_envs, autoreset_mode="same-step", mask_in_observation=True, **env_kwargs
    )
    space = envs.single_observation_space
    num_groups, dim = space["groups"].shape
    agent = Agent(dim, num_groups, network)
    optimizer = torch.optim.Adam(agent.parameters(), lr=lr, eps=1e-5)
    shape = (num_steps, num_envs)
    obs_buf = {
        key: torch.zeros(
            *shape, *field.shape, dtype=torch.bool if key == "action_mask" else torch.float32
        )
        for key, field in space.items()
    }
    actions, logprobs = torch.zeros(shape, dtype=torch.long), torch.zeros(shape)
    rewards, dones, values = torch.zeros(shape), torch.zeros(shape), torch.zeros(shape)

    obs, _ = envs.reset(seed=seed)
    next_obs = {key: torch.as_tensor(value) for key, value in obs.items()}
    next_done = torch.zeros(num_envs)
    running, mean_returns = np.zeros(num_envs), []
    for _ in range(max(1, steps // (num_envs * num_steps))):
        finished = []
        for t in range(num_steps):
            for key, value in next_obs.items():
                obs_buf[key][t] = value
            dones[t] = next_done
            with torch.no_grad():
                action, logprob, _, value = agent.act(next_obs)
            actions[t], logprobs[t], values[t] = action, logprob, value
            obs, reward, terminated, truncated, _ = envs.step(action.numpy())
            rewards[t] = torch.as_tensor(reward)
            running += reward
            ended = terminated | truncated
            finished.extend(running[ended].tolist())
            running[ended] = 0.0
            next_obs = {key: torch.as_tensor(value) for key, value in obs.items()}
            next_done = torch.as_tensor(ended, dtype=torch.float32)
        with torch.no_grad():  # GAE
            advantages = torch.zeros(shape)
            last = torch.zeros(num_envs)
            next_value = agent.value(next_obs)
            for t in reversed(range(num_steps)):
                not_done = 1.0 - (next_done if t == num_steps - 1 else dones[t + 1])
                following = next_value if t == num_steps - 1 else values[t + 1]
                delta = rewards[t] + gamma * following * not_done - values[t]
                last = delta + gamma * gae_lambda * not_done * last
                advantages[t] = last
            returns = advantages + values
        flat = lambda x: x.reshape(num_steps * num_envs, *x.shape[2:])  # noqa: E731
        b_obs = {key: flat(value) for key, value in obs_buf.items()}
        b_actions = flat(actions)
        b_logprobs, b_adv, b_returns = flat(logprobs), flat(advantages), flat(returns)
        size = num_steps * num_envs
        for _ in range(epochs):
            for batch in torch.randperm(size).split(size // minibatches):
                minibatch = {key: value[batch] for key, value in b_obs.items()}
                _, logprob, entropy, value = agent.act(minibatch, b_actions[batch])
                ratio = (logprob - b_logprobs[batch]).exp()
                adv = b_adv[batch]
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                policy_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - clip, 1 + clip)).mean()
                value_loss = 0.5 * (value - b_returns[batch]).pow(2).mean()
                loss = policy_loss + 0.5 * value_loss - 0.01 * entropy.mean()
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), 0.5)
                optimizer.step()
        if finished:
            mean_returns.append(float(np.mean(finished)))
    envs.close()
    return agent, mean_returns


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--env-id", default=adasplit_env.ENV_ID)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--network", choices=NETWORKS, default="mlp")
    args = parser.parse_args()
    _, returns = train(args.steps, args.env_id, args.seed, args.network)
    print(f"mean episode return: first rollout {returns[0]:.3f}, last rollout {returns[-1]:.3f}")
