"""Stage 1-3 of the data path: interactions -> k-core filter -> user sequences.

``Interactions`` holds raw (user, item, timestamp) rows in file order. The
k-core filter and :func:`build_sequences` turn them into dense, chronological
per-user sequences (:class:`UserSequences`) with id 0 reserved for padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adasplit_env.errors import DataError

PAD = 0


@dataclass(frozen=True)
class DatasetStats:
    """Counts shown by ``python -m adasplit_env.data stats``."""

    users: int
    items: int
    interactions: int

    @property
    def density(self) -> float:
        """Interactions per user-item pair, in percent (as the paper's Table 1)."""
        if self.users == 0 or self.items == 0:
            return 0.0
        return 100.0 * self.interactions / (self.users * self.items)


@dataclass(frozen=True)
class Interactions:
    """Raw interaction rows in file order.

    Ids are strings as read from the source (numbers are kept as text so that
    every format maps to the same type); timestamps are float64 (any unit;
    only their order matters).
    """

    users: np.ndarray  # (N,) object array of str
    items: np.ndarray  # (N,) object array of str
    timestamps: np.ndarray  # (N,) float64

    def __post_init__(self) -> None:
        if not (len(self.users) == len(self.items) == len(self.timestamps)):
            raise ValueError("users, items and timestamps must have the same length")

    def __len__(self) -> int:
        return len(self.users)

    @classmethod
    def from_rows(cls, users, items, timestamps) -> Interactions:
        return cls(
            np.asarray(users, dtype=object),
            np.asarray(items, dtype=object),
            np.asarray(timestamps, dtype=np.float64),
        )

    def stats(self) -> DatasetStats:
        return DatasetStats(
            users=len(set(self.users.tolist())),
            items=len(set(self.items.tolist())),
            interactions=len(self),
        )

    def subset(self, keep: np.ndarray) -> Interactions:
        return Interactions(self.users[keep], self.items[keep], self.timestamps[keep])


def kcore_filter(interactions: Interactions, k: int = 5) -> Interactions:
    """Iteratively drop users and items with fewer than ``k`` rows.

    Repeats until every remaining user and item has at least ``k`` rows
    (removing an item can push a user under ``k`` and vice versa). Rows are
    counted, so a repeated (user, item) pair counts twice. ``k <= 1`` keeps all.
    """
    if k < 0:
        raise DataError(f"k-core must be >= 0, got {k}")
    if k <= 1 or len(interactions) == 0:
        return interactions
    _, user_codes = np.unique(interactions.users.astype(str), return_inverse=True)
    _, item_codes = np.unique(interactions.items.astype(str), return_inverse=True)
    keep = np.ones(len(interactions), dtype=bool)
    while True:
        user_counts = np.bincount(user_codes[keep], minlength=user_codes.max() + 1)
        item_counts = np.bincount(item_codes[keep], minlength=item_codes.max() + 1)
        new_keep = keep & (user_counts[user_codes] >= k) & (item_counts[item_codes] >= k)
        if new_keep.sum() == keep.sum():
            break
        keep = new_keep
    return interactions.subset(keep)


@dataclass(frozen=True)
class UserSequences:
    """Dense, chronological per-user item sequences.

    ``sequences[u]`` is the item sequence of dense user ``u`` (users are
    1..num_users; ``sequences[0]`` is an empty placeholder so that the index is
    the id). Item ids are 1..num_items, 0 is padding. ``item_raw_ids[i]`` and
    ``user_raw_ids[u]`` give back the source's ids.
    """

    sequences: list[np.ndarray]
    item_raw_ids: np.ndarray  # (num_items + 1,) object, [0] = "<pad>"
    user_raw_ids: np.ndarray  # (num_users + 1,) object, [0] = "<pad>"

    @property
    def num_users(self) -> int:
        return len(self.user_raw_ids) - 1

    @property
    def num_items(self) -> int:
        return len(self.item_raw_ids) - 1

    @property
    def num_interactions(self) -> int:
        return int(sum(len(s) for s in self.sequences))

    def stats(self) -> DatasetStats:
        return DatasetStats(self.num_users, self.num_items, self.num_interactions)


def build_sequences(interactions: Interactions) -> UserSequences:
    """Re-index densely and order each user's items by time.

    Users and items get ids in order of first appearance in the file (from 1;
    0 is padding). Each user's items are sorted by timestamp with a stable
    sort, so rows with equal timestamps keep their file order.
    """
    if len(interactions) == 0:
        raise DataError("no interactions left: the dataset is empty (after filtering)")
    user_raw, user_first, user_codes = np.unique(
        interactions.users.astype(str), return_index=True, return_inverse=True
    )
    item_raw, item_first, item_codes = np.unique(
        interactions.items.astype(str), return_index=True, return_inverse=True
    )
    # np.unique sorts by value; renumber by first appearance instead.
    user_rank = np.empty(len(user_raw), dtype=np.int64)
    user_rank[np.argsort(user_first, kind="stable")] = np.arange(1, len(user_raw) + 1)
    item_rank = np.empty(len(item_raw), dtype=np.int64)
    item_rank[np.argsort(item_first, kind="stable")] = np.arange(1, len(item_raw) + 1)
    dense_users = user_rank[user_codes]
    dense_items = item_rank[item_codes]

    # Stable sort by time, then stable sort by user: chronological per user,
    # file order among equal timestamps.
    order = np.argsort(interactions.timestamps, kind="stable")
    order = order[np.argsort(dense_users[order], kind="stable")]
    sorted_users = dense_users[order]
    sorted_items = dense_items[order]
    boundaries = np.searchsorted(sorted_users, np.arange(1, len(user_raw) + 2))
    sequences = [np.zeros(0, dtype=np.int64)]
    sequences += [
        sorted_items[boundaries[u - 1] : boundaries[u]] for u in range(1, len(user_raw) + 1)
    ]

    item_raw_ids = np.empty(len(item_raw) + 1, dtype=object)
    item_raw_ids[0] = "<pad>"
    item_raw_ids[item_rank] = item_raw
    user_raw_ids = np.empty(len(user_raw) + 1, dtype=object)
    user_raw_ids[0] = "<pad>"
    user_raw_ids[user_rank] = user_raw
    return UserSequences(sequences, item_raw_ids, user_raw_ids)
