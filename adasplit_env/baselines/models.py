"""SASRec and GRU4Rec, trained with cross-entropy over all items.

Both map (user, left-padded history) to one vector ``h`` and score every
item by ``h . e_i`` with the shared item embedding table, as RecBole's
implementations do with ``loss_type = CE``.

* SASRec (Kang & McAuley, 2018): learnable positions, ``num_layers``
  post-LayerNorm transformer blocks with ``num_heads`` heads, a causal and a
  padding mask, a GELU feed-forward of width 4d; ``h`` is the output at the
  newest item.
* GRU4Rec (Hidasi et al., 2016): a one-layer GRU over the history (packed, so
  padding never enters it) and a linear map of its last state.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from adasplit_env.data.interactions import PAD
from adasplit_env.errors import ConfigError
from adasplit_env.model.init import init_weights

BASELINES = ("sasrec", "gru4rec")
# RecBole 1.2.1's defaults (hidden and attention dropout for SASRec, dropout_prob for GRU4Rec)
BASELINE_DROPOUT = {"sasrec": 0.5, "gru4rec": 0.3}


@dataclass(frozen=True)
class BaselineConfig:
    kind: str
    num_users: int
    num_items: int
    dim: int = 64
    max_len: int = 10
    num_layers: int = 2
    num_heads: int = 2
    dropout: float = 0.2

    def __post_init__(self) -> None:
        if self.kind not in BASELINES:
            raise ConfigError(
                f"unknown model {self.kind!r}; choose adasplit or one of {', '.join(BASELINES)}"
            )
        for name in ("num_items", "dim", "max_len", "num_layers", "num_heads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.dim % self.num_heads:
            raise ConfigError(f"dim ({self.dim}) must be divisible by num_heads ({self.num_heads})")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> BaselineConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


class _SequenceRecommender(nn.Module):
    def __init__(self, config: BaselineConfig) -> None:
        super().__init__()
        self.config = config
        self.item_embeddings = nn.Embedding(config.num_items + 1, config.dim, padding_idx=PAD)

    def sequence_repr(self, histories: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def item_logits(self, reprs: torch.Tensor) -> torch.Tensor:
        return reprs @ self.item_embeddings.weight.T

    def loss(self, histories: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.item_logits(self.sequence_repr(histories)), targets)

    def full_sort_scores(self, histories: torch.Tensor) -> torch.Tensor:
        scores = self.item_logits(self.sequence_repr(histories))
        scores[:, PAD] = -torch.inf
        return scores


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
        self.dropout = nn.Dropout(dropout)

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


class SASRec(_SequenceRecommender):
    def __init__(self, config: BaselineConfig) -> None:
        super().__init__(config)
        self.positions = nn.Embedding(config.max_len, config.dim)
        self.input_norm = nn.LayerNorm(config.dim)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            _PostNormBlock(config.dim, config.num_heads, config.dropout)
            for _ in range(config.num_layers)
        )
        init_weights(self)

    def sequence_repr(self, histories: torch.Tensor) -> torch.Tensor:
        batch, length = histories.shape
        x = self.item_embeddings(histories) + self.positions.weight[None, -length:]
        x = self.dropout(self.input_norm(x))
        valid = histories != PAD
        causal = torch.ones(length, length, dtype=torch.bool, device=histories.device).tril()
        eye = torch.eye(length, dtype=torch.bool, device=histories.device)
        # a padded query may see itself, so that no row of the softmax is empty
        allowed = (causal[None] & valid[:, None, :]) | eye[None]
        for block in self.blocks:
            x = block(x, allowed)
        return x[:, -1]  # left padding: the newest item is last


class GRU4Rec(_SequenceRecommender):
    def __init__(self, config: BaselineConfig) -> None:
        super().__init__(config)
        self.dropout = nn.Dropout(config.dropout)
        self.gru = nn.GRU(config.dim, config.dim, batch_first=True)
        self.output = nn.Linear(config.dim, config.dim)
        init_weights(self)

    def sequence_repr(self, histories: torch.Tensor) -> torch.Tensor:
        lengths = (histories != PAD).sum(dim=1).clamp(min=1)
        length = histories.shape[1]
        # left-padded -> right-padded, so packing skips the padding
        shift = (
            torch.arange(length, device=histories.device)[None, :] + (length - lengths)[:, None]
        ) % length
        right = histories.gather(1, shift)
        packed = pack_padded_sequence(
            self.dropout(self.item_embeddings(right)),
            lengths.cpu(),
            batch_first=True,
            enforce_sorted=False,
        )
        _, last = self.gru(packed)
        return self.output(last[0])


def build_baseline(config: BaselineConfig) -> _SequenceRecommender:
    return SASRec(config) if config.kind == "sasrec" else GRU4Rec(config)
