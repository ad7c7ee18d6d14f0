"""Training and evaluation speed of AdaSplit (each learner) against our SASRec.

    python benchmarks/train_throughput.py --data-dir ../shared/data            # Beauty, CPU
    python benchmarks/train_throughput.py --data-dir ../shared/data --device cuda
    python benchmarks/train_throughput.py --data-dir ../shared/data --config configs/beauty-plus.yaml

Each model trains ``--updates`` mini-batches of ``--batch-size`` samples (the
same batches, one model after the other in this process, so the ratio holds
on a noisy machine), then ranks ``--eval-users`` test users against every
item. Printed per model: training samples/s, the implied seconds per epoch,
evaluation users/s and the implied seconds for the whole test split, the
time per update and the aten operator calls one update dispatches (torch
profiler; a load-independent measure of per-operation overhead); then
the ratio AdaSplit / SASRec and the process's peak memory. Run it alone.
With ``--config`` the AdaSplit rows use that file's model and learner options
(an AdaSplit+ preset, say) instead of the paper's defaults.
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import tempfile
import time

import numpy as np
import torch
import yaml

from adasplit_env.data import load_dataset
from agents.config import TrainConfig, read_config_file
from agents.trainer import Trainer


def peak_memory_gib() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 2**20


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_training(trainer: Trainer, batches: list) -> float:
    """Seconds for the given batches of updates (after one warm-up update; with
    ``--compile``, after a warm-up pass over all of them, which compiles every
    graph they need and is reported on its own)."""
    agent = trainer.agent
    trainer.model.train()
    if hasattr(agent, "algorithm") and agent.algorithm is not None:  # SB3: environment steps
        steps = int(sum(int((b.lengths + 1).sum()) for b in batches))
        agent._bar = _Silent()
        start = time.perf_counter()
        agent.algorithm.learn(total_timesteps=steps, reset_num_timesteps=False, progress_bar=False)
        agent.learn_from_finished_episodes()
        synchronise(trainer.device)
        return time.perf_counter() - start
    start = time.perf_counter()
    for batch in batches if trainer.config.compile else batches[:1]:
        loss, stats = agent.loss(batch, generator=trainer.sampling)
        trainer.optimize(loss, stats)
    synchronise(trainer.device)
    if trainer.config.compile:
        print(f"compiled: warm-up pass over the batches {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    for batch in batches:
        loss, stats = agent.loss(batch, generator=trainer.sampling)
        trainer.optimize(loss, stats)
    synchronise(trainer.device)
    return time.perf_counter() - start


def operations_per_update(trainer: Trainer, batch) -> int | None:
    """aten operator calls (nested ones included) dispatched by one update: loss,
    backward and the optimiser step, counted by the torch profiler. Independent of
    the machine's load, so it shows what a change removed even on a busy machine.
    None for learners that run their own rollouts (SB3)."""
    agent = trainer.agent
    if hasattr(agent, "algorithm") and agent.algorithm is not None:
        return None
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        loss, stats = agent.loss(batch, generator=trainer.sampling)
        trainer.optimize(loss, stats)
    return sum(event.count for event in prof.key_averages() if event.key.startswith("aten::"))


def time_evaluation(trainer: Trainer, users: int) -> float:
    start = time.perf_counter()
    trainer.evaluate("test", np.arange(users))
    synchronise(trainer.device)
    return time.perf_counter() - start


class _Silent:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="beauty")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--algos", default="reinforce,a2c,ppo", help="AdaSplit learners to time")
    parser.add_argument("--updates", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--eval-users", type=int, default=2048)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument(
        "--config",
        default=None,
        help="a train_agent.py config file whose model and learner options the AdaSplit rows use "
        "(its dataset, budget and batch size are ignored)",
    )
    parser.add_argument(
        "--fused-adam",
        action="store_true",
        help="every model (SASRec too) with the fused Adam step (train_agent.py --fused-adam)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="the AdaSplit rows with train_agent.py --compile (timed after a compiling pass)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help="an extra AdaSplit row with these options on top of --config's, e.g. "
        "parallel-gated:train_path=parallel,group_updater=gated (repeatable; the row is "
        "timed with the first of --algos)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = load_dataset(args.dataset, args.data_dir)
    device = torch.device(args.device)
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else (platform.processor() or platform.machine())
    )
    print(
        f"{args.dataset}: {dataset.num_users:,} users, {dataset.num_items:,} items; device {name}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch {args.batch_size}, d 64, max-len 10"
    )
    preset = {}
    if args.config:
        preset = read_config_file(args.config)
        for key in ("dataset", "data_dir", "epochs", "patience", "batch_size", "run_dir", "seed"):
            preset.pop(key, None)
        print(f"AdaSplit options from {args.config}: {preset}")
    rows = {}
    algos = [a for a in args.algos.split(",") if a]
    models = [("sasrec", "sasrec", "supervised", {})] + [
        (f"adasplit-{a}", "adasplit", a, {}) for a in algos
    ]
    for variant in args.variant:
        name, _, assignments = variant.partition(":")
        extra = {}
        for pair in filter(None, assignments.split(",")):
            key, _, value = pair.partition("=")
            extra[key.strip().replace("-", "_")] = yaml.safe_load(value)
        models.append(
            (name, "adasplit", extra.pop("algo", algos[0] if algos else "reinforce"), extra)
        )
    for key, model, algo, extra in models:
        with tempfile.TemporaryDirectory() as run_dir:
            options = {**preset, **extra} if model == "adasplit" else {}
            config = TrainConfig.from_dict(
                {
                    **options,
                    "model": model,
                    "algo": algo if model == "adasplit" else "reinforce",
                    "dataset": args.dataset,
                    "data_dir": args.data_dir,
                    "batch_size": extra.get("batch_size", args.batch_size),
                    "device": args.device,
                    "progress": False,
                    "fused_adam": args.fused_adam,
                    "compile": args.compile and model == "adasplit",
                    "run_dir": run_dir,
                    "num_layers": 2 if model == "sasrec" else options.get("num_layers"),
                    "num_heads": 2 if model == "sasrec" else options.get("num_heads"),
                }
            )
            trainer = Trainer(config, dataset=dataset)
            batches = trainer.epoch_batches(1)[: args.updates]
            samples = sum(len(b) for b in batches)
            seconds = time_training(trainer, batches)
            rate = samples / seconds
            operations = operations_per_update(trainer, batches[0])
            eval_seconds = time_evaluation(
                trainer, min(args.eval_users, len(dataset.split.evaluated_users()))
            )
            users_rate = min(args.eval_users, len(dataset.split.evaluated_users())) / eval_seconds
            rows[key] = (
                rate,
                len(trainer.train_samples) / rate,
                users_rate,
                len(dataset.split.evaluated_users()) / users_rate,
            )
            print(
                f"{key:<22} train {rate:>8,.0f} samples/s ({rows[key][1]:>7.1f} s/epoch)   "
                f"eval {users_rate:>8,.1f} users/s ({rows[key][3]:>6.1f} s for the test split)   "
                f"{seconds / len(batches) * 1000:>7.1f} ms/update, "
                + (f"{operations:,} aten ops/update" if operations else "ops: own rollouts"),
                flush=True,
            )
    sas = rows["sasrec"]
    for key, (_, epoch_s, _, eval_s) in rows.items():
        if key == "sasrec":
            continue
        print(
            f"summary {key}: {epoch_s:.1f} s/epoch vs SASRec {sas[1]:.1f} s/epoch "
            f"(ratio {epoch_s / sas[1]:.2f}x); test-split evaluation {eval_s:.1f} s vs {sas[3]:.1f} s "
            f"(ratio {eval_s / sas[3]:.2f}x)"
        )
    print(f"peak memory of this process: {peak_memory_gib():.2f} GiB")
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
