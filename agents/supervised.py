"""The baselines' learner: plain cross-entropy over all items, no allocation MDP."""

from __future__ import annotations

import torch

from adasplit_env.data.split import Samples
from agents.base import Agent


class SupervisedAgent(Agent):
    """Trains a :mod:`adasplit_env.baselines` model (``--model sasrec|gru4rec``)."""

    name = "supervised"

    def __init__(self, model, config) -> None:
        super().__init__(None, config, model=model)

    def loss(self, batch: Samples, generator: torch.Generator | None = None):
        device = self.model.item_embeddings.weight.device
        loss = self.model.loss(batch.histories.to(device), batch.targets.to(device))
        return loss, {"losses/seq": loss.item(), "losses/total": loss.item()}

    def score(self, batch: Samples) -> torch.Tensor:
        return self.model.full_sort_scores(
            batch.histories.to(self.model.item_embeddings.weight.device)
        )
