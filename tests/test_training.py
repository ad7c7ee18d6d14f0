"""End-to-end training: it learns, it writes its run dir, it resumes, it refuses bad input."""

import json
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from adasplit_env.analysis.allocation_quality import adjusted_rand_index
from adasplit_env.checkpoint import read_checkpoint
from adasplit_env.data import SyntheticConfig, load_dataset
from adasplit_env.errors import ConfigError
from adasplit_env.evaluation import USER_RANKS_FILE, read_user_ranks
from adasplit_env.metrics import metrics_from_ranks
from agents import resolve_agent
from agents.base import EPISODE_TAGS
from agents.config import TrainConfig
from agents.trainer import Trainer
from reproduce.paired import backfill
from tests.cli import QUICK_RUN, QUIET, REPO, run_cli

SMALL = SyntheticConfig(num_users=150, num_groups=4, items_per_group=12, max_length=16, seed=0)


@pytest.fixture(scope="module")
def small_dataset():
    return load_dataset("synthetic", synthetic=SMALL)


def small_config(tmp_path, **overrides):
    values = dict(
        epochs=2,
        batch_size=64,
        dim=16,
        eval_users=50,
        progress=False,
        threads=1,
        run_dir=str(tmp_path / "run"),
    )
    values.update(overrides)
    return TrainConfig(**values)


@pytest.mark.slow
def test_reinforce_updates_lower_l_seq_and_write_the_run_dir(tmp_path, small_dataset):
    trainer = Trainer(small_config(tmp_path, lr=1e-2), dataset=small_dataset)
    generator = torch.Generator().manual_seed(0)
    batch = small_dataset.split.train_samples(10).subset(slice(0, 64))
    seq_losses = []
    for _ in range(60):
        loss, stats = trainer.agent.loss(batch, generator=generator)
        trainer.optimizer.zero_grad()
        loss.backward()
        trainer.optimizer.step()
        seq_losses.append(stats["losses/seq"])
    assert np.mean(seq_losses[-5:]) < 0.7 * np.mean(seq_losses[:5])
    for key in (*EPISODE_TAGS, "losses/rl"):
        assert key in stats and np.isfinite(stats[key])

    results = Trainer(small_config(tmp_path), dataset=small_dataset).fit()
    run = tmp_path / "run"
    for name in ("config.json", "best.pt", "last.pt", "metrics.json"):
        assert (run / name).is_file(), name
    assert any(p.name.startswith("events.out.tfevents") for p in run.iterdir())
    metrics = json.loads((run / "metrics.json").read_text())
    for split in ("val", "test"):
        assert set(metrics[split]) == {"NDCG@5", "MRR@5", "NDCG@10", "MRR@10", "HR@5", "HR@10"}
    assert (
        metrics["epochs"] == 2
        and metrics["seconds_per_epoch"] > 0
        and metrics["train_samples_per_second"] > 0
    )
    for key in (
        "allocation_ari",
        "allocation_ari_random",
        "allocation_ari_multi_interest",
        "allocation_ari_multi_interest_random",
    ):
        assert -1.0 <= metrics[key] <= 1.0, key
    # the planted interests a test history spans: what a perfect allocator builds
    histories = small_dataset.split.eval_samples("test", metrics_max_len(run)).histories.numpy()
    spans = [len(np.unique(small_dataset.item_groups[h[h != 0]])) for h in histories]
    assert metrics["planted_groups_per_user"] == pytest.approx(np.mean(spans))
    # one group per user: ARI 1 on single-interest histories (both partitions trivial), 0 on others
    assert metrics["allocation_ari_multi_interest_one_group"] == 0.0
    assert metrics["allocation_ari_one_group"] == pytest.approx(np.mean(np.array(spans) == 1))
    assert results["test"] == metrics["test"]
    payload = read_checkpoint(run / "best.pt")
    assert payload["model_config"]["dim"] == 16
    # per-user ranks beside the metrics (clipped beyond 10), and the same from best.pt again
    saved = read_user_ranks(run / USER_RANKS_FILE)
    assert len(saved["test"]) == len(small_dataset.split.evaluated_users())
    for split in ("val", "test"):
        from_ranks = metrics_from_ranks(saved[split])
        assert all(from_ranks[k] == pytest.approx(metrics[split][k]) for k in metrics[split])
    # and each user's groups holding history items, whose mean the summary reports
    assert len(saved["test_groups"]) == len(saved["test"]) == len(saved["val_groups"])
    assert saved["test_groups"].mean() == pytest.approx(metrics["filled_groups_per_user"])
    assert saved["test_groups"].min() >= 1
    (run / USER_RANKS_FILE).unlink()
    backfill(run, None, dataset=small_dataset)
    again = read_user_ranks(run / USER_RANKS_FILE)
    assert saved.keys() == again.keys()
    assert all(np.array_equal(saved[key], again[key]) for key in saved)


