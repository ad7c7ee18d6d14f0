"""Join rules: the allocation policy's logits (Eq. 7-8) and the options that replace Eq. 7.

A join rule is the policy head. It gives each active group a logit of joining it
(Eq. 7's ``r_i``; :meth:`JoinRule.join_logits`), beside the create logit ``eps`` at
slot h (Eq. 8; :meth:`JoinRule.slot_logits`). Everything that allocates reads its
logits through this one interface: the MDP's steps and its parallel replay
(:mod:`adasplit_env.process`), the Gymnasium faces' observations and PPO's policy
(:meth:`JoinRule.observation_logits`), and the section-3.3 scorer that routes every
candidate item (:meth:`JoinRule.candidate_router`).

The rules, registered by name in :data:`JOIN_RULES` (the ``join_logit`` option):

- ``sigmoid`` (:class:`SigmoidJoin`, the paper): Eq. 7's MLP over Eq. 12-13, squashed
  by a sigmoid, so a join logit lies in (0, 1) beside ``eps``;
- ``linear`` (:class:`LinearJoin`): the same MLP, its score itself the logit;
- ``affinity`` (:class:`AffinityJoin`): no MLP, ``(v W_a) . p_i / sqrt(d)``;
- ``similarity`` (:class:`SimilarityJoin`): no weights, ``p_i . v / sqrt(d)``;
- ``cluster`` (:class:`ClusterJoin`): not learned; an item joins the group holding
  items of its co-occurrence cluster.

A new rule is one subclass with a ``name`` and :meth:`JoinRule.join_logits`, decorated
with :func:`register_join_rule`; what else it needs it declares (``learned``,
``routes_candidates``, ``reads_allocation``) and the config, the CLI, the scorer and
the learners follow from those.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from adasplit_env.constants import index_range
from adasplit_env.data.cooccurrence import cooccurrence_clusters
from adasplit_env.registry import Registry


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


def group_summary(items: torch.Tensor, group_reprs: torch.Tensor, group_mask: torch.Tensor):
    """Eq. 12's ``sum_i z_i p_i`` with ``z = softmax_i(p_i . v_T)`` over the active groups,
    for items (N, d) against group_reprs (N, G, d): (N, d)."""
    return weighted_groups(masked_softmax(group_dots(group_reprs, items), group_mask), group_reprs)


@dataclass(frozen=True)
class AllocationView:
    """The allocation so far of N episodes, for rules that read it (``reads_allocation``).
    P = L + 1 step positions, G = max_groups slots."""

    item_ids: torch.Tensor  # (N, P) history ids, then the target id
    assignments: torch.Tensor  # (N, P) slot of each allocated item, -1 before
    position: torch.Tensor  # (N,) the position allocated now
    group_sizes: torch.Tensor  # (N, G) items each group holds
    max_groups: int


@dataclass(frozen=True)
class JoinQuery:
    """N items to allocate, each against its own groups; W <= G slots shown."""

    items: torch.Tensor  # (N, d) v_T of the item (e_target at the target step)
    item_terms: torch.Tensor  # (N, K) JoinRule.item_terms(items), computed once per rollout
    group_reprs: torch.Tensor  # (N, W, d) p_i, zero in empty slots
    num_groups: torch.Tensor  # (N,) h
    maps: tuple[torch.Tensor, ...]  # JoinRule.folded_maps(), computed once per rollout
    allocation: AllocationView | None = None  # given to rules that read it

    @functools.cached_property  # read by the join logits and by Eq. 8: computed once
    def group_mask(self) -> torch.Tensor:
        """(N, W) the h active groups."""
        slots = index_range(self.group_reprs.shape[1], self.num_groups.device)
        return slots[None, :] < self.num_groups[:, None]

    def detached(self, rule: JoinRule) -> JoinQuery:
        """The query with its inputs (item, groups) cut from their graph, so a loss on the
        logits trains the rule's own weights only; the item side is recomputed from the
        detached item (one small product); the folded weights stay attached."""
        items = self.items.detach()
        return JoinQuery(
            items=items,
            item_terms=rule.item_terms(items),
            group_reprs=self.group_reprs.detach(),
            num_groups=self.num_groups,
            maps=self.maps,
            allocation=self.allocation,
        )


# (start, stop, affinity (B, C, G')) -> (the best group's join logit, its index), (B, C) each
CandidateRouter = Callable[[int, int, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

JOIN_RULES: Registry[type[JoinRule]] = Registry("join rule")
# a class decorator: makes the class the rule of ``join_logit <cls.name>``
register_join_rule = JOIN_RULES.register


def make_join_rule(config) -> JoinRule:
    """The policy head of a :class:`~adasplit_env.model.config.ModelConfig`."""
    return JOIN_RULES[config.join_logit].from_config(config)


class JoinRule(nn.Module):
    """The allocation policy's head: join logits for the active groups (Eq. 7), the
    create logit ``eps`` at slot h (Eq. 8), all divided by ``temperature``.

    What a rule declares, read by the config checks and the learners:

    - ``learned``: it has weights of its own that a learner trains;
    - ``deterministic``: it puts each item in one slot with probability 1 (so a policy
      gradient through it is 0, and a replay of its allocation needs no logits);
    - ``routes_candidates``: it can route a candidate item from its vector alone, as the
      paper's scoring (section 3.3) needs;
    - ``routes_pairs``: it has a cheap router for single (user, candidate) pairs, with
      which evaluation routes only the candidates that can reach the target's rank;
    - ``reads_allocation``: its logits read the item ids and the allocation so far
      (:class:`AllocationView`), not only the item and group vectors.
    """

    name: ClassVar[str]
    help: ClassVar[str] = ""  # one line for --join-logit's help
    learned: ClassVar[bool] = True
    deterministic: ClassVar[bool] = False
    routes_candidates: ClassVar[bool] = True
    routes_pairs: ClassVar[bool] = False
    reads_allocation: ClassVar[bool] = False

    def __init__(self, dim: int, eps: float = 0.5, temperature: float = 1.0) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.temperature = temperature

    @classmethod
    def from_config(cls, config) -> JoinRule:
        return cls(config.dim, eps=config.eps, temperature=config.temperature)

    # -- what a rule implements -------------------------------------------------------
    def item_terms(self, items: torch.Tensor) -> torch.Tensor:
        """What the join logits need of the item alone, for items (..., d) -> (..., K).
        It does not depend on the allocation, so a rollout computes it once for every
        step position."""
        return items.new_zeros(*items.shape[:-1], 0)

    def folded_maps(self) -> tuple[torch.Tensor, ...]:
        """The rule's weights folded for :meth:`join_logits`, once per rollout."""
        return ()

    def join_logits(self, query: JoinQuery) -> torch.Tensor:
        """(N, W) the logit of joining each slot's group (read where the group is active)."""
        raise NotImplementedError(f"{type(self).__name__} must implement join_logits()")

    def version_logits(
        self, item_terms: torch.Tensor, vectors: torch.Tensor
    ) -> torch.Tensor | None:
        """(B, P, V) the join logit of each of P items against each of V group states of
        its episode, (B, V, d), for a rule whose logit reads one group and the item alone:
        the parallel path then scores every version once and reads each (position, slot)
        from it, instead of building the groups before every position. None (the default)
        for rules that read the groups together (Eq. 12's summary)."""
        return None

    @property
    def feature_dim(self) -> int:
        return 2 * self.dim

    def critic_features(self, query: JoinQuery) -> torch.Tensor:
        """(N, feature_dim) what a critic reads of the state: here Eq. 12's input
        ``[sum_i z_i p_i ; v_T]`` (rules with Eq. 12's ``W0`` give ``s_T`` itself)."""
        summary = group_summary(query.items, query.group_reprs, query.group_mask)
        return torch.cat([summary, query.items], dim=-1)

    def candidate_router(
        self, group_reprs: torch.Tensor, group_mask: torch.Tensor, item_table: torch.Tensor
    ) -> CandidateRouter:
        """Section 3.3's routing of the candidates ``item_table[start:stop]`` against each
        user's groups (B, G', d): the best group's join logit and its index."""
        raise NotImplementedError(f"join rule {self.name} cannot route candidate items")

    def router_width(self) -> int:
        """Floats a router computes per (user, candidate, group): sizes its chunks."""
        return self.dim

    def fit(self, split, seed: int = 0) -> None:
        """Fit what the rule derives from the training data before training (a no-op for
        learned rules)."""

    def observation_fields(self, max_groups: int, dim: int) -> dict[str, spaces.Space]:
        """The observation entries the rule needs beyond the item and the groups."""
        return {}

    def observe(self, query: JoinQuery) -> dict[str, torch.Tensor]:
        """The values of :meth:`observation_fields` for the episodes of ``query``."""
        return {}

    # -- shared: Eq. 8 ------------------------------------------------------------------
    def slot_logits(self, query: JoinQuery, max_groups: int | None = None) -> torch.Tensor:
        """Eq. 8 as logits over the action slots, (N, max_groups).

        Slot i < h holds the join logit ``r_i``, slot h (while h < max_groups) the
        create logit ``eps``; other slots are -inf. Divided by the temperature. Only the
        W slots of the query are computed; the rest up to ``max_groups`` are -inf.
        """
        scores = self.join_logits(query)
        return self.slot_logits_of(scores, query.num_groups, max_groups, query.group_mask)

    def slot_logits_of(
        self,
        join_logits: torch.Tensor,
        num_groups: torch.Tensor,
        max_groups: int | None = None,
        group_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """:meth:`slot_logits` from the join logits (N, W) of N items with ``num_groups``
        (N,) groups each (``group_mask``: their (N, W) active slots, when known)."""
        slots = index_range(join_logits.shape[1], join_logits.device)
        creates = slots[None, :] == num_groups[:, None]
        if group_mask is None:
            group_mask = slots[None, :] < num_groups[:, None]
        logits = torch.where(group_mask, join_logits, -torch.inf)
        logits = torch.where(creates, self.eps, logits)
        if self.temperature != 1.0:
            logits = logits / self.temperature
        return _pad_slots(logits, max_groups)

    def logits(
        self,
        items: torch.Tensor,
        group_reprs: torch.Tensor,
        num_groups: torch.Tensor,
        allocation: AllocationView | None = None,
    ) -> torch.Tensor:
        """:meth:`slot_logits` of N items (N, d) against their groups (N, G, d)."""
        query = JoinQuery(
            items=items,
            item_terms=self.item_terms(items),
            group_reprs=group_reprs,
            num_groups=num_groups,
            maps=self.folded_maps(),
            allocation=allocation,
        )
        return self.slot_logits(query)

    def query_of_observation(self, observations: dict[str, torch.Tensor]) -> JoinQuery:
        """The query an observation of the Gymnasium faces shows (its ``item``, ``groups``
        and ``group_mask``), batched."""
        num_groups = (observations["group_mask"] > 0.5).sum(dim=1)
        items = observations["item"]
        return JoinQuery(
            items=items,
            item_terms=self.item_terms(items),
            group_reprs=observations["groups"],
            num_groups=num_groups,
            maps=self.folded_maps(),
        )

    def observation_logits(
        self, observations: dict[str, torch.Tensor], query: JoinQuery | None = None
    ) -> torch.Tensor:
        """:meth:`slot_logits` from a batch of observations: what a learner on the
        Gymnasium faces (PPO) reads, the same logits the MDP's own steps use.
        ``query``: :meth:`query_of_observation` of them, when the caller has it."""
        return self.slot_logits(
            query if query is not None else self.query_of_observation(observations)
        )


def _pad_slots(logits: torch.Tensor, max_groups: int | None) -> torch.Tensor:
    if max_groups is None or logits.shape[1] == max_groups:
        return logits
    return nn.functional.pad(logits, (0, max_groups - logits.shape[1]), value=-torch.inf)


@register_join_rule
class SigmoidJoin(JoinRule):
    """Eq. 7-8 over Eq. 12-13 (the paper). All projections are d x d (W0 is 2d x d).

    With ``s_i = [s_T Ws ; p_i Wp]`` the first layer splits into an item part and a
    group part: ``s_i Wp1 + bp1 = (s_T Ws Wp1_item + bp1) + p_i Wp Wp1_group``. Since
    one ReLU sits between Wp1 and the output, ``Wp2`` and ``Wp3`` compose into one
    vector. So per (item, group) pair only an add, a ReLU and a dot product remain
    (:meth:`join_logits` and the routers rely on it). The join logit is
    ``r_i = sigmoid(score)``: in (0, 1) beside ``eps``, so the policy is never more
    decisive than ``exp(1 - eps)`` to one.
    """

    name = "sigmoid"
    help = "sigmoid of Eq. 7's score (the paper: in (0, 1) beside eps, saturates)"
    routes_pairs = True

    def __init__(self, dim: int, eps: float = 0.5, temperature: float = 1.0) -> None:
        super().__init__(dim, eps, temperature)
        self.state_proj = nn.Linear(2 * dim, dim, bias=False)  # W0, Eq. 12
        self.item_state_proj = nn.Linear(dim, dim, bias=False)  # Ws, Eq. 13
        self.group_state_proj = nn.Linear(dim, dim, bias=False)  # Wp, Eq. 13
        self.hidden = nn.Linear(2 * dim, dim)  # Wp1, bp1, Eq. 7
        self.output = nn.Linear(dim, dim)  # Wp2, bp2
        self.score = nn.Linear(dim, 1)  # Wp3, bp3

    def squash(self, scores: torch.Tensor) -> torch.Tensor:
        """The join logit from Eq. 7's score: ``r_i = sigmoid(score)``."""
        return torch.sigmoid(scores)

    def allocation_state(
        self, items: torch.Tensor, group_reprs: torch.Tensor, group_mask: torch.Tensor
    ) -> torch.Tensor:
        """Eq. 12: ``s_T = W0 [sum_i z_i p_i ; v_T]``, items (N, d) -> (N, d)."""
        summary = group_summary(items, group_reprs, group_mask)
        return self.state_proj(torch.cat([summary, items], dim=-1))

    @property
    def feature_dim(self) -> int:
        return self.dim

    def critic_features(self, query: JoinQuery) -> torch.Tensor:
        """Eq. 12's ``s_T``."""
        return self.allocation_state(query.items, query.group_reprs, query.group_mask)

    def group_part(self, group_reprs: torch.Tensor) -> torch.Tensor:
        """``p_i Wp Wp1_group``: the half of the first layer that depends on the group."""
        return self.group_state_proj(group_reprs) @ self.hidden.weight[:, self.dim :].T

    def item_part_maps(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, B), each (H, d), with ``s_T Ws Wp1_item + bp1 = summary @ A.T + item @ B.T
        + bp1``: Eq. 12 makes ``s_T`` linear in ``[summary ; item]``, so the item half of
        the first policy layer folds W0, Ws and Wp1 into two small matrices."""
        folded = self.hidden.weight[:, : self.dim] @ self.item_state_proj.weight  # (H, d)
        return (
            folded @ self.state_proj.weight[:, : self.dim],
            folded @ self.state_proj.weight[:, self.dim :],
        )

    def output_vector(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``Wp2 Wp3`` and ``bp2 Wp3 + bp3`` composed: (H,) and ()."""
        weight = self.output.weight.T @ self.score.weight[0]
        bias = self.output.bias @ self.score.weight[0] + self.score.bias[0]
        return weight, bias

    def item_terms(self, items: torch.Tensor) -> torch.Tensor:
        """The item half of the first layer through Eq. 12, ``v (Wp1_item Ws W0_v)^T +
        bp1`` (..., H)."""
        _, item_map = self.item_part_maps()
        return items @ item_map.T + self.hidden.bias

    def folded_maps(self) -> tuple[torch.Tensor, ...]:
        """The summary map (H, d) of :meth:`item_part_maps`, the group map
        ``Wp1_group Wp`` (H, d) and :meth:`output_vector`."""
        summary_map, _ = self.item_part_maps()
        group_map = self.hidden.weight[:, self.dim :] @ self.group_state_proj.weight
        return (summary_map, group_map, *self.output_vector())

    def join_logits(self, query: JoinQuery) -> torch.Tensor:
        summary_map, group_map, output_weight, output_bias = query.maps
        group_reprs = query.group_reprs
        summary = group_summary(query.items, group_reprs, query.group_mask)
        item_part = summary @ summary_map.T + query.item_terms
        hidden_units = torch.relu(item_part[:, None, :] + group_reprs @ group_map.T)
        return self.squash(hidden_units @ output_weight + output_bias)

    def router_width(self) -> int:
        return self.hidden.out_features

    def candidate_router(self, group_reprs, group_mask, item_table) -> CandidateRouter:
        """Eq. 7-8 routing through the factorisation: per user the groups are projected
        once, per item the item half once, and per (user, item, group) only an add, a
        ReLU and a dot product remain. Only users that have group slot g compute it
        (slot 0 always exists): padded slots cost nothing."""
        summary_map, _ = self.item_part_maps()
        group_summary_part = group_reprs @ summary_map.T  # (B, G', H)
        group_part = self.group_part(group_reprs)  # (B, G', H)
        output_weight, output_bias = self.output_vector()
        item_part_all = self.item_terms(item_table)  # (I + 1, H)
        batch = group_reprs.shape[0]
        slot_rows = [torch.nonzero(group_mask[:, g]).flatten() for g in range(group_mask.shape[1])]

        def route(start, stop, affinity):
            weights = masked_softmax(affinity, group_mask[:, None, :])  # Eq. 12's z
            item_part = torch.einsum("bcg,bgh->bch", weights, group_summary_part)
            item_part += item_part_all[start:stop]
            best_score = torch.full(
                affinity.shape[:2], -torch.inf, dtype=affinity.dtype, device=affinity.device
            )
            best_group = torch.zeros(affinity.shape[:2], dtype=torch.int64, device=affinity.device)
            for group, rows in enumerate(slot_rows):
                if rows.numel() == 0:
                    continue
                every = rows.numel() == batch
                hidden_units = item_part if every else item_part[rows]
                hidden_units = torch.relu(hidden_units + group_part[rows, group][:, None, :])
                slot_score = hidden_units @ output_weight  # (n, C)
                current = best_score if every else best_score[rows]
                better = slot_score > current  # strict: the first max wins ties
                if every:
                    best_score = torch.where(better, slot_score, best_score)
                    best_group = torch.where(better, group, best_group)
                else:
                    best_score[rows] = torch.where(better, slot_score, current)
                    best_group[rows] = torch.where(better, group, best_group[rows])
            return self.squash(best_score + output_bias), best_group

        return route

    def pair_router(self, group_reprs: torch.Tensor, group_mask: torch.Tensor):
        """The best group's join logit and index for single (user, candidate) pairs: a
        function of (rows (N,), candidates (N, d), affinity (N, G')) -> ((N,), (N,))."""
        summary_map, _ = self.item_part_maps()
        group_summary_part = group_reprs @ summary_map.T  # (B, G', H)
        group_part = self.group_part(group_reprs)  # (B, G', H)
        output_weight, output_bias = self.output_vector()

        def route(rows, candidates, affinity):
            mask = group_mask[rows]
            weights = masked_softmax(affinity, mask)  # Eq. 12's z
            item_part = torch.einsum("ng,ngh->nh", weights, group_summary_part[rows])
            item_part += self.item_terms(candidates)
            hidden_units = torch.relu(item_part[:, None, :] + group_part[rows])
            slot_scores = hidden_units @ output_weight + output_bias  # (N, G')
            best_score, best_group = slot_scores.masked_fill(~mask, -torch.inf).max(dim=1)
            return self.squash(best_score), best_group

        return route


@register_join_rule
class LinearJoin(SigmoidJoin):
    """Eq. 7's MLP without the sigmoid: the score itself is the join logit, unbounded."""

    name = "linear"
    help = "Eq. 7's score itself, unbounded"

    def squash(self, scores: torch.Tensor) -> torch.Tensor:
        return scores


# the Eq. 7 MLP's parameters, which checkpoints of the affinity and cluster rules held
# (unused) before the rules were parts of their own
_LEGACY_MLP_KEYS = (
    "state_proj.weight",
    "item_state_proj.weight",
    "group_state_proj.weight",
    "hidden.weight",
    "hidden.bias",
    "output.weight",
    "output.bias",
    "score.weight",
    "score.bias",
)


class _WithoutLegacyMLP(JoinRule):
    """A rule without Eq. 7's MLP: it loads older checkpoints that still held one."""

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for key in _LEGACY_MLP_KEYS:
            state_dict.pop(prefix + key, None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


@register_join_rule
class SimilarityJoin(JoinRule):
    """No weights of its own: the join logit is Eq. 14's affinity, ``p_i . v / sqrt(d)``, so
    an item joins (stochastically) the group whose representation predicts it, as far as
    the recommender's groups and items say. The ablation of ``affinity`` that asks what
    its map ``W_a`` adds. The create logit stays ``eps``; a policy gradient still reaches
    the groups and the items through the logits."""

    name = "similarity"
    help = "p_i . v / sqrt(d), no weights of its own (affinity with W_a fixed at the identity)"
    learned = False

    def item_terms(self, items: torch.Tensor) -> torch.Tensor:
        """The query ``v / sqrt(d)`` (..., d)."""
        return items / items.shape[-1] ** 0.5

    def join_logits(self, query: JoinQuery) -> torch.Tensor:
        return group_dots(query.group_reprs, query.item_terms)

    def version_logits(self, item_terms, vectors):
        return torch.bmm(item_terms, vectors.transpose(1, 2))

    def candidate_router(self, group_reprs, group_mask, item_table) -> CandidateRouter:
        """The join logits of all groups are one product, the best group their argmax."""

        def route(start, stop, affinity):
            queries = self.item_terms(item_table[start:stop])
            joins = torch.einsum("bgd,cd->bcg", group_reprs, queries)
            return joins.masked_fill(~group_mask[:, None, :], -torch.inf).max(dim=2)

        return route


@register_join_rule
class AffinityJoin(_WithoutLegacyMLP, SimilarityJoin):
    """No Eq. 7 MLP: the join logit is ``(v W_a) . p_i / sqrt(d)`` with ``W_a`` starting
    at the identity, so an item starts by joining the group whose representation
    predicts it, the similarity Eq. 12 and 14 already use. The create logit stays
    ``eps``."""

    name = "affinity"
    help = (
        "(v W_a) . p_i / sqrt(d), no Eq. 7 MLP, W_a starting at the identity: an item joins "
        "the group that predicts it"
    )
    learned = True

    def __init__(self, dim: int, eps: float = 0.5, temperature: float = 1.0) -> None:
        super().__init__(dim, eps, temperature)
        # A Parameter, not a Linear, so the N(0, 0.02) scheme does not reset it.
        self.affinity_map = nn.Parameter(torch.eye(dim))

    def item_terms(self, items: torch.Tensor) -> torch.Tensor:
        """The query ``v W_a / sqrt(d)`` (..., d)."""
        return items @ self.affinity_map / items.shape[-1] ** 0.5


@register_join_rule
class ClusterJoin(_WithoutLegacyMLP):
    """Not learned: the current item joins the group of the first earlier item of its
    co-occurrence cluster (one of ``cluster_count``,
    :func:`~adasplit_env.data.cooccurrence.cooccurrence_clusters`), else an active
    group still empty (a start group), else opens one; with every slot used it joins
    the newest group. Its logit is 0 on that slot and -inf elsewhere.

    It answers what the learned rules cannot: if a history were split into interests
    (as far as co-occurrence defines them), would the groups predict better? The
    clusters are a buffer, so a checkpoint carries them. It reads item ids, so it
    cannot route a candidate from its vector: it needs a scoring over the history's
    groups (``max``, ``lse``, ``attend``), and the Gymnasium faces show its choice in
    the observation (``join_choice``).
    """

    name = "cluster"
    help = (
        "not learned: an item joins the group holding its co-occurrence cluster, else opens "
        "one (--cluster-count clusters; needs --scoring max, lse or attend)"
    )
    learned = False
    deterministic = True
    routes_candidates = False
    reads_allocation = True

    def __init__(
        self,
        dim: int,
        num_items: int,
        cluster_count: int = 20,
        eps: float = 0.5,
        temperature: float = 1.0,
    ) -> None:
        super().__init__(dim, eps, temperature)
        self.cluster_count = cluster_count
        self.register_buffer("item_clusters", torch.zeros(num_items + 1, dtype=torch.int64))

    @classmethod
    def from_config(cls, config) -> ClusterJoin:
        return cls(
            config.dim,
            config.num_items,
            cluster_count=config.cluster_count,
            eps=config.eps,
            temperature=config.temperature,
        )

    def fit(self, split, seed: int = 0) -> None:
        labels = cooccurrence_clusters(split, self.cluster_count, seed=seed)
        self.item_clusters.copy_(torch.from_numpy(labels))

    def choices(self, query: JoinQuery) -> torch.Tensor:
        """(N,) the slot the rule puts each item in."""
        view = query.allocation
        if view is None:
            raise ValueError(
                "the cluster rule reads the allocation: give the query an AllocationView"
            )
        batch = view.item_ids.shape[0]
        rows = index_range(batch, view.position.device)
        step_clusters = self.item_clusters[view.item_ids]
        # an item placed earlier in the current item's cluster, and its group
        kin = (view.assignments >= 0) & (step_clusters == step_clusters[rows, view.position, None])
        kin_group = view.assignments.gather(1, kin.to(torch.int64).argmax(dim=1, keepdim=True))
        slots = index_range(view.max_groups, view.position.device)
        active = slots[None, :] < query.num_groups[:, None]
        empty = active & (view.group_sizes == 0)
        num_groups = query.num_groups
        # open a group; when none is left, the newest
        choice = torch.where(num_groups < view.max_groups, num_groups, num_groups - 1)
        choice = torch.where(empty.any(dim=1), empty.to(torch.int64).argmax(dim=1), choice)
        return torch.where(kin.any(dim=1), kin_group[:, 0], choice)

    def join_logits(self, query: JoinQuery) -> torch.Tensor:
        width = query.group_reprs.shape[1]
        chosen = self.choices(query)
        return torch.where(index_range(width, chosen.device) == chosen[:, None], 0.0, -torch.inf)

    def slot_logits(self, query: JoinQuery, max_groups: int | None = None) -> torch.Tensor:
        """0 on the rule's slot (a join or "create"), -inf elsewhere: no ``eps``."""
        return _pad_slots(self.join_logits(query), max_groups)

    def observation_fields(self, max_groups: int, dim: int) -> dict[str, spaces.Space]:
        return {"join_choice": spaces.Box(0.0, 1.0, shape=(max_groups,), dtype=np.float32)}

    def observe(self, query: JoinQuery) -> dict[str, torch.Tensor]:
        """``join_choice``: the rule's slot, one-hot over the G slots."""
        slots = index_range(query.allocation.max_groups, query.num_groups.device)
        chosen = self.choices(query)
        return {"join_choice": (slots[None, :] == chosen[:, None]).to(query.items.dtype)}

    def observation_logits(self, observations, query=None) -> torch.Tensor:
        return torch.where(observations["join_choice"] > 0.5, 0.0, -torch.inf)
