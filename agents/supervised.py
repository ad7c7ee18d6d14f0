"""The baselines' learner: the recommender's own loss, no allocation MDP."""

from __future__ import annotations

import torch

from adasplit_env.data.split import Samples
from adasplit_env.recommenders import Recommender
from agents.base import Agent


class SupervisedAgent(Agent):
    """Trains a recommender by its :meth:`Recommender.loss` alone (``--model sasrec|gru4rec``:
    cross-entropy over all items) and ranks by its :meth:`Recommender.rank_scores`."""

    name = "supervised"

    def __init__(self, recommender: Recommender, config) -> None:
        super().__init__(recommender.process, config, model=recommender.model)
        self.recommender = recommender

    def loss(self, batch: Samples, generator: torch.Generator | None = None):
        loss = self.recommender.loss(batch, generator)
        if not self.log_stats:
            return loss, {}
        return loss, {"losses/seq": loss.item(), "losses/total": loss.item()}

    def rank_scores(self, batch: Samples, cutoff: int | None = None, exclude=None) -> torch.Tensor:
        return self.recommender.rank_scores(batch, cutoff, exclude)

    def score(self, batch: Samples) -> torch.Tensor:
        return self.recommender.full_sort_scores(batch)
