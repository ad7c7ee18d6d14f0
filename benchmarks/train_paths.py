"""The sequential and the parallel training path on the same model and batches (A/B).

    python benchmarks/train_paths.py --data-dir ../shared/data --config configs/beauty-plus.yaml

``train_throughput.py`` trains each row from its own start, so a row's time also
depends on how many groups its model makes as it learns (max scoring costs one
product with the item table per group). Here one model (the config's, with each
``--group-updaters`` entry) is built once, its weights are fixed (no optimiser
step), and each repetition times one update's loss and backward on every path,
in turn, on the same batch, so both paths see the same groups and the same
machine load. Printed per path: the median and quartiles of ms per update, the
aten operator calls of one update (torch profiler), and groups per episode; then
our SASRec's median on the same batches. Run it alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import torch

from adasplit_env.data import load_dataset
from agents.config import TrainConfig, read_config_file
from agents.trainer import Trainer


def one_update(trainer: Trainer, batch, generator_seed: int) -> tuple[float, float]:
    """Seconds for one loss + backward (gradients cleared after), and groups per episode."""
    agent = trainer.agent
    generator = torch.Generator(device=trainer.device).manual_seed(generator_seed)
    start = time.perf_counter()
    loss, stats = agent.loss(batch, generator=generator)
    loss.backward()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)
    seconds = time.perf_counter() - start
    trainer.agent.zero_grad(set_to_none=True)
    return seconds, float(stats.get("groups/per_episode", 0.0))


def operations(trainer: Trainer, batch) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        one_update(trainer, batch, 0)
    return sum(event.count for event in prof.key_averages() if event.key.startswith("aten::"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="beauty")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--config", required=True, help="a train_agent.py config (a preset)")
    parser.add_argument("--group-updaters", default="attn_gru,gated")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=4, help="distinct batches, cycled")
    parser.add_argument("--repeats", type=int, default=24)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = load_dataset(args.dataset, args.data_dir)
    preset = read_config_file(args.config)
    for key in ("dataset", "data_dir", "epochs", "patience", "batch_size", "run_dir", "seed"):
        preset.pop(key, None)
    print(
        f"{args.dataset}: {dataset.num_items:,} items; {args.config}; batch {args.batch_size}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); {args.repeats} repeats"
    )

    def build(**options) -> Trainer:
        config = TrainConfig.from_dict(
            {
                **preset,
                **options,
                "dataset": args.dataset,
                "data_dir": args.data_dir,
                "batch_size": args.batch_size,
                "device": args.device,
                "progress": False,
                "run_dir": tempfile.mkdtemp(),
            }
        )
        trainer = Trainer(config, dataset=dataset)
        trainer.model.train()
        return trainer

    rows = {}
    for updater in args.group_updaters.split(","):
        for path in ("sequential", "parallel"):
            torch.manual_seed(0)  # the same weights for both paths of one updater
            rows[f"{updater}, {path}"] = build(group_updater=updater, train_path=path)
    torch.manual_seed(0)
    rows["sasrec"] = build(model="sasrec", num_layers=2, num_heads=2)
    batches = next(iter(rows.values())).epoch_batches(1)[: args.batches]
    times = {name: [] for name in rows}
    groups = {name: [] for name in rows}
    for trainer in rows.values():  # warm-up
        one_update(trainer, batches[0], 0)
    for repeat in range(args.repeats):
        batch = batches[repeat % len(batches)]
        for name, trainer in rows.items():
            seconds, per_episode = one_update(trainer, batch, repeat)
            times[name].append(seconds * 1000)
            groups[name].append(per_episode)
    sasrec = statistics.median(times["sasrec"])
    for name, trainer in rows.items():
        quartiles = statistics.quantiles(times[name], n=4)
        print(
            f"{name:<22} {statistics.median(times[name]):7.1f} ms/update "
            f"[{quartiles[0]:.1f}, {quartiles[2]:.1f}]  {statistics.median(times[name]) / sasrec:4.2f}x SASRec  "
            f"{operations(trainer, batches[0]):>6,} aten ops/update"
            + (f"  groups/episode {statistics.mean(groups[name]):.2f}" if name != "sasrec" else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
