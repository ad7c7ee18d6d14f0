"""A complete plug-in agent: REINFORCE with a running-mean baseline.

    python train_agent.py --algo examples.baseline_reinforce:BaselineReinforceAgent

The paper's REINFORCE multiplies log pi by the raw return. Subtracting a
baseline b_T (here: the running mean of the return at each step position)
keeps the gradient unbiased and lowers its variance.
"""

from __future__ import annotations

import torch

from adasplit_env.rewards import discounted_returns
from agents.base import Agent, run_episodes


class BaselineReinforceAgent(Agent):
    name = "baseline-reinforce"
    momentum = 0.9

    def __init__(self, process, config) -> None:
        super().__init__(process, config)
        # A buffer, not a parameter: saved in checkpoints, never optimised.
        self.register_buffer("baseline", torch.zeros(process.model.config.max_len + 1))

    def loss(self, batch, generator=None):
        rollout = run_episodes(self.process, batch, self.policy_logits, generator=generator)
        returns = discounted_returns(rollout.rewards.detach(), self.config.learner.lambda_d)
        active = rollout.active.float()
        steps = returns.shape[1]
        with torch.no_grad():
            mean_return = (returns * active).sum(0) / active.sum(0).clamp(min=1)
            self.baseline[:steps] = (
                self.momentum * self.baseline[:steps] + (1 - self.momentum) * mean_return
            )
        advantages = (returns - self.baseline[:steps]) * active
        rl_loss = -(advantages * rollout.log_probs).sum(dim=1).mean()
        # Eq. 21, L = L_seq + beta * L_rl, and the standard log tags
        return self.joint_loss(rollout, self.sequence_loss(rollout, batch), rl_loss)
