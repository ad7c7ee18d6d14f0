"""The allocation policy: state (Eq. 12), group state (Eq. 13), scores (Eq. 7-8).

With ``s_i = [s_T Ws ; p_i Wp]`` the first policy layer splits into an item
part and a group part: ``s_i Wp1 + bp1 = (s_T Ws Wp1_item + bp1) + p_i Wp Wp1_group``.
And since only one ReLU sits between Wp1 and the output, ``Wp2`` and ``Wp3``
compose into one vector. So per (item, group) pair only an add, a ReLU and a
dot product remain; the full-ranking scorer relies on this.
"""

from __future__ import annotations

import torch
from torch import nn

from adasplit_env.constants import index_range


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax over the entries where ``mask`` is True (others get probability 0)."""
    return torch.softmax(scores.masked_fill(~mask, -torch.inf), dim=dim)


# The MDP's per-step products of one vector per episode with its groups. Written as
# a product and a sum rather than einsum: the same numbers (to float rounding), and
# forward plus backward about 4x cheaper at these sizes on a CPU (einsum's backward
# dispatches permutes and reshapes around a batched matmul).
def group_dots(group_reprs: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """``p_i . v`` per episode: group_reprs (B, G, d), vectors (B, d) -> (B, G)."""
    return (group_reprs * vectors[:, None, :]).sum(dim=-1)


def weighted_groups(weights: torch.Tensor, group_reprs: torch.Tensor) -> torch.Tensor:
    """``sum_i w_i p_i`` per episode: weights (B, G), group_reprs (B, G, d) -> (B, d)."""
    return torch.bmm(weights[:, None, :], group_reprs)[:, 0]


class AllocationPolicyHead(nn.Module):
    """Eq. 7-8 over Eq. 12-13. All projections are d x d (W0 is 2d x d)."""

    def __init__(
        self, dim: int, eps: float = 0.5, temperature: float = 1.0, join_logit: str = "sigmoid"
    ) -> None:
        super().__init__()
        self.eps = eps
        self.temperature = temperature
        # "sigmoid" (Eq. 7-8): join logits in (0, 1) beside eps, so the policy saturates;
        # "linear" (an option): the score itself is the logit, unbounded;
        # "affinity" (an option): the logit is (v W_a) . p_i / sqrt(d), no Eq. 7 MLP
        self.join_logit = join_logit
        if join_logit == "affinity":
            # Identity at the start: the join logit begins as Eq. 14's affinity p_i . v_T
            # (scaled), so an item starts by preferring the group that predicts it.
            # A Parameter, not a Linear, so the N(0, 0.02) scheme does not reset it.
            self.affinity_map = nn.Parameter(torch.eye(dim))
        self.state_proj = nn.Linear(2 * dim, dim, bias=False)  # W0, Eq. 12
        self.item_state_proj = nn.Linear(dim, dim, bias=False)  # Ws, Eq. 13
        self.group_state_proj = nn.Linear(dim, dim, bias=False)  # Wp, Eq. 13
        self.hidden = nn.Linear(2 * dim, dim)  # Wp1, bp1, Eq. 7
        self.output = nn.Linear(dim, dim)  # Wp2, bp2
        self.score = nn.Linear(dim, 1)  # Wp3, bp3

    def allocation_state(
        self, items: torch.Tensor, group_reprs: torch.Tensor, group_mask: torch.Tensor
    ) -> torch.Tensor:
        """Eq. 12: ``s_T = W0 [sum_i z_i p_i ; v_T]``, ``z = softmax_i(p_i . v_T)``.

        ``items`` (..., d); ``group_reprs`` (B, G, d) broadcast against the
        leading dims of ``items`` as (B, [C,] G, d); ``group_mask`` (B, G).
        """
        if items.dim() == 2:
            weights = masked_softmax(group_dots(group_reprs, items), group_mask)
            summary = weighted_groups(weights, group_reprs)
        else:  # (B, C, d): many candidate items per user
            affinity = torch.einsum("bgd,bcd->bcg", group_reprs, items)
            weights = masked_softmax(affinity, group_mask[:, None, :])
            summary = torch.einsum("bcg,bgd->bcd", weights, group_reprs)
        return self.state_proj(torch.cat([summary, items], dim=-1))

    def item_part(self, states: torch.Tensor) -> torch.Tensor:
        """``s_T Ws Wp1_item + bp1``: the half of the first layer that depends on the item."""
        dim = states.shape[-1]
        return self.item_state_proj(states) @ self.hidden.weight[:, :dim].T + self.hidden.bias

    def group_part(self, group_reprs: torch.Tensor) -> torch.Tensor:
        """``p_i Wp Wp1_group``: the half that depends on the group."""
        dim = group_reprs.shape[-1]
        return self.group_state_proj(group_reprs) @ self.hidden.weight[:, dim:].T

    def item_part_maps(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, B), each (H, d), with ``item_part(s_T) = summary @ A.T + item @ B.T + bp1``.

        Eq. 12 makes ``s_T`` linear in ``[summary ; item]``, so the item half of
        the first policy layer folds W0, Ws and Wp1 into two small matrices.
        """
        dim = self.item_state_proj.weight.shape[0]
        folded = self.hidden.weight[:, :dim] @ self.item_state_proj.weight  # (H, d)
        return folded @ self.state_proj.weight[:, :dim], folded @ self.state_proj.weight[:, dim:]

    def output_vector(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``Wp2 Wp3`` and ``bp2 Wp3 + bp3`` composed: (H,) and ()."""
        weight = self.output.weight.T @ self.score.weight[0]
        bias = self.output.bias @ self.score.weight[0] + self.score.bias[0]
        return weight, bias

    def group_scores(self, item_part: torch.Tensor, group_part: torch.Tensor) -> torch.Tensor:
        """Eq. 7 before the sigmoid: (B, G, H) or (B, C, G, H) summed to (..., G)."""
        weight, bias = self.output_vector()
        return torch.relu(item_part + group_part) @ weight + bias

    def join_logits(self, scores: torch.Tensor) -> torch.Tensor:
        """The logit of joining each group from its score: ``r_i = sigmoid(score)``
        (Eq. 7) or, with ``join_logit linear`` or ``affinity``, the score itself."""
        return torch.sigmoid(scores) if self.join_logit == "sigmoid" else scores

    def _affinity_queries(self, items: torch.Tensor) -> torch.Tensor:
        """``v W_a / sqrt(d)``: the item side of ``join_logit affinity``."""
        return items @ self.affinity_map / items.shape[-1] ** 0.5

    def affinity_scores(self, items: torch.Tensor, group_reprs: torch.Tensor) -> torch.Tensor:
        """``join_logit affinity``: ``(v W_a) . p_i / sqrt(d)``, one item per episode:
        items (B, d) against group_reprs (B, G, d) -> (B, G)."""
        return group_dots(group_reprs, self._affinity_queries(items))

    def candidate_affinity_scores(
        self, candidates: torch.Tensor, group_reprs: torch.Tensor
    ) -> torch.Tensor:
        """:meth:`affinity_scores` for a table of candidates (C, d): (B, C, G)."""
        return torch.einsum("bgd,cd->bcg", group_reprs, self._affinity_queries(candidates))

    def item_terms(self, items: torch.Tensor) -> torch.Tensor:
        """What a join logit needs of the item alone, for items (..., d): the affinity
        query ``v W_a / sqrt(d)`` (d) or the item half of the first layer through Eq. 12,
        ``v (Wp1_item Ws W0_v)^T + bp1`` (H). It does not depend on the allocation, so a
        rollout computes it once for every step (:meth:`step_logits`)."""
        if self.join_logit == "affinity":
            return self._affinity_queries(items)
        _, item_map = self.item_part_maps()
        return items @ item_map.T + self.hidden.bias

    def folded_maps(self) -> tuple[torch.Tensor, ...]:
        """The weights of Eq. 7, 12-13 folded for :meth:`step_logits`, once per rollout:
        the summary map (H, d) of :meth:`item_part_maps`, the group map ``Wp1_group Wp``
        (H, d) and :meth:`output_vector`. Empty for the affinity join (no MLP)."""
        if self.join_logit == "affinity":
            return ()
        dim = self.group_state_proj.weight.shape[0]
        summary_map, _ = self.item_part_maps()
        group_map = self.hidden.weight[:, dim:] @ self.group_state_proj.weight
        return (summary_map, group_map, *self.output_vector())

    def step_logits(
        self,
        items: torch.Tensor,
        item_terms: torch.Tensor,
        group_reprs: torch.Tensor,
        group_mask: torch.Tensor,
        num_groups: torch.Tensor,
        maps: tuple[torch.Tensor, ...],
    ) -> torch.Tensor:
        """:meth:`slot_logits` (equal to float tolerance) from the precomputed
        ``item_terms`` (B, K) of :meth:`item_terms` and ``maps`` of :meth:`folded_maps`:
        per step only what depends on the groups runs (the MDP's hot loop)."""
        if self.join_logit == "affinity":
            scores = group_dots(group_reprs, item_terms)
        else:
            summary_map, group_map, output_weight, output_bias = maps
            weights = masked_softmax(group_dots(group_reprs, items), group_mask)
            summary = weighted_groups(weights, group_reprs)
            item_part = summary @ summary_map.T + item_terms
            hidden_units = torch.relu(item_part[:, None, :] + group_reprs @ group_map.T)
            scores = hidden_units @ output_weight + output_bias
        return self._slot_logits(scores, group_mask, num_groups)

    def slot_logits(
        self,
        items: torch.Tensor,
        group_reprs: torch.Tensor,
        group_mask: torch.Tensor,
        num_groups: torch.Tensor,
    ) -> torch.Tensor:
        """Eq. 8 as logits over the ``max_groups`` action slots, (B, G).

        Slot i < h holds ``r_i = sigmoid(...)``, slot h (while h < G) the
        create logit ``eps``; other slots are -inf. Divided by the temperature.
        """
        if self.join_logit == "affinity":
            scores = self.affinity_scores(items, group_reprs)
        else:
            states = self.allocation_state(items, group_reprs, group_mask)
            scores = self.group_scores(
                self.item_part(states)[:, None, :], self.group_part(group_reprs)
            )
        return self._slot_logits(scores, group_mask, num_groups)

    def _slot_logits(
        self, scores: torch.Tensor, group_mask: torch.Tensor, num_groups: torch.Tensor
    ) -> torch.Tensor:
        """Eq. 8's logits from the join scores (B, G): joins, eps at slot h, -inf beyond."""
        slots = index_range(scores.shape[1], scores.device)
        creates = slots[None, :] == num_groups[:, None]
        logits = torch.where(group_mask, self.join_logits(scores), -torch.inf)
        logits = torch.where(creates, self.eps, logits)
        return logits if self.temperature == 1.0 else logits / self.temperature
