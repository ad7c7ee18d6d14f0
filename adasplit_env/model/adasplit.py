"""The AdaSplit recommender: embeddings, encoder, policy head and group updater."""

from __future__ import annotations

import torch
from torch import nn

from adasplit_env.data.interactions import PAD
from adasplit_env.model.config import ModelConfig
from adasplit_env.model.encoder import HistoryEncoder
from adasplit_env.model.init import init_weights
from adasplit_env.model.policy import AllocationPolicyHead
from adasplit_env.model.updaters import make_group_updater


class AdaSplitModel(nn.Module):
    """All learnable parts of AdaSplit; the allocation dynamics live in
    :class:`adasplit_env.process.AllocationProcess`, which drives this model."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.dim
        self.item_embeddings = nn.Embedding(config.num_items + 1, dim, padding_idx=PAD)
        self.user_embeddings = nn.Embedding(config.num_users + 1, dim, padding_idx=PAD)
        self.encoder = HistoryEncoder(
            dim,
            config.max_len,
            mode=config.encoder,
            num_layers=config.num_layers,
            num_heads=config.num_heads,
            dropout=config.dropout,
        )
        self.policy = AllocationPolicyHead(dim, eps=config.eps, temperature=config.temperature)
        self.group_updater = make_group_updater(config.group_updater, dim)
        self.embedding_dropout = nn.Dropout(config.dropout)
        init_weights(self)

    @property
    def max_groups(self) -> int:
        return int(self.config.max_groups)

    def encode(
        self, users: torch.Tensor, histories: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``e_u`` (B, d) and the contextual item vectors ``v_T`` (B, L, d) (Eq. 4-6)."""
        user_embs = self.user_embeddings(users)
        item_embs = self.embedding_dropout(self.item_embeddings(histories))
        return user_embs, self.encoder(user_embs, item_embs, histories)

    def item_logits(self, group_reprs: torch.Tensor) -> torch.Tensor:
        """Eq. 20's logits ``p_a . e_i`` for every item, (B, num_items + 1)."""
        return group_reprs @ self.item_embeddings.weight.T