def test_an_empty_start_group_is_no_split_in_the_run_summary():
    from train_agent import run_summary

    config = TrainConfig(epochs=5)
    results = {"groups_per_user": 2.0, "filled_groups_per_user": 1.0, "epochs": 3, "best_epoch": 2}
    summary = run_summary(results, config)
    assert "2.00, 1.00 holding history items" in summary[0]
    assert "ONE group" in summary[1]


def metrics_max_len(run) -> int:
    return json.loads((run / "config.json").read_text())["max_len"]


@pytest.mark.slow
def test_training_beats_popularity_on_synthetic(tmp_path, small_dataset):
    from adasplit_env.evaluation import evaluate_scorer, popularity_scorer

    results = Trainer(small_config(tmp_path, epochs=10, lr=1e-2), dataset=small_dataset).fit()
    pop = evaluate_scorer(popularity_scorer(small_dataset), small_dataset, "test")
    assert results["test"]["NDCG@10"] > 2 * pop["NDCG@10"]


@pytest.mark.slow
def test_tensorboard_has_the_curves(tmp_path, small_dataset):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = Trainer(small_config(tmp_path, epochs=2, log_every=4), dataset=small_dataset)
    trainer.fit()
    events = EventAccumulator(str(tmp_path / "run"), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    logged = (
        *EPISODE_TAGS, "losses/seq", "losses/rl", "val/NDCG@10", "allocation/ari",
        "charts/samples_per_second", "final/test/NDCG@10", "final/val/MRR@10",
    )  # fmt: skip
    for tag in logged:
        assert tag in scalars, tag
    # every 4th update and each epoch's first; an epoch's running means are not logged
    # again over the updates' own curve
    per_epoch = trainer.progress.global_step // 2
    assert per_epoch % 4 != 0  # so that the second epoch's first is logged for being first
    logged_steps = [
        step + 1 for step in range(2 * per_epoch) if step % 4 == 0 or step % per_epoch == 0
    ]
    assert [e.step for e in events.Scalars("losses/seq")] == logged_steps
    assert [e.step for e in events.Histograms("groups_per_episode")] == logged_steps
    for record in trainer.progress.history:  # each epoch's record has the running means
        assert {"losses/total", "charts/episode_return"} <= set(record)


def test_adjusted_rand_index_by_hand():
    assert adjusted_rand_index([0, 0, 1, 1], [5, 5, 7, 7]) == pytest.approx(1.0)
    assert adjusted_rand_index([0, 0, 0, 0], [1, 1, 1, 1]) == pytest.approx(1.0)
    # contingency [[2,1],[0,1]]: index 1, row pairs 3, column pairs 2, C(4,2) = 6:
    # expected 3 * 2 / 6 = 1 = index -> 0
    assert adjusted_rand_index([0, 0, 0, 1], [0, 0, 1, 1]) == pytest.approx(0.0)
    # contingency [[2,0],[1,1],[0,2]]: index 2, row pairs 3, column pairs 6, C(6,2) = 15:
    # expected 1.2, maximum 4.5 -> 0.8 / 3.3
    assert adjusted_rand_index([0, 0, 1, 1, 2, 2], [0, 0, 0, 1, 1, 1]) == pytest.approx(0.8 / 3.3)
    assert adjusted_rand_index([0, 0, 0, 0], [0, 0, 1, 1]) == pytest.approx(0.0)
    assert adjusted_rand_index([3, 4, 5, 6], [0, 0, 1, 1]) == pytest.approx(0.0)


@pytest.mark.slow
def test_interrupt_then_resume(tmp_path):
    run = tmp_path / "run"
    args = ["--epochs", "4", "--dim", "16", "--batch-size", "128", *QUIET, "--patience", "0"]
    args += ["--run-dir", str(run)]
    proc = subprocess.Popen(
        [sys.executable, "train_agent.py", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while not (run / "last.pt").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "--resume" in err
    done_epochs = read_checkpoint(run / "last.pt")["progress"]["epoch"]
    assert 1 <= done_epochs < 4
    assert not (run / "metrics.json").exists()
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    resumed = run_cli("--resume", str(run))
    assert resumed.returncode == 0, resumed.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 4
    history = read_checkpoint(run / "last.pt")["progress"]["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["adasplit", "sasrec"])
def test_a_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path, small_dataset, model):
    """Data order, the sampler and the global RNG (dropout) are all restored."""
    config = small_config(tmp_path, model=model, epochs=3, patience=0)
    whole = Trainer(replace(config, run_dir=str(tmp_path / "whole")), dataset=small_dataset).fit()
    part = replace(config, run_dir=str(tmp_path / "part"))
    Trainer(replace(part, epochs=1), dataset=small_dataset).fit()
    resumed = Trainer(part, dataset=small_dataset, run_dir=tmp_path / "part").fit(resume=True)
    assert resumed["test"] == whole["test"]
    weights = [
        read_checkpoint(tmp_path / run / "last.pt")["agent_state"] for run in ("whole", "part")
    ]
    for name, tensor in weights[0].items():
        assert torch.equal(tensor, weights[1][name]), name


@pytest.mark.slow
def test_a_run_resumes_on_another_kind_of_device(tmp_path, small_dataset, capsys):
    from adasplit_env.checkpoint import save_checkpoint

    config = TrainConfig(
        epochs=1, dim=8, max_len=6, eval_users=30, progress=False, threads=1, patience=0
    )
    Trainer(config, dataset=small_dataset, run_dir=tmp_path / "run").fit()
    payload = read_checkpoint(tmp_path / "run" / "last.pt")
    # a CUDA generator's state (seed and offset) where a CPU one's is expected
    payload["sampling_state"] = torch.zeros(16, dtype=torch.uint8)
    save_checkpoint(tmp_path / "run" / "last.pt", payload)
    again = Trainer(replace(config, epochs=2), dataset=small_dataset, run_dir=tmp_path / "run")
    results = again.fit(resume=True)
    assert results["epochs"] == 2
    printed = capsys.readouterr()
    assert "sampler ran on another kind of device" in printed.out + printed.err


@pytest.mark.slow
def test_eval_rec_and_env_load_the_checkpoint(tmp_path, small_dataset):
    import gymnasium as gym

    import adasplit_env

    Trainer(small_config(tmp_path, epochs=1), dataset=small_dataset).fit()
    # the small dataset is not a named one: evaluate through the library face
    from adasplit_env.checkpoint import load_checkpoint

    loaded = load_checkpoint(tmp_path / "run" / "best.pt", dataset=small_dataset)
    env = gym.make(adasplit_env.ENV_ID, dataset=small_dataset, model=loaded.model)
    obs, info = env.reset(seed=0)
    assert obs["item"].shape == (16,)


@pytest.mark.slow
def test_cli_checkpoint_round_trip(tmp_path):
    run = tmp_path / "run"
    trained = run_cli(*QUICK_RUN, "--run-dir", str(run))
    assert trained.returncode == 0, trained.stderr
    out = tmp_path / "eval.json"
    evaluated = subprocess.run(
        [
            sys.executable,
            "eval_rec.py",
            "--checkpoint",
            str(run / "best.pt"),
            "--split",
            "val",
            "--json",
            str(out),
            "--case-study",
            "2",
            "--coherence",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(out.read_text())["val"] == pytest.approx(
        json.loads((run / "metrics.json").read_text())["val"]
    )
    assert evaluated.stdout.count("test target") + evaluated.stdout.count("val target") == 2
    assert "group coherence" in evaluated.stdout  # a 1-epoch policy may split no one
    coherence = json.loads(out.read_text())["coherence"]
    assert coherence["split"] == "val" and coherence["evaluated_users"] > 0
    import gymnasium as gym

    import adasplit_env

    env = gym.make(adasplit_env.ENV_ID, checkpoint=str(run / "best.pt"))
    assert env.reset(seed=1)[0]["item"].shape == (8,)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--algo", "sarsa-9000"], "unknown algo 'sarsa-9000'"),
        (["--algo", "nosuchmodule:Agent"], "cannot import 'nosuchmodule'"),
        (["--epochs", "0"], "epochs must be >= 1"),
        (["--encoder", "rnn"], "invalid choice"),
        (["--resume", "/nonexistent/run"], "not a run directory"),
        (["--config", "/nonexistent.yaml"], "no such config file"),
        (["--dataset", "nosuch"], "unknown dataset 'nosuch'"),
        (["--dataset", "synthetic:noise=3"], "must lie in [0, 1]"),
    ],
)
@pytest.mark.slow
def test_bad_input_exits_2(args, message):
    result = run_cli(*args, "--progress", "false")
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_config_file_and_flag_override(tmp_path):
    from train_agent import parse_config

    path = tmp_path / "c.yaml"
    path.write_text("epochs: 7\nlambda-o: 0.01\nbatch_size: 32\n")
    config, _ = parse_config(["--config", str(path), "--batch-size", "64"])
    assert (config.epochs, config.reward.lambda_o, config.batch_size) == (7, 0.01, 64)
    bad = tmp_path / "bad.json"
    bad.write_text('{"epochz": 3}')
    from adasplit_env.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown option"):
        parse_config(["--config", str(bad)])
    with pytest.raises(ConfigError, match="log_every must be >= 1"):
        parse_config(["--log-every", "0"])[0].validate()


def test_incompatible_checkpoint_and_wrong_dataset(tmp_path):
    from adasplit_env.checkpoint import load_checkpoint, save_checkpoint
    from adasplit_env.errors import CheckpointError

    path = tmp_path / "old.pt"
    torch.save({"format": "adasplit-gym-checkpoint", "version": 999}, path)
    with pytest.raises(CheckpointError, match="version 999 is not supported"):
        read_checkpoint(path)
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint file"):
        read_checkpoint(tmp_path / "text.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an adasplit-gym checkpoint"):
        read_checkpoint(tmp_path / "other.pt")
    trainer = Trainer(
        small_config(tmp_path, epochs=1), dataset=load_dataset("synthetic", synthetic=SMALL)
    )
    save_checkpoint(tmp_path / "small.pt", trainer.payload())
    with pytest.raises(CheckpointError, match="pass the same dataset"):
        load_checkpoint(tmp_path / "small.pt", dataset=load_dataset("synthetic"))


def test_agent_registry():
    from agents.reinforce import ReinforceAgent

    assert resolve_agent("reinforce") is ReinforceAgent
    assert resolve_agent("agents.reinforce:ReinforceAgent") is ReinforceAgent


def _bad_checkpoints(folder, good):
    """Broken files as a user meets them, with what the message must say."""
    (folder / "empty.pt").write_bytes(b"")
    (folder / "cut.pt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (folder / "noise.pt").write_bytes(bytes(range(256)) * 20)
    torch.save({"thing": SyntheticConfig()}, folder / "objects.pt")
    torch.save({"format": "adasplit-gym-checkpoint", "version": 1}, folder / "hollow.pt")
    return {
        "empty.pt": "the file is empty",
        "cut.pt": "truncated or damaged",
        "noise.pt": "not a PyTorch checkpoint file",
        "objects.pt": "holds Python objects",
        "hollow.pt": "missing entries (model_config",
    }


@pytest.mark.slow
def test_bad_checkpoints_get_our_own_one_line_message(tmp_path, small_dataset):
    Trainer(small_config(tmp_path, epochs=1), dataset=small_dataset).fit()
    for name, message in _bad_checkpoints(tmp_path, tmp_path / "run" / "best.pt").items():
        result = subprocess.run(
            [sys.executable, "eval_rec.py", "--checkpoint", str(tmp_path / name)],
            cwd=REPO, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 2, name
        assert message in result.stderr and str(tmp_path / name) in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.mark.slow
def test_interrupt_during_the_first_epoch_says_nothing_was_saved(tmp_path):
    run = tmp_path / "run"
    args = ["--epochs", "3", "--threads", "1", "--progress", "false", "--run-dir", str(run)]
    proc = subprocess.Popen(
        [sys.executable, "train_agent.py", *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 120
    while not (run / "config.json").exists():  # written when training starts
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert not (run / "last.pt").exists()
    assert "nothing was saved" in err and "continue with" not in err


@pytest.mark.slow
def test_console_epoch_line_and_run_summary(tmp_path, small_dataset):
    from train_agent import run_summary

    trainer = Trainer(small_config(tmp_path, epochs=2, patience=0), dataset=small_dataset)
    results = trainer.fit()
    lines = [trainer.epoch_line(record) for record in results["history"]]
    assert all(len(line) < 130 for line in lines)
    assert lines[1].startswith("epoch   2/2") and "val NDCG@10" in lines[1] and "groups" in lines[1]
    summary = run_summary(results, trainer.config)
    assert summary[0].startswith("groups per user at prediction")
    if results["groups_per_user"] <= 1.0:
        assert "ONE group" in summary[1]
    still = results["best_epoch"] == 2
    assert any("still improving" in line for line in summary) == still
    longer = {**results, "epochs": 2, "best_epoch": 1}
    assert not any("still improving" in line for line in run_summary(longer, trainer.config))


def test_fused_adam_makes_the_same_updates_to_float_rounding(tmp_path, small_dataset):
    batches = small_dataset.split.train_samples(10).subset(slice(0, 128))
    params = {}
    for fused in (False, True):
        trainer = Trainer(small_config(tmp_path, fused_adam=fused, lr=1e-2), dataset=small_dataset)
        assert bool(trainer.optimizer.param_groups[0]["fused"]) is fused
        generator = torch.Generator().manual_seed(0)
        for start in (0, 64, 0, 64, 0):
            loss, _ = trainer.agent.loss(batches.subset(slice(start, start + 64)), generator)
            trainer.optimizer.zero_grad()
            loss.backward()
            trainer.optimizer.step()
        params[fused] = {k: v.detach().clone() for k, v in trainer.agent.state_dict().items()}
    moved = 0
    for name, value in params[False].items():
        assert torch.allclose(params[True][name], value, atol=1e-5), name
        moved += int(not torch.equal(value, params[True][name]))
    assert moved > 0  # a different kernel, not the same code path


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")  # torch's own
def three_updates(trainer, batches):
    """Three Adam steps on halves of ``batches`` (64 samples), sampling from seed 0:
    the losses and the last update's statistics."""
    generator = torch.Generator().manual_seed(0)
    losses = []
    for start in (0, 32, 0):
        loss, stats = trainer.agent.loss(batches.subset(slice(start, start + 32)), generator)
        trainer.optimizer.zero_grad()
        loss.backward()
        trainer.optimizer.step()
        losses.append(loss.item())
    return losses, stats


@pytest.mark.slow
def test_compiled_process_trains_like_the_eager_one(tmp_path, small_dataset):
    """--compile: the same losses, greedy groups and weights as eager, to float rounding."""
    batches = small_dataset.split.train_samples(10).subset(slice(0, 64))
    results = {}
    for compiled in (False, True):
        # few group slots: each number of slots in use is a graph of its own to compile
        config = small_config(tmp_path, compile=compiled, max_groups=3, dim=8, lr=1e-2)
        trainer = Trainer(config, dataset=small_dataset)
        assert (trainer.process.step.__dict__ != {}) is compiled  # the compiled wrapper
        losses, _ = three_updates(trainer, batches)
        with torch.no_grad():
            groups = trainer.process.allocate_history_greedily(batches).num_groups
        weights = {k: v.detach().clone() for k, v in trainer.agent.state_dict().items()}
        results[compiled] = (losses, groups, weights)
    (eager_losses, eager_groups, eager_weights), (losses, groups, weights) = results.values()
    assert losses == pytest.approx(eager_losses, rel=1e-5)
    assert torch.equal(groups, eager_groups)
    assert all(torch.allclose(weights[k], v, atol=1e-5) for k, v in eager_weights.items())


@pytest.mark.slow
def test_a_synthetic_spec_trains_and_its_checkpoint_rebuilds_the_same_data(tmp_path):
    """The small synthetic data is named by a spec here, so the checkpoint alone (no
    dataset passed) rebuilds it, planted groups included."""
    from adasplit_env.checkpoint import load_checkpoint

    spec = "synthetic:num_users=150,num_groups=4,items_per_group=12,max_length=16,noise=1.0"
    Trainer(small_config(tmp_path, epochs=1, dataset=spec)).fit()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "allocation_ari_multi_interest" in metrics  # planted groups: the ARI is measured
    loaded = load_checkpoint(tmp_path / "run" / "best.pt")
    assert loaded.dataset.name == spec and loaded.dataset.item_groups is not None
    assert loaded.dataset.num_users == 150


@pytest.mark.parametrize("updater", ["attn_gru", "gated"])
def test_the_parallel_path_trains_like_the_sequential_one(tmp_path, small_dataset, updater):
    """--train-path parallel on the AdaSplit+ options, in training mode (dropout on):
    the same losses and weights after three Adam steps, to float rounding."""
    batches = small_dataset.split.train_samples(10).subset(slice(0, 64))
    plus = dict(
        group_start="zero",
        rl_gradient="policy",
        reinforce_baseline="batch_mean",
        scoring="max",
        likelihood_reward=1.0,
        allocation_reward_weight=0.0,
        curriculum="none",
        join_logit="affinity",
        readout="sasrec",
        eps=0.8,
    )
    results = {}
    for path in ("sequential", "parallel"):
        config = small_config(
            tmp_path, train_path=path, group_updater=updater, dim=8, lr=1e-2, **plus
        )
        torch.manual_seed(0)
        trainer = Trainer(config, dataset=small_dataset)
        trainer.model.train()
        losses, stats = three_updates(trainer, batches)
        assert stats["groups/per_episode"] > 1.0  # the allocation splits: groups are exercised
        weights = {k: v.detach().clone() for k, v in trainer.agent.state_dict().items()}
        results[path] = (losses, weights)
    (sequential_losses, sequential_weights), (losses, weights) = results.values()
    assert losses == pytest.approx(sequential_losses, rel=1e-5)
    # Adam divides by the gradient's running scale, so where a gradient is near zero
    # (the attention's query and key after three steps) a rounding difference moves a
    # weight by up to ~2e-5 at lr 1e-2; every other weight agrees to ~1e-8
    assert all(torch.allclose(weights[k], v, atol=1e-4) for k, v in sequential_weights.items())


def test_the_parallel_path_is_reinforces():
    with pytest.raises(ConfigError, match="train-path parallel"):
        TrainConfig(algo="a2c", train_path="parallel").validate()


def test_the_epoch_line_shows_the_loss_a_plug_in_minimised(tmp_path, small_dataset):
    """A plug-in whose stats name no losses/total: the loss it passed is shown, not nan."""
    trainer = Trainer(small_config(tmp_path), dataset=small_dataset)
    batch = small_dataset.split.train_samples(10).subset(slice(0, 32))
    loss, _ = trainer.agent.loss(batch, generator=torch.Generator().manual_seed(0))
    trainer.optimize(loss, {"losses/seq": 1.0})
    assert trainer.running["losses/total"] == pytest.approx(loss.item())
    line = trainer.epoch_line({"epoch": 1, "seconds": 1.0, **trainer.running})
    assert f"loss {loss.item():7.4f}" in line and "nan" not in line
    assert "loss       –" in trainer.epoch_line({"epoch": 1, "seconds": 1.0})


@pytest.mark.slow
def test_a_redirected_log_gets_epoch_lines_not_progress_bars(tmp_path):
    """--progress is on by default, but bars are drawn only on a terminal."""
    run = run_cli(
        "--epochs", "2", "--dim", "8", "--eval-users", "50", "--threads", "1",
        "--run-dir", str(tmp_path / "run"),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "epoch   2/2" in run.stdout
    assert "\r" not in run.stderr + run.stdout and "it/s" not in run.stderr


@pytest.mark.slow
def test_a_bad_value_in_a_config_file_names_the_file_and_the_key(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("epochs: 3\nlr: fast\n")
    run = run_cli("--config", str(config))
    assert run.returncode == 2
    assert run.stderr.strip() == f"error: {config}: lr: 'fast' is not a number"
