"""Full-ranking metrics: NDCG@k, MRR@k and HR@k in percent (docs/design.md, section 5).

Every item except padding (id 0) is ranked. The rank of the target is one
plus the number of *other* ranked items scoring at least as high, so a tie
always counts against the target and no metric can profit from ties (a model
that scores everything equal ranks the target last). NaN scores count as the
lowest possible score. Optionally the items of a user's history are left
out of their ranking (``exclude``); the target itself is never left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch

from adasplit_env.data.interactions import PAD

DEFAULT_KS = (5, 10)
METRIC_KEYS = ("NDCG@5", "MRR@5", "NDCG@10", "MRR@10", "HR@5", "HR@10")


def exclusion_mask(
    shape: tuple[int, int], exclude: Sequence[np.ndarray], device: torch.device
) -> torch.Tensor:
    """(users, items) bool, True at each row's items in ``exclude``."""
    rows = np.concatenate(
        [np.full(len(items), r, dtype=np.int64) for r, items in enumerate(exclude)]
    )
    cols = np.concatenate([np.asarray(items, dtype=np.int64) for items in exclude])
    mask = torch.zeros(shape, dtype=torch.bool, device=device)
    if len(rows):
        mask[torch.from_numpy(rows).to(device), torch.from_numpy(cols).to(device)] = True
    return mask


def target_ranks(
    scores: torch.Tensor,
    targets: torch.Tensor,
    exclude: Sequence[np.ndarray] | None = None,
) -> torch.Tensor:
    """1-based rank of each row's target among all non-padding items.

    ``scores`` is (users, num_items + 1) with column 0 the padding id;
    ``targets`` is (users,). Returns (users,) int64 ranks.
    """
    if scores.dim() != 2 or targets.dim() != 1 or scores.shape[0] != targets.shape[0]:
        raise ValueError("scores must be (users, items) and targets (users,)")
    scores = torch.nan_to_num(scores.float(), nan=-torch.inf)
    targets = targets.to(scores.device).long()
    target_scores = scores.gather(1, targets[:, None])
    competes = scores >= target_scores
    competes[:, PAD] = False
    competes.scatter_(1, targets[:, None], False)
    if exclude is not None:
        excluded = exclusion_mask(tuple(scores.shape), exclude, scores.device)
        excluded.scatter_(1, targets[:, None], False)
        competes &= ~excluded
    return 1 + competes.sum(dim=1)


def metrics_from_ranks(ranks: torch.Tensor | np.ndarray, ks: Iterable[int] = DEFAULT_KS) -> dict:
    """NDCG@k, MRR@k and HR@k, in percent, averaged over users."""
    ranks = torch.as_tensor(ranks, dtype=torch.float64)
    if ranks.numel() == 0:
        raise ValueError("no ranks to average")
    out = {}
    for k in ks:
        hit = ranks <= k
        out[f"NDCG@{k}"] = (
            100.0 * torch.where(hit, 1.0 / torch.log2(ranks + 1.0), 0.0).mean().item()
        )
        out[f"MRR@{k}"] = 100.0 * torch.where(hit, 1.0 / ranks, 0.0).mean().item()
        out[f"HR@{k}"] = 100.0 * hit.double().mean().item()
    return out


def split_metrics(ranks: Mapping[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """The reported metrics (:data:`METRIC_KEYS`) of each split's ranks, as ``metrics.json``
    holds them: ``{"val": {...}, "test": {...}}``."""
    return {
        split: {
            key: value
            for key, value in metrics_from_ranks(split_ranks).items()
            if key in METRIC_KEYS
        }
        for split, split_ranks in ranks.items()
    }


def full_ranking_metrics(
    scores: torch.Tensor,
    targets: torch.Tensor,
    ks: Iterable[int] = DEFAULT_KS,
    exclude: Sequence[np.ndarray] | None = None,
    chunk_size: int = 2048,
) -> dict:
    """Metrics of a whole (users x items) score matrix, ranked in chunks of users."""
    ranks = []
    for start in range(0, scores.shape[0], chunk_size):
        stop = start + chunk_size
        ranks.append(
            target_ranks(
                scores[start:stop],
                targets[start:stop],
                None if exclude is None else exclude[start:stop],
            )
        )
    return metrics_from_ranks(torch.cat(ranks), ks)


def format_metrics_table(results: dict[str, dict], keys: Sequence[str] = METRIC_KEYS) -> str:
    """Render ``{"val": {...}, "test": {...}}`` as an aligned text table."""
    header = f"{'split':<6}" + "".join(f"{k:>9}" for k in keys)
    rows = [header]
    for split, values in results.items():
        rows.append(f"{split:<6}" + "".join(f"{values[k]:>9.2f}" for k in keys))
    return "\n".join(rows)
