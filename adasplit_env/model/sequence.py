"""SASRec's sequence encoder (Kang & McAuley, 2018), shared by the SASRec baseline
and AdaSplit's ``readout sasrec`` option."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from adasplit_env.data.interactions import PAD
from adasplit_env.model.dropout import Dropout

SASREC_DROPOUT = 0.5  # RecBole 1.2.1's hidden and attention dropout


class _PostNormBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.ff1 = nn.Linear(dim, 4 * dim)
        self.ff2 = nn.Linear(4 * dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        q, k, v = (
            self.qkv(x)
            .view(batch, length, 3, self.num_heads, dim // self.num_heads)
            .permute(2, 0, 3, 1, 4)
        )
        attended = F.scaled_dot_product_attention(
            q, k, v, attn_mask=allowed[:, None], dropout_p=self.dropout.p if self.training else 0.0
        )
        attended = self.out(attended.transpose(1, 2).reshape(batch, length, dim))
        x = self.norm1(x + self.dropout(attended))
        return self.norm2(x + self.dropout(self.ff2(self.dropout(F.gelu(self.ff1(x))))))


class SASRecEncoder(nn.Module):
    """SASRec's sequence encoder over given item embeddings: learnable positions,
    input LayerNorm and dropout, ``num_layers`` post-LayerNorm blocks with a
    causal and a padding mask; the output at the newest item, (B, d).

    The SASRec baseline runs it on its own item table; AdaSplit's
    ``readout sasrec`` option runs it on AdaSplit's.
    """

    def __init__(
        self, dim: int, max_len: int, num_layers: int, num_heads: int, dropout: float
    ) -> None:
        super().__init__()
        self.positions = nn.Embedding(max_len, dim)
        self.input_norm = nn.LayerNorm(dim)
        self.dropout = Dropout(dropout)
        self.blocks = nn.ModuleList(
            _PostNormBlock(dim, num_heads, dropout) for _ in range(num_layers)
        )  # initialised by the model that owns it

    def forward(self, item_embs: torch.Tensor, histories: torch.Tensor) -> torch.Tensor:
        """``item_embs`` (B, L, d) of the left-padded ``histories`` (B, L) -> (B, d)."""
        return self.encode(item_embs, histories)[:, -1]  # left padding: the newest item is last

    def encode(
        self,
        item_embs: torch.Tensor,
        histories: torch.Tensor,
        same_group: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The output at every position, (B, L, d). ``same_group`` (B, L, L) bool, when
        given, further restricts attention to keys of the query's own group."""
        batch, length = histories.shape
        x = item_embs + self.positions.weight[None, -length:]
        x = self.dropout(self.input_norm(x))
        valid = histories != PAD
        causal = torch.ones(length, length, dtype=torch.bool, device=histories.device).tril()
        eye = torch.eye(length, dtype=torch.bool, device=histories.device)
        allowed = causal[None] & valid[:, None, :]
        if same_group is not None:
            allowed = allowed & same_group
        # a padded query may see itself, so that no row of the softmax is empty
        allowed = allowed | eye[None]
        for block in self.blocks:
            x = block(x, allowed)
        return x
