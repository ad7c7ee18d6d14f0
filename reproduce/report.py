"""Markdown tables and PNG figures from finished run dirs (nothing is typed in by hand).

Each cell reads ``metrics.json`` of its run dir: test metrics for the tables,
validation NDCG@10 for the search. Paper values are in parentheses where the
paper gives them. Runs not finished show as "not run", and so do run dirs in
``stale`` (trained with options the configs no longer ask for), so that a
changed config never shows the old run's numbers.
"""

from __future__ import annotations

import fcntl
import json
import re
from pathlib import Path

from adasplit_env.analysis.coherence import COHERENCE_FILE
from adasplit_env.baselines import BASELINE_DROPOUT
from adasplit_env.io import atomic_write_bytes
from agents.config import TrainConfig
from reproduce import paper
from reproduce.experiments import (
    BASELINE_LR,
    PAPER_POINT,
    Experiment,
    tuned_run_name,
)
from reproduce.paired import paired_difference, runs_ranks

METRICS = paper.METRICS
NOT_RUN = "not run"
PAPER_TABLES = {"table2": paper.TABLE2, "table3": paper.TABLE3, "table4": paper.TABLE4}


def read_metrics(
    experiment: Experiment, results: Path, stale: frozenset[Path] = frozenset()
) -> dict | None:
    run_dir = experiment.run_dir(results)
    path = run_dir / "metrics.json"
    if run_dir in stale or not path.is_file():
        return None
    return json.loads(path.read_text())


# targets whose tables show it: where allocators differ
COHERENCE_TARGETS = ("plus", "plus-ablations")


def read_coherence(experiment: Experiment, metrics: dict | None, results: Path) -> dict | None:
    """The group coherence (adasplit_env/analysis/coherence.py) of a finished run, given its
    ``metrics``: measured at the end of its training (metrics.json) or afterwards by
    eval_rec.py (coherence.json); else None."""
    if metrics is None:  # not finished, or stale
        return None
    if "group_coherence" in metrics:
        return metrics["group_coherence"]
    path = experiment.run_dir(results) / COHERENCE_FILE
    return json.loads(path.read_text()).get("coherence") if path.is_file() else None


def coherence_cell(measured: list[dict]) -> str:
    """The gap over consecutive runs pooled over the seeds' split users (a seed that
    split 3 users weighs 3), and the share of users split; "–" when none was."""
    split = sum(c["split_users"] for c in measured)
    if not split:
        return "–"
    pooled = sum(c["split_users"] * c["over_contiguous"][0] for c in measured if c["split_users"])
    pooled /= split
    share = split / sum(c["evaluated_users"] for c in measured)
    return f"{pooled:+.3f} ({f'{share:.0%}' if share >= 0.01 else '<1%'} split)"


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def rows(experiments: list[Experiment]) -> list[list[Experiment]]:
    """The experiments grouped into table rows: the seeds of one run, in order."""
    grouped: dict[tuple[str, str], list[Experiment]] = {}
    for experiment in experiments:
        grouped.setdefault(experiment.row, []).append(experiment)
    return list(grouped.values())


def row_metrics(
    seeds: list[Experiment], results: Path, stale: frozenset[Path] = frozenset()
) -> list[dict]:
    """metrics.json of every finished seed of a row."""
    return [m for m in (read_metrics(e, results, stale) for e in seeds) if m is not None]


def mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def mean_test(finished: list[dict], key: str) -> float | None:
    return mean_std([m["test"][key] for m in finished])[0] if finished else None


def _cell(values: list[float], decimals: int = 2) -> str:
    """One value, or ``mean ± std`` (sample std) over the seeds."""
    mean, std = mean_std(values)
    if len(values) == 1:
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def metric_table(
    target: str,
    runs: dict[str, list[Experiment]],
    results: Path,
    stale: frozenset[Path] = frozenset(),
) -> str:
    """Test metrics of every row, ours (paper) per cell; mean ± std over the finished seeds."""
    reference = PAPER_TABLES.get(target, {})
    coherent = target in COHERENCE_TARGETS
    header = (
        "| dataset | model | "
        + " | ".join(METRICS)
        + " | val NDCG@10 | seeds | epochs (best) | groups/user | ARI (multi-interest) |"
        + (" coherence over time runs |" if coherent else "")
    )
    lines = [header, "|" + "---|" * (len(METRICS) + 7 + coherent)]
    for dataset, experiments in runs.items():
        for seeds in rows(experiments):
            seed_metrics = [read_metrics(e, results, stale) for e in seeds]
            finished = [m for m in seed_metrics if m is not None]
            published = reference.get(dataset, {}).get(seeds[0].variant)
            cells = []
            for index, key in enumerate(METRICS):
                ours = _cell([m["test"][key] for m in finished]) if finished else NOT_RUN
                cells.append(ours if published is None else f"{ours} ({published[index]:.2f})")
            trained = [m for m in finished if "epochs" in m]
            epochs = ", ".join(f"{m['epochs']} ({m['best_epoch']})" for m in trained) or "–"
            # groups holding history items (an empty start group is not a group to a user)
            groups = [
                m.get("filled_groups_per_user", m["groups_per_user"])
                for m in finished
                if "groups_per_user" in m
            ]
            seeds_cell = f"{len(finished)}/{len(seeds)}"
            validation = _cell([m["val"]["NDCG@10"] for m in finished]) if finished else "–"
            cells.append(validation)
            row = f"| {dataset} | {seeds[0].label} | " + " | ".join(cells)
            # planted groups only on synthetic: the greedy allocation's ARI over the
            # users with several interests (a random allocator gets about 0.005)
            ari = [
                m["allocation_ari_multi_interest"]
                for m in finished
                if m.get("allocation_ari_multi_interest") is not None
            ]
            groups_cell = _cell(groups) if groups else "–"
            ari_cell = _cell(ari, decimals=3) if ari else "–"
            line = f"{row} | {seeds_cell} | {epochs} | {groups_cell} | {ari_cell} |"
            if coherent:  # PPMI gap of the groups over the same sizes as consecutive runs
                measured = [read_coherence(e, m, results) for e, m in zip(seeds, seed_metrics)]
                measured = [c for c in measured if c]
                line += f" {coherence_cell(measured)} |"
            lines.append(line)
    return "\n".join(lines)


