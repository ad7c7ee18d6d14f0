"""What scores items: item scorers, the readout's context, and the groups' view, as parts.

Three option families decide the target's logits over every item (Eq. 20 and
section 3.3, and the options beyond them), each an interface with a registry:

- the **item scorer** (``scoring``, :data:`ITEM_SCORERS`): from the target's chosen
  group (``paper``) or from every group the history built (``max``, ``lse``,
  ``attend``), with the readout's context when there is one;
- the **readout** (``readout``, :data:`READOUTS`): the context every score gets beside
  the groups: none (``group``, the paper) or a SASRec state of the whole history
  (``sasrec``), whose ``s . e_c`` is added to every score;
- the **group view** (``group_repr``, :data:`GROUP_VIEWS`): what represents a group
  where items are scored: the updater's ``p_i`` (``updater``, the paper) or a group
  encoder over the items the group holds (``encoder``).

Each part declares what it needs of the others (``needs_context``, ``routes_candidates``,
``needs_history_groups``); :meth:`ModelConfig.validate` derives the cross-option rules
from those declarations.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from adasplit_env.model.best_group import best_group_logits
from adasplit_env.model.join_rules import group_dots, masked_softmax
from adasplit_env.model.sequence import SASREC_DROPOUT, SASRecEncoder
from adasplit_env.registry import Registry

ITEM_SCORERS: Registry[type[ItemScorer]] = Registry("item scorer")
READOUTS: Registry[type[Readout]] = Registry("readout")
GROUP_VIEWS: Registry[type[GroupView]] = Registry("group view")


# -- item scorers ----------------------------------------------------------------------
class ItemScorer(nn.Module):
    """``target_logits(item_table, chosen, group_reprs, group_mask, context)`` (B, I + 1).

    ``chosen`` (B, d) is the group the policy chose for the target (Eq. 20; None where
    a scorer does not read it), ``group_reprs`` (B, G, d) and ``group_mask`` (B, G) the
    history's groups, ``context`` (B, d) the readout's state or None.

    - ``routes_candidates``: it scores a candidate by the one group the policy routes it
      to (section 3.3), so the join rule must route candidates;
    - ``needs_context``: it reads the readout's context (a readout must give one).
    """

    name: ClassVar[str]
    help: ClassVar[str] = ""
    routes_candidates: ClassVar[bool] = False
    needs_context: ClassVar[bool] = False

    def target_logits(self, item_table, chosen, group_reprs, group_mask, context):
        raise NotImplementedError(f"{type(self).__name__} must implement target_logits()")


@ITEM_SCORERS.register
class PaperScorer(ItemScorer):
    """Eq. 20 and section 3.3: the chosen group's ``p_a . e_c`` (plus ``s . e_c``)."""

    name = "paper"
    help = "the policy's argmax group per candidate (section 3.3), the target's in L_seq"
    routes_candidates = True

    def target_logits(self, item_table, chosen, group_reprs, group_mask, context):
        if context is not None:  # s . e_c folded in: one product with the item table
            chosen = chosen + context
        return chosen @ item_table.T


class _HistoryGroupScorer(ItemScorer):
    """Scores from every group of the history. The readout's ``s . e_c`` is the same for
    every group, so it is folded into the groups: ``max_i (p_i + s) . e_c = max_i p_i . e_c
    + s . e_c`` (likewise for ``lse``): one product with the item table, not two."""

    def target_logits(self, item_table, chosen, group_reprs, group_mask, context):
        if context is not None:
            group_reprs = group_reprs + context[:, None, :]
        return self.history_logits(item_table, group_reprs, group_mask)

    def history_logits(self, item_table, group_reprs, group_mask) -> torch.Tensor:
        raise NotImplementedError


@ITEM_SCORERS.register
class MaxScorer(_HistoryGroupScorer):
    """``max_i p_i . e_c`` over each user's active groups, as multi-interest recommenders
    score, trained as it ranks (:func:`~adasplit_env.model.best_group.best_group_logits`:
    only the groups each user has, no (B, G, items) block in the backward)."""

    name = "max"
    help = "the best-matching group, max_i p_i.e_c, also in L_seq"

    def history_logits(self, item_table, group_reprs, group_mask):
        return best_group_logits(group_reprs, group_mask.sum(dim=1), item_table)


@ITEM_SCORERS.register
class LseScorer(_HistoryGroupScorer):
    """``log sum_i exp(p_i . e_c)`` over each user's active groups: max's smooth form."""

    name = "lse"
    help = "log-sum-exp over the groups"

    def history_logits(self, item_table, group_reprs, group_mask):
        used = max(1, int(group_mask.sum(dim=1).max()))  # active groups fill slots 0..h-1
        groups, mask = group_reprs[:, :used], group_mask[:, :used]
        logits = torch.einsum("bgd,id->bgi", groups, item_table)
        return torch.logsumexp(logits.masked_fill(~mask[:, :, None], -torch.inf), dim=1)


