"""One initialisation scheme for every model of the project.

The paper says nothing about initialisation. We use the BERT/RecBole scheme
(RecBole's SASRec ``_init_weights``): ``Linear`` and ``Embedding`` weights
N(0, 0.02), zero biases, ``LayerNorm`` weight 1 and bias 0, the padding row
of an embedding zero. Recurrent cells (``nn.GRU``, ``nn.LSTMCell``) keep
PyTorch's uniform(+-1/sqrt(d)), which is scaled for recurrence already.

No parameter keeps ``nn.Embedding``'s N(0, 1) default: learnable positions at
N(0, 1) beside items at 0.02 make the transformer input almost all position,
so at initialisation every history looks alike (and SASRec's input LayerNorm
is scale-invariant, so training never shrinks them back).
"""

from __future__ import annotations

import torch
from torch import nn

INIT_STD = 0.02


@torch.no_grad()
def _init_module(module: nn.Module, std: float) -> None:
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=std)
        if module.padding_idx is not None:
            module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        if module.weight is not None:
            nn.init.ones_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def init_weights(model: nn.Module, std: float = INIT_STD) -> nn.Module:
    """Apply the scheme to every submodule of ``model`` (in place); returns ``model``."""
    model.apply(lambda module: _init_module(module, std))
    return model
