"""Paired comparison of two models on the same evaluated users.

    python -m reproduce.paired "results/garden/plus/likelihood*" "results/garden/sasrec*"

Seeds measure how much training varies; they say nothing of how much the
test users themselves decide a difference. Both models rank the same users,
so the per-user metric (seed-averaged within each model) pairs up, and a
bootstrap over the users and each model's runs gives a confidence interval
of the difference of means.
Each run dir holds its per-user ranks (``user_ranks.npz``, written by the
trainer's final report; for AdaSplit also each user's groups at prediction);
``--backfill`` writes it for older run dirs from their ``best.pt``. A model's run
dirs must differ in their seed alone: where a glob also catches another row
(``results/lastfm/sasrec*`` matches ``sasrec-max-len-20``), the command names
the options that differ instead of pooling two models.

``--by-groups`` asks where A's gain lies: among the users whose history A's
greedy allocation splits into two or more groups, or among those it keeps in
one. It is an observational split (the users A splits differ in other ways
too); the causal test is the one-group control (``max_groups 1``).
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adasplit_env.data.datasets import load_dataset
from adasplit_env.errors import ConfigError, cli_errors
from adasplit_env.evaluation import GROUPS_SUFFIX, USER_RANKS_FILE, read_user_ranks
from agents.config import TrainConfig
from agents.trainer import Trainer
from reproduce.experiments import comparable

METRIC_NAMES = ("NDCG", "MRR", "HR")


def user_metric(ranks: np.ndarray, metric: str = "NDCG@10") -> np.ndarray:
    """Per-user ``metric`` (NDCG@k, MRR@k or HR@k) in percent from 1-based ranks."""
    name, _, k = metric.partition("@")
    if name not in METRIC_NAMES or not k.isdigit():
        raise ConfigError(f"unknown metric {metric!r}; use NDCG@k, MRR@k or HR@k")
    ranks = np.asarray(ranks, dtype=np.float64)
    hit = ranks <= int(k)
    gain = {"NDCG": 1.0 / np.log2(ranks + 1.0), "MRR": 1.0 / ranks, "HR": np.ones_like(ranks)}
    return 100.0 * np.where(hit, gain[name], 0.0)


@dataclass(frozen=True)
class PairedDifference:
    mean_a: float
    mean_b: float
    difference: float  # mean_a - mean_b
    low: float  # the bootstrap interval of the difference
    high: float
    users: int

    def cell(self) -> str:
        return f"{self.difference:+.2f} [{self.low:+.2f}, {self.high:+.2f}]"


def paired_difference(
    ranks_a: np.ndarray,
    ranks_b: np.ndarray,
    metric: str = "NDCG@10",
    resamples: int = 5000,
    confidence: float = 0.95,
    seed: int = 0,
    resample_runs: bool = True,
) -> PairedDifference:
    """Model A minus model B on ``metric``: ranks (runs, users) of each, the same users
    in the same order; each user's value is the mean over a model's runs (seeds).

    Each bootstrap draw resamples the users and, with ``resample_runs``, each
    model's runs too, so that the interval covers both what the test users
    decide and what training's randomness does (with one run a model adds
    nothing; with a few, its share is underestimated: read it beside the
    seeds' spread)."""
    ranks_a, ranks_b = np.atleast_2d(ranks_a), np.atleast_2d(ranks_b)
    if ranks_a.shape[1] != ranks_b.shape[1]:
        raise ConfigError(
            f"the runs rank different users ({ranks_a.shape[1]} vs {ranks_b.shape[1]})"
        )
    runs_a, runs_b = user_metric(ranks_a, metric), user_metric(ranks_b, metric)
    difference = runs_a.mean(axis=0) - runs_b.mean(axis=0)
    users = len(difference)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for draw in range(resamples):
        drawn = difference
        if resample_runs:
            drawn = runs_a[rng.integers(0, len(runs_a), len(runs_a))].mean(axis=0) - runs_b[
                rng.integers(0, len(runs_b), len(runs_b))
            ].mean(axis=0)
        means[draw] = drawn[rng.integers(0, users, users)].mean()
    tail = (1.0 - confidence) / 2.0
    return PairedDifference(
        mean_a=float(runs_a.mean()),
        mean_b=float(runs_b.mean()),
        difference=float(difference.mean()),
        low=float(np.quantile(means, tail)),
        high=float(np.quantile(means, 1.0 - tail)),
        users=users,
    )


@dataclass(frozen=True)
class GroupsBucket:
    """A's gain over B among the (run, user) pairs where A's run builds ``label`` groups."""

    label: str
    share: float  # of A's (run, user) pairs
    gain: PairedDifference  # its mean_a, mean_b: the two models' metric over the bucket


