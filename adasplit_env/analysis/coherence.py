"""Whether an allocation's groups look like separate interests on data without
planted groups: do items the policy puts in one group co-occur more in other
users' histories than items it puts in different groups?

Co-occurrence is the positive pointwise mutual information (PPMI) of two items
over the training sequences, counted per user (an item pair co-occurs when one
user's training sequence holds both) and leaving the evaluated user out, so a
user's own history cannot make its items look related:

    PPMI(i, j) = max(0, log(c_ij U / (n_i n_j)))

with U users, n_i the users holding i and c_ij those holding both (0 when
c_ij = 0). For a user whose history the policy splits into two or more groups,
``within`` is the mean PPMI over pairs of history items in the same group and
``across`` over pairs in different groups; the *gap* is within - across. Two
references keep the group sizes and change only who is grouped with whom:
``permuted`` (the user's labels shuffled: chance, gap about 0) and
``contiguous`` (the same sizes as consecutive runs of the history: what
splitting by time alone gives, as consecutive items co-occur more). Groups that
follow interests have a gap above both.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from adasplit_env.analysis.allocation_quality import Allocation, allocate_split
from adasplit_env.data.cooccurrence import CoOccurrence
from adasplit_env.data.datasets import Dataset
from adasplit_env.data.split import LeaveOneOutSplit
from adasplit_env.process import AllocationProcess

# where eval_rec.py --coherence --json puts it for a run measured after training
COHERENCE_FILE = "coherence.json"


def within_across(ppmi: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Mean PPMI over same-group pairs and over different-group pairs (NaN when none)."""
    labels = np.asarray(labels)
    same = labels[:, None] == labels[None, :]
    pairs = ~np.eye(len(labels), dtype=bool)
    within, across = ppmi[same & pairs], ppmi[~same]
    return (
        float(within.mean()) if within.size else float("nan"),
        float(across.mean()) if across.size else float("nan"),
    )


def contiguous_labels(labels: np.ndarray) -> np.ndarray:
    """The same group sizes as runs of consecutive positions, in order of creation."""
    return np.sort(np.asarray(labels), kind="stable")


@dataclass(frozen=True)
class GroupCoherence:
    """Means over the users split into >= 2 groups (each holding a within pair); the
    gaps are within - across for the policy's groups and the two references, and
    ``over_contiguous`` a 95% bootstrap interval (over users) of gap - contiguous."""

    split_users: int
    evaluated_users: int
    within: float
    across: float
    gap: float
    permuted_gap: float
    contiguous_gap: float
    over_contiguous: tuple[float, float, float]  # mean, low, high

    @classmethod
    def from_dict(cls, values: dict) -> GroupCoherence:
        """Back from ``asdict`` (as metrics.json keeps it, maybe with its ``split``)."""
        names = {f.name for f in fields(cls)}
        kept = {key: value for key, value in values.items() if key in names}
        return cls(**{**kept, "over_contiguous": tuple(kept["over_contiguous"])})

    def summary(self) -> str:
        if not self.split_users:
            return (
                f"group coherence: none of the {self.evaluated_users:,} users has a history "
                "split into two groups (nothing to compare)"
            )
        mean, low, high = self.over_contiguous
        return (
            f"group coherence (PPMI of item pairs, {self.split_users:,} of "
            f"{self.evaluated_users:,} users split): within {self.within:.3f}, across "
            f"{self.across:.3f}, gap {self.gap:+.3f}; same sizes shuffled {self.permuted_gap:+.3f}, "
            f"as consecutive runs {self.contiguous_gap:+.3f}; gap over consecutive runs "
            f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]"
        )


def group_coherence(
    process: AllocationProcess,
    dataset: Dataset,
    split: str = "test",
    seed: int = 0,
    batch_size: int = 512,
    resamples: int = 2000,
) -> GroupCoherence:
    """The greedy allocation's group coherence on ``split``'s histories (see module doc)."""
    allocation = allocate_split(process, dataset, split, batch_size)
    return coherence_of(allocation, dataset.split, seed, resamples)


def coherence_of(
    allocation: Allocation, split: LeaveOneOutSplit, seed: int = 0, resamples: int = 2000
) -> GroupCoherence:
    """:func:`group_coherence` of an allocation already made, against ``split``'s
    training co-occurrence."""
    counts = CoOccurrence(split)
    generator = np.random.default_rng(seed)
    rows = []  # within, across, permuted gap, contiguous gap
    for user, items, labels in allocation.user_rows():
        if len(np.unique(labels)) < 2:
            continue
        ppmi = counts.ppmi(items, leave_out_user=user)
        within, across = within_across(ppmi, labels)
        if np.isnan(within):  # every group a singleton: no pair to call "within"
            continue
        shuffled = within_across(ppmi, generator.permutation(labels))
        runs = within_across(ppmi, contiguous_labels(labels))
        rows.append((within, across, shuffled[0] - shuffled[1], runs[0] - runs[1]))
    table = np.array(rows, dtype=np.float64).reshape(-1, 4)
    gaps = table[:, 0] - table[:, 1]
    over = gaps - table[:, 3]
    if len(over):
        means = over[generator.integers(0, len(over), (resamples, len(over)))].mean(axis=1)
        interval = (float(over.mean()), *map(float, np.quantile(means, [0.025, 0.975])))
    else:
        interval = (float("nan"),) * 3
    mean = lambda column: float(np.nanmean(column)) if len(column) else float("nan")  # noqa: E731
    return GroupCoherence(
        split_users=len(table),
        evaluated_users=len(allocation.users),
        within=mean(table[:, 0]),
        across=mean(table[:, 1]),
        gap=mean(gaps),
        permuted_gap=mean(table[:, 2]),
        contiguous_gap=mean(table[:, 3]),
        over_contiguous=interval,
    )
