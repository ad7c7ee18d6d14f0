"""Dropout with its mask drawn from uniform floats on a CPU.

``nn.Dropout`` draws its mask with ``bernoulli_``, which on a CPU costs about
twice what drawing uniform floats and comparing them costs: measured on this
project's 2-core machine (one thread, torch 2.13), it was 45% of a SASRec
update and 17% of an AdaSplit+ update on LastFM at l = 50, the largest single
kernel of either (benchmarks/README.md, "Speed III"). The distribution is
the same: each element is kept with probability 1 - p and scaled by 1 / (1 - p),
independently; only the random numbers drawn for a given seed differ. On other
devices the fused kernel is faster, and is used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Dropout(nn.Dropout):
    """:class:`torch.nn.Dropout` (the same arguments, state and distribution) whose
    CPU mask is ``uniform >= p``; see the module's docstring."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or inputs.device.type != "cpu" or self.p >= 1.0:
            return F.dropout(inputs, self.p, self.training, self.inplace)
        keep = torch.rand(inputs.shape, dtype=inputs.dtype, device=inputs.device)
        scale = keep.ge_(self.p).mul_(1.0 / (1.0 - self.p))
        return inputs.mul_(scale) if self.inplace else inputs * scale
