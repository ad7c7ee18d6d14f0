"""Command line of the reproduction; see ``python -m reproduce --help``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adasplit_env.errors import ConfigError, cli_errors
from adasplit_env.io import atomic_write_bytes
from reproduce import report
from reproduce.experiments import (
    DEFAULT_DATASETS,
    DEFAULT_SEEDS,
    TARGETS,
    Experiment,
    experiments,
    with_finished_seeds,
)
from reproduce.runner import run_missing, run_state

FIGURES = ("figure4", "figure5")
TITLES = {
    "search": "Search (validation NDCG@10 over all users; bold: the moved option)",
    "table2": "Table 2: test metrics, ours (paper)",
    "table3": "Table 3: group updater, test metrics, ours (paper)",
    "table4": "Table 4: creation-penalty curriculum, test metrics, ours (paper)",
    "figure4": "Figure 4: encoder, test metrics (the paper gives this only as a plot)",
    "figure5": "Figure 5: history length l, test metrics (the paper gives this only as a plot)",
    "plus": "Towards AdaSplit+: options beyond the paper, one added per row (test metrics)",
    "plus-ablations": "AdaSplit+ ablations: the preset with its group updater, curriculum or "
    "encoder swapped, and with one group (Tables 3-4 and Figure 4 for AdaSplit+); on LastFM "
    "also with longer histories, beside SASRec at the same length; on synthetic also with "
    "an interest's next item drawn at random (test metrics)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reproduce",
        description="Run what a paper table or figure needs (reusing finished run dirs) and "
        "write it as markdown (and PNG), our numbers beside the paper's.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("target", nargs="+", choices=(*TARGETS, "all"), help="what to reproduce")
    parser.add_argument(
        "--datasets",
        nargs="+",
        help="datasets to run (default per target: "
        + "; ".join(f"{t}: {' '.join(d)}" for t, d in DEFAULT_DATASETS.items())
        + "); the tables still show the defaults' finished runs too",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        help="seeds per row, each a run dir of its own (default: "
        + ", ".join(f"{target} {count}" for target, count in DEFAULT_SEEDS.items())
        + ", the other targets 1); cells show mean ± std; the tables plan at least the "
        "default",
    )
    parser.add_argument("--results", default="results", help="root of the run dirs")
    parser.add_argument("--configs", default="configs", help="folder of <dataset>.yaml")
    parser.add_argument("--data-dir", help="folder of <name>/interactions.tsv.gz ($ADASPLIT_DATA)")
    parser.add_argument("--jobs", type=int, default=1, help="training runs at a time")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads per run (0: cores / jobs)"
    )
    parser.add_argument(
        "--no-train", action="store_true", help="only write tables from what is finished"
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        metavar="VARIANT",
        help="train only the rows of these variants (as --dry-run lists them, e.g. "
        "group-encoder sasrec); the tables still show every finished run",
    )
    parser.add_argument("--dry-run", action="store_true", help="list each run's state and stop")
    parser.add_argument(
        "--document",
        default="REPRODUCTION.md",
        help="markdown file whose <!-- reproduce:TARGET --> sections are refreshed",
    )
    return parser


def covered_datasets(target: str, asked: list[str] | None, configs: Path) -> list[str]:
    """The datasets a table of ``target`` shows: its defaults that have a config, then
    those asked for."""
    defaults = [d for d in DEFAULT_DATASETS[target] if (configs / f"{d}.yaml").is_file()]
    return list(dict.fromkeys([*defaults, *(asked or ())]))


def table_runs(
    target: str, dataset: str, configs: Path, seeds: int | None, results: Path
) -> list[Experiment]:
    """The runs a table of ``target`` shows on ``dataset``: at least the default seeds
    of each row, and every further finished one."""
    runs = experiments(target, dataset, configs, max(seeds or 1, DEFAULT_SEEDS.get(target, 1)))
    return runs if target == "search" else with_finished_seeds(runs, results)


@cli_errors
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {args.jobs}")
    targets = list(TARGETS) if "all" in args.target else list(dict.fromkeys(args.target))
    results, configs = Path(args.results), Path(args.configs)
    plan = {
        target: {
            dataset: experiments(target, dataset, configs, args.seeds)
            for dataset in (args.datasets or DEFAULT_DATASETS[target])
        }
        for target in targets
    }
    states = [
        run_state(experiment, results, configs)
        for by_dataset in plan.values()
        for runs in by_dataset.values()
        for experiment in runs
    ]
    if args.variants:
        known = {state.experiment.variant for state in states}
        unknown = sorted(set(args.variants) - known)
        if unknown:
            raise ConfigError(
                f"no row of the plan has variant {', '.join(unknown)}; "
                f"its variants: {', '.join(sorted(v for v in known if v))}"
            )
        states = [state for state in states if state.experiment.variant in args.variants]
    if args.dry_run:
        for state in states:
            print(
                f"{state.status:9s} {state.run_dir}  ({state.experiment.label}; "
                f"variant {state.experiment.variant})"
            )
        return 0
    failed = []
    if not args.no_train:
        failed = run_missing(states, args.data_dir, args.jobs, args.threads)
    # A table covers the target's own datasets and rows at their default seeds, whatever
    # part of it this call trained, so that a narrower call never writes a smaller table
    # over the document's. It reads every finished seed of a row, beyond those planned
    # too (the search compares its candidates' seed 0: the chosen one's seeds 1-2 are
    # Table 2's).
    plan = {
        target: {
            dataset: table_runs(target, dataset, configs, args.seeds, results)
            for dataset in covered_datasets(target, args.datasets, configs)
        }
        for target in plan
    }
    # The timing section lists every run of every target, whichever were asked for.
    every_run = [
        experiment
        for target in TARGETS
        for dataset in covered_datasets(target, args.datasets, configs)
        for experiment in with_finished_seeds(
            experiments(target, dataset, configs, args.seeds), results
        )
    ]
    # A run dir trained with other options than the configs ask for now is left out of
    # every table (training moves such dirs aside; with --no-train they stay).
    # (every_run holds the plan's runs too: one config.json read per run dir)
    stale = frozenset(
        state.run_dir
        for state in (run_state(e, results, configs) for e in every_run)
        if state.status == "stale"
    )
    for run_dir in sorted(stale):
        print(f"stale, left out of the tables (options changed since it ran): {run_dir}")
    document = Path(args.document)
    for target, by_dataset in plan.items():
        if target == "search":
            table = report.search_table(by_dataset, results, configs, stale)
            table += "\n\nThe baselines, tuned a little from RecBole's defaults (seed 0):\n\n"
            table += report.baseline_table(by_dataset, results, stale)
        else:
            table = report.metric_table(target, by_dataset, results, stale)
        if target == "table2":
            table += (
                "\n\nAdaSplit's and AdaSplit+'s test NDCG@10 beside the paper's AdaSplit"
                " and our SASRec:\n\n"
            )
            table += report.gap_table(by_dataset, results, stale)
        body = f"### {TITLES[target]}\n\n{table}\n"
        if target in FIGURES:
            png = report.figure(target, by_dataset, results, results / f"{target}.png", stale)
            if png is not None:
                body += f"\n![{target}]({png.as_posix()})\n"
        atomic_write_bytes(results / f"{target}.md", body.encode("utf-8"))
        refreshed = report.replace_section(document, target, body)
        print(body)
        print(
            f"wrote {results / f'{target}.md'}" + (f", refreshed {document}" if refreshed else "")
        )
    report.replace_section(document, "runs", report.runs_table(every_run, results, stale))
    if failed:
        print("failed runs: " + ", ".join(str(state.run_dir) for state in failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
