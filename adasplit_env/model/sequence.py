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

    def forward(
        self, x: torch.Tensor, allowed: torch.Tensor, newest_only: bool = False
    ) -> torch.Tensor:
        """(B, L, d) -> (B, L, d); with ``newest_only`` only the last position's output,
        (B, 1, d). Its query still reads every position's key and value, so it is the
        full output's last row, at about a quarter of the block's arithmetic."""
        batch, length, dim = x.shape
        q, k, v = (
            self.qkv(x)
            .view(batch, length, 3, self.num_heads, dim // self.num_heads)
            .permute(2, 0, 3, 1, 4)
        )
        if newest_only:
            q, x, allowed = q[:, :, -1:], x[:, -1:], allowed[:, -1:]
        attended = F.scaled_dot_product_attention(
            q, k, v, attn_mask=allowed[:, None], dropout_p=self.dropout.p if self.training else 0.0
        )
        attended = self.out(attended.transpose(1, 2).reshape(batch, x.shape[1], dim))
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
        """``item_embs`` (B, L, d) of the left-padded ``histories`` (B, L) -> (B, d): the
        output at the newest item, which left padding puts last. It is
        ``encode(...)[:, -1]``, but the last block computes only that position: a
        position's output reads the others through their keys and values alone, so the
        other queries, their feed-forward and norms would be thrown away."""
        return self._blocks(item_embs, histories, None, newest_only=True)[:, 0]

    def encode(
        self,
        item_embs: torch.Tensor,
        histories: torch.Tensor,
        same_group: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The output at every position, (B, L, d). ``same_group`` (B, L, L) bool, when
        given, further restricts attention to keys of the query's own group."""
        return self._blocks(item_embs, histories, same_group, newest_only=False)

    def _blocks(
        self,
        item_embs: torch.Tensor,
        histories: torch.Tensor,
        same_group: torch.Tensor | None,
        newest_only: bool,
    ) -> torch.Tensor:
        """Every block over the history; the last at the newest position only with
        ``newest_only`` ((B, 1, d) then, else (B, L, d))."""
        length = histories.shape[1]
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
        *body, last = self.blocks
        for block in body:
            x = block(x, allowed)
        return last(x, allowed, newest_only=newest_only)
