"""Group updaters: how the chosen group absorbs an item (Eq. 9-10 and ablations).

Each updater maps (group representation p, item v, memory) to the new p and
memory, row-wise over N groups. ``memory`` is the LSTM's cell (zeros for the
others); ``sizes`` the number of items already in the group.
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

    def forward(self, group_reprs, items, memory, sizes):
        update_gate = torch.sigmoid(self.update_item(items) + self.update_group(group_reprs))
        reset_gate = torch.sigmoid(self.reset_item(items) + self.reset_group(group_reprs))
        candidate = torch.tanh(
            self.candidate_item(items) + self.candidate_group(reset_gate * group_reprs)
        )
        return update_gate * group_reprs + (1 - update_gate) * candidate, memory


class LSTMUpdater(nn.Module):
    """Adasplit-LSTM: an LSTM cell whose hidden state is the group representation."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(dim, dim)

    def forward(self, group_reprs, items, memory, sizes):
        hidden, cell = self.cell(items, (group_reprs, memory))
        return hidden, cell


class MeanUpdater(nn.Module):
    """Adasplit-AveragePooling: the running mean of e_u and the group's items."""

    def forward(self, group_reprs, items, memory, sizes):
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
