"""The AdaSplit recommender: embeddings, encoder, policy head and group updater."""

from __future__ import annotations

import torch
from torch import nn

from adasplit_env.data.interactions import PAD
from adasplit_env.model.config import ModelConfig
from adasplit_env.model.dropout import Dropout
from adasplit_env.model.encoder import HistoryEncoder
from adasplit_env.model.init import init_weights
from adasplit_env.model.join_rules import make_join_rule
from adasplit_env.model.scorers import GROUP_VIEWS, ITEM_SCORERS, READOUTS
from adasplit_env.model.updaters import make_group_updater

_LEGACY_PREFIXES = (
    ("item_clusters", "policy.item_clusters"),
    ("sequence_encoder.", "readout.encoder."),
    ("group_encoder.", "group_view.encoder."),
)


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
            block=config.encoder_block,
        )
        self.policy = make_join_rule(config)  # the join rule: Eq. 7-8 or an option's
        self.group_updater = make_group_updater(config.group_updater, dim)
        self.embedding_dropout = Dropout(config.dropout)
        if config.group_start == "learned":
            self.shared_start = nn.Parameter(torch.zeros(dim))
        # the parts that score items (adasplit_env.model.scorers)
        self.readout = READOUTS[config.readout](config)
        self.group_view = GROUP_VIEWS[config.group_repr](config)
        self.scorer = ITEM_SCORERS[config.scoring]()
        init_weights(self)
        if config.group_start == "learned":
            nn.init.normal_(self.shared_start, std=0.02)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints from before the options were parts: the cluster rule's clusters, the
        # readout's and the group view's encoders were held at the top level
        for old, new in _LEGACY_PREFIXES:
            for key in [k for k in state_dict if k.startswith(prefix + old)]:
                state_dict[prefix + new + key[len(prefix + old) :]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def max_groups(self) -> int:
        return int(self.config.max_groups)

    def encode(
        self, users: torch.Tensor, histories: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``e_u`` (B, d) and the contextual item vectors ``v_T`` (B, L, d) (Eq. 4-6).

        With ``group_start`` other than ``user``, "e_u" is the start shared by
        all users (zero or learned): the groups and the encoder's user slot.
        """
        user_embs = self.start_vectors(users)
        item_embs = self.embedding_dropout(self.item_embeddings(histories))
        return user_embs, self.encoder(user_embs, item_embs, histories)

    def start_vectors(self, users: torch.Tensor) -> torch.Tensor:
        """(B, d): what every group of each user starts from (``group_start``)."""
        start = self.config.group_start
        if start == "user":
            return self.user_embeddings(users)
        dim = self.item_embeddings.embedding_dim
        if start == "zero":
            return self.item_embeddings.weight.new_zeros(len(users), dim)
        return self.shared_start.expand(len(users), dim)

    def sequence_state(self, histories: torch.Tensor) -> torch.Tensor | None:
        """(B, d): the readout's state of each history (``readout sasrec``), else None."""
        if not self.readout.gives_context:
            return None
        return self.readout.context(self.item_embeddings(histories), histories)

    def encode_groups(
        self, histories: torch.Tensor, assignments: torch.Tensor, num_slots: int
    ) -> torch.Tensor:
        """``group_repr encoder``: the group view's groups (:class:`EncoderView`),
        (B, num_slots, d), of the left-padded ``histories`` (B, L) allocated by
        ``assignments`` (B, L)."""
        return self.group_view.scoring_groups(
            None, self.item_embeddings, histories, assignments, num_slots
        )

    def item_logits(self, group_reprs: torch.Tensor) -> torch.Tensor:
        """Eq. 20's logits ``p_a . e_i`` for every item, (B, num_items + 1)."""
        return group_reprs @ self.item_embeddings.weight.T

    def best_group_logits(
        self, group_reprs: torch.Tensor, group_mask: torch.Tensor
    ) -> torch.Tensor:
        """The history-group scorer's logits (``max`` or ``lse``) without the readout's
        context, (B, num_items + 1)."""
        return self.scorer.history_logits(self.item_embeddings.weight, group_reprs, group_mask)

    def target_logits(
        self,
        chosen_group_repr: torch.Tensor | None,
        group_reprs: torch.Tensor,
        group_mask: torch.Tensor,
        sequence_state: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits of the target over all items, (B, num_items + 1), by the item scorer
        (:mod:`adasplit_env.model.scorers`): from the target's chosen group (Eq. 20) or the
        history's groups, with the readout's ``sequence_state`` where there is one."""
        return self.scorer.target_logits(
            self.item_embeddings.weight, chosen_group_repr, group_reprs, group_mask, sequence_state
        )
