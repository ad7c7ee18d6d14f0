"""The paper's learner: REINFORCE jointly with the recommender (Eq. 18-21, Algorithm 1).

For a mini-batch of samples the policy allocates every history item and the
target with sampled actions. Then

* ``L_seq`` (Eq. 20): cross-entropy of ``p_a . E`` over all items, where p_a
  is the group chosen for the target;
* ``L_rl`` (Eq. 19): ``-sum_T G_T log pi(a_T | s_T)`` with the discounted
  returns ``G_T`` of Eq. 18 (summed over steps, averaged over episodes);
* ``L = L_seq + beta * L_rl`` (Eq. 21), one Adam step on all parameters.

Beyond the paper (off by default): ``--reinforce-baseline batch_mean``
subtracts from each return the mean return of the batch's episodes at the same
step (a baseline: the gradient stays unbiased, its variance falls);
``--rl-gradient policy`` stops L_rl at the policy's inputs (see
:meth:`Agent.policy_logits`); ``--seq-rollout greedy`` trains L_seq on a
second, argmax rollout (see :meth:`Agent.sequence_rollout`).
"""

from __future__ import annotations

import torch

from adasplit_env.data.split import Samples
from adasplit_env.process import discounted_returns
from agents.base import Agent, run_episodes


def step_mean(values: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """(B, T) -> (B, T): the mean of ``values`` over the episodes active at each step,
    zero where the episode is over."""
    weights = active.to(values.dtype)
    mean = (values * weights).sum(dim=0) / weights.sum(dim=0).clamp(min=1)
    return mean[None, :] * weights


class ReinforceAgent(Agent):
    name = "reinforce"

    def loss(self, batch: Samples, generator: torch.Generator | None = None):
        rollout = run_episodes(self.process, batch, self.policy_logits, generator=generator)
        returns = discounted_returns(rollout.rewards.detach(), self.config.lambda_d)
        if getattr(self.config, "reinforce_baseline", "none") == "batch_mean":
            returns = returns - step_mean(returns, rollout.active)
        rl_loss = -(returns * rollout.log_probs).sum(dim=1).mean()
        seq_loss = self.sequence_loss(self.sequence_rollout(rollout, batch), batch)
        loss = seq_loss + self.config.beta * rl_loss
        stats = rollout.summary()
        stats.update(
            {
                "losses/seq": seq_loss.item(),
                "losses/rl": rl_loss.item(),
                "losses/total": loss.item(),
            }
        )
        return loss, stats
