"""Group updaters: how the chosen group absorbs an item (Eq. 9-10 and ablations).

Each updater maps (group representation p, item v, memory) to the new p and
memory, row-wise over N groups. ``memory`` is the LSTM's cell (zeros for the
others); ``sizes`` the number of items already in the group. ``item_terms(v)``
is what the update needs of the item alone: the MDP computes it once per
rollout for every step and passes it back (``item_terms=``), so that the hot
loop runs only the group's side.

Two ways to get the groups of an allocation, equal to float tolerance
(``tests/test_parallel.py``):

* :meth:`GroupUpdater.absorb`, one step of the MDP (the only place where a
  step's group update is written; :meth:`AllocationProcess.step` calls it);
* :meth:`GroupUpdater.states_before_steps`, the groups before every step
  position of a whole allocation given at once (the parallel training path,
  :meth:`AllocationProcess.replay`). Its default walks the positions with
  :meth:`absorb`; an updater whose state is a closed-form function of the
  group's items (``mean``, ``gated``, ``gated_vector``) computes every position in a few
  tensor operations (``parallel = True``). The attention-GRU's gates read the
  group, so it is recurrent and stays sequential.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from adasplit_env.constants import index_range
from adasplit_env.registry import Registry

GROUP_UPDATERS: Registry[type[GroupUpdater]] = Registry("group updater")


class GroupUpdater(nn.Module):
    """What every updater provides; subclasses implement ``forward`` and ``item_terms``."""

    #: keeps a memory beside p (the LSTM's cell), which the MDP must carry
    has_memory = False
    #: :meth:`states_before_steps` is a closed form, not a walk over the positions
    parallel = False

    def item_terms(self, items: torch.Tensor) -> torch.Tensor:
        return items.new_zeros(*items.shape[:-1], 0)

    def absorb(
        self,
        group_reprs: torch.Tensor,
        group_memory: torch.Tensor,
        group_sizes: torch.Tensor,
        chosen: torch.Tensor,
        created: torch.Tensor,
        absorbs: torch.Tensor,
        starts: torch.Tensor,
        items: torch.Tensor,
        item_terms: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step of Eq. 9-10 for B episodes: the group in slot ``chosen`` (B,)
        absorbs ``items`` (B, d) where ``absorbs`` (B,) holds; a ``created`` group
        starts at ``starts`` (e_u). Returns the new (group_reprs, group_memory,
        group_sizes) and the chosen group as the choice saw it (a created one as e_u).
        Only the chosen group changes."""
        rows = index_range(group_reprs.shape[0], group_reprs.device)
        selected = torch.where(created[:, None], starts, group_reprs[rows, chosen])
        selected_size = torch.where(created, 0, group_sizes[rows, chosen])
        selected_memory = group_memory[rows, chosen]  # zeros unless the updater keeps one
        if self.has_memory:
            selected_memory = torch.where(created[:, None], 0.0, selected_memory)
        updated, updated_memory = self(
            selected,
            items,
            selected_memory,
            selected_size,
            item_terms=item_terms if item_terms.shape[-1] else None,
        )
        # One out-of-place write per episode at (row, chosen). Rows that change nothing
        # write back what is there (a finished episode, or a join at the target); a
        # group created at the target is written as e_u.
        group_reprs = group_reprs.index_put(
            (rows, chosen), torch.where(absorbs[:, None], updated, selected)
        )
        if self.has_memory:
            group_memory = group_memory.index_put(
                (rows, chosen), torch.where(absorbs[:, None], updated_memory, selected_memory)
            )
        group_sizes = group_sizes.index_put((rows, chosen), selected_size + absorbs)
        return group_reprs, group_memory, group_sizes, selected

    def states_before_steps(
        self,
        starts: torch.Tensor,
        step_items: torch.Tensor,
        step_terms: torch.Tensor,
        assignments: torch.Tensor,
        num_slots: int,
    ) -> torch.Tensor:
        """The groups before each step position, (B, P, G, d), for an allocation
        ``assignments`` (B, P) (each position's slot, -1 where nothing is allocated)
        of the items ``step_items`` (B, P, d) with their ``item_terms`` ``step_terms``.
        Slot 0 holds ``starts`` (B, d) before its first item, unopened slots zero, as
        in :class:`~adasplit_env.process.AllocationState`. Every position is absorbed
        except the last (the target, docs/design.md section 3). This default walks the
        positions with :meth:`absorb`."""
        batch, positions, dim = step_items.shape
        group_reprs = starts.new_zeros(batch, num_slots, dim)
        group_reprs[:, 0] = starts
        group_memory = torch.zeros_like(group_reprs)
        group_sizes = assignments.new_zeros(batch, num_slots)
        num_groups = assignments.new_ones(batch)
        states = [group_reprs]
        for position in range(positions - 1):
            chosen = assignments[:, position]
            active = chosen >= 0
            created = active & (chosen >= num_groups)
            chosen = chosen.clamp(min=0)
            group_reprs, group_memory, group_sizes, _ = self.absorb(
                group_reprs,
                group_memory,
                group_sizes,
                chosen,
                created,
                active,
                starts,
                step_items[:, position],
                step_terms[:, position],
            )
            num_groups = num_groups + created
            states.append(group_reprs)
        return torch.stack(states, dim=1)


