"""Evaluate a recommender with leave-one-out full ranking.

    python eval_rec.py --checkpoint runs/<run>/best.pt [--split val|test] [--json OUT]
    python eval_rec.py --checkpoint runs/<run>/best.pt --case-study 3
    python eval_rec.py --baseline pop --dataset garden --data-dir ../shared/data
    python eval_rec.py --baseline random --dataset beauty --split val --json out.json

Prints NDCG@5, MRR@5, NDCG@10, MRR@10, HR@5 and HR@10 in percent and optionally
writes them as JSON: ``{"test": {...}}`` (``"val"`` for the validation split).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict

import numpy as np
import torch

from adasplit_env.analysis.coherence import group_coherence
from adasplit_env.checkpoint import load_checkpoint
from adasplit_env.data import NAMED_DATASETS, SYNTHETIC, load_dataset
from adasplit_env.data.readers import FORMATS
from adasplit_env.envs.allocation_env import render_allocation
from adasplit_env.errors import ConfigError, cli_errors
from adasplit_env.evaluation import evaluate_scorer, popularity_scorer, random_scorer
from adasplit_env.io import atomic_write_json
from adasplit_env.metrics import METRIC_KEYS, format_metrics_table
from adasplit_env.scoring import allocate_for_prediction

BASELINES = ("pop", "random")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eval_rec.py",
        description="Leave-one-out, full-ranking evaluation (NDCG/MRR/HR in percent).",
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="a checkpoint written by train_agent.py (best.pt, or a run dir); "
        "the model is rebuilt from it alone",
    )
    what.add_argument(
        "--baseline",
        choices=BASELINES,
        help="pop: items ranked by training-part popularity; random: seeded random scores",
    )
    parser.add_argument(
        "--dataset",
        default=None,
        help=f"{SYNTHETIC} (default for baselines), one of {', '.join(NAMED_DATASETS)}, or a file "
        "path; with --checkpoint, the dataset it was trained on unless given",
    )
    parser.add_argument(
        "--case-study",
        type=int,
        default=0,
        metavar="N",
        help="print N users' histories with the groups the policy gives them (Figure 3)",
    )
    parser.add_argument(
        "--coherence",
        action="store_true",
        help="with an AdaSplit checkpoint: do items the greedy policy groups together "
        "co-occur more in other users' histories than items it keeps apart (PPMI), against "
        "the same group sizes shuffled and as consecutive runs (adasplit_env/analysis/coherence.py)",
    )
    parser.add_argument(
        "--device", default="cpu", help="torch device for --checkpoint (cpu or cuda)"
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
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="format of a --dataset file (default: detected from its name)",
    )
    parser.add_argument("--k-core", type=int, default=5, help="k-core filter (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random baseline")
    return parser


def case_study(process, dataset, split: str, count: int, seed: int) -> str:
    """Figure 3 as text: ``count`` seeded users, their groups and the target's group."""
    samples = dataset.split.eval_samples(split, process.model.config.max_len)
    rows = np.sort(
        np.random.default_rng(seed).choice(len(samples), min(count, len(samples)), replace=False)
    )
    state = allocate_for_prediction(process, samples.subset(torch.from_numpy(rows)))
    return "\n".join(
        render_allocation(dataset, state, row, f"{split} target") for row in range(len(rows))
    )


@cli_errors
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    max_len = 10
    coherence = None
    takes_cutoff = False  # a checkpoint's scorer may skip targets ranked below 10
    if args.checkpoint:
        dataset = None
        if args.dataset is not None:
            dataset = load_dataset(
                args.dataset, args.data_dir, k_core=args.k_core, format=args.format
            )
        loaded = load_checkpoint(args.checkpoint, args.data_dir, dataset, device=args.device)
        dataset, recommender = loaded.dataset, loaded.recommender
        recommender.model.eval()
        max_len = recommender.max_len
        name = f"{recommender.name} ({args.checkpoint})"
        scorer, takes_cutoff = recommender.rank_scores, True
        for flag, asked in (("--case-study", args.case_study > 0), ("--coherence", args.coherence)):
            if asked and not recommender.allocates:
                raise ConfigError(f"{flag} needs an AdaSplit checkpoint, not {recommender.name}")
        if args.case_study > 0:
            print(case_study(recommender.process, dataset, args.split, args.case_study, args.seed))
        if args.coherence:
            coherence = group_coherence(recommender.process, dataset, args.split, args.seed)
            print(coherence.summary())
    else:
        dataset = load_dataset(
            args.dataset or SYNTHETIC, args.data_dir, k_core=args.k_core, format=args.format
        )
        name = args.baseline
        if args.baseline == "pop":
            scorer = popularity_scorer(dataset)
        else:
            scorer = random_scorer(dataset, seed=args.seed)
    metrics = evaluate_scorer(
        scorer,
        dataset,
        split=args.split,
        max_len=max_len,
        exclude_history=args.exclude_history,
        batch_size=256,
        progress=True,
        takes_cutoff=takes_cutoff,
    )
    result = {args.split: {key: metrics[key] for key in METRIC_KEYS}}
    print(
        f"{name} on {dataset.name} ({len(dataset.split.evaluated_users()):,} users, "
        f"{dataset.num_items:,} items, full ranking)"
    )
    print(format_metrics_table(result))
    if args.json:
        if coherence is not None:
            result["coherence"] = {"split": args.split, **asdict(coherence)}
        atomic_write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
