"""Evaluate a recommender with leave-one-out full ranking.

    python eval_rec.py --baseline pop --dataset garden --data-dir ../shared/data
    python eval_rec.py --baseline random --dataset beauty --split val --json out.json

Prints NDCG@5, MRR@5, NDCG@10, MRR@10 and HR@10 in percent and optionally
writes them as JSON: ``{"test": {...}}`` (``"val"`` for the validation split).
"""

from __future__ import annotations

import argparse
import sys

from adasplit_env.data import NAMED_DATASETS, SYNTHETIC, load_dataset
from adasplit_env.errors import cli_errors
from adasplit_env.evaluation import evaluate_scorer, popularity_scorer, random_scorer
from adasplit_env.io import atomic_write_json
from adasplit_env.metrics import METRIC_KEYS, format_metrics_table

BASELINES = ("pop", "random")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eval_rec.py",
        description="Leave-one-out, full-ranking evaluation (NDCG/MRR/HR in percent).",
    )
    parser.add_argument(
        "--baseline",
        choices=BASELINES,
        required=True,
        help="pop: items ranked by training-part popularity; random: seeded random scores",
    )
    parser.add_argument(
        "--dataset",
        default=SYNTHETIC,
        help=f"{SYNTHETIC} (default), one of {', '.join(NAMED_DATASETS)}, or a file path",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder holding <name>/interactions.tsv.gz (default: $ADASPLIT_DATA, else ./data)",
    )
    parser.add_argument("--split", choices=("val", "test"), default="test", help="default: test")
    parser.add_argument("--json", metavar="OUT", default=None, help="write the metrics here")
    parser.add_argument(
        "--exclude-history",
        action="store_true",
        help="leave each user's history items out of their ranking (off by default)",
    )
    parser.add_argument("--k-core", type=int, default=5, help="k-core filter (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random baseline")
    return parser


@cli_errors
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    dataset = load_dataset(args.dataset, args.data_dir, k_core=args.k_core)
    if args.baseline == "pop":
        scorer = popularity_scorer(dataset)
    else:
        scorer = random_scorer(dataset, seed=args.seed)
    metrics = evaluate_scorer(
        scorer, dataset, split=args.split, exclude_history=args.exclude_history, progress=True
    )
    result = {args.split: {key: metrics[key] for key in METRIC_KEYS}}
    print(
        f"{args.baseline} on {dataset.name} ({len(dataset.split.evaluated_users()):,} users, "
        f"{dataset.num_items:,} items, full ranking)"
    )
    print(format_metrics_table(result))
    if args.json:
        atomic_write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
