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
  the prefix's masked gradient per slot, no (B, G, items) block;
* every slot goes through one reused (B, items) buffer: on a CPU a fresh block
  of (groups, items) costs more in page faults than its products.

Same values as the masked reference and the same gradients wherever the best
group is unique (``tests/test_best_group.py``).
"""

from __future__ import annotations

import torch


def _ordered_maximum(group_reprs, num_groups, items, track_slots):
    """The running maximum over each user's groups with users ordered by h (most
    first), slot by slot through one reused buffer: ``(best, best_slot, groups,
    order, counts)``, ``best`` (B, I) in that order, ``best_slot`` (uint8, which slot
    gave it; None unless ``track_slots``), ``counts[g]`` the users with slot g."""
    order = torch.argsort(num_groups, descending=True, stable=True)
    groups = group_reprs[order]  # users with more groups first
    # n_g: how many users have a group in slot g, a prefix of ``order`` (one host sync)
    slot_range = torch.arange(group_reprs.shape[1], device=num_groups.device)
    counts = (num_groups[None, :] > slot_range[:, None]).sum(dim=1).tolist()
    counts = [n for n in counts if n > 0]
    best = groups[:, 0] @ items.T  # slot 0 (every user); the maximum is kept here in place
    best_slot = (
        torch.zeros(best.shape, dtype=torch.uint8, device=best.device) if track_slots else None
    )
    if len(counts) > 1:
        buffer = best.new_empty(counts[1], best.shape[1])
        for slot, n in enumerate(counts[1:], start=1):
            candidate, current = torch.mm(groups[:n, slot], items.T, out=buffer[:n]), best[:n]
            if track_slots:
                best_slot[:n].masked_fill_(candidate > current, slot)  # strict: first wins ties
            torch.maximum(current, candidate, out=current)
    return best, best_slot, groups, order, counts


def _in_user_order(ordered: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    unordered = torch.empty_like(ordered)
    unordered[order] = ordered
    return unordered


class _BestGroupLogits(torch.autograd.Function):
    @staticmethod
    def forward(ctx, group_reprs, num_groups, items):
        best, best_slot, groups, order, counts = _ordered_maximum(
            group_reprs, num_groups, items, track_slots=True
        )
        ctx.save_for_backward(groups, best_slot, order, items)
        ctx.counts = counts
        return _in_user_order(best, order)

    @staticmethod
    def backward(ctx, grad_logits):
        groups, best_slot, order, items = ctx.saved_tensors
        grad = grad_logits[order]
        need_groups, _, need_items = ctx.needs_input_grad
        grad_groups = torch.zeros_like(groups) if need_groups else None
        # the items' gradient as (d, items): a product whose output is wide, which BLAS
        # does far faster than the tall (items, d) one for the few users of a late slot
        grad_items_t = items.new_zeros(items.shape[1], items.shape[0]) if need_items else None
        picked = torch.empty_like(grad)
        zero = grad.new_zeros(())
        for slot, n in enumerate(ctx.counts):
            # each item's gradient on the one group that gave its maximum
            torch.where(best_slot[:n] == slot, grad[:n], zero, out=picked[:n])
            if need_groups:
                grad_groups[:n, slot] = picked[:n] @ items
            if need_items:
                grad_items_t.addmm_(groups[:n, slot].T, picked[:n])
        return (
            _in_user_order(grad_groups, order) if need_groups else None,
            None,
            grad_items_t.T if need_items else None,
        )


def best_group_logits(
    group_reprs: torch.Tensor, num_groups: torch.Tensor, items: torch.Tensor
) -> torch.Tensor:
    """``max_i p_i . e_c`` over the first ``num_groups`` (B,) slots of ``group_reprs``
    (B, G, d), for every row ``e_c`` of ``items`` (I, d): (B, I). Every user has
    at least one group (slot 0). Without a graph (the full-ranking scorer, the
    likelihood reward) no slot is tracked for a backward."""
    num_groups = num_groups.clamp(min=1)
    if torch.is_grad_enabled() and (group_reprs.requires_grad or items.requires_grad):
        return _BestGroupLogits.apply(group_reprs, num_groups, items)
    best, _, _, order, _ = _ordered_maximum(group_reprs, num_groups, items, track_slots=False)
    return _in_user_order(best, order)
