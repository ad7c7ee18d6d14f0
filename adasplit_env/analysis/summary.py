"""What ``metrics.json`` says of an allocation: the greedy allocation of a split measured
against controls (what a training run reports of its best weights)."""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np

from adasplit_env.analysis.allocation_quality import Allocation, allocation_quality, quality_of
from adasplit_env.analysis.coherence import coherence_of
from adasplit_env.data.datasets import Dataset
from adasplit_env.process import AllocationProcess


def allocation_summary(
    process: AllocationProcess, dataset: Dataset, allocation: Allocation, split: str, seed: int
) -> dict:
    """The groups per user of ``allocation`` (the greedy pass of ``split``'s ranking), their
    co-occurrence coherence (interests or time segments?) and, on planted data, the
    adjusted Rand index against the planted interests beside two controls: a random
    policy's and everything in one group."""
    greedy = quality_of(allocation, dataset)
    coherence = coherence_of(allocation, dataset.split, seed=seed)
    summary = {
        "groups_per_user": greedy.groups_per_user,
        "filled_groups_per_user": greedy.filled_groups_per_user,
        "group_coherence": {"split": split, **asdict(coherence)},
    }
    if dataset.item_groups is None:
        return summary
    chance = allocation_quality(process, dataset, split, policy="random", seed=seed)
    one_group = quality_of(
        replace(allocation, assignments=np.where(allocation.histories != 0, 0, -1)), dataset
    )
    summary["planted_groups_per_user"] = greedy.planted_groups_per_user
    for suffix, quality in (("", greedy), ("_random", chance), ("_one_group", one_group)):
        summary[f"allocation_ari{suffix}"] = quality.all_users
        summary[f"allocation_ari_multi_interest{suffix}"] = quality.multi_interest
    return summary
