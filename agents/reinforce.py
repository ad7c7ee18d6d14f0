"""The paper's learner: REINFORCE jointly with the recommender (Eq. 18-21, Algorithm 1).

For a mini-batch of samples the policy allocates every history item and the
target with sampled actions. Then

* ``L_seq`` (Eq. 20): cross-entropy of ``p_a . E`` over all items, where p_a
  is the group chosen for the target;
* ``L_rl`` (Eq. 19): ``-sum_T G_T log pi(a_T | s_T)`` with the discounted
  returns ``G_T`` of Eq. 18 (summed over steps, averaged over episodes);
* ``L = L_seq + beta * L_rl`` (Eq. 21), one Adam step on all parameters.
"""

from __future__ import annotations

import torch

from adasplit_env.data.split import Samples
from adasplit_env.process import discounted_returns
from agents.base import Agent, run_episodes


class ReinforceAgent(Agent):
    name = "reinforce"

    def loss(self, batch: Samples, generator: torch.Generator | None = None):
        rollout = run_episodes(self.process, batch, self.policy_logits, generator=generator)
        returns = discounted_returns(rollout.rewards.detach(), self.config.lambda_d)
        rl_loss = -(returns * rollout.log_probs).sum(dim=1).mean()
        seq_loss = self.sequence_loss(rollout, batch)
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