def _search_scores(metrics: dict | None) -> list[str]:
    """Validation and test NDCG@10 and the epochs of one search run."""
    if metrics is None:
        return [NOT_RUN, NOT_RUN, "–"]
    return [
        _fmt(metrics["val"]["NDCG@10"]),
        _fmt(metrics["test"]["NDCG@10"]),
        f"{metrics['epochs']} ({metrics['best_epoch']})",
    ]


def search_table(
    runs: dict[str, list[Experiment]],
    results: Path,
    configs: Path,
    stale: frozenset[Path] = frozenset(),
) -> str:
    """Every search candidate with its validation NDCG@10 (all users); moved options in bold."""
    keys = tuple(PAPER_POINT)
    lines = [
        "| dataset | candidate | "
        + " | ".join(keys)
        + " | val NDCG@10 | test NDCG@10 | epochs (best) |",
        "|" + "---|" * (len(keys) + 5),
    ]
    for dataset, experiments in runs.items():
        chosen = tuned_run_name(dataset, configs)
        for experiment in experiments:
            if "model" in experiment.overrides:  # a baseline's tuning run: baseline_table
                continue
            metrics = read_metrics(experiment, results, stale)
            settings = experiment.overrides  # the paper's point, moved options in bold
            cells = [
                f"**{settings[key]}**" if settings[key] != PAPER_POINT[key] else str(settings[key])
                for key in keys
            ]
            scores = _search_scores(metrics)
            name = experiment.label + (" (chosen)" if experiment.name == chosen else "")
            lines.append(f"| {dataset} | {name} | " + " | ".join(cells + scores) + " |")
    return "\n".join(lines)


