"""Full-ranking scores of the AdaSplit recommender (paper section 3.3, Eq. 22).

(With the ``max``, ``lse`` or ``attend`` scoring options, :func:`best_group_scores` instead.)

The history is allocated with argmax actions. Then for every candidate item
c the policy runs with ``v = e_c``; the argmax group ``a(c)`` scores
``p_{a(c)} . e_c``, and where the argmax is "create", the new group is
``e_u``. A batch of users x a chunk of items is one tensor computation; the
item chunk bounds memory. Only the groups that some user in the batch has
are computed (most users have far fewer than ``max_groups``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from adasplit_env.data.interactions import PAD
from adasplit_env.data.split import Samples
from adasplit_env.metrics import exclusion_mask
from adasplit_env.process import AllocationProcess, AllocationState

# Elements of the (users, items, hidden) block computed at once: small enough
# to stay in cache (1 << 20 measured 3x faster than 1 << 24 on Beauty).
_CHUNK_ELEMENTS = 1 << 20


def score_all_items(process: AllocationProcess, samples: Samples) -> torch.Tensor:
    """(B, num_items + 1) scores; the padding column is -inf.

    Every candidate is routed to the argmax group of the policy (or "create") by the
    join rule's :meth:`~adasplit_env.model.join_rules.JoinRule.candidate_router`
    (for Eq. 7, through its factorisation: per (user, item, group) only an add, a
    ReLU and a dot product remain; for ``affinity``, one product).
    """
    model = process.model
    policy = model.policy
    if not model.scorer.routes_candidates:
        return best_group_scores(process, samples)
    with torch.no_grad():
        groups = _greedy_groups(process, samples)
        group_reprs, item_table = groups.group_reprs, groups.item_table
        route = policy.candidate_router(group_reprs, groups.group_mask, item_table)
        width = policy.router_width()
        chunk = max(1, _CHUNK_ELEMENTS // max(1, group_reprs.shape[0] * width))
        scores = torch.empty_like(groups.create_scores)
        for start in range(0, item_table.shape[0], chunk):
            stop = start + chunk
            candidates = item_table[start:stop]  # (C, d)
            affinity = torch.einsum("bgd,cd->bcg", group_reprs, candidates)  # p_i . e_c
            join, best_group = route(start, stop, affinity)
            scores[:, start:stop] = _routed_scores(
                policy,
                join,
                best_group,
                affinity,
                groups.can_create[:, None],
                groups.create_scores[:, start:stop],
            )
        if groups.state.sequence_state is not None:  # readout sasrec
            scores += groups.state.sequence_state @ item_table.T
        scores[:, PAD] = -torch.inf
    return scores


class _GreedyGroups(NamedTuple):
    """What section 3.3's scorers read of the greedily allocated histories."""

    state: AllocationState
    group_reprs: torch.Tensor  # (B, G', d): only the slots some user of the batch has
    group_mask: torch.Tensor  # (B, G')
    can_create: torch.Tensor  # (B,): a group can still be opened
    item_table: torch.Tensor  # (I + 1, d)
    create_scores: torch.Tensor  # (B, I + 1): e_u . e_c, the score where "create" wins


def _greedy_groups(process: AllocationProcess, samples: Samples) -> _GreedyGroups:
    state = process.allocate_history_greedily(samples)
    used = int(state.num_groups.max())
    item_table = process.model.item_embeddings.weight
    return _GreedyGroups(
        state=state,
        group_reprs=state.group_reprs[:, :used],
        group_mask=state.group_mask[:, :used],
        can_create=state.num_groups < process.max_groups,
        item_table=item_table,
        create_scores=state.user_embs @ item_table.T,
    )


def _routed_scores(policy, join, best_group, affinity, can_create, create_scores):
    """Section 3.3's score once the best group is known: its ``p . e_c``
    (``affinity`` (..., G') at ``best_group``), or the create score where the
    argmax of ``[r_1 .. r_h, eps]`` is "create" (eps strictly above the best
    ``join`` logit, and a group can still be opened)."""
    creates = can_create & (policy.eps > join)
    join_scores = affinity.gather(-1, best_group[..., None])[..., 0]
    return torch.where(creates, create_scores, join_scores)


def best_group_scores(process: AllocationProcess, samples: Samples) -> torch.Tensor:
    """The ``max`` scoring option: ``max_i p_i . e_c`` over the greedily allocated
    history's groups (or their ``lse`` or ``attend`` mix), (B, num_items + 1); the padding column is -inf."""
    with torch.no_grad():
        state = process.allocate_history_greedily(samples)
        scores = process.model.target_logits(
            None, process.scoring_group_reprs(state), state.group_mask, state.sequence_state
        )
        scores[:, PAD] = -torch.inf
    return scores


