"""Item clusters from co-occurrence, for ``join_logit cluster`` (beyond the paper).

The allocator it drives is not learned: an item joins the group that holds
items of its cluster, else an empty group, else opens one. It answers a
question the learned allocators cannot: if a user's history were split into
interests (as far as co-occurrence defines them), would the groups predict
better? The clusters are a spherical k-means of the items' rank-``rank``
spectral embedding of the training sequences' PPMI matrix
(:class:`adasplit_env.coherence.CoOccurrence`), seeded, so a run rebuilds the
same clusters; the model keeps them as a buffer, so a checkpoint carries them.
"""

from __future__ import annotations

import numpy as np
import torch

from adasplit_env.coherence import CoOccurrence, positive_pmi
from adasplit_env.data.split import LeaveOneOutSplit


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


def fit_item_clusters(model, split: LeaveOneOutSplit, seed: int = 0) -> None:
    """Fill ``model.item_clusters`` for ``join_logit cluster`` (a no-op otherwise)."""
    if model.config.join_logit != "cluster":
        return
    labels = cooccurrence_clusters(split, model.config.cluster_count, seed=seed)
    model.item_clusters.copy_(torch.from_numpy(labels))
