"""The trainer's own loop (callbacks and TensorBoard included) with two --log-every
values, alternated in one process (A/B).

    python benchmarks/trainer_loop.py --data-dir ../shared/data -- --config configs/lastfm-plus.yaml --max-len 50

``train_paths.py`` and ``train_throughput.py`` time the loss and backward alone;
what the trainer adds around them (the optimiser step, the statistics' host syncs,
TensorBoard's events) is timed here. One Trainer is built from the train_agent.py
arguments after ``--``; the same ``--batches`` batches are trained as one short
epoch, ``--rounds`` times per value, the two values alternated (their order flipped
each round), so both see the same model's drift and machine load. Printed: the
median ms per update of each value, and the median and sign count of the per-round
differences. The weights train on; ``--log-every`` changes no number they reach
(``tests/test_parallel.py``). Run it alone, one thread.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

from agents.trainer import Trainer
from train_agent import parse_config


def time_blocks(args, run_dir: str) -> dict[int, list[float]]:
    """ms per update of each timed block, by --log-every value."""
    extra = ["--threads", str(args.threads), "--run-dir", run_dir, "--progress", "false"]
    if args.data_dir:
        extra += ["--data-dir", args.data_dir]
    config, _ = parse_config([*args.train_args, *extra])
    trainer = Trainer(config, run_dir=run_dir)
    for callback in trainer.callbacks:
        callback.on_fit_start(trainer, False)
    batches = trainer.epoch_batches(1)[: args.batches]
    trainer.epoch_batches = lambda epoch: batches  # every block trains the same batches
    trainer.train_epoch()  # warm-up
    first, second = args.log_every
    times: dict[int, list[float]] = {first: [], second: []}
    for round_index in range(args.rounds):
        for every in (first, second) if round_index % 2 == 0 else (second, first):
            trainer.config.log_every = every
            start = time.perf_counter()
            trainer.train_epoch()
            times[every].append(1000 * (time.perf_counter() - start) / len(batches))
    for callback in trainer.callbacks:
        callback.on_fit_end(trainer, None)  # closes the event files
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--log-every", type=int, nargs=2, default=(1, 10), metavar=("A", "B"))
    parser.add_argument("--batches", type=int, default=10, help="updates per timed block")
    parser.add_argument("--rounds", type=int, default=10, help="blocks per value")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("train_args", nargs="*", help="train_agent.py arguments (after --)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trainer_loop-") as run_dir:
        times = time_blocks(args, run_dir)
    first, second = args.log_every
    differences = [a - b for a, b in zip(times[first], times[second])]
    print(" ".join(args.train_args) or "defaults")
    for every in (first, second):
        print(
            f"  --log-every {every:<3d} {statistics.median(times[every]):7.1f} ms/update (median)"
        )
    print(
        f"  per round, {first} minus {second}: median {statistics.median(differences):+.2f} ms, "
        f"{sum(d > 0 for d in differences)}/{len(differences)} rounds slower with {first}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
