"""The AdaSplit recommender: embeddings, encoder, policy head and group updater."""

from __future__ import annotations

import torch
from torch import nn

from adasplit_env.data.interactions import PAD
from adasplit_env.model.best_group import best_group_logits
from adasplit_env.model.config import ModelConfig
from adasplit_env.model.encoder import HistoryEncoder
from adasplit_env.model.init import init_weights
from adasplit_env.model.join_rules import group_dots, make_join_rule, masked_softmax
from adasplit_env.model.sequence import SASREC_DROPOUT, SASRecEncoder
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
            block=config.encoder_block,
        )
        self.policy = make_join_rule(config)  # the join rule: Eq. 7-8 or an option's
        self.group_updater = make_group_updater(config.group_updater, dim)
        self.embedding_dropout = nn.Dropout(config.dropout)
        if config.group_start == "learned":
            self.shared_start = nn.Parameter(torch.zeros(dim))
        if config.readout == "sasrec":
            self.sequence_encoder = SASRecEncoder(
                dim, config.max_len, num_layers=2, num_heads=2, dropout=SASREC_DROPOUT
            )
        if config.group_repr == "encoder":
            self.group_encoder = SASRecEncoder(
                dim, config.max_len, num_layers=2, num_heads=2, dropout=SASREC_DROPOUT
            )
        init_weights(self)
        if config.group_start == "learned":
            nn.init.normal_(self.shared_start, std=0.02)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints from before the cluster rule was a part held its clusters here
        legacy = state_dict.pop(prefix + "item_clusters", None)
        if legacy is not None:
            state_dict[prefix + "policy.item_clusters"] = legacy
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
        """(B, d): the SASRec state of each history (``readout sasrec``), else None."""
        if self.config.readout != "sasrec":
            return None
        return self.sequence_encoder(self.item_embeddings(histories), histories)

    def encode_groups(
        self, histories: torch.Tensor, assignments: torch.Tensor, num_slots: int
    ) -> torch.Tensor:
        """``group_repr encoder``: each group as the group encoder's output at the
        group's newest item, attention kept inside the group, (B, num_slots, d);
        zero for a slot that holds no item. ``histories`` (B, L) left-padded ids,
        ``assignments`` (B, L) each item's slot (-1 for padding)."""
        same_group = assignments[:, :, None] == assignments[:, None, :]
        outputs = self.group_encoder.encode(
            self.item_embeddings(histories), histories, same_group=same_group
        )  # (B, L, d)
        slots = torch.arange(num_slots, device=histories.device)
        positions = torch.arange(histories.shape[1], device=histories.device)
        members = assignments[:, None, :] == slots[None, :, None]  # (B, slots, L)
        newest = torch.where(members, positions, -1).amax(dim=2)  # (B, slots)
        picked = outputs.gather(1, newest.clamp(min=0)[..., None].expand(-1, -1, outputs.shape[2]))
        return picked * (newest >= 0)[..., None]

    def item_logits(self, group_reprs: torch.Tensor) -> torch.Tensor:
        """Eq. 20's logits ``p_a . e_i`` for every item, (B, num_items + 1)."""
        return group_reprs @ self.item_embeddings.weight.T

    def attended_groups(
        self, group_reprs: torch.Tensor, group_mask: torch.Tensor, sequence_state: torch.Tensor
    ) -> torch.Tensor:
        """``scoring attend``: ``sum_i z_i p_i`` with ``z = softmax_i(p_i . s / sqrt(d))``
        over each user's active groups, ``s`` the whole history's SASRec state, (B, d)."""
        relevance = group_dots(group_reprs, sequence_state) / group_reprs.shape[2] ** 0.5
        weights = masked_softmax(relevance, group_mask)  # (B, G): which interest is active
        return (weights[:, :, None] * group_reprs).sum(dim=1)

    def best_group_logits(
        self, group_reprs: torch.Tensor, group_mask: torch.Tensor
    ) -> torch.Tensor:
        """``max_i p_i . e_c`` (``scoring max``) or ``log sum_i exp(p_i . e_c)``
        (``scoring lse``) over each user's active groups, (B, num_items + 1);
        ``group_reprs`` (B, G, d), ``group_mask`` (B, G).
        """
        items = self.item_embeddings.weight
        if self.config.scoring == "lse":
            used = max(1, int(group_mask.sum(dim=1).max()))  # active groups fill slots 0..h-1
            groups, mask = group_reprs[:, :used], group_mask[:, :used]
            logits = torch.einsum("bgd,id->bgi", groups, items)
            return torch.logsumexp(logits.masked_fill(~mask[:, :, None], -torch.inf), dim=1)
        # only the groups each user has, and a backward without a (B, G, items) block
        return best_group_logits(group_reprs, group_mask.sum(dim=1), items)

    def target_logits(
        self,
        chosen_group_repr: torch.Tensor,
        group_reprs: torch.Tensor,
        group_mask: torch.Tensor,
        sequence_state: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits of the target over all items under the ``scoring`` rule, (B, num_items + 1):
        the target's chosen group (Eq. 20) or the best group of the history (``max``) or
        the groups weighed by the state (``attend``), plus ``sequence_state . e_c`` with
        ``readout sasrec`` (which ``attend`` needs: the config says so)."""
        if self.config.scoring == "attend":  # one vector per user, so one product with E
            mixed = self.attended_groups(group_reprs, group_mask, sequence_state)
            return self.item_logits(mixed + sequence_state)
        # The readout's s . e_c is the same for every group, so it is folded into the
        # groups: max_i (p_i + s) . e_c = max_i p_i . e_c + s . e_c (and likewise for lse
        # and for one chosen group): one product with the item table, not two.
        if self.config.scoring in ("max", "lse"):
            if sequence_state is not None:
                group_reprs = group_reprs + sequence_state[:, None, :]
            return self.best_group_logits(group_reprs, group_mask)
        if sequence_state is not None:
            chosen_group_repr = chosen_group_repr + sequence_state
        return self.item_logits(chosen_group_repr)
