"""Environment steps per second and full-ranking scorer users per second.

    python benchmarks/env_throughput.py --data-dir ../shared/data

Prints steps/s of the single Gymnasium env and of the native vector env at
B = 1, 64 and 1024 (random masked actions, untrained model, d = 64), on
``synthetic`` and ``garden``, and the full-ranking scorer's users/s on
``beauty`` for each scoring path: section 3.3's (the Eq. 7 policy routes
every candidate; in full, and as evaluation ranks it, routing only the
candidates that can reach a top-10 target), the affinity join's routing, max
scoring, and AdaSplit+'s (affinity, max, SASRec readout). Run it alone: two heavy jobs on two cores
slow each other.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from adasplit_env.data import load_dataset
from adasplit_env.envs import AllocationEnv, AllocationVectorEnv
from adasplit_env.envs.core import build_env_parts
from adasplit_env.scoring import rank_scores, score_all_items


def single_env_steps_per_second(dataset, seconds: float) -> float:
    env = AllocationEnv(dataset)
    rng = np.random.default_rng(0)
    _, info = env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        action = rng.choice(np.flatnonzero(info["action_mask"]))
        _, _, terminated, _, info = env.step(action)
        steps += 1
        if terminated:
            _, info = env.reset()
    return steps / (time.perf_counter() - start)


def vector_env_steps_per_second(dataset, num_envs: int, seconds: float) -> float:
    env = AllocationVectorEnv(num_envs, dataset)
    rng = np.random.default_rng(0)
    _, info = env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        mask = info["action_mask"].astype(bool)
        noise = rng.random(mask.shape)
        actions = np.where(mask, noise, -1.0).argmax(axis=1)
        _, _, _, _, info = env.step(actions)
        steps += num_envs
    return steps / (time.perf_counter() - start)


# label -> model options of each scoring path timed on Beauty
SCORERS = {
    "paper (Eq. 7 routing)": {},
    "affinity routing": {"join_logit": "affinity", "group_start": "zero"},
    "max scoring": {"scoring": "max"},
    "AdaSplit+ (affinity, max, SASRec readout)": {
        "join_logit": "affinity",
        "group_start": "zero",
        "scoring": "max",
        "readout": "sasrec",
        "encoder_block": "standard",
    },
}


def evaluation_ranking(process, batch):
    """What evaluation runs: rank_scores with the metrics' cutoff of 10."""
    return rank_scores(process, batch, cutoff=10)


def scorer_users_per_second(
    dataset, users: int, batch_size: int = 256, scorer=score_all_items, **options
) -> tuple[float, float]:
    torch.manual_seed(0)
    parts = build_env_parts(dataset, **options)
    process = parts.process
    process.model.eval()
    samples = dataset.split.eval_samples("test", 10).subset(slice(0, users))
    start = time.perf_counter()
    for begin in range(0, len(samples), batch_size):
        scorer(process, samples.subset(slice(begin, begin + batch_size)))
    elapsed = time.perf_counter() - start
    with torch.no_grad():
        groups = process.allocate_history_greedily(samples).num_groups.float().mean().item()
    return len(samples) / elapsed, groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seconds", type=float, default=5.0, help="time per measurement")
    parser.add_argument("--scorer-users", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"machine: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}, "
        f"torch {torch.__version__}"
    )
    for name in ("synthetic", "garden"):
        dataset = load_dataset(name, args.data_dir)
        print(
            f"{name}: single env {single_env_steps_per_second(dataset, args.seconds):,.0f} steps/s"
        )
        for num_envs in (1, 64, 1024):
            rate = vector_env_steps_per_second(dataset, num_envs, args.seconds)
            print(f"{name}: vector env B={num_envs:<5} {rate:,.0f} steps/s")
    beauty = load_dataset("beauty", args.data_dir)
    test_users = len(beauty.split.evaluated_users())
    for label, options in SCORERS.items():
        rate, groups = scorer_users_per_second(beauty, args.scorer_users, **options)
        print(
            f"beauty: scorer {label}: {rate:,.1f} users/s over {beauty.num_items:,} items "
            f"(untrained model, {groups:.1f} groups per user on average); "
            f"full test split ({test_users:,} users) ~ {test_users / rate:,.0f} s"
        )
        if not options:  # the paper's path, as evaluation ranks it
            rate, groups = scorer_users_per_second(
                beauty, args.scorer_users, scorer=evaluation_ranking
            )
            print(
                f"beauty: scorer {label}, rank_scores to 10: {rate:,.1f} users/s "
                f"({groups:.1f} groups per user); full test split ~ {test_users / rate:,.0f} s"
            )


if __name__ == "__main__":
    main()
