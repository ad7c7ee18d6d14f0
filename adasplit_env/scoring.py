"""Full-ranking scores of the AdaSplit recommender (paper section 3.3, Eq. 22).

(With the ``max`` or ``lse`` scoring options, :func:`best_group_scores` instead.)

The history is allocated with argmax actions. Then for every candidate item
c the policy runs with ``v = e_c``; the argmax group ``a(c)`` scores
``p_{a(c)} . e_c``, and where the argmax is "create", the new group is
``e_u``. A batch of users x a chunk of items is one tensor computation; the
item chunk bounds memory. Only the groups that some user in the batch has
are computed (most users have far fewer than ``max_groups``).
"""

from __future__ import annotations

import torch

from adasplit_env.data.interactions import PAD
from adasplit_env.data.split import Samples
from adasplit_env.model.policy import masked_softmax
from adasplit_env.process import AllocationProcess

# Elements of the (users, items, hidden) block computed at once: small enough
# to stay in cache (1 << 20 measured 3x faster than 1 << 24 on Beauty).
_CHUNK_ELEMENTS = 1 << 20


def score_all_items(process: AllocationProcess, samples: Samples) -> torch.Tensor:
    """(B, num_items + 1) scores; the padding column is -inf.

    Every candidate is routed to the argmax group of the policy (or "create");
    :func:`_eq7_router` does it through the factorisation of Eq. 7 and 12 (see
    :meth:`AllocationPolicyHead.item_part_maps`): per user the groups are
    projected once, per item the item half once, and per (user, item, group)
    only an add, a ReLU and a dot product remain. With ``join_logit
    affinity`` the routing is one product (:func:`_affinity_router`).
    """
    model = process.model
    policy = model.policy
    if model.config.scoring in ("max", "lse"):
        return best_group_scores(process, samples)
    with torch.no_grad():
        state = process.allocate_history_greedily(samples)
        used = int(state.num_groups.max())
        group_reprs = state.group_reprs[:, :used]  # (B, G', d)
        group_mask = state.group_mask[:, :used]
        can_create = state.num_groups < process.max_groups  # (B,)
        item_table = model.item_embeddings.weight  # (I + 1, d)
        create_scores = state.user_embs @ item_table.T  # (B, I + 1)
        make_router = _affinity_router if policy.join_logit == "affinity" else _eq7_router
        route = make_router(policy, group_reprs, group_mask, item_table)
        hidden = policy.hidden.out_features
        chunk = max(1, _CHUNK_ELEMENTS // max(1, group_reprs.shape[0] * hidden))
        scores = torch.empty_like(create_scores)
        for start in range(0, item_table.shape[0], chunk):
            stop = start + chunk
            candidates = item_table[start:stop]  # (C, d)
            affinity = torch.einsum("bgd,cd->bcg", group_reprs, candidates)  # p_i . e_c
            join, best_group = route(start, stop, affinity)
            # argmax of [r_1 .. r_h, eps]: create only when eps is strictly larger.
            creates = can_create[:, None] & (policy.eps > join)
            join_scores = affinity.gather(2, best_group[..., None])[..., 0]
            scores[:, start:stop] = torch.where(creates, create_scores[:, start:stop], join_scores)
        if state.sequence_state is not None:  # readout sasrec
            scores += state.sequence_state @ item_table.T
        scores[:, PAD] = -torch.inf
    return scores


def _eq7_router(policy, group_reprs, group_mask, item_table):
    """Eq. 7-8 routing of the candidates ``item_table[start:stop]``: a function of
    (start, stop, affinity (B, C, G')) -> (the best group's join logit, its index),
    each (B, C). Only users that have group slot g compute it (slot 0 always exists):
    padded slots cost nothing."""
    summary_map, item_map = policy.item_part_maps()
    group_summary_part = group_reprs @ summary_map.T  # (B, G', H)
    group_part = policy.group_part(group_reprs)  # (B, G', H)
    output_weight, output_bias = policy.output_vector()
    item_part_all = item_table @ item_map.T + policy.hidden.bias  # (I + 1, H)
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
        return policy.join_logits(best_score + output_bias), best_group

    return route


def _affinity_router(policy, group_reprs, group_mask, item_table):
    """``join_logit affinity`` routing, same contract as :func:`_eq7_router`: the
    join logits of all groups are one product, the argmax their max."""

    def route(start, stop, affinity):
        joins = policy.candidate_affinity_scores(item_table[start:stop], group_reprs)
        return joins.masked_fill(~group_mask[:, None, :], -torch.inf).max(dim=2)

    return route


def best_group_scores(process: AllocationProcess, samples: Samples) -> torch.Tensor:
    """The ``max`` scoring option: ``max_i p_i . e_c`` over the greedily allocated
    history's groups, (B, num_items + 1); the padding column is -inf."""
    with torch.no_grad():
        state = process.allocate_history_greedily(samples)
        scores = process.model.target_logits(
            None, state.group_reprs, state.group_mask, state.sequence_state
        )
        scores[:, PAD] = -torch.inf
    return scores


def allocate_for_prediction(process: AllocationProcess, samples: Samples):
    """Greedy history allocation plus the target's argmax group (no update), as at prediction."""
    with torch.no_grad():
        state = process.allocate_history_greedily(samples)
        actions = process.policy_logits(state).argmax(dim=1)
        final, _ = process.step(state, actions)
    return final
