"""Leave-one-out evaluation of any scorer with full ranking (docs/design.md, section 5).

A scorer is a callable that maps a :class:`~adasplit_env.data.Samples` batch
(users and their histories) to a (batch, num_items + 1) score tensor. The
popularity and random floors, and every trained model, are evaluated through
:func:`evaluate_scorer`, so they share the split, the ranking and the metrics.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from adasplit_env.data.datasets import Dataset
from adasplit_env.data.split import Samples, SplitName
from adasplit_env.io import atomic_write_bytes, show_progress
from adasplit_env.metrics import DEFAULT_KS, metrics_from_ranks, target_ranks

Scorer = Callable[[Samples], torch.Tensor]


def evaluate_scorer(scorer: Scorer, dataset: Dataset, *args, **options) -> dict:
    """Metrics in percent of ``scorer`` on the validation or test targets
    (:func:`evaluate_ranks`'s arguments)."""
    return metrics_from_ranks(evaluate_ranks(scorer, dataset, *args, **options))


def evaluate_ranks(
    scorer: Scorer,
    dataset: Dataset,
    split: SplitName = "test",
    max_len: int = 10,
    exclude_history: bool = False,
    batch_size: int = 1024,
    users: np.ndarray | None = None,
    progress: bool = False,
    takes_cutoff: bool = False,
) -> torch.Tensor:
    """The rank of every validation or test target under ``scorer``, (users,) int64,
    in the order of :meth:`LeaveOneOutSplit.evaluated_users`.

    ``users`` restricts the evaluation to a subset of evaluated users (by
    position in :meth:`LeaveOneOutSplit.evaluated_users`). With
    ``takes_cutoff`` the scorer is called as ``scorer(batch, cutoff=K,
    exclude=...)`` with K the largest k of the metrics, and may skip work on
    targets ranked below K (as :func:`adasplit_env.scoring.rank_scores` does):
    a rank above K is then only known to be above K, all the metrics read.
    """
    samples = dataset.split.eval_samples(split, max_len)
    seen = dataset.split.seen_items(split) if exclude_history else None
    if users is not None:
        samples = samples.subset(torch.as_tensor(users))
        if seen is not None:
            seen = [seen[i] for i in users]
    ranks = []
    batches = range(0, len(samples), batch_size)
    # closed (and cleared) as soon as the ranking ends, not left at its last refresh
    with tqdm(
        batches, desc=f"rank {split}", disable=not show_progress(progress), leave=False
    ) as bar:
        for start in bar:
            batch = samples.subset(slice(start, start + batch_size))
            exclude = None if seen is None else seen[start : start + batch_size]
            with torch.no_grad():
                if takes_cutoff:
                    scores = scorer(batch, cutoff=max(DEFAULT_KS), exclude=exclude)
                else:
                    scores = scorer(batch)
            ranks.append(target_ranks(scores, batch.targets, exclude).cpu())
    return torch.cat(ranks)


# A run dir's per-user ranks (what paired comparisons between runs read).
USER_RANKS_FILE = "user_ranks.npz"
# key suffix of a split's groups holding history items per user, in the same file
GROUPS_SUFFIX = "_groups"


def write_user_ranks(
    path,
    ranks: dict[str, torch.Tensor],
    cutoff: int = max(DEFAULT_KS),
    groups: dict[str, np.ndarray] | None = None,
) -> None:
    """Save each split's ranks, clipped to ``cutoff + 1`` ("beyond the cutoff"; all the
    metrics read, and what the evaluation computes exactly), compressed, atomically;
    with ``groups`` (AdaSplit) also each user's groups holding history items at
    prediction, as ``<split>_groups``."""
    arrays = {
        split: np.minimum(split_ranks.cpu().numpy(), cutoff + 1).astype(np.uint16)
        for split, split_ranks in ranks.items()
    }
    for split, counts in (groups or {}).items():
        if len(counts) != len(arrays[split]):
            raise ValueError(f"{split}: {len(counts)} group counts for {len(arrays[split])} users")
        arrays[split + GROUPS_SUFFIX] = np.asarray(counts).astype(np.uint16)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, cutoff=np.array(cutoff), **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def read_user_ranks(path) -> dict[str, np.ndarray]:
    """:func:`write_user_ranks`'s file: {split: ranks (users,)}, ``cutoff``, and
    ``<split>_groups`` where it was written with groups."""
    with np.load(path, allow_pickle=False) as stored:
        return {name: stored[name] for name in stored.files}


def popularity_scorer(dataset: Dataset) -> Scorer:
    """Rank items by their count in the training part (all but the last two per user)."""
    counts = torch.from_numpy(dataset.split.train_item_counts()).float()

    def score(batch: Samples) -> torch.Tensor:
        return counts.expand(len(batch), -1)

    return score


def random_scorer(dataset: Dataset, seed: int = 0) -> Scorer:
    """Independent uniform scores for every (user, item), seeded."""
    generator = torch.Generator().manual_seed(seed)
    num_columns = dataset.num_items + 1

    def score(batch: Samples) -> torch.Tensor:
        return torch.rand(len(batch), num_columns, generator=generator)

    return score
