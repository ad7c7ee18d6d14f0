"""What REINFORCE subtracts from its returns (``--reinforce-baseline``), as registered parts.

A baseline that does not depend on the sampled actions keeps the policy gradient
unbiased and lowers its variance (the paper uses none). Each is a class with a
``name`` and :meth:`ReturnBaseline.values`, registered in :data:`REINFORCE_BASELINES`;
the CLI's choices and help are read from the registry.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from adasplit_env.registry import Registry
from adasplit_env.rewards import discounted_returns

REINFORCE_BASELINES: Registry[type[ReturnBaseline]] = Registry("REINFORCE baseline")
# a class decorator: makes the class the baseline of ``--reinforce-baseline <cls.name>``
register_baseline = REINFORCE_BASELINES.register


def step_mean(values: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """(B, T) -> (B, T): the mean of ``values`` over the episodes active at each step,
    zero where the episode is over."""
    weights = active.to(values.dtype)
    mean = (values * weights).sum(dim=0) / weights.sum(dim=0).clamp(min=1)
    return mean[None, :] * weights


class ReturnBaseline:
    """``values(returns, rollout, greedy_rollout, discount)`` (B, T): what each step's
    return ``G_T`` (Eq. 18) is reduced by. ``needs_greedy_rollout``: it reads the
    argmax rollout of the same batch, which the learner then runs (once)."""

    name: ClassVar[str]
    help: ClassVar[str] = ""
    needs_greedy_rollout: ClassVar[bool] = False

    def values(self, returns, rollout, greedy_rollout, discount: float) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement values()")


@register_baseline
class NoBaseline(ReturnBaseline):
    name = "none"
    help = "nothing (the paper)"

    def values(self, returns, rollout, greedy_rollout, discount):
        return torch.zeros_like(returns)


@register_baseline
class BatchMeanBaseline(ReturnBaseline):
    name = "batch_mean"
    help = "the batch's mean return at the same step"

    def values(self, returns, rollout, greedy_rollout, discount):
        return step_mean(returns, rollout.active)


@register_baseline
class GreedyBaseline(ReturnBaseline):
    """Self-critical (Rennie et al., 2017): the return the same episode earns under the
    argmax policy at the same step, so only what a sampled allocation earns beyond the
    allocation prediction makes is reinforced. Episodes have the same steps under any
    actions, so the two rollouts align; both are zero past an episode's end."""

    name = "greedy"
    help = "the return of the same episode's argmax rollout at the same step (self-critical)"
    needs_greedy_rollout = True

    def values(self, returns, rollout, greedy_rollout, discount):
        if greedy_rollout is None:
            raise ValueError("the greedy baseline needs the argmax rollout of the batch")
        return discounted_returns(greedy_rollout.rewards.detach(), discount)
