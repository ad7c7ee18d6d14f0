"""Full-ranking scores of the AdaSplit recommender (paper section 3.3, Eq. 22).

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
from adasplit_env.process import AllocationProcess

# Elements of the (users, items, groups, hidden) tensor computed at once.
_CHUNK_ELEMENTS = 1 << 24


def score_all_items(process: AllocationProcess, samples: Samples) -> torch.Tensor:
    """(B, num_items + 1) scores; the padding column is -inf."""
    model = process.model
    policy = model.policy
    with torch.no_grad():
        state = process.allocate_history_greedily(samples)
        used = int(state.num_groups.max())
        group_reprs = state.group_reprs[:, :used]  # (B, G', d)
        group_mask = state.group_mask[:, :used]
        can_create = state.num_groups < process.max_groups  # (B,)
        group_part = policy.group_part(group_reprs)  # (B, G', H)
        item_table = model.item_embeddings.weight  # (I + 1, d)
        batch, hidden = group_reprs.shape[0], group_part.shape[-1]
        chunk = max(1, _CHUNK_ELEMENTS // max(1, batch * used * hidden))
        scores = item_table.new_empty(batch, item_table.shape[0])
        for start in range(0, item_table.shape[0], chunk):
            candidates = item_table[start : start + chunk]  # (C, d)
            candidates_b = candidates[None].expand(batch, -1, -1)  # (B, C, d)
            states = policy.allocation_state(candidates_b, group_reprs, group_mask)
            item_part = policy.item_part(states)  # (B, C, H)
            group_scores = policy.group_scores(item_part[:, :, None, :], group_part[:, None])
            joins = torch.sigmoid(group_scores).masked_fill(~group_mask[:, None, :], -torch.inf)
            best_join, best_group = joins.max(dim=-1)  # (B, C); first max wins ties
            # argmax of [r_1 .. r_h, eps]: create only when eps is strictly larger.
            creates = can_create[:, None] & (policy.eps > best_join)
            affinity = torch.einsum("bgd,cd->bcg", group_reprs, candidates)
            join_score = affinity.gather(2, best_group[..., None])[..., 0]
            create_score = state.user_embs @ candidates.T
            scores[:, start : start + chunk] = torch.where(creates, create_score, join_score)
        scores[:, PAD] = -torch.inf
    return scores
