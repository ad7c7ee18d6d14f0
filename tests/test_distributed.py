"""Data-parallel training with torch.distributed (gloo, 2 CPU processes)."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

ARGS = [
    "--epochs",
    "3",
    "--dim",
    "16",
    "--lr",
    "3e-3",
    "--batch-size",
    "128",
    "--eval-users",
    "0",
    "--progress",
    "false",
    "--patience",
    "0",
]


@pytest.mark.slow
def test_two_processes_match_one_up_to_noise(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--standalone",  # a free port: CI jobs may share the host
            "--tee",
            "3",  # each rank's lines, prefixed, to say how far each got
            "train_agent.py",
            *ARGS,
            "--run-dir",
            str(tmp_path / "ddp"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert ddp.returncode == 0, ddp.stdout[-3000:] + ddp.stderr[-3000:]
    single = subprocess.run(
        [
            sys.executable,
            "train_agent.py",
            *ARGS,
            "--threads",
            "1",
            "--run-dir",
            str(tmp_path / "one"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    two = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    assert two["world_size"] == 2 and one["world_size"] == 1
    # rank 0 alone wrote the run dir
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir() if p.suffix in (".pt", ".json")) == [
        "best.pt",
        "config.json",
        "last.pt",
        "metrics.json",
    ]
    # the same effective batch and updates: both learn, to about the same point
    for run in (one, two):
        assert run["test"]["NDCG@10"] > 3.0  # popularity gets about 1.3 here
    assert two["test"]["NDCG@10"] == pytest.approx(one["test"]["NDCG@10"], rel=0.5)


def test_shards_partition_each_batch():
    import torch

    from adasplit_env.data import load_dataset
    from agents.config import TrainConfig
    from agents.trainer import Trainer

    trainer = Trainer(TrainConfig(dim=8, progress=False), dataset=load_dataset("synthetic"))
    batch = trainer.epoch_batches(1)[0]
    trainer.world_size = 3
    rows = []
    for rank in range(3):
        trainer.rank = rank
        rows.append(trainer.shard(batch).targets)
    assert sorted(torch.cat(rows).tolist()) == sorted(batch.targets.tolist())
    assert max(len(r) for r in rows) - min(len(r) for r in rows) <= 1