def rank_scores(
    process: AllocationProcess,
    samples: Samples,
    cutoff: int | None = None,
    exclude: Sequence[np.ndarray] | None = None,
) -> torch.Tensor:
    """Scores that rank each sample's target as :func:`score_all_items` does.

    For evaluation only, where the target's rank is all that is read: the
    section-3.3 scorer routes a candidate through the Eq. 7 MLP for every group
    (the cost that grows with the groups), but whichever group it is routed to,
    its score is one of ``p_i . e_c`` or the create score ``e_u . e_c``. So the
    least and the greatest of those bound it, and a candidate needs routing only
    where the bounds straddle the target's own (routed) score. The others keep
    a bound on the right side of the target, so :func:`~adasplit_env.metrics.
    target_ranks` counts them as the full scores would (ties against the
    target included). The returned tensor is not the full score matrix: use
    :func:`score_all_items` to recommend. Paths that do not route through the
    Eq. 7 MLP (``max``/``lse``/``attend`` scoring, ``join_logit affinity``) are scored in full.

    With ``cutoff`` K, a user for whom K candidates certainly score at least the
    target's is not routed at all: the rank is exact where it is at most K and
    above K where the full scores' is (all that metrics at k <= K read).
    ``exclude`` names the candidates that :func:`~adasplit_env.metrics.target_ranks`
    will leave out (the ``exclude`` it gets), which must not count towards K.
    """
    policy = process.model.policy
    if not process.model.scorer.routes_candidates or not policy.routes_pairs:
        return score_all_items(process, samples)
    with torch.no_grad():
        groups = _greedy_groups(process, samples)
        item_table = groups.item_table
        lower, upper = _score_bounds(groups)
        route = _pair_router(policy, groups)
        rows = torch.arange(len(samples), device=item_table.device)
        targets = samples.targets.to(item_table.device)
        target_scores = route(rows, targets)
        sequence_state = groups.state.sequence_state
        if sequence_state is not None:  # readout sasrec: the same shift for every route
            shift = sequence_state @ item_table.T
            lower += shift
            upper += shift
            target_scores += shift[rows, targets]
        # The bounds and the routes are products in different orders: a margin of a
        # few float steps sends the candidates within it to be routed exactly.
        margin = 1e-5 * (1.0 + target_scores.abs())
        reaches = upper >= (target_scores - margin)[:, None]
        passes = lower >= (target_scores + margin)[:, None]
        scores = torch.where(passes, lower, upper)  # each on its side of the target
        competes = torch.ones_like(passes)  # what target_ranks compares with the target
        if exclude is not None:
            competes &= ~exclusion_mask(tuple(passes.shape), exclude, passes.device)
        competes[:, PAD] = False
        competes[rows, targets] = False
        undecided = reaches & ~passes & competes
        if cutoff is not None:  # ranked below the cutoff whatever the routes
            settled = (passes & competes).sum(dim=1) >= cutoff
            undecided &= ~settled[:, None]
        pair_rows, pair_items = torch.nonzero(undecided, as_tuple=True)
        used = groups.group_reprs.shape[1]
        chunk = max(1, _CHUNK_ELEMENTS // max(1, used * policy.router_width()))
        for start in range(0, pair_rows.numel(), chunk):
            chunk_rows = pair_rows[start : start + chunk]
            chunk_items = pair_items[start : start + chunk]
            routed = route(chunk_rows, chunk_items)
            if sequence_state is not None:
                routed += shift[chunk_rows, chunk_items]
            scores[chunk_rows, chunk_items] = routed
        scores[rows, targets] = target_scores
        scores[:, PAD] = -torch.inf
    return scores


def _score_bounds(groups: _GreedyGroups) -> tuple[torch.Tensor, torch.Tensor]:
    """The least and the greatest score a candidate can get from any route: over
    the user's groups' ``p_i . e_c`` and, where a group can still be created, the
    create score. (B, I + 1) each."""
    # An empty slot repeats slot 0 (always a group) and a user who cannot create
    # repeats a bound: neither can move a bound, and no pass needs a mask.
    filled = torch.where(
        groups.group_mask[..., None], groups.group_reprs, groups.group_reprs[:, :1]
    )
    item_table = groups.item_table
    lower = filled[:, 0] @ item_table.T  # (B, I + 1)
    upper = lower.clone()
    for group in range(1, filled.shape[1]):
        affinity = filled[:, group] @ item_table.T
        torch.minimum(lower, affinity, out=lower)
        torch.maximum(upper, affinity, out=upper)
    creatable, create_scores = groups.can_create[:, None], groups.create_scores
    torch.maximum(upper, torch.where(creatable, create_scores, upper), out=upper)
    torch.minimum(lower, torch.where(creatable, create_scores, lower), out=lower)
    return lower, upper


def _pair_router(policy, groups: _GreedyGroups):
    """Section 3.3's score of single (user, candidate) pairs: a function of (rows (N,),
    items (N,)) -> (N,), the join rule's pair router (the rule of its candidate router)
    followed by :func:`_routed_scores`, for pairs that need not share their candidates."""
    best_join = policy.pair_router(groups.group_reprs, groups.group_mask)

    def route(rows, items):
        candidates = groups.item_table[items]  # (N, d)
        affinity = torch.einsum("ngd,nd->ng", groups.group_reprs[rows], candidates)  # p_i . e_c
        join, best_group = best_join(rows, candidates, affinity)
        return _routed_scores(
            policy,
            join,
            best_group,
            affinity,
            groups.can_create[rows],
            groups.create_scores[rows, items],
        )

    return route


def allocate_greedily(process: AllocationProcess, samples: Samples, score_target: bool = True):
    """Section 3.3: each history allocated by argmax actions, then the target's argmax
    group: ``(history_state, final_state, target_step)``, with the graph where gradients
    are on."""
    history = process.allocate_history_greedily(samples)
    actions = process.policy_logits(history).argmax(dim=1)
    final, step = process.step(history, actions, score_target=score_target)
    return history, final, step


def allocate_for_prediction(process: AllocationProcess, samples: Samples):
    """Greedy history allocation plus the target's argmax group (no update), as at prediction."""
    with torch.no_grad():
        return allocate_greedily(process, samples)[1]