def membership_before_steps(
    assignments: torch.Tensor, num_slots: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """For an allocation (B, P): ``members`` (B, P, G), item j's slot as one-hot
    (zero where nothing is allocated and at the target, the last position), and
    ``opened`` (B, P, G) bool, slot g holds a group before position t (slot 0 always)."""
    slots = index_range(num_slots, assignments.device)
    members = assignments[:, :, None] == slots
    members[:, -1] = False  # the target is never absorbed
    before = torch.cumsum(members.to(torch.int64), dim=1) - members.to(torch.int64)
    opened = (before > 0) | (slots == 0)
    return members, opened


@GROUP_UPDATERS.register
class AttentionGRU(GroupUpdater):
    """Eq. 10, with scalar update and reset gates.

    ``z = sigmoid(W_z v + U_z p)``, ``s = sigmoid(W_r v + U_r p)``,
    ``h = tanh(W v + U (s * p))``, ``p' = z * p + (1 - z) * h``.
    """

    name = "attn_gru"
    help = "the attention-GRU of Eq. 9-10 (the paper)"

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.update_item = nn.Linear(dim, 1, bias=False)  # W_z
        self.update_group = nn.Linear(dim, 1, bias=False)  # U_z
        self.reset_item = nn.Linear(dim, 1, bias=False)  # W_r
        self.reset_group = nn.Linear(dim, 1, bias=False)  # U_r
        self.candidate_item = nn.Linear(dim, dim, bias=False)  # W
        self.candidate_group = nn.Linear(dim, dim, bias=False)  # U

    def item_terms(self, items):
        """``[W_z v, W_r v, W v]`` (..., 2 + d): the item's side of both gates and the candidate."""
        weight = torch.cat(
            [self.update_item.weight, self.reset_item.weight, self.candidate_item.weight]
        )
        return items @ weight.T

    def forward(self, group_reprs, items, memory, sizes, item_terms=None):
        if item_terms is None:
            item_terms = self.item_terms(items)
        update_gate = torch.sigmoid(item_terms[..., :1] + self.update_group(group_reprs))
        reset_gate = torch.sigmoid(item_terms[..., 1:2] + self.reset_group(group_reprs))
        candidate = torch.tanh(item_terms[..., 2:] + self.candidate_group(reset_gate * group_reprs))
        return update_gate * group_reprs + (1 - update_gate) * candidate, memory


@GROUP_UPDATERS.register
class GatedUpdater(GroupUpdater):
    """``gated`` (beyond the paper): Eq. 10 with gates read from the item alone,
    ``z = sigmoid(W_z v + b_z)``, ``h = tanh(W v)``, ``p' = z * p + (1 - z) * h``;
    ``gated_vector``: the same with one gate per dimension (``W_z`` is d x d).

    Without ``U_z p`` and the reset gate, ``p`` is linear in itself, so after
    the items ``j`` of a group, ``p = (prod_j z_j) e_u + sum_j (1 - z_j) h_j
    prod_{k after j} z_k``: every position's groups in one pass
    (:meth:`states_before_steps`), which the attention-GRU cannot give.
    """

    name = "gated"
    help = "Eq. 10 with gates read from the item alone, whose groups have a closed form for --train-path parallel"

    parallel = True

    def __init__(self, dim: int, per_dimension: bool = False) -> None:
        super().__init__()
        self.gates = dim if per_dimension else 1
        self.update_item = nn.Linear(dim, self.gates)  # W_z, b_z
        self.candidate_item = nn.Linear(dim, dim, bias=False)  # W

    def item_terms(self, items):
        """``[W_z v + b_z, W v]`` (..., gates + d)."""
        weight = torch.cat([self.update_item.weight, self.candidate_item.weight])
        bias = torch.cat(
            [self.update_item.bias, self.update_item.bias.new_zeros(weight.shape[0] - self.gates)]
        )
        return items @ weight.T + bias

    def forward(self, group_reprs, items, memory, sizes, item_terms=None):
        if item_terms is None:
            item_terms = self.item_terms(items)
        update_gate = torch.sigmoid(item_terms[..., : self.gates])
        candidate = torch.tanh(item_terms[..., self.gates :])
        return update_gate * group_reprs + (1 - update_gate) * candidate, memory

    def states_before_steps(self, starts, step_items, step_terms, assignments, num_slots):
        members, opened = membership_before_steps(assignments, num_slots)
        members = members.to(step_items.dtype)  # (B, P, G)
        log_keep = F.logsigmoid(step_terms[..., : self.gates])  # log z_j, (B, P, gates)
        contribution = (1 - torch.exp(log_keep)) * torch.tanh(step_terms[..., self.gates :])
        # decay[b, t, g]: sum of log z_k over the items k < t of group g, (B, P, G, gates)
        own = members[..., None] * log_keep[:, :, None, :]
        decay = torch.cumsum(own, dim=1) - own
        # item j reaches position t > j through the later items of its group:
        # exp(decay[t, g_j] - decay[j + 1, g_j]) = exp(decay[t, g_j] - decay[j, g_j] - log z_j)
        at_item = (decay * members[..., None]).sum(dim=2)  # decay[j, g_j]  (B, P, gates)
        reach = torch.einsum("btgk,bjg->btjk", decay, members)  # decay[t, g_j]
        earlier = torch.ones(reach.shape[1:3], dtype=torch.bool, device=reach.device).tril(-1)
        # only an allocated item j before t (elsewhere the exponent means nothing, can overflow)
        counted = (earlier & (members.sum(dim=2) > 0)[:, None, :])[..., None]
        exponent = reach - (at_item + log_keep)[:, None, :, :]
        weights = torch.where(counted, torch.exp(exponent.masked_fill(~counted, 0.0)), 0.0)
        # (B, P_t, P_j, d) weighted contributions, summed over each group's items j
        weighted = weights * contribution[:, None, :, :]
        items_part = torch.einsum("btjd,bjg->btgd", weighted, members)
        start_part = torch.exp(decay) * starts[:, None, None, :]
        return torch.where(opened[..., None], items_part + start_part, 0.0)


@GROUP_UPDATERS.register
class LSTMUpdater(GroupUpdater):
    """Adasplit-LSTM: an LSTM cell whose hidden state is the group representation."""

    name = "lstm"
    help = "an LSTM cell (Adasplit-LSTM)"

    has_memory = True

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(dim, dim)

    def forward(self, group_reprs, items, memory, sizes, item_terms=None):
        hidden, cell = self.cell(items, (group_reprs, memory))
        return hidden, cell


@GROUP_UPDATERS.register
class MeanUpdater(GroupUpdater):
    """Adasplit-AveragePooling: the running mean of e_u and the group's items."""

    name = "mean"
    help = "the running mean (Adasplit-AveragePooling)"

    parallel = True

    def __init__(self, dim: int | None = None) -> None:  # no weights: d is not needed
        super().__init__()

    def forward(self, group_reprs, items, memory, sizes, item_terms=None):
        members = (sizes.to(group_reprs.dtype) + 1.0)[:, None]  # e_u counts as one member
        return (group_reprs * members + items) / (members + 1.0), memory

    def states_before_steps(self, starts, step_items, step_terms, assignments, num_slots):
        """``(e_u + sum of the group's items so far) / (1 + their count)`` at every position."""
        members, opened = membership_before_steps(assignments, num_slots)
        members = members.to(step_items.dtype)
        totals = torch.cumsum(members[..., None] * step_items[:, :, None, :], dim=1)
        totals = totals - members[..., None] * step_items[:, :, None, :]  # items before t
        counts = torch.cumsum(members, dim=1) - members
        means = (starts[:, None, None, :] + totals) / (1.0 + counts[..., None])
        return torch.where(opened[..., None], means, 0.0)


@GROUP_UPDATERS.register
class GatedVectorUpdater(GatedUpdater):
    """``gated_vector``: :class:`GatedUpdater` with one gate per dimension."""

    name = "gated_vector"
    help = "gated with a gate per dimension"

    def __init__(self, dim: int) -> None:
        super().__init__(dim, per_dimension=True)


def make_group_updater(name: str, dim: int) -> GroupUpdater:
    """The updater registered as ``name`` (:data:`GROUP_UPDATERS`), for d = ``dim``."""
    if name not in GROUP_UPDATERS:
        raise ValueError(f"unknown group updater {name!r}")
    return GROUP_UPDATERS[name](dim)