@ITEM_SCORERS.register
class AttendScorer(ItemScorer):
    """``(sum_i z_i p_i + s) . e_c`` with ``z = softmax_i(p_i . s / sqrt(d))`` over each
    user's active groups: the whole history's state ``s`` says which interest is active
    now. One vector per user, so one product with the item table."""

    name = "attend"
    help = (
        "the groups weighed by the whole history's SASRec state, softmax_i(p_i.s/sqrt(d)), "
        "then summed; needs --readout sasrec"
    )
    needs_context = True

    def target_logits(self, item_table, chosen, group_reprs, group_mask, context):
        return (attended_groups(group_reprs, group_mask, context) + context) @ item_table.T


def attended_groups(group_reprs, group_mask, context) -> torch.Tensor:
    """``sum_i z_i p_i`` with ``z = softmax_i(p_i . s / sqrt(d))``, (B, d)."""
    relevance = group_dots(group_reprs, context) / group_reprs.shape[2] ** 0.5
    weights = masked_softmax(relevance, group_mask)  # (B, G): which interest is active
    return (weights[:, :, None] * group_reprs).sum(dim=1)


# -- readouts ----------------------------------------------------------------------------
class Readout(nn.Module):
    """``context(item_embs, histories)`` (B, d) or None: what every item score gets beside
    the groups (``s . e_c`` added). ``gives_context``: whether it gives one."""

    name: ClassVar[str]
    help: ClassVar[str] = ""
    gives_context: ClassVar[bool] = False

    def __init__(self, config) -> None:
        super().__init__()

    def context(self, item_embs: torch.Tensor, histories: torch.Tensor) -> torch.Tensor | None:
        return None


@READOUTS.register
class GroupReadout(Readout):
    """The paper: the groups alone score items."""

    name = "group"
    help = "the groups alone (the paper)"


@READOUTS.register
class SASRecReadout(Readout):
    """A SASRec encoder (2 blocks x 2 heads, dropout 0.5) over the whole history, on the
    model's item table: with the groups at zero it is SASRec, so the allocation can only
    add to a full sequence model."""

    name = "sasrec"
    help = "group + a SASRec state of the whole history (with the group part at zero it is SASRec)"
    gives_context = True

    def __init__(self, config) -> None:
        super().__init__(config)
        self.encoder = SASRecEncoder(
            config.dim, config.max_len, num_layers=2, num_heads=2, dropout=SASREC_DROPOUT
        )

    def context(self, item_embs, histories):
        return self.encoder(item_embs, histories)


# -- group views -------------------------------------------------------------------------
class GroupView(nn.Module):
    """``scoring_groups(group_reprs, embed, histories, assignments, num_slots)`` (B, G, d):
    the groups where items are scored, from the updater's ``p_i`` (B, G, d) and the
    allocation of the history (``embed`` maps item ids to the model's item vectors). ``needs_history_groups``: it is read only by a scorer
    over the history's groups (the paper's scoring routes through the policy, which
    reads the updater's groups)."""

    name: ClassVar[str]
    help: ClassVar[str] = ""
    needs_history_groups: ClassVar[bool] = False

    def __init__(self, config) -> None:
        super().__init__()

    def scoring_groups(self, group_reprs, embed, histories, assignments, num_slots):
        return group_reprs


@GROUP_VIEWS.register
class UpdaterView(GroupView):
    """The paper: Eq. 9-11's ``p_i``."""

    name = "updater"
    help = "the updater's p_i (the paper, Eq. 9-11)"


@GROUP_VIEWS.register
class EncoderView(GroupView):
    """A SASRec encoder (2 blocks x 2 heads) over the history with attention kept inside
    each group: a group is the encoder's state at its newest item, so one group holding
    the whole history is SASRec. The policy and the rewards still read the updater's
    ``p_i``."""

    name = "encoder"
    help = (
        "a SASRec encoder over the history with attention kept inside each group, read at "
        "the group's newest item: one group is SASRec; needs --scoring max, lse or attend"
    )
    needs_history_groups = True

    def __init__(self, config) -> None:
        super().__init__(config)
        self.encoder = SASRecEncoder(
            config.dim, config.max_len, num_layers=2, num_heads=2, dropout=SASREC_DROPOUT
        )

    def scoring_groups(self, group_reprs, embed, histories, assignments, num_slots):
        """(B, num_slots, d); zero for a slot that holds no item. ``histories`` (B, L)
        left-padded ids, ``assignments`` (B, L) each item's slot (-1 for padding)."""
        same_group = assignments[:, :, None] == assignments[:, None, :]
        outputs = self.encoder.encode(embed(histories), histories, same_group=same_group)
        slots = torch.arange(num_slots, device=histories.device)
        positions = torch.arange(histories.shape[1], device=histories.device)
        members = assignments[:, None, :] == slots[None, :, None]  # (B, slots, L)
        newest = torch.where(members, positions, -1).amax(dim=2)  # (B, slots)
        picked = outputs.gather(1, newest.clamp(min=0)[..., None].expand(-1, -1, outputs.shape[2]))
        return picked * (newest >= 0)[..., None]
