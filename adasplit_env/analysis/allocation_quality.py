"""What an allocation of the evaluation histories looks like: how many groups
it builds per user, and how well it recovers planted groups (only the
synthetic data knows them).

For each user the history items are partitioned twice: by the groups the
policy put them in, and by their planted interest group. The adjusted Rand
index (ARI) of the two partitions is averaged over users: 1 is a perfect
recovery (up to renaming), about 0 is what chance gives.

One allocation pass (:func:`allocate_split`, an :class:`Allocation`) serves
every measure of it: :func:`quality_of` here and
:func:`adasplit_env.analysis.coherence.coherence_of`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from adasplit_env.data.datasets import Dataset
from adasplit_env.process import AllocationProcess


def _pairs(counts: np.ndarray) -> float:
    return float((counts * (counts - 1) / 2).sum())


def adjusted_rand_index(labels_a: np.ndarray, labels_b: np.ndarray) -> float:
    """ARI of two labelings of the same items (Hubert & Arabie, 1985).

    When both partitions are trivial in the same way (chance agreement is
    perfect agreement) it returns 1.0, as scikit-learn does.
    """
    labels_a, labels_b = np.asarray(labels_a), np.asarray(labels_b)
    if labels_a.shape != labels_b.shape:
        raise ValueError("both labelings must cover the same items")
    n = labels_a.size
    if n < 2:
        return 1.0
    _, a = np.unique(labels_a, return_inverse=True)
    _, b = np.unique(labels_b, return_inverse=True)
    table = np.zeros((a.max() + 1, b.max() + 1), dtype=np.int64)
    np.add.at(table, (a, b), 1)
    index = _pairs(table)
    sum_a, sum_b = _pairs(table.sum(1)), _pairs(table.sum(0))
    expected = sum_a * sum_b / (n * (n - 1) / 2)
    maximum = (sum_a + sum_b) / 2
    if maximum == expected:
        return 1.0
    return (index - expected) / (maximum - expected)


@dataclass(frozen=True)
class AllocationQuality:
    """Mean groups per user; mean per-user ARI over all evaluated users and over
    multi-interest users only, and the mean number of planted groups a history
    spans (the groups per user a perfect allocator builds); NaN without planted
    groups."""

    groups_per_user: float
    all_users: float
    multi_interest: float
    planted_groups_per_user: float = float("nan")
    # groups holding at least one history item: with ``group_start zero`` the first
    # group starts empty and may stay so (h counts it, the user sees no such group)
    filled_groups_per_user: float = float("nan")


@dataclass(frozen=True)
class Allocation:
    """One allocation pass over a split's histories, as arrays in ``eval_samples``
    order: what the allocation measures (this module's, adasplit_env/analysis/coherence.py)
    read, so that one pass serves them all."""

    users: np.ndarray  # (N,) user ids
    histories: np.ndarray  # (N, L) item ids, left-padded with 0
    assignments: np.ndarray  # (N, L) group slot of each history item (-1 at padding)
    num_groups: np.ndarray  # (N,) h, counting an empty start group
    filled_groups: np.ndarray  # (N,) groups holding at least one history item

    def user_rows(self):
        """``(user, items, groups)`` of each history, padding left out."""
        for user, history, slots in zip(self.users, self.histories, self.assignments):
            real = history != 0
            yield int(user), history[real], slots[real]


def allocate_split(
    process: AllocationProcess,
    dataset: Dataset,
    split: str,
    batch_size: int = 512,
    choose_actions=None,
) -> Allocation:
    """Allocate ``split``'s histories by ``choose_actions(state) -> (B,)`` (default: the
    greedy policy, as at prediction), in eval mode and without gradients."""
    samples = dataset.split.eval_samples(split, process.model.config.max_len)
    parts: dict[str, list[torch.Tensor]] = {"assignments": [], "num_groups": [], "filled": []}
    was_training = process.model.training
    process.model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(samples), batch_size):
                batch = samples.subset(slice(start, start + batch_size))
                state = process.allocate_history(batch, choose_actions)
                parts["assignments"].append(state.assignments[:, :-1].cpu())
                parts["num_groups"].append(state.num_groups.cpu())
                parts["filled"].append((state.group_sizes > 0).sum(dim=1).cpu())
    finally:
        process.model.train(was_training)
    joined = {key: torch.cat(value).to(torch.int64).numpy() for key, value in parts.items()}
    return Allocation(
        users=samples.users.numpy(),
        histories=samples.histories.numpy(),
        assignments=joined["assignments"],
        num_groups=joined["num_groups"],
        filled_groups=joined["filled"],
    )


def allocation_quality(
    process: AllocationProcess,
    dataset: Dataset,
    split: str = "test",
    policy: str = "greedy",
    seed: int = 0,
    batch_size: int = 512,
) -> AllocationQuality:
    """Groups per user and per-user ARI against the planted groups, averaged.

    ``policy``: ``greedy`` (the model's argmax, as at prediction) or
    ``random`` (uniform over the valid actions: the chance reference).
    ``multi_interest`` averages over the users whose history spans two or more
    planted groups (a single-group history is trivially recovered by putting
    everything in one group). All three come from one allocation pass; on a
    dataset without planted groups the ARI fields are NaN.
    """
    if policy == "greedy":
        choose_actions = None
    elif policy == "random":
        generator = torch.Generator().manual_seed(seed)

        def choose_actions(state):
            noise = torch.rand(state.action_mask.shape, generator=generator).to(process.device)
            return noise.masked_fill(~state.action_mask, -1.0).argmax(1)
    else:
        raise ValueError(f"unknown policy {policy!r}")
    allocation = allocate_split(process, dataset, split, batch_size, choose_actions)
    return quality_of(allocation, dataset)


def quality_of(allocation: Allocation, dataset: Dataset) -> AllocationQuality:
    """:func:`allocation_quality` of an allocation already made."""
    scores, multi, planted_counts = [], [], []
    if dataset.item_groups is not None:
        for _, items, groups in allocation.user_rows():
            planted = dataset.item_groups[items]
            score = adjusted_rand_index(groups, planted)
            scores.append(score)
            planted_counts.append(len(np.unique(planted)))
            if planted_counts[-1] >= 2:
                multi.append(score)
    return AllocationQuality(
        groups_per_user=float(allocation.num_groups.mean()),
        all_users=float(np.mean(scores)) if scores else float("nan"),
        multi_interest=float(np.mean(multi)) if multi else float("nan"),
        planted_groups_per_user=float(np.mean(planted_counts)) if planted_counts else float("nan"),
        filled_groups_per_user=float(allocation.filled_groups.mean()),
    )
