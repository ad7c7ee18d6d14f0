"""The best any model can do on the planted data, and how much of it needs a state per interest.

    python -m reproduce.ceiling synthetic synthetic:noise=0.5 synthetic:noise=1.0

On a ``synthetic`` dataset the generator's own distribution of each user's
next item is known (:func:`next_item_probabilities`): ranking every item by it
is the Bayes predictor, and its test NDCG@10 / MRR@10 is the ceiling of every
model that sees the same history (the last ``max_len`` items). Two such
predictors are measured:

- ``interests``: it knows the user's planted interests and each interest's
  cycle position (one past its last item in the history), which is what a
  group per interest can hold;
- ``latest``: it knows the same interests but the position of the current
  one only (the interest of the history's last item), which is what one
  sequence state without a state per interest can use at best.

Their difference is the room a model has for gaining by its groups. Where it
is near zero, no allocation can pay, however well it finds the interests.
Each user counts the held-out item's metric with ties broken at random (the
mean over its tie block), split by the held-out item's kind as in
``python -m reproduce.target_interests`` (planted interests).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np

from adasplit_env.data.datasets import load_dataset, synthetic_spec
from adasplit_env.data.synthetic import (
    MEMORIES,
    generate_synthetic,
    next_item_probabilities,
    planted_item,
)
from adasplit_env.errors import ConfigError, cli_errors
from reproduce.paired import user_metric
from reproduce.target_interests import TARGET_KINDS, target_kinds


def expected_metric(scores: np.ndarray, target: int, metric: str) -> float:
    """``metric`` of ``target`` when items are ranked by ``scores`` (num_items + 1,
    [0] unused) and ties are broken at random: the mean over its tie block."""
    items = scores[1:]
    score = scores[target]
    tolerance = 1e-12
    better = int((items > score + tolerance).sum())
    tied = int((np.abs(items - score) <= tolerance).sum())  # the target among them
    return float(user_metric(np.arange(better + 1, better + tied + 1), metric).mean())


@dataclass(frozen=True)
class Ceiling:
    kinds: np.ndarray  # (users,) each held-out item's kind, an index into TARGET_KINDS
    per_user: dict[tuple[str, str], np.ndarray]  # (memory, metric) -> (users,)

    def mean(self, memory: str, metric: str, kind: str | None = None) -> float:
        values = self.per_user[(memory, metric)]
        if kind is not None:
            values = values[self.kinds == TARGET_KINDS.index(kind)]
        return float(values.mean()) if len(values) else float("nan")


def synthetic_ceiling(
    spec: str,
    split: str = "test",
    max_len: int = 10,
    metrics: tuple[str, ...] = ("NDCG@10", "MRR@10"),
) -> Ceiling:
    """The Bayes predictors' per-user metrics on ``split`` of the synthetic dataset
    ``spec`` (``synthetic`` or ``synthetic:field=value,...``)."""
    config = synthetic_spec(spec)
    if config is None:
        raise ConfigError(f"{spec}: the ceiling needs the generator; use synthetic[:...]")
    dataset = load_dataset(spec)
    interests = generate_synthetic(config).user_interests
    sequences = dataset.sequences
    planted = [planted_item(raw) for raw in sequences.item_raw_ids[1:]]
    # each dense item's index in next_item_probabilities' order
    index = np.array([0] + [g * config.items_per_group + k for g, k in planted])
    samples = dataset.split.eval_samples(split, max_len)
    histories, targets = samples.histories.numpy(), samples.targets.numpy()
    per_user = {(m, metric): np.empty(len(targets)) for m in MEMORIES for metric in metrics}
    for row, (user, history, target) in enumerate(zip(samples.users.tolist(), histories, targets)):
        window = [planted[item - 1] for item in history if item != 0]
        user_interests = interests[sequences.user_raw_ids[user]]
        for memory in MEMORIES:
            scores = next_item_probabilities(config, user_interests, window, memory)[index]
            for metric in metrics:
                per_user[(memory, metric)][row] = expected_metric(scores, int(target), metric)
    return Ceiling(target_kinds(dataset.item_groups, histories, targets), per_user)


@cli_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reproduce.ceiling",
        description=__doc__.split("\n\n")[0],
        epilog="interests: the Bayes predictor that knows each interest's position (what "
        "groups can hold); latest: the current interest's only. Their gap is what groups "
        "can add.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("datasets", nargs="+", help="synthetic or synthetic:field=value,... specs")
    parser.add_argument("--split", choices=("val", "test"), default="test")
    parser.add_argument("--max-len", type=int, default=10, help="history length l the models see")
    args = parser.parse_args(argv)
    for name in args.datasets:  # bad specs fail before any output
        if synthetic_spec(name) is None:
            raise ConfigError(f"{name}: the ceiling needs the generator; use synthetic[:...]")
    print(
        f"{args.split} targets, history cut to the last {args.max_len} items; the Bayes "
        "predictor with each interest's position (interests) or the current one's (latest)"
    )
    print(
        "| dataset | users | NDCG@10 interests | NDCG@10 latest | gap | MRR@10 interests | "
        "MRR@10 latest | gap | `earlier` users: NDCG@10 interests | latest | gap |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.datasets:
        ceiling = synthetic_ceiling(name, args.split, args.max_len)
        cells = []
        for metric, kind in (("NDCG@10", None), ("MRR@10", None), ("NDCG@10", "earlier")):
            full, latest = (ceiling.mean(m, metric, kind) for m in MEMORIES)
            cells += [f"{full:.2f}", f"{latest:.2f}", f"{full - latest:+.2f}"]
        print(f"| {name} | {len(ceiling.kinds):,} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
