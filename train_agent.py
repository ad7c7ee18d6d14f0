"""Train AdaSplit's allocation policy jointly with the recommender.

    python train_agent.py --algo reinforce                  # the paper, on the synthetic default
    python train_agent.py --dataset garden --data-dir ../shared/data
    python train_agent.py --config configs/garden.yaml --epochs 5
    python train_agent.py --resume runs/garden-reinforce-20260101-120000
    tensorboard --logdir runs

Writes into the run dir: config.json, TensorBoard events, last.pt, best.pt
and metrics.json ({"val": {...}, "test": {...}, "seconds_per_epoch": ...}).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import MISSING
from pathlib import Path

from adasplit_env.errors import ConfigError, cli_errors
from adasplit_env.metrics import METRIC_KEYS, format_metrics_table
from adasplit_env.options import flag
from agents import AGENTS
from agents.config import (
    TrainConfig,
    option_choices,
    option_fields,
    option_groups,
    option_type,
    read_config_file,
)
from agents.verdict import allocation_is_one_group, verdict


def _bool(text: str) -> bool:
    lowered = str(text).lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _optional_int(text: str) -> int | None:
    return None if str(text).lower() in ("none", "") else int(text)


def _optional_float(text: str) -> float | None:
    return None if str(text).lower() in ("none", "") else float(text)


class _DefaultsOnceFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Append "(default: X)" unless the help text already says what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if "default" in (action.help or "").lower():
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train_agent.py",
        description=__doc__.split("\n\n")[0],
        epilog=f"Registered algorithms: {', '.join(sorted(AGENTS))}.",
        formatter_class=_DefaultsOnceFormatter,
    )
    parser.add_argument(
        "--config", metavar="FILE", help="YAML or JSON file with these options; flags override it"
    )
    parser.add_argument(
        "--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last.pt"
    )
    titles = {
        "model_options": "the model (Eq. 4-13, 20-22)",
        "reward": "the reward (Eq. 14-17)",
        "learner": "the learners (Eq. 18-21; a2c and ppo)",
    }
    for section, specs in option_groups().items():
        group = parser if section is None else parser.add_argument_group(titles[section])
        for spec in specs:
            _add_option(group, spec)
    return parser


def _add_option(group, spec) -> None:
    """The flag of one option, from its declaration (default, help, choices, type)."""
    default = spec.default if spec.default is not MISSING else None
    kwargs = {"default": default, "help": spec.metadata.get("help", "")}
    if "choices" in spec.metadata:
        kwargs["choices"] = option_choices(spec)
    kind = option_type(spec)  # from the annotation: one declaration per option
    if kind is bool:
        kwargs.update(type=_bool, metavar="BOOL")
    elif default is None:
        kwargs["type"] = {int: _optional_int, float: _optional_float}.get(kind, kind)
    else:
        kwargs["type"] = kind
    group.add_argument(flag(spec), **kwargs)


def parse_config(argv: list[str] | None) -> tuple[TrainConfig, str | None]:
    parser = build_parser()
    first, _ = parser.parse_known_args(argv)
    base: dict = {}
    if first.resume:
        saved = Path(first.resume) / "config.json"
        if not saved.is_file():
            raise ConfigError(f"{first.resume}: not a run directory (no config.json)")
        base = json.loads(saved.read_text())
    known = {f.name for f in option_fields()}
    if first.config:
        from_file = read_config_file(first.config)
        unknown = sorted(set(from_file) - known)
        if unknown:
            raise ConfigError(f"{first.config}: unknown option(s): {', '.join(unknown)}")
        base.update(_typed_values(parser, from_file, first.config))
    if base:
        unknown = sorted(set(base) - known)
        if unknown:
            raise ConfigError(f"unknown option(s) in the config: {', '.join(unknown)}")
        parser.set_defaults(**base)
    args = parser.parse_args(argv)
    values = {f.name: getattr(args, f.name) for f in option_fields()}
    config = TrainConfig.from_dict(values)
    config.validate()
    return config, args.resume


def _typed_values(parser: argparse.ArgumentParser, values: dict, source: str) -> dict:
    """A config file's values converted as their flags' would be; a value that does
    not convert names the file and the key (argparse would name the flag and print
    its whole usage)."""
    actions = {action.dest: action for action in parser._actions}
    typed = {}
    for key, value in values.items():
        action = actions[key]
        convert = action.type
        if value is not None and convert is not None and convert is not str:
            try:
                if isinstance(value, bool) and convert in (int, float):
                    raise ValueError("a boolean")
                value = convert(value if not isinstance(value, str) else value.strip())
                if convert is int and isinstance(values[key], float) and values[key] != value:
                    raise ValueError("not a whole number")
            except (ValueError, TypeError, argparse.ArgumentTypeError):
                expected = {_bool: "true or false", int: "an integer", float: "a number"}.get(
                    convert, "a " + getattr(convert, "__name__", "value").lstrip("_")
                )
                raise ConfigError(f"{source}: {key}: {values[key]!r} is not {expected}") from None
        if action.choices is not None and value is not None and value not in action.choices:
            raise ConfigError(
                f"{source}: {key}: {value!r} is not one of {', '.join(map(str, action.choices))}"
            )
        typed[key] = value
    return typed


def init_distributed(config) -> bool:
    """Join the process group when started by torchrun (WORLD_SIZE > 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    import torch
    import torch.distributed as dist

    use_cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if config.threads == 0 and not use_cuda:
        # share the cores instead of oversubscribing them
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // dist.get_world_size()))
    return True


def run_summary(results: dict, config) -> list[str]:
    """The plain facts about a finished run that its numbers alone do not say."""
    lines = []
    if "groups_per_user" in results:
        groups = results["groups_per_user"]
        planted = results.get("planted_groups_per_user")
        filled = results.get("filled_groups_per_user", groups)
        lines.append(
            f"groups per user at prediction (greedy allocation, test): {groups:.2f}, "
            f"{filled:.2f} holding history items"
            + (f" (planted interests per history: {planted:.2f})" if planted is not None else "")
        )
        if results.get("group_coherence", {}).get("split_users"):  # interests or time?
            from adasplit_env.analysis.coherence import GroupCoherence

            lines.append(GroupCoherence.from_dict(results["group_coherence"]).summary())
        if allocation_is_one_group(results):
            lines.append(
                "warning: the greedy allocation is no better than ONE group per user "
                f"({filled:.2f} groups hold history items"
                + (
                    f", ARI over multi-interest users {results['allocation_ari_multi_interest']:.3f}"
                    if "allocation_ari_multi_interest" in results
                    else ""
                )
                + "): at prediction this model is a single-group recommender (no preference "
                "disentanglement); configs/<dataset>-plus.yaml (AdaSplit+) has an allocator "
                "that splits"
            )
    if results["best_epoch"] == results["epochs"] and results["epochs"] == config.epochs:
        lines.append(
            f"the best epoch is the last one ({results['epochs']}): the model was still "
            "improving; raise the budget with --epochs"
        )
    return lines


@cli_errors
def main(argv: list[str] | None = None) -> int:
    config, resume = parse_config(argv)
    distributed = init_distributed(config)
    try:
        code = _train(config, resume)
        if distributed:
            import torch.distributed as dist

            # leave together: a rank that tears gloo down while rank 0 still
            # writes its final report can abort ("terminate called ...")
            dist.barrier()
    finally:
        if distributed:
            import torch.distributed as dist

            dist.destroy_process_group()
    if distributed:
        # Everything is written and closed by now. A worker's C++ teardown at
        # interpreter exit can still abort ("terminate called without an active
        # exception": once in CI, once in 33 local runs with 4 threads per rank,
        # after rank 0 had written metrics.json), turning a finished run into a
        # failed one, so a worker leaves without it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _train(config, resume) -> int:
    from agents.trainer import Trainer  # heavy imports after argument errors

    trainer = Trainer(config, run_dir=resume)
    if not trainer.is_main:
        trainer.fit(resume=resume is not None)
        return 0
    print(f"run dir: {trainer.run_dir}")
    print(
        f"{trainer.dataset.name}: {trainer.dataset.num_users:,} users, {trainer.dataset.num_items:,} items, "
        f"{len(trainer.train_samples):,} training samples; algo {config.algo}; device {trainer.device}"
    )
    try:
        results = trainer.fit(resume=resume is not None)
    except KeyboardInterrupt:
        if (trainer.run_dir / "last.pt").is_file():
            print(
                f"\ninterrupted; the last finished epoch is in {trainer.run_dir / 'last.pt'}; "
                f"continue with: python train_agent.py --resume {trainer.run_dir}",
                file=sys.stderr,
            )
        else:
            print(
                "\ninterrupted before the first epoch ended; nothing was saved "
                f"({trainer.run_dir} has no last.pt), so start again without --resume",
                file=sys.stderr,
            )
        return 130
    print(format_metrics_table({split: results[split] for split in ("val", "test")}, METRIC_KEYS))
    print(
        f"{results['epochs']} epochs (best {results['best_epoch']}), "
        f"{results['seconds_per_epoch']:.1f} s/epoch, {results['train_samples_per_second']:.0f} samples/s"
    )
    for line in run_summary(results, config):
        print(line)
    if "allocation_ari" in results:
        print(
            f"allocation ARI vs planted groups: {results['allocation_ari']:.3f} "
            f"(random allocator: {results['allocation_ari_random']:.3f}, one group per user: "
            f"{results['allocation_ari_one_group']:.3f}); users with several "
            f"interests only: {results['allocation_ari_multi_interest']:.3f} "
            f"(random: {results['allocation_ari_multi_interest_random']:.3f})"
        )
    for line in verdict(results, config):
        print(line)
    print(f"wrote {trainer.run_dir / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