def baseline_table(
    runs: dict[str, list[Experiment]], results: Path, stale: frozenset[Path] = frozenset()
) -> str:
    """The baselines' tuning: dropout and lr moved from RecBole's defaults, validation
    NDCG@10 (all users) decides; Table 2 keeps the defaults unless a move wins."""
    lines = [
        "| dataset | run | model | dropout | lr | val NDCG@10 | test NDCG@10 | epochs (best) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for dataset, experiments in runs.items():
        for experiment in experiments:
            if "model" not in experiment.overrides:
                continue
            options = TrainConfig.from_dict({"lr": BASELINE_LR, **experiment.overrides})
            dropout = options.model_options.dropout
            if dropout is None:
                dropout = BASELINE_DROPOUT[options.model]
            metrics = read_metrics(experiment, results, stale)
            scores = _search_scores(metrics)
            cells = [experiment.label, options.model, str(dropout), str(options.lr), *scores]
            lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def runs_table(runs: list[Experiment], results: Path, stale: frozenset[Path] = frozenset()) -> str:
    """Where and how long each run took."""
    lines = [
        "| run dir | epochs (best) | s/epoch | total min | threads | machine |",
        "|---|---|---|---|---|---|",
    ]
    seen = set()
    for experiment in runs:
        run_dir = experiment.run_dir(results)
        if run_dir in seen:
            continue
        seen.add(run_dir)
        metrics = read_metrics(experiment, results, stale)
        if metrics is None:
            lines.append(f"| {run_dir} | {NOT_RUN} | | | | |")
            continue
        total = metrics.get("total_seconds")
        if "epochs" not in metrics:  # popularity: no training
            lines.append(f"| {run_dir} | – | – | {_fmt(total / 60 if total else None)} | – | – |")
            continue
        lines.append(
            f"| {run_dir} | {metrics['epochs']} ({metrics['best_epoch']}) | "
            f"{metrics['seconds_per_epoch']:.1f} | {_fmt(total / 60 if total else None)} | "
            f"{metrics.get('torch_threads', '–')} | {metrics.get('machine', 'not recorded')} |"
        )
    return "\n".join(lines)


def figure(
    target: str,
    runs: dict[str, list[Experiment]],
    results: Path,
    path: Path,
    stale: frozenset[Path] = frozenset(),
) -> Path | None:
    """Figure 4 (bars per encoder) or Figure 5 (lines over the history length) as a PNG."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    finished = {}  # dataset -> [(experiment, metrics)] of the runs that have finished
    for dataset, experiments in runs.items():
        pairs = [(row[0], row_metrics(row, results, stale)) for row in rows(experiments)]
        if pairs := [
            (e, {"test": {key: mean_test(ms, key) for key in METRICS}}) for e, ms in pairs if ms
        ]:
            finished[dataset] = pairs
    if not finished:
        return None
    fig, axes = plt.subplots(1, len(finished), figsize=(5 * len(finished), 3.6), squeeze=False)
    for axis, (dataset, pairs) in zip(axes[0], finished.items()):
        if target == "figure4":
            width = 0.8 / len(pairs)
            for index, (experiment, metrics) in enumerate(pairs):
                positions = [m + index * width for m in range(len(METRICS))]
                axis.bar(
                    positions, [metrics["test"][k] for k in METRICS], width, label=experiment.label
                )
            axis.set_xticks([m + width * (len(pairs) - 1) / 2 for m in range(len(METRICS))])
            axis.set_xticklabels(METRICS)
        else:
            lengths = [e.variant for e, _ in pairs]
            for key in METRICS:
                axis.plot(lengths, [m["test"][key] for _, m in pairs], marker="o", label=key)
            axis.set_xlabel("history length l")
            axis.set_xticks(lengths)
        axis.set_title(dataset)
        axis.set_ylabel("test metric (%)")
        axis.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def replace_section(document: Path, name: str, body: str) -> bool:
    """Put ``body`` between ``<!-- reproduce:NAME -->`` and ``<!-- /reproduce:NAME -->``."""
    if not document.is_file():
        return False
    pattern = re.compile(
        rf"(<!-- reproduce:{re.escape(name)} -->\n).*?(<!-- /reproduce:{re.escape(name)} -->)", re.S
    )
    # two reproduce commands finishing together must not lose each other's section:
    # the read and the write happen under one lock (a file beside the document, as
    # the write replaces the document's own)
    with open(document.with_name(f".{document.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        text = document.read_text(encoding="utf-8")
        if not pattern.search(text):
            return False
        updated = pattern.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(2), text)
        atomic_write_bytes(document, updated.encode("utf-8"))
    return True


def gap_table(
    runs: dict[str, list[Experiment]], results: Path, stale: frozenset[Path] = frozenset()
) -> str:
    """AdaSplit's and AdaSplit+'s test NDCG@10 (seed means) against the paper's AdaSplit
    and against our SASRec on the same split, with the paired interval of the
    difference over the test users where every finished seed saved its ranks."""
    lines = [
        "| dataset | model | ours (seed mean) | paper's AdaSplit | ours / paper "
        "| our SASRec (seed mean) | ours / our SASRec | ours - our SASRec, 95% over users and seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def ratio(a, b):
        return "–" if a is None or not b else f"{a / b:.2f}"

    for dataset, experiments in runs.items():
        by_variant, dirs, planned = {}, {}, {}
        for row in rows(experiments):
            finished = [(e.run_dir(results), read_metrics(e, results, stale)) for e in row]
            finished = [(run_dir, metrics) for run_dir, metrics in finished if metrics is not None]
            by_variant[row[0].variant] = [metrics for _, metrics in finished]
            dirs[row[0].variant] = [run_dir for run_dir, _ in finished]
            planned[row[0].variant] = len(row)
        baseline_ranks = runs_ranks(dirs.get("sasrec", []))
        published = paper.TABLE2.get(dataset, {}).get("adasplit")
        reference = None if published is None else published[2]
        baseline = mean_test(by_variant.get("sasrec", []), "NDCG@10")
        for variant, label in (("adasplit", "AdaSplit"), ("adasplit+", "AdaSplit+")):
            if variant not in by_variant:
                continue  # no such row (AdaSplit+ where no preset exists)
            value = mean_test(by_variant[variant], "NDCG@10")
            finished = len(by_variant[variant])
            # a mean over fewer seeds than the row plans says so
            ours = _fmt(value) + (
                f" ({finished}/{planned[variant]} seeds)" if 0 < finished < planned[variant] else ""
            )
            ranks = runs_ranks(dirs[variant])
            paired = (
                "–"
                if ranks is None or baseline_ranks is None
                else paired_difference(ranks, baseline_ranks).cell()
            )
            lines.append(
                f"| {dataset} | {label} | {ours} | {_fmt(reference)} | "
                f"{ratio(value, reference)} | {_fmt(baseline)} | {ratio(value, baseline)} "
                f"| {paired} |"
            )
    return "\n".join(lines)
