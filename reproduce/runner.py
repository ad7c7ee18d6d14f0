"""Run the experiments a target needs, reusing finished run dirs.

A run dir is finished when it holds ``metrics.json`` and its ``config.json``
computes the same thing as the experiment asks for (see
:func:`~reproduce.experiments.comparable`). A run that stopped
part-way (``last.pt``, no ``metrics.json``) is resumed; one whose options no
longer match (say, the tuned config changed) is moved aside to
``<name>.stale-<time>`` and run again. Training runs are ``train_agent.py``
subprocesses, ``jobs`` at a time, each writing ``train.log`` in its run dir.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from adasplit_env.data.datasets import load_dataset
from adasplit_env.errors import ConfigError
from adasplit_env.evaluation import (
    USER_RANKS_FILE,
    evaluate_ranks,
    popularity_scorer,
    write_user_ranks,
)
from adasplit_env.io import atomic_write_json
from adasplit_env.metrics import split_metrics
from agents.config import TrainConfig
from reproduce.experiments import Experiment, comparable, expected_options

POPULARITY_CONFIG_KEYS = ("dataset", "k_core", "max_len")


@dataclass
class RunState:
    experiment: Experiment
    run_dir: Path
    status: str  # finished | partial | stale | missing
    options: dict


def _popularity_options(options: dict) -> dict:
    full = TrainConfig.from_dict(options).to_dict()
    return {"model": "popularity", **{key: full[key] for key in POPULARITY_CONFIG_KEYS}}


def run_state(experiment: Experiment, results: Path, configs: Path) -> RunState:
    run_dir = experiment.run_dir(results)
    options = expected_options(experiment, configs)
    saved = run_dir / "config.json"
    if not saved.is_file():
        status = "missing"
    else:
        try:
            recorded = json.loads(saved.read_text())
        except json.JSONDecodeError:
            recorded = None
        if experiment.base == "popularity":
            same = recorded == _popularity_options(options)
        else:
            try:
                same = recorded is not None and comparable(recorded) == comparable(options)
            except ConfigError:
                same = False
        if not same:
            status = "stale"
        elif (run_dir / "metrics.json").is_file():
            status = "finished"
        else:
            status = "partial" if (run_dir / "last.pt").is_file() else "missing"
    return RunState(experiment, run_dir, status, options)


def _move_aside(run_dir: Path) -> Path:
    target = run_dir.with_name(f"{run_dir.name}.stale-{datetime.now():%Y%m%d-%H%M%S}")
    run_dir.rename(target)
    return target


def run_popularity(state: RunState, data_dir: str | None) -> None:
    """The popularity floor: no training, evaluated in-process."""
    options = _popularity_options(state.options)
    start = time.perf_counter()
    dataset = load_dataset(options["dataset"], data_dir, k_core=options["k_core"])
    scorer = popularity_scorer(dataset)
    ranks = {
        split: evaluate_ranks(scorer, dataset, split, options["max_len"])
        for split in ("val", "test")
    }
    results = split_metrics(ranks)
    results["total_seconds"] = time.perf_counter() - start
    state.run_dir.mkdir(parents=True, exist_ok=True)
    write_user_ranks(state.run_dir / USER_RANKS_FILE, ranks)
    atomic_write_json(state.run_dir / "config.json", options)
    atomic_write_json(state.run_dir / "metrics.json", results)


def _train_command(state: RunState, data_dir: str | None, threads: int) -> list[str]:
    command = [sys.executable, "-m", "train_agent"]
    if state.status == "partial":
        command += ["--resume", str(state.run_dir)]
    else:
        request = state.run_dir / "request.json"
        atomic_write_json(request, state.options)
        command += ["--config", str(request), "--run-dir", str(state.run_dir)]
    command += ["--threads", str(threads), "--progress", "false"]
    if data_dir:
        command += ["--data-dir", str(data_dir)]
    return command


def run_missing(
    states: list[RunState],
    data_dir: str | None = None,
    jobs: int = 1,
    threads: int = 0,
    echo=print,
) -> list[RunState]:
    """Run every state that is not finished; returns those that failed."""
    todo = [state for state in states if state.status != "finished"]
    seen, unique = set(), []
    for state in todo:  # two targets may share a run dir
        if state.run_dir not in seen:
            seen.add(state.run_dir)
            unique.append(state)
    threads = threads or max(1, (os.cpu_count() or 1) // max(jobs, 1))
    failed: list[RunState] = []
    running: list[tuple[RunState, subprocess.Popen, float]] = []
    queue = list(unique)
    while queue or running:
        while queue and len(running) < jobs:
            state = queue.pop(0)
            if state.status == "stale":
                echo(
                    f"{state.run_dir}: options changed, old run moved to {_move_aside(state.run_dir)}"
                )
                state.status = "missing"
            if state.experiment.base == "popularity":
                echo(f"{state.run_dir}: popularity floor")
                run_popularity(state, data_dir)
                continue
            state.run_dir.mkdir(parents=True, exist_ok=True)
            command = _train_command(state, data_dir, threads)
            echo(f"{state.run_dir}: {'resuming' if state.status == 'partial' else 'training'}")
            log = open(state.run_dir / "train.log", "a")
            # unbuffered, so that train.log shows each epoch as it ends
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            log.close()
            running.append((state, process, time.perf_counter()))
        for entry in list(running):
            state, process, started = entry
            if process.poll() is None:
                continue
            running.remove(entry)
            minutes = (time.perf_counter() - started) / 60
            if process.returncode == 0 and (state.run_dir / "metrics.json").is_file():
                state.status = "finished"
                echo(f"{state.run_dir}: finished in {minutes:.1f} min")
            else:
                failed.append(state)
                echo(
                    f"{state.run_dir}: FAILED (exit {process.returncode}), see {state.run_dir / 'train.log'}"
                )
        if running:
            time.sleep(2)
    return failed
