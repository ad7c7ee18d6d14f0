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
* :meth:`GroupUpdater.group_versions`, every state the groups take along a
  whole allocation given at once (the parallel training path,
  :meth:`AllocationProcess.replay`), as :class:`GroupVersions`: one vector per
  absorbed item (the group just after it) and, for every position and slot,
  which of them the slot holds. Its default walks the groups by depth (the k-th
  items of all groups in one step of :meth:`forward`), so it takes as many steps
  as the largest group has items, not one per position; an updater whose state
  is a closed-form function of the group's items (``mean``, ``gated``,
  ``gated_vector``) computes them in a few tensor operations (``parallel =
  True``, :meth:`closed_form_states`). The attention-GRU's gates read the group,
  so it is recurrent. :meth:`GroupVersions.states` reads them out as the groups
  before every position, (B, P, G, d).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from adasplit_env.constants import index_range
from adasplit_env.registry import Registry

#: the version of a slot that holds no group yet (a zero vector), and of the start e_u
UNOPENED, START = 0, 1
#: the version of the group of position s just after it absorbed item s is FIRST_ITEM + s
FIRST_ITEM = 2


@dataclass(frozen=True)
class GroupVersions:
    """Every state the groups of B episodes take along one allocation (P positions, G
    slots), stored once each: a group changes only when it absorbs an item, so the
    groups before every position, (B, P, G, d), are ``vectors`` (B, P + 2, d) read at
    ``before`` (B, P, G): O(P d) vectors and an index, not O(P G d) copies.

    ``vectors[:, UNOPENED]`` is zero, ``vectors[:, START]`` the start e_u, and
    ``vectors[:, FIRST_ITEM + s]`` the group of position s just after it absorbed item
    s (zero where nothing was absorbed: the target, positions before the history).
    ``before[b, t, g]`` is the version slot g holds before position t."""

    vectors: torch.Tensor
    before: torch.Tensor

    @staticmethod
    def of(starts: torch.Tensor, after: torch.Tensor, index: AllocationIndex) -> GroupVersions:
        """From the starts (B, d), the group of each absorbed position s just after it
        absorbed item s (B, P, d), zero elsewhere, and the allocation's index."""
        vectors = torch.cat([torch.zeros_like(starts)[:, None], starts[:, None], after], dim=1)
        return GroupVersions(vectors, index.version_table())

    def states(self, width: int | None = None) -> torch.Tensor:
        """(B, P, W, d): the first ``width`` slots (default all) before every position."""
        before = self.before if width is None else self.before[..., :width]
        return self.vectors[index_range(len(before), before.device)[:, None, None], before]

    def before_position(self, position: int) -> torch.Tensor:
        """(B, G, d): the groups before ``position``."""
        before = self.before[:, position]
        return self.vectors[index_range(len(before), before.device)[:, None], before]


@dataclass(frozen=True)
class AllocationIndex:
    """Integer bookkeeping of an allocation (B, P) of G slots, shared by the version
    table and the depth walk: where each slot's latest item is before each position, and
    each absorbed item's depth in its group. Nothing here carries a gradient."""

    slots: torch.Tensor  # (B, P) each absorbed position's slot, -1 elsewhere (the target too)
    latest_before: torch.Tensor  # (B, P, G) the last position < t absorbed into g, -1 if none
    depth: torch.Tensor  # (B, P) items of its group before it, -1 where nothing is absorbed

    @staticmethod
    def of(assignments: torch.Tensor, num_slots: int) -> AllocationIndex:
        batch, positions = assignments.shape
        members, _ = membership_before_steps(assignments, num_slots)
        slots = assignments.clone()
        slots[:, -1] = -1  # the target is never absorbed
        at = torch.where(members, index_range(positions, slots.device)[None, :, None], -1)
        latest = torch.cummax(at, dim=1).values  # up to and including t
        latest_before = torch.cat([latest.new_full((batch, 1, num_slots), -1), latest[:, :-1]], 1)
        earlier = torch.cumsum(members.to(torch.int64), dim=1) - members.to(torch.int64)
        depth = earlier.gather(2, slots.clamp(min=0)[..., None])[..., 0]
        return AllocationIndex(slots, latest_before, torch.where(slots >= 0, depth, -1))

    def version_table(self) -> torch.Tensor:
        """(B, P, G): :attr:`GroupVersions.before`."""
        num_slots = self.latest_before.shape[2]
        first_slot = index_range(num_slots, self.slots.device) == 0
        empty = torch.where(first_slot, START, UNOPENED)  # slot 0 holds e_u from the start
        return torch.where(self.latest_before >= 0, FIRST_ITEM + self.latest_before, empty)

    def previous_item(self) -> torch.Tensor:
        """(B, P): the position of the item absorbed into the same group just before each
        absorbed item, -1 for a group's first item (and where nothing is absorbed)."""
        slot = self.slots.clamp(min=0)[..., None]
        previous = self.latest_before.gather(2, slot)[..., 0]
        return torch.where(self.slots >= 0, previous, -1)


