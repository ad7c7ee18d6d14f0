"""Every learner trains a few updates end to end; the plug-in example runs from the command line."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from adasplit_env.data import SyntheticConfig, load_dataset
from agents.a2c import generalised_advantages
from agents.config import TrainConfig
from agents.trainer import Trainer
from tests.conftest import REPO

SMALL = SyntheticConfig(num_users=120, num_groups=4, items_per_group=12, max_length=14, seed=1)


@pytest.mark.parametrize("algo", ["reinforce", "a2c", "ppo"])
def test_each_algorithm_trains_and_writes_the_same_outputs(tmp_path, algo):
    dataset = load_dataset("synthetic", synthetic=SMALL)
    config = TrainConfig(
        algo=algo,
        epochs=1,
        batch_size=64,
        dim=16,
        eval_users=50,
        progress=False,
        threads=1,
        run_dir=str(tmp_path / algo),
        ppo_num_envs=16,
        ppo_n_steps=16,
    )
    trainer = Trainer(config, dataset=dataset)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    results = trainer.fit()
    changed = [n for n, p in trainer.model.named_parameters() if not torch.equal(before[n], p)]
    assert any(n.startswith("item_embeddings") for n in changed)
    assert any(n.startswith("policy.") for n in changed)  # the allocator learned too
    run = tmp_path / algo
    for name in ("config.json", "best.pt", "last.pt", "metrics.json"):
        assert (run / name).is_file()
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["test"]) == {"NDCG@5", "MRR@5", "NDCG@10", "MRR@10", "HR@10"}
    assert metrics["test"] == results["test"]
    assert "allocation_ari" in metrics


def test_gae_reduces_to_return_minus_value():
    rewards = torch.tensor([[1.0, 2.0, 0.5]])
    values = torch.tensor([[0.3, 0.2, 0.1]])
    active = torch.tensor([[True, True, True]])
    gae = generalised_advantages(rewards, values, active, discount=0.5, gae_lambda=1.0)
    returns = torch.tensor([[1 + 0.5 * 2 + 0.25 * 0.5, 2 + 0.5 * 0.5, 0.5]])
    assert torch.allclose(gae, returns - values)
    # one-step TD when lambda = 0; an inactive tail contributes nothing
    active = torch.tensor([[True, True, False]])
    td = generalised_advantages(rewards, values, active, discount=0.5, gae_lambda=0.0)
    assert torch.allclose(td, torch.tensor([[1 + 0.5 * 0.2 - 0.3, 2 - 0.2, 0.0]]))


def test_plugin_example_runs_from_the_command_line(tmp_path):
    run = tmp_path / "plugin"
    result = subprocess.run(
        [
            sys.executable,
            "train_agent.py",
            "--algo",
            "examples.baseline_reinforce:BaselineReinforceAgent",
            "--epochs",
            "1",
            "--dim",
            "8",
            "--eval-users",
            "100",
            "--threads",
            "1",
            "--progress",
            "false",
            "--run-dir",
            str(run),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert np.isfinite(metrics["test"]["NDCG@10"])
    config = json.loads((run / "config.json").read_text())
    assert config["algo"] == "examples.baseline_reinforce:BaselineReinforceAgent"
