"""Masked advantage actor-critic, trained jointly with the recommender.

The actor is the paper's policy (Eq. 7-8); a critic head reads the
allocation state (Eq. 12's ``s_T``, the user, the group count and whether
the target is being allocated) and predicts the return. The raw return of
REINFORCE is replaced by the generalised advantage estimate (GAE;
``--gae-lambda 1`` gives return minus value). The critic sees detached
features, so the recommender is trained by exactly the same two losses as in
REINFORCE: ``L = L_seq + beta * (L_policy + value_coef * L_value) - entropy_coef * H``.
"""

from __future__ import annotations

import torch
from torch import nn

from adasplit_env.data.split import Samples
from adasplit_env.process import AllocationState
from agents.base import Agent, run_episodes


def generalised_advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    active: torch.Tensor,
    discount: float,
    gae_lambda: float,
) -> torch.Tensor:
    """GAE over (B, T); steps after an episode's end (``active`` False) contribute nothing."""
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    next_value = torch.zeros_like(rewards[:, 0])
    for t in range(rewards.shape[1] - 1, -1, -1):
        live = active[:, t].to(rewards.dtype)
        delta = rewards[:, t] + discount * next_value - values[:, t]
        running = (delta + discount * gae_lambda * running) * live
        advantages[:, t] = running
        next_value = values[:, t] * live
    return advantages


class ActorCriticAgent(Agent):
    name = "a2c"

    def __init__(self, process, config) -> None:
        super().__init__(process, config)
        dim = self.model.config.dim
        features = self.model.policy.feature_dim + dim + 2
        self.critic = nn.Sequential(nn.Linear(features, dim), nn.ReLU(), nn.Linear(dim, 1))

    def value(self, state: AllocationState) -> torch.Tensor:
        policy = self.model.policy
        features = torch.cat(
            [
                policy.critic_features(self.process.join_query(state)),
                state.user_embs,
                (state.num_groups.float() / state.max_groups)[:, None],
                state.at_target.float()[:, None],
            ],
            dim=1,
        )
        return self.critic(features.detach())[:, 0]

    def loss(self, batch: Samples, generator: torch.Generator | None = None):
        config = self.config
        rollout = run_episodes(
            self.process,
            batch,
            self.policy_logits,
            generator=generator,
            value_fn=self.value,
            allocation_terms=self.allocation_terms_needed,
        )
        active = rollout.active.to(rollout.rewards.dtype)
        rewards = rollout.rewards.detach()
        values = rollout.values * active
        advantages = generalised_advantages(
            rewards,
            values.detach(),
            rollout.active,
            config.learner.lambda_d,
            config.learner.gae_lambda,
        )
        value_targets = advantages + values.detach()
        policy_loss = -(advantages * rollout.log_probs).sum(dim=1).mean()
        value_loss = 0.5 * ((values - value_targets) ** 2 * active).sum(dim=1).mean()
        entropy = (rollout.entropies * active).sum(dim=1).mean()
        rl_loss = policy_loss + config.learner.value_coef * value_loss
        seq_loss = self.sequence_loss(self.sequence_rollout(rollout, batch), batch)
        loss, stats = self.joint_loss(rollout, seq_loss, rl_loss, entropy=entropy)
        if self.log_stats:
            stats["losses/policy"] = policy_loss.item()
            stats["losses/value"] = value_loss.item()
            stats["charts/mean_value"] = (values.sum() / active.sum()).item()
        return loss, stats