GROUP_UPDATERS: Registry[type[GroupUpdater]] = Registry("group updater")


class GroupUpdater(nn.Module):
    """What every updater provides; subclasses implement ``forward`` and ``item_terms``."""

    #: keeps a memory beside p (the LSTM's cell), which the MDP must carry
    has_memory = False
    #: it has :meth:`closed_form_states`: its groups are a function of the group's items
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

    def group_versions(
        self,
        starts: torch.Tensor,
        step_items: torch.Tensor,
        step_terms: torch.Tensor,
        assignments: torch.Tensor,
        num_slots: int,
    ) -> GroupVersions:
        """Every state the groups take along an allocation ``assignments`` (B, P) (each
        position's slot, -1 where nothing is allocated) of the items ``step_items``
        (B, P, d) with their ``item_terms`` ``step_terms``. Slot 0 holds ``starts``
        (B, d) before its first item, unopened slots zero, as in
        :class:`~adasplit_env.process.AllocationState`. Every position is absorbed
        except the last (the target, docs/design.md section 3)."""
        index = AllocationIndex.of(assignments, num_slots)
        if self.parallel:
            after = self._versions_of_closed_form(starts, step_items, step_terms, index)
        else:
            after = self.walk_by_depth(starts, step_items, step_terms, index)
        return GroupVersions.of(starts, after, index)

    def closed_form_states(self, starts, step_items, step_terms, assignments, num_slots):
        """A ``parallel`` updater's groups before each position, (B, P, G, d), in a few
        tensor operations (the arguments of :meth:`group_versions`)."""
        raise NotImplementedError(f"{type(self).__name__} has no closed form")

    def walk_by_depth(
        self,
        starts: torch.Tensor,
        step_items: torch.Tensor,
        step_terms: torch.Tensor,
        index: AllocationIndex,
    ) -> torch.Tensor:
        """The group of each absorbed position s just after it absorbed item s, (B, P, d),
        zero elsewhere, by :meth:`forward` steps. Step k updates the k-th item of every
        group at once, each from its group's state after the (k - 1)-th (a group's first
        item from ``starts``, size 0, no memory, as :meth:`absorb` starts a created
        group). The groups are independent, so this is the MDP's arithmetic in as many
        steps as the largest group has items, not one per position, and without a copy
        of every group per step."""
        batch, positions, dim = step_items.shape
        depth = index.depth.flatten()
        order = torch.argsort(depth, stable=True)
        counts = torch.bincount(depth + 1).tolist()[1:]  # per depth; -1 (not absorbed) first
        order = order[len(depth) - sum(counts) :]
        flat_items = step_items.reshape(batch * positions, dim)
        flat_terms = step_terms.reshape(batch * positions, -1)
        # the flat index of the item each one follows in its group (-1: the group's first)
        previous = index.previous_item()
        row_starts = index_range(batch, step_items.device)[:, None] * positions
        previous = torch.where(previous >= 0, row_starts + previous, -1).flatten()
        # where each absorbed position's output sits in its depth's batch
        rank = torch.zeros_like(depth)
        chunks, states, memory = (order.split(counts) if counts else ()), [], None
        for k, chunk in enumerate(chunks):
            if k == 0:
                group_reprs = starts[chunk // positions]
            else:
                source = rank[previous[chunk]]
                group_reprs = states[-1][source]
                # only an updater with a memory (the LSTM's cell) carries it on
                memory = memory[source] if self.has_memory else None
            if memory is None:
                memory = torch.zeros_like(group_reprs)
            rank[chunk] = index_range(len(chunk), chunk.device)
            terms = flat_terms[chunk]
            updated, updated_memory = self(
                group_reprs,
                flat_items[chunk],
                memory,
                torch.full_like(chunk, k),
                item_terms=terms if terms.shape[-1] else None,
            )
            states.append(updated)
            memory = updated_memory
        after = flat_items.new_zeros(batch * positions, dim)
        if chunks:
            after = after.index_put((order,), torch.cat(states))
        return after.view(batch, positions, dim)

    def _versions_of_closed_form(self, starts, step_items, step_terms, index):
        """:meth:`walk_by_depth`'s vectors from :meth:`closed_form_states`: the group of
        position s just after it absorbed s is that slot's group before s + 1."""
        batch, positions = index.slots.shape
        states = self.closed_form_states(
            starts, step_items, step_terms, index.slots, index.latest_before.shape[2]
        )
        following = (index_range(positions, starts.device) + 1).clamp(max=positions - 1)
        rows = index_range(batch, starts.device)[:, None]
        after = states[rows, following[None, :], index.slots.clamp(min=0)]
        return torch.where((index.slots >= 0)[..., None], after, 0.0)


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
    (:meth:`closed_form_states`), which the attention-GRU cannot give.
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

    def closed_form_states(self, starts, step_items, step_terms, assignments, num_slots):
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

    def closed_form_states(self, starts, step_items, step_terms, assignments, num_slots):
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