def difference_by_groups(
    ranks_a: np.ndarray,
    groups_a: np.ndarray,
    ranks_b: np.ndarray,
    metric: str = "NDCG@10",
    resamples: int = 5000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[GroupsBucket]:
    """A minus B split by how many groups (holding history items) each of A's runs
    builds for the user: one, or two and more. A pair is (A's run, user); its gain
    is A's metric there minus the user's metric averaged over B's runs. The
    interval resamples the users (with all their pairs in the bucket)."""
    ranks_a, groups_a = np.atleast_2d(ranks_a), np.atleast_2d(groups_a)
    ranks_b = np.atleast_2d(ranks_b)
    if ranks_a.shape != groups_a.shape or ranks_a.shape[1] != ranks_b.shape[1]:
        raise ConfigError("ranks and groups must cover the same runs and users")
    runs_a = user_metric(ranks_a, metric)
    mean_b = user_metric(ranks_b, metric).mean(axis=0)
    gain = runs_a - mean_b
    rng = np.random.default_rng(seed)
    tail = (1.0 - confidence) / 2.0
    buckets = []
    for label, in_bucket in (("1", groups_a <= 1), ("2+", groups_a >= 2)):
        pairs = in_bucket.sum(axis=0)  # per user
        members = np.flatnonzero(pairs)  # the bootstrap draws among the bucket's users
        if len(members) == 0:
            continue
        gain_sums = np.where(in_bucket, gain, 0.0).sum(axis=0)
        draws = members[rng.integers(0, len(members), (resamples, len(members)))]
        drawn = gain_sums[draws].sum(axis=1) / pairs[draws].sum(axis=1)
        buckets.append(
            GroupsBucket(
                label=label,
                share=float(in_bucket.mean()),
                gain=PairedDifference(
                    mean_a=float(runs_a[in_bucket].mean()),
                    mean_b=float((mean_b * pairs).sum() / pairs.sum()),
                    difference=float(gain_sums.sum() / pairs.sum()),
                    low=float(np.quantile(drawn, tail)),
                    high=float(np.quantile(drawn, 1.0 - tail)),
                    users=len(members),
                ),
            )
        )
    return buckets


def runs_ranks(run_dirs: list[Path], split: str = "test") -> np.ndarray | None:
    """(runs, users) ranks of ``split``, or None if a run dir has no rank file."""
    return _runs_arrays(run_dirs, split)


def runs_groups(run_dirs: list[Path], split: str = "test") -> np.ndarray | None:
    """(runs, users) groups holding history items at prediction, or None if a run
    dir's rank file has none (a baseline, or written before groups were)."""
    return _runs_arrays(run_dirs, split + GROUPS_SUFFIX)


def _runs_arrays(run_dirs: list[Path], key: str) -> np.ndarray | None:
    stacked = []
    for run_dir in run_dirs:
        path = Path(run_dir) / USER_RANKS_FILE
        if not path.is_file():
            return None
        stored = read_user_ranks(path)
        if key not in stored:
            return None
        stacked.append(stored[key])
    return np.stack(stacked) if stacked else None


def backfill(run_dir: Path, data_dir: str | None, dataset=None) -> Path:
    """Write ``user_ranks.npz`` of a finished run dir from its ``best.pt``, with the
    trainer's own evaluation (the same ranks its final report would have saved);
    ``dataset`` stands in for the one its config.json names."""
    Trainer(_rank_config(run_dir, data_dir), dataset=dataset).rank_with_best()
    return run_dir / USER_RANKS_FILE


def _rank_config(run_dir: Path, data_dir: str | None):
    config_path = run_dir / "config.json"
    if not (run_dir / "best.pt").is_file() or not config_path.is_file():
        raise ConfigError(f"{run_dir}: no best.pt and config.json to rank with")
    values = json.loads(config_path.read_text())
    values.update(run_dir=str(run_dir), progress=False)
    if data_dir is not None:
        values["data_dir"] = data_dir
    return TrainConfig.from_dict(values)


def finished_runs(patterns: str) -> list[Path]:
    """The finished run dirs (metrics.json) of comma-separated globs: one model's seeds,
    e.g. ``results/x/run,results/x/run-seed?`` where one glob would catch other rows
    (ConfigError if the runs differ in more than their seed)."""
    paths = sorted({path for pattern in patterns.split(",") for path in glob.glob(pattern)})
    finished = [p for p in map(Path, paths) if (p / "metrics.json").is_file()]
    if not finished:
        raise ConfigError(f"no finished run dir (metrics.json) matches {patterns}")
    differences = option_differences(finished)
    if differences:
        raise ConfigError(
            f"the runs of {patterns} differ in more than their seed ("
            + "; ".join(
                f"{key}: " + ", ".join(f"{value} in {runs}" for value, runs in values.items())
                for key, values in differences.items()
            )
            + "): one model's seeds are compared, so narrow the globs, e.g. "
            "'results/x/run,results/x/run-seed?'"
        )
    return finished


def option_differences(run_dirs: list[Path]) -> dict[str, dict[str, str]]:
    """The options (besides the seed, and those that cannot change a result) in which
    ``run_dirs``' config.json files differ: option -> {value: the runs with it}."""
    options = {}
    for run_dir in run_dirs:
        path = run_dir / "config.json"
        if not path.is_file():
            continue
        values = json.loads(path.read_text())
        try:
            values = comparable(values)
        except ConfigError:  # not a TrainConfig (the popularity floor): compare as saved
            pass
        options[run_dir] = {k: v for k, v in values.items() if k not in ("seed", "run_dir")}
    differences = {}
    for key in sorted({key for values in options.values() for key in values}):
        runs_by_value: dict[str, list[str]] = {}
        for run_dir, values in options.items():
            runs_by_value.setdefault(json.dumps(values.get(key)), []).append(run_dir.name)
        if len(runs_by_value) > 1:
            differences[key] = {
                value: runs[0] if len(runs) == 1 else f"{len(runs)} runs"
                for value, runs in runs_by_value.items()
            }
    return differences


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reproduce.paired",
        description="Model A minus model B on the same evaluated users: seed-averaged "
        "per-user metric, bootstrap confidence interval over the users and the seeds.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "a", help="model A's run dirs (its seeds): a glob, or comma-separated globs, quoted"
    )
    parser.add_argument("b", help="model B's run dirs, the same way")
    parser.add_argument("--split", choices=("val", "test"), default="test")
    parser.add_argument("--metric", default="NDCG@10", help="NDCG@k, MRR@k or HR@k, k <= 10")
    parser.add_argument("--resamples", type=int, default=5000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    parser.add_argument(
        "--users-only",
        action="store_true",
        help="resample the users only, not each model's runs (seeds)",
    )
    parser.add_argument(
        "--backfill",
        action="store_true",
        help=f"first write {USER_RANKS_FILE} from best.pt where a run dir lacks it",
    )
    parser.add_argument("--data-dir", help="folder of <name>/interactions.tsv.gz, for --backfill")
    parser.add_argument(
        "--by-groups",
        action="store_true",
        help="also split A's gain by the groups A builds per user (1 or 2+; A: AdaSplit)",
    )
    return parser


@cli_errors
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    groups = [finished_runs(args.a), finished_runs(args.b)]
    datasets = {}  # loaded once for all the run dirs that --backfill ranks on it
    for index, run_dirs in enumerate(groups):
        for run_dir in run_dirs:
            missing = not (run_dir / USER_RANKS_FILE).is_file()
            if not missing and index == 0 and args.by_groups:
                missing = runs_groups([run_dir], args.split) is None
            if missing:
                if not args.backfill:
                    raise ConfigError(
                        f"{run_dir} has no {USER_RANKS_FILE}"
                        + (" with groups" if index == 0 and args.by_groups else "")
                        + " (run dirs made before it existed): rerun with --backfill to "
                        "rank its best.pt"
                    )
                config = _rank_config(run_dir, args.data_dir)
                key = (config.dataset, config.data_dir, config.k_core, config.format)
                if key not in datasets:
                    datasets[key] = load_dataset(
                        config.dataset, config.data_dir, k_core=config.k_core, format=config.format
                    )
                print(f"wrote {backfill(run_dir, args.data_dir, datasets[key])}")
    ranks_a, ranks_b = (runs_ranks(run_dirs, args.split) for run_dirs in groups)
    result = paired_difference(
        ranks_a,
        ranks_b,
        args.metric,
        resamples=args.resamples,
        seed=args.seed,
        resample_runs=not args.users_only,
    )
    print(f"{args.split} {args.metric} over {result.users:,} users")
    print(f"A ({len(groups[0])} runs): {result.mean_a:.2f}   {args.a}")
    print(f"B ({len(groups[1])} runs): {result.mean_b:.2f}   {args.b}")
    over = "users" if args.users_only else "users and runs"
    print(f"A - B: {result.cell()} (95% bootstrap interval over {over})")
    if args.by_groups:
        groups_a = runs_groups(groups[0], args.split)
        if groups_a is None:
            raise ConfigError(f"{args.a}: not AdaSplit runs (no groups per user to split by)")
        print(
            "A - B by the groups A builds for the user (pairs of A's run and user; 95% over users):"
        )
        for bucket in difference_by_groups(
            ranks_a, groups_a, ranks_b, args.metric, resamples=args.resamples, seed=args.seed
        ):
            print(
                f"  {bucket.label:>2s} group(s): {bucket.share:6.1%} of pairs, "
                f"{bucket.gain.users:,} users  A {bucket.gain.mean_a:.2f}  B {bucket.gain.mean_b:.2f}  "
                f"A - B {bucket.gain.cell()}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
