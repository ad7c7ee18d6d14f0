"""The history encoder (paper Eq. 4-6) and its ablations.

``bidirectional`` (the paper): transformer block(s) over (e_u, e_1 .. e_l) + P
with a padding mask and no causal mask, so every item sees the whole
history. ``causal`` (Adasplit-Single): item t only sees the user and items
<= t. ``none`` (Adasplit-Zero): the raw item embeddings.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from adasplit_env.data.interactions import PAD
from adasplit_env.model.dropout import Dropout


class TransformerBlock(nn.Module):
    """One block as the paper writes it.

    Eq. 4-5: ``S = LayerNorm(Attention(E W_Q, E W_K, E W_V))`` with
    ``Attention(Q, K, V) = softmax(Q K^T / sqrt(d)) V`` (no residual around
    the attention, as in Eq. 5). Eq. 6: ``v = ReLU(S W1 + b1) W2 + b2``,
    ``v = LayerNorm(v + S)``.
    """

    def __init__(
        self, dim: int, num_heads: int = 1, dropout: float = 0.0, standard: bool = False
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        # the option ``encoder_block standard``: a residual around the attention
        # (LayerNorm(x + Attention)) and a feed-forward of width 4d, as in SASRec/BERT
        self.residual = standard
        width = 4 * dim if standard else dim
        self.query = nn.Linear(dim, dim, bias=False)
        self.key = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim, bias=False)
        self.attention_norm = nn.LayerNorm(dim)
        self.feed_forward_in = nn.Linear(dim, width)
        self.feed_forward_out = nn.Linear(width, dim)
        self.output_norm = nn.LayerNorm(dim)
        self.dropout = Dropout(dropout)

    def forward(self, inputs: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """``inputs`` (B, L, d); ``allowed`` (B, L, L) bool, True where query may see key."""
        batch, length, dim = inputs.shape
        heads = self.num_heads

        def split_heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch, length, heads, dim // heads).transpose(1, 2)

        attended = F.scaled_dot_product_attention(
            split_heads(self.query(inputs)),
            split_heads(self.key(inputs)),
            split_heads(self.value(inputs)),
            attn_mask=allowed[:, None],
            dropout_p=self.dropout.p if self.training else 0.0,
        )
        attended = attended.transpose(1, 2).reshape(batch, length, dim)
        mixed = self.attention_norm(inputs + attended if self.residual else attended)
        transformed = self.feed_forward_out(F.relu(self.feed_forward_in(mixed)))
        return self.output_norm(self.dropout(transformed) + mixed)


class HistoryEncoder(nn.Module):
    """Contextual vectors ``v_T`` for every history item (Eq. 4-6)."""

    def __init__(
        self,
        dim: int,
        max_len: int,
        mode: str = "bidirectional",
        num_layers: int = 1,
        num_heads: int = 1,
        dropout: float = 0.0,
        block: str = "paper",
    ) -> None:
        super().__init__()
        self.mode = mode
        if mode == "none":
            return
        self.positions = nn.Embedding(max_len + 1, dim)  # learnable P, slot 0 = the user
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, num_heads, dropout, standard=block == "standard")
            for _ in range(num_layers)
        )
        self.input_dropout = Dropout(dropout)

    def forward(
        self, user_embs: torch.Tensor, item_embs: torch.Tensor, histories: torch.Tensor
    ) -> torch.Tensor:
        """``user_embs`` (B, d), ``item_embs`` (B, L, d), ``histories`` (B, L) ids -> (B, L, d)."""
        if self.mode == "none":
            return item_embs
        batch, length = histories.shape
        tokens = torch.cat([user_embs[:, None], item_embs], dim=1)
        tokens = self.input_dropout(tokens + self.positions.weight[None, : length + 1])
        valid = torch.cat(
            [torch.ones(batch, 1, dtype=torch.bool, device=histories.device), histories != PAD],
            dim=1,
        )
        allowed = valid[:, None, :].expand(batch, length + 1, length + 1)
        if self.mode == "causal":
            allowed = (
                allowed
                & torch.ones(
                    length + 1, length + 1, dtype=torch.bool, device=histories.device
                ).tril()
            )
        for block in self.blocks:
            tokens = block(tokens, allowed)
        return tokens[:, 1:]
