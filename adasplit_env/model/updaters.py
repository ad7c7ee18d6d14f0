"""Group updaters: how the chosen group absorbs an item (Eq. 9-10 and ablations).

Each updater maps (group representation p, item v, memory) to the new p and
memory, row-wise over N groups. ``memory`` is the LSTM's cell (zeros for the
others); ``sizes`` the number of items already in the group. ``item_terms(v)``
is what the update needs of the item alone: the MDP computes it once per
rollout for every step and passes it back (``item_terms=``), so that the hot
loop runs only the group's side.
"""

from __future__ import annotations

import torch
from torch import nn


class AttentionGRU(nn.Module):
    """Eq. 10, with scalar update and reset gates.

    ``z = sigmoid(W_z v + U_z p)``, ``s = sigmoid(W_r v + U_r p)``,
    ``h = tanh(W v + U (s * p))``, ``p' = z * p + (1 - z) * h``.
    """

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


class LSTMUpdater(nn.Module):
    """Adasplit-LSTM: an LSTM cell whose hidden state is the group representation."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(dim, dim)

    def item_terms(self, items):
        return items.new_zeros(*items.shape[:-1], 0)  # the cell's own input projection

    def forward(self, group_reprs, items, memory, sizes, item_terms=None):
        hidden, cell = self.cell(items, (group_reprs, memory))
        return hidden, cell


class MeanUpdater(nn.Module):
    """Adasplit-AveragePooling: the running mean of e_u and the group's items."""

    def item_terms(self, items):
        return items.new_zeros(*items.shape[:-1], 0)

    def forward(self, group_reprs, items, memory, sizes, item_terms=None):
        members = (sizes.to(group_reprs.dtype) + 1.0)[:, None]  # e_u counts as one member
        return (group_reprs * members + items) / (members + 1.0), memory


def make_group_updater(name: str, dim: int) -> nn.Module:
    if name == "attn_gru":
        return AttentionGRU(dim)
    if name == "lstm":
        return LSTMUpdater(dim)
    if name == "mean":
        return MeanUpdater()
    raise ValueError(f"unknown group updater {name!r}")
