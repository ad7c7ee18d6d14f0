"""One interface for every recommender: AdaSplit and the baselines it is measured against.

A :class:`Recommender` holds its model (an ``nn.Module``, what checkpoints store) and
offers what training and evaluation read of it:

- :meth:`Recommender.loss`: the recommender's own loss on a batch (cross-entropy of
  the target over all items);
- :meth:`Recommender.full_sort_scores`: (B, num_items + 1) scores of every item, the
  padding column at -inf (what recommending reads);
- :meth:`Recommender.rank_scores`: scores that rank each target as the full scores do,
  exactly up to ``cutoff`` and with ``exclude``'s items left out (what evaluation reads;
  AdaSplit's skips the work of routing candidates that cannot reach the target).

``RECOMMENDERS`` maps the ``--model`` names to the classes; a class builds its model from
the training options (:meth:`Recommender.build`) or from a checkpoint
(:meth:`Recommender.from_payload`). ``allocates`` declares whether a recommender has an
allocation MDP (``process``), which the RL learners train and the allocation measures read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from adasplit_env.baselines.models import BASELINE_DROPOUT, BaselineConfig, build_baseline
from adasplit_env.data.split import LeaveOneOutSplit, Samples
from adasplit_env.model.adasplit import AdaSplitModel
from adasplit_env.model.config import ModelConfig, RewardConfig
from adasplit_env.process import AllocationProcess
from adasplit_env.registry import Registry
from adasplit_env.scoring import allocate_greedily, rank_scores, score_all_items

RECOMMENDERS: Registry = Registry("recommender")


class Recommender:
    """A recommender behind the interface training and evaluation use (module doc)."""

    name: ClassVar[str]
    help: ClassVar[str]
    allocates: ClassVar[bool] = False
    model: nn.Module
    # the allocation MDP around the model, for recommenders that allocate (else None)
    process: AllocationProcess | None = None

    @classmethod
    def build(
        cls, options: Mapping[str, Any], num_users: int, num_items: int, rewards: RewardConfig
    ) -> Recommender:
        """A new model: ``options`` are the training config's model options (those left
        at None take the recommender's own defaults; the ones it has no use for are
        ignored)."""
        raise NotImplementedError

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Recommender:
        """The model a checkpoint describes (weights not loaded)."""
        raise NotImplementedError

    @property
    def max_len(self) -> int:
        return int(self.model.config.max_len)

    @property
    def device(self) -> torch.device:
        return self.model.item_embeddings.weight.device

    def fit(self, split: LeaveOneOutSplit, seed: int) -> None:
        """Whatever the model computes from the training data before training (nothing
        by default)."""

    def to(self, device: str | torch.device) -> Recommender:
        self.model.to(device)
        return self

    def loss(self, batch: Samples, generator: torch.Generator | None = None) -> torch.Tensor:
        """The recommender's own loss on ``batch``: cross-entropy of each target."""
        raise NotImplementedError

    def full_sort_scores(self, batch: Samples) -> torch.Tensor:
        """(B, num_items + 1) scores of every item; the padding column is -inf."""
        raise NotImplementedError

    def rank_scores(
        self,
        batch: Samples,
        cutoff: int | None = None,
        exclude: Sequence[np.ndarray] | None = None,
    ) -> torch.Tensor:
        """Scores under which each target has the rank :meth:`full_sort_scores` gives it,
        exactly where that rank is at most ``cutoff`` (every rank without one)."""
        return self.full_sort_scores(batch)


@RECOMMENDERS.register
class AdaSplit(Recommender):
    """The paper's model: the allocation MDP (:class:`AllocationProcess`) around an
    :class:`AdaSplitModel`; items scored by section 3.3 (or a ``--scoring`` option)."""

    name = "adasplit"
    help = "the paper's model"
    allocates = True

    def __init__(self, model: AdaSplitModel, rewards: RewardConfig | None = None) -> None:
        self.model = model
        self.process = AllocationProcess(model, rewards)

    @classmethod
    def build(cls, options, num_users, num_items, rewards):
        # ModelConfig gives the options left at None AdaSplit's values
        config = ModelConfig(num_users=num_users, num_items=num_items, **options)
        return cls(AdaSplitModel(config), rewards)

    @classmethod
    def from_payload(cls, payload):
        return cls(
            AdaSplitModel(ModelConfig.from_dict(dict(payload["model_config"]))),
            RewardConfig.from_dict(dict(payload["reward_config"])),
        )

    def fit(self, split, seed):
        self.model.policy.fit(split, seed=seed)  # the cluster rule fits its clusters

    def loss(self, batch, generator=None):
        """Eq. 20's L_seq on the allocation prediction makes: the history and the target
        allocated by the policy's argmax (section 3.3), the target scored by the scoring
        rule. No L_rl: the RL learners (``agents``) train the policy."""
        process = self.process
        history, _, step = allocate_greedily(process, batch, score_target=False)
        log_likelihood = process.target_log_likelihood(
            step.selected_group_repr,
            process.scoring_group_reprs(history),
            history.group_mask,
            history.sequence_state,
            batch.targets.to(self.device),
        )
        return -log_likelihood.mean()

    def full_sort_scores(self, batch):
        return score_all_items(self.process, batch)

    def rank_scores(self, batch, cutoff=None, exclude=None):
        return rank_scores(self.process, batch, cutoff, exclude)


class _Baseline(Recommender):
    """A sequence model of :mod:`adasplit_env.baselines` (cross-entropy, no allocation)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    @classmethod
    def build(cls, options, num_users, num_items, rewards):
        # the options a baseline has (dim, max_len, layers, heads, dropout); left at None,
        # BaselineConfig's defaults hold, and dropout is RecBole's for this model
        own = {f.name for f in fields(BaselineConfig)} - {"kind", "num_users", "num_items"}
        chosen = {name: options[name] for name in own if options.get(name) is not None}
        chosen.setdefault("dropout", BASELINE_DROPOUT[cls.name])
        config = BaselineConfig(kind=cls.name, num_users=num_users, num_items=num_items, **chosen)
        return cls(build_baseline(config))

    @classmethod
    def from_payload(cls, payload):
        return cls(build_baseline(BaselineConfig.from_dict(dict(payload["model_config"]))))

    def loss(self, batch, generator=None):
        return self.model.loss(batch.histories.to(self.device), batch.targets.to(self.device))

    def full_sort_scores(self, batch):
        return self.model.full_sort_scores(batch.histories.to(self.device))


@RECOMMENDERS.register
class SASRecRecommender(_Baseline):
    name = "sasrec"
    help = "SASRec (Kang & McAuley 2018), cross-entropy over all items, no RL"


@RECOMMENDERS.register
class GRU4RecRecommender(_Baseline):
    name = "gru4rec"
    help = "GRU4Rec (Hidasi et al. 2016), cross-entropy over all items, no RL"
