"""Item co-occurrence over a split's training sequences: per-user pair counts, their
positive pointwise mutual information (PPMI), and item clusters from it.

Data, not analysis: the coherence measure (:mod:`adasplit_env.analysis.coherence`) reads the
PPMI of a user's items, and the ``cluster`` join rule
(:class:`adasplit_env.model.join_rules.ClusterJoin`) the clusters: a seeded spherical
k-means of the items' rank-``rank`` spectral embedding of the PPMI matrix, so a run
rebuilds the same clusters.

    PPMI(i, j) = max(0, log(c_ij U / (n_i n_j)))

with U users, n_i the users holding i and c_ij those holding both (0 when c_ij = 0).
"""

from __future__ import annotations

import numpy as np
import torch

from adasplit_env.data.split import LeaveOneOutSplit


def positive_pmi(both, first, second, users: float) -> np.ndarray:
    """``max(0, log(c_ij U / (n_i n_j)))`` from the counts (broadcast); 0 where the
    pair never co-occurs or an item count is 0."""
    both = np.asarray(both, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(both * users / (np.asarray(first, np.float64) * second))
    return np.where(np.isfinite(pmi) & (both > 0), np.maximum(pmi, 0.0), 0.0)


class CoOccurrence:
    """Item-pair user co-occurrence counts of a split's training sequences."""

    def __init__(self, split: LeaveOneOutSplit):
        self.num_items = split.num_items
        # each user's distinct training items, sorted; users are 1..num_users (0: padding)
        self.user_items = [np.zeros(0, dtype=np.int64)]
        self.item_users = np.zeros(self.num_items + 1, dtype=np.int64)
        keys = []
        for user in range(1, split.num_users + 1):
            items = np.unique(split.train_sequence(user))
            items = items[items != 0]
            self.user_items.append(items)
            self.item_users[items] += 1
            if len(items) > 1:
                first, second = np.meshgrid(items, items, indexing="ij")
                keys.append(self._key(first[first < second], second[first < second]))
        self.num_users = sum(len(items) > 0 for items in self.user_items)
        self.pair_keys, self.pair_users = np.unique(
            np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64), return_counts=True
        )

    def _key(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        low, high = np.minimum(first, second), np.maximum(first, second)
        return low.astype(np.int64) * (self.num_items + 1) + high

    def ppmi(self, items: np.ndarray, leave_out_user: int | None = None) -> np.ndarray:
        """The (n, n) PPMI of ``items`` (ids; a repeated item's pair is log(U / n_i)),
        without ``leave_out_user``'s own sequence in the counts; the diagonal is 0."""
        items = np.asarray(items, dtype=np.int64)
        first, second = np.meshgrid(items, items, indexing="ij")
        keys = self._key(first, second)
        found = np.searchsorted(self.pair_keys, keys).clip(max=max(len(self.pair_keys) - 1, 0))
        both = np.where(
            (len(self.pair_keys) > 0) & (self.pair_keys[found] == keys), self.pair_users[found], 0
        ).astype(np.float64)
        single = self.item_users[items].astype(np.float64)
        # an item met twice: every user holding it holds "both"
        both = np.where(first == second, single[:, None], both)
        users = float(self.num_users)
        if leave_out_user is not None and len(self.user_items[leave_out_user]):
            own = np.isin(items, self.user_items[leave_out_user])
            single = single - own
            both = both - (own[:, None] & own[None, :])
            users -= 1
        ppmi = positive_pmi(both, single[:, None], single[None, :], users)
        np.fill_diagonal(ppmi, 0.0)
        return ppmi


def ppmi_matrix(counts: CoOccurrence) -> torch.Tensor:
    """The sparse, symmetric (num_items + 1) x (num_items + 1) PPMI of co-occurring pairs."""
    size = counts.num_items + 1
    first, second = np.divmod(counts.pair_keys, size)
    pmi = positive_pmi(
        counts.pair_users, counts.item_users[first], counts.item_users[second], counts.num_users
    )
    keep = pmi > 0
    rows = np.concatenate([first[keep], second[keep]])
    cols = np.concatenate([second[keep], first[keep]])
    values = np.concatenate([pmi[keep], pmi[keep]]).astype(np.float32)
    return torch.sparse_coo_tensor(
        torch.from_numpy(np.stack([rows, cols])),
        torch.from_numpy(values),
        (size, size),
        check_invariants=True,
    ).coalesce()


def cooccurrence_clusters(
    split: LeaveOneOutSplit, count: int, seed: int = 0, rank: int = 32, iterations: int = 50
) -> np.ndarray:
    """A cluster id in [0, count) per item id, (num_items + 1,) int64 (padding: 0).
    Items that co-occur with nothing share cluster 0's fate of an all-zero vector."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    counts = CoOccurrence(split)
    matrix = ppmi_matrix(counts)
    rank = max(1, min(rank, matrix.shape[0] - 1))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        left, values, _ = torch.svd_lowrank(matrix, q=rank, niter=4)
    vectors = (left * values.sqrt()).double().numpy()
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
    generator = np.random.default_rng(seed)
    seen = np.flatnonzero(counts.item_users > 0)
    centres = vectors[generator.choice(seen, min(count, len(seen)), replace=False)]
    for _ in range(iterations):  # spherical k-means: cosine to unit centres
        labels = (vectors @ centres.T).argmax(axis=1)
        for cluster in range(len(centres)):
            members = vectors[labels == cluster]
            if len(members):
                centre = members.sum(axis=0)
                centres[cluster] = centre / max(np.linalg.norm(centre), 1e-12)
    labels = (vectors @ centres.T).argmax(axis=1).astype(np.int64)
    labels[0] = 0
    return labels
