"""The allocation MDP's reward terms (Eq. 14-18), and how they add up.

The process (:mod:`adasplit_env.process`) computes each step's terms from its state
with these functions; the learners discount the rewards with :func:`discounted_returns`.
Terms and weights are :class:`~adasplit_env.model.config.RewardConfig`'s.
"""

from __future__ import annotations

import torch

from adasplit_env.constants import index_range, upper_pairs
from adasplit_env.model.config import RewardConfig
from adasplit_env.model.join_rules import masked_softmax

# The reward's terms, each a StepOutput field "<term>_reward" (likelihood: an option, 0 by default).
REWARD_TERMS = ("allocation", "orthogonality", "creation", "likelihood")


def creation_penalty(num_created: torch.Tensor, config: RewardConfig) -> torch.Tensor:
    """Eq. 17: lambda as a function of T_a, the groups created so far."""
    created = num_created.to(torch.get_default_dtype())
    if config.curriculum == "exponential":
        return config.penalty**created
    if config.curriculum == "linear":
        return config.penalty * created
    if config.curriculum == "keep":
        return torch.full_like(created, config.penalty)
    return torch.zeros_like(created)


def allocation_reward(
    affinity: torch.Tensor, group_mask: torch.Tensor, chosen: torch.Tensor
) -> torch.Tensor:
    """Eq. 14: ``softmax_i(p_i . v_T)[a]`` over the groups in ``group_mask`` (..., G)
    from their ``affinity`` p_i . v_T (..., G), at the ``chosen`` slot (...)."""
    return masked_softmax(affinity, group_mask).gather(-1, chosen[..., None])[..., 0]


def orthogonality_reward(group_reprs: torch.Tensor, group_mask: torch.Tensor) -> torch.Tensor:
    """Eq. 15: ``-mean_{i<j} |p_i . p_j|`` over active groups; 0 when h = 1.
    ``group_reprs`` (..., G, d) and ``group_mask`` (..., G), as
    :func:`orthogonality_of_gram` reads it."""
    return orthogonality_of_gram(group_reprs @ group_reprs.transpose(-1, -2), group_mask)


def orthogonality_of_gram(gram: torch.Tensor, group_mask: torch.Tensor) -> torch.Tensor:
    """Eq. 15 from the groups' dot products ``gram`` (..., G, G): one step of B episodes,
    or every position of a replay at once. The active groups fill slots 0..h-1 (as the
    MDP opens them, :meth:`AllocationState.group_mask`), so the pairs i < j < h are, for
    each active j, the slots above it: a column sum, with no (..., G, G) mask."""
    size = gram.shape[-1]
    above = (gram.abs() * upper_pairs(size, gram.device)).sum(dim=-2)  # sum_{i<j} |p_i . p_j|
    slots = index_range(size, gram.device)
    total = (above * group_mask).sum(dim=-1)
    count = (slots * group_mask).sum(dim=-1)  # h (h - 1) / 2
    return -total / count.clamp(min=1)


def discounted_returns(rewards: torch.Tensor, discount: float) -> torch.Tensor:
    """Eq. 18: ``G_T = sum_{c >= T} discount^(c - T) r_c`` along dim 1 of (B, T)."""
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in range(rewards.shape[1] - 1, -1, -1):
        running = rewards[:, t] + discount * running
        returns[:, t] = running
    return returns


def total_reward(
    config: RewardConfig,
    allocation: torch.Tensor,
    orthogonality: torch.Tensor,
    creation: torch.Tensor,
    likelihood: torch.Tensor,
) -> torch.Tensor:
    """``r = a (r_loss + lambda_o r_ort) + r_create + w log p(target)`` (Eq. 14-17 with the
    options' weights ``a`` = ``allocation_reward_weight`` and ``w`` = ``likelihood_reward``)."""
    return (
        config.allocation_reward_weight * (allocation + config.lambda_o * orthogonality)
        + creation
        + config.likelihood_reward * likelihood
    )
