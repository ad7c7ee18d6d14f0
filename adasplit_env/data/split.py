"""Stage 4-5 of the data path: leave-one-out split -> samples.

For every user the last item is the test target, the second last the
validation target and the rest is the training sequence (docs/design.md, section 2).
Training samples: every prefix of a training sequence predicts its next item.
Validation uses the training sequence as history; test uses training +
validation. Histories are cut to the last ``max_len`` items and left-padded
with 0, so the newest item is always in the last column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from adasplit_env.data.interactions import PAD, UserSequences
from adasplit_env.errors import DataError

SplitName = Literal["val", "test"]


@dataclass(frozen=True)
class Samples:
    """A set of (user, history, target) samples as tensors.

    ``histories`` is (N, max_len) int64, left-padded with 0: row n holds the
    last ``lengths[n]`` items before ``targets[n]``, oldest first.
    """

    users: torch.Tensor  # (N,) int64
    histories: torch.Tensor  # (N, max_len) int64
    targets: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return int(self.users.shape[0])

    @property
    def max_len(self) -> int:
        return int(self.histories.shape[1])

    @property
    def lengths(self) -> torch.Tensor:
        return (self.histories != PAD).sum(dim=1)

    def subset(self, index: torch.Tensor | np.ndarray | slice) -> Samples:
        if isinstance(index, np.ndarray):
            index = torch.from_numpy(index)
        return Samples(self.users[index], self.histories[index], self.targets[index])

    def batches(
        self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None
    ):
        """Yield :class:`Samples` mini-batches (a permutation when ``shuffle``)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            yield self.subset(order[start : start + batch_size])


def _left_pad(histories: list[np.ndarray], max_len: int) -> np.ndarray:
    out = np.zeros((len(histories), max_len), dtype=np.int64)
    for row, history in enumerate(histories):
        tail = history[-max_len:]
        if len(tail):
            out[row, max_len - len(tail) :] = tail
    return out


@dataclass(frozen=True)
class LeaveOneOutSplit:
    """Per-user leave-one-out split of :class:`UserSequences`.

    Users with fewer than 3 items cannot give a validation and a test target;
    they keep all their items for training and are left out of evaluation.
    """

    sequences: UserSequences

    @property
    def num_users(self) -> int:
        return self.sequences.num_users

    @property
    def num_items(self) -> int:
        return self.sequences.num_items

    def evaluated_users(self) -> np.ndarray:
        return np.array(
            [u for u in range(1, self.num_users + 1) if len(self.sequences.sequences[u]) >= 3],
            dtype=np.int64,
        )

    def train_sequence(self, user: int) -> np.ndarray:
        seq = self.sequences.sequences[user]
        return seq[:-2] if len(seq) >= 3 else seq

    def train_item_counts(self) -> np.ndarray:
        """Interactions per item in the training part, (num_items + 1,), [0] = 0."""
        counts = np.zeros(self.num_items + 1, dtype=np.int64)
        for user in range(1, self.num_users + 1):
            np.add.at(counts, self.train_sequence(user), 1)
        counts[PAD] = 0
        return counts

    def train_samples(self, max_len: int = 10) -> Samples:
        """Every prefix of every training sequence and its next item."""
        _check_max_len(max_len)
        users, histories, targets = [], [], []
        for user in range(1, self.num_users + 1):
            seq = self.train_sequence(user)
            for j in range(1, len(seq)):
                users.append(user)
                histories.append(seq[max(0, j - max_len) : j])
                targets.append(seq[j])
        if not users:
            raise DataError("the split has no training samples (every user has < 2 train items)")
        return Samples(
            torch.tensor(users, dtype=torch.int64),
            torch.from_numpy(_left_pad(histories, max_len)),
            torch.tensor(np.asarray(targets), dtype=torch.int64),
        )

    def eval_samples(self, split: SplitName, max_len: int = 10) -> Samples:
        """One sample per evaluated user: validation or test target."""
        _check_max_len(max_len)
        if split not in ("val", "test"):
            raise DataError(f"unknown split {split!r}; use 'val' or 'test'")
        users = self.evaluated_users()
        offset = 2 if split == "val" else 1
        histories, targets = [], []
        for user in users:
            seq = self.sequences.sequences[user]
            histories.append(seq[: len(seq) - offset])
            targets.append(seq[len(seq) - offset])
        return Samples(
            torch.from_numpy(users),
            torch.from_numpy(_left_pad(histories, max_len)),
            torch.tensor(np.asarray(targets, dtype=np.int64)),
        )

    def seen_items(self, split: SplitName) -> list[np.ndarray]:
        """The whole history (not cut to max_len) of each evaluated user."""
        offset = 2 if split == "val" else 1
        return [
            self.sequences.sequences[u][: len(self.sequences.sequences[u]) - offset]
            for u in self.evaluated_users()
        ]


def _check_max_len(max_len: int) -> None:
    if max_len < 1:
        raise DataError(f"max_len must be >= 1, got {max_len}")
