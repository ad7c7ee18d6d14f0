"""``max_i p_i . e_c`` over each user's groups, for every item, without a (B, G, items) tensor.

``scoring max`` scores every item by the best of the user's h groups. Written as
tensor algebra that is a (B, G, items) block and its ``amax``, whose backward
compares, counts and multiplies that block again: on Beauty (12,101 items) at
batch 256 that backward alone took about 180 of a 400 ms update. Here:

* only the groups a user has are computed: episodes are ordered by h, so the
  users with a group in slot g are a prefix of the batch and slot g costs
  ``n_g x items`` (``sum_g n_g`` is the batch's total of groups, not
  ``B x max h``);
* forward keeps the running maximum in place and which slot gave it (uint8);
* backward sends each item's gradient to that one slot (the first of a tie, as
  ``max(dim)`` does; ``amax`` would split it), slot by slot: two products of
  the prefix's masked gradient per slot, no (B, G, items) block.

Same values as the masked reference and the same gradients wherever the best
group is unique (``tests/test_best_group.py``).
"""

from __future__ import annotations

import torch


class _BestGroupLogits(torch.autograd.Function):
    @staticmethod
    def forward(ctx, group_reprs, num_groups, items):
        batch, slots, _ = group_reprs.shape
        order = torch.argsort(num_groups, descending=True, stable=True)
        groups = group_reprs[order]  # users with more groups first
        # n_g: how many users have a group in slot g, a prefix of ``order`` (one host sync)
        slot_range = torch.arange(slots, device=num_groups.device)
        counts = (num_groups[None, :] > slot_range[:, None]).sum(dim=1).tolist()
        counts = [n for n in counts if n > 0]
        # every (user, slot) pair in use, slot-major: one product with the item table
        rows = torch.cat([torch.arange(n, device=order.device) for n in counts])
        pair_slots = torch.cat(
            [torch.full((n,), slot, device=order.device) for slot, n in enumerate(counts)]
        )
        pair_groups = groups[rows, pair_slots]  # (N, d)
        pair_logits = pair_groups @ items.T  # (N, I)
        best = pair_logits[:batch]  # slot 0 (every user); the maximum is kept here in place
        best_slot = torch.zeros(best.shape, dtype=torch.uint8, device=best.device)
        offset = batch
        for slot, n in enumerate(counts[1:], start=1):
            candidate, current = pair_logits[offset : offset + n], best[:n]
            best_slot[:n].masked_fill_(candidate > current, slot)  # strict: first slot wins ties
            torch.maximum(current, candidate, out=current)
            offset += n
        logits = torch.empty_like(best)
        logits[order] = best
        ctx.save_for_backward(pair_groups, best_slot, order, rows, pair_slots, items)
        ctx.counts = counts
        ctx.group_shape = group_reprs.shape
        return logits

    @staticmethod
    def backward(ctx, grad_logits):
        pair_groups, best_slot, order, rows, pair_slots, items = ctx.saved_tensors
        grad = grad_logits[order]
        # each item's gradient, on the one pair (user, slot) that gave its maximum
        picked = grad.new_empty(pair_groups.shape[0], grad.shape[1])
        zero = grad.new_zeros(())
        offset = 0
        for slot, n in enumerate(ctx.counts):
            torch.where(best_slot[:n] == slot, grad[:n], zero, out=picked[offset : offset + n])
            offset += n
        need_groups, _, need_items = ctx.needs_input_grad
        grad_groups = grad_items = None
        if need_groups:
            ordered = pair_groups.new_zeros(ctx.group_shape)
            ordered[rows, pair_slots] = picked @ items
            grad_groups = torch.empty_like(ordered)
            grad_groups[order] = ordered
        if need_items:
            grad_items = picked.T @ pair_groups
        return grad_groups, None, grad_items


def best_group_logits(
    group_reprs: torch.Tensor, num_groups: torch.Tensor, items: torch.Tensor
) -> torch.Tensor:
    """``max_i p_i . e_c`` over the first ``num_groups`` (B,) slots of ``group_reprs``
    (B, G, d), for every row ``e_c`` of ``items`` (I, d): (B, I). Every user has
    at least one group (slot 0)."""
    return _BestGroupLogits.apply(group_reprs, num_groups.clamp(min=1), items)
