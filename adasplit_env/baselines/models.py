"""SASRec and GRU4Rec, trained with cross-entropy over all items.

Both map (user, left-padded history) to one vector ``h`` and score every
item by ``h . e_i`` with the shared item embedding table, as RecBole's
implementations do with ``loss_type = CE``.

* SASRec (Kang & McAuley, 2018; :class:`SASRecEncoder`): learnable positions, ``num_layers``
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
from adasplit_env.model.dropout import Dropout
from adasplit_env.model.init import init_weights
from adasplit_env.model.sequence import SASREC_DROPOUT, SASRecEncoder

BASELINES = ("sasrec", "gru4rec")
# RecBole 1.2.1's defaults (hidden and attention dropout for SASRec, dropout_prob for GRU4Rec)
BASELINE_DROPOUT = {"sasrec": SASREC_DROPOUT, "gru4rec": 0.3}


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


def _nest_encoder_keys(state_dict, prefix, *args) -> None:
    """Checkpoints written before the encoder was a submodule: ``positions.*`` ->
    ``encoder.positions.*`` (likewise input_norm, blocks)."""
    for key in list(state_dict):
        rest = key[len(prefix) :]
        if key.startswith(prefix) and rest.split(".")[0] in ("positions", "input_norm", "blocks"):
            state_dict[f"{prefix}encoder.{rest}"] = state_dict.pop(key)


class SASRec(_SequenceRecommender):
    def __init__(self, config: BaselineConfig) -> None:
        super().__init__(config)
        self.encoder = SASRecEncoder(
            config.dim, config.max_len, config.num_layers, config.num_heads, config.dropout
        )
        init_weights(self)
        self._register_load_state_dict_pre_hook(_nest_encoder_keys)

    @property
    def positions(self) -> nn.Embedding:
        return self.encoder.positions

    def sequence_repr(self, histories: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.item_embeddings(histories), histories)


class GRU4Rec(_SequenceRecommender):
    def __init__(self, config: BaselineConfig) -> None:
        super().__init__(config)
        self.dropout = Dropout(config.dropout)
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
