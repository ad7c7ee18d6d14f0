"""Every learner trains a few updates end to end; the plug-in example runs from the command line."""

import json

import numpy as np
import pytest
import torch

from adasplit_env.data import SyntheticConfig, load_dataset
from agents.a2c import generalised_advantages
from agents.base import EPISODE_TAGS, run_episodes, sample_actions
from agents.config import TrainConfig
from agents.trainer import Trainer
from tests.cli import QUICK_RUN, run_cli

SMALL = SyntheticConfig(num_users=120, num_groups=4, items_per_group=12, max_length=14, seed=1)


def test_sample_actions_draws_what_multinomial_draws():
    """The same actions as torch.multinomial from the same generator state (so a seed
    samples the same allocations as before), with masked slots never drawn."""
    logits = torch.randn(64, 9, generator=torch.Generator().manual_seed(0))
    logits[:, 5:] = -torch.inf
    logits[0, 1:] = -torch.inf  # one row with a single valid action
    policy = torch.softmax(logits, dim=1)
    mine, reference = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    drawn = torch.stack([sample_actions(policy, mine) for _ in range(300)])
    expected = torch.stack(
        [torch.multinomial(policy, 1, generator=reference)[:, 0] for _ in range(300)]
    )
    assert torch.equal(drawn, expected)
    assert int(drawn.max()) < 5 and bool((drawn[:, 0] == 0).all())
    frequencies = torch.bincount(drawn[:, 1], minlength=9)[:5].float() / 300
    assert torch.allclose(frequencies, policy[1, :5], atol=0.1)
    torch.manual_seed(3)
    global_draw = sample_actions(policy)
    torch.manual_seed(3)
    assert torch.equal(global_draw, torch.multinomial(policy, 1)[:, 0])


@pytest.mark.slow
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
    assert set(metrics["test"]) == {"NDCG@5", "MRR@5", "NDCG@10", "MRR@10", "HR@5", "HR@10"}
    assert metrics["test"] == results["test"]
    assert "allocation_ari" in metrics
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    shared_tags = {*EPISODE_TAGS, "losses/seq", "val/NDCG@10"}
    assert shared_tags <= set(events.Tags()["scalars"])


def one_epoch_trainer(tmp_path, algo: str, **options) -> Trainer:
    """A one-epoch run of ``algo`` on small synthetic data, groups starting at zero."""
    config = TrainConfig(
        algo=algo, epochs=1, batch_size=64, dim=16, eval_users=50, progress=False, threads=1,
        run_dir=str(tmp_path / algo), ppo_num_envs=16, ppo_n_steps=16, group_start="zero",
        **options,
    )  # fmt: skip
    return Trainer(config, dataset=load_dataset("synthetic", synthetic=SMALL))


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["reinforce", "a2c", "ppo"])
def test_the_options_beyond_the_paper_work_with_every_learner(tmp_path, algo):
    trainer = one_epoch_trainer(
        tmp_path, algo, readout="sasrec", scoring="max", likelihood_reward=1.0,
        allocation_reward_weight=0.5, seq_rollout="greedy", join_logit="linear",
        encoder_block="standard", rl_gradient="policy", temperature=0.5,
    )  # fmt: skip
    model, agent = trainer.model, trainer.agent
    # each option reached what it changes, whichever learner drives the MDP
    assert model.policy.name == "linear" and model.policy.temperature == 0.5
    assert model.encoder.blocks[0].residual  # encoder_block standard: residual, width 4d
    assert model.encoder.blocks[0].feed_forward_in.out_features == 4 * 16
    batch = trainer.train_samples.subset(slice(0, 8))
    model.eval()  # no dropout: two argmax rollouts agree
    with torch.no_grad():
        sampled = run_episodes(trainer.process, batch, agent.policy_logits)
        trained_on = agent.sequence_rollout(sampled, batch)  # seq_rollout greedy
        greedy = run_episodes(trainer.process, batch, agent.policy_logits, greedy=True)
    assert torch.equal(trained_on.actions, greedy.actions)
    logits = agent.policy_logits(trainer.process.reset(batch))
    logits[torch.isfinite(logits)].sum().backward()  # rl_gradient policy: the head only
    assert model.policy.hidden.weight.grad.abs().sum() > 0
    assert model.item_embeddings.weight.grad is None
    model.zero_grad()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    results = trainer.fit()
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p)}
    assert any(n.startswith("readout.encoder.") for n in changed)  # the SASRec readout trains
    assert any(n.startswith("policy.") for n in changed)
    assert not any(n.startswith("user_embeddings") for n in changed)  # unused with start zero
    assert np.isfinite(results["test"]["NDCG@10"])


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["reinforce", "a2c", "ppo"])
def test_the_affinity_allocator_trains_with_every_learner(tmp_path, algo):
    trainer = one_epoch_trainer(
        tmp_path, algo, scoring="max", likelihood_reward=1.0, allocation_reward_weight=0.0,
        lambda_o=0.0, curriculum="none", join_logit="affinity", rl_gradient="policy",
        reinforce_baseline="batch_mean",
    )  # fmt: skip
    start = trainer.model.policy.affinity_map.detach().clone()
    results = trainer.fit()
    assert not torch.equal(trainer.model.policy.affinity_map, start)  # the policy learns
    assert 1.0 <= results["filled_groups_per_user"] <= results["groups_per_user"]
    assert -1.0 <= results["allocation_ari_multi_interest"] <= 1.0


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


@pytest.mark.slow
def test_plugin_example_runs_from_the_command_line(tmp_path):
    run = tmp_path / "plugin"
    plugin = "examples.baseline_reinforce:BaselineReinforceAgent"
    result = run_cli("--algo", plugin, *QUICK_RUN, "--run-dir", str(run))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert np.isfinite(metrics["test"]["NDCG@10"])
    config = json.loads((run / "config.json").read_text())
    assert config["algo"] == "examples.baseline_reinforce:BaselineReinforceAgent"


@pytest.mark.slow
@pytest.mark.parametrize("model", ["sasrec", "gru4rec"])
def test_baselines_learn_in_the_same_harness(tmp_path, model):
    from adasplit_env.evaluation import evaluate_scorer, popularity_scorer

    dataset = load_dataset("synthetic")
    config = TrainConfig(
        model=model,
        epochs=3,
        patience=0,
        batch_size=128,
        dim=16,
        lr=3e-3,
        eval_users=200,
        progress=False,
        threads=1,
        run_dir=str(tmp_path / model),
    )
    results = Trainer(config, dataset=dataset).fit()
    pop = evaluate_scorer(popularity_scorer(dataset), dataset, "test")
    assert results["test"]["NDCG@10"] > 3 * pop["NDCG@10"]
    assert "allocation_ari" not in results
    from adasplit_env.checkpoint import load_checkpoint

    loaded = load_checkpoint(tmp_path / model / "best.pt", dataset=dataset)
    assert type(loaded.model).__name__.lower() == model


def test_baselines_ignore_padding():
    from adasplit_env.baselines import BaselineConfig, build_baseline

    for kind in ("sasrec", "gru4rec"):
        torch.manual_seed(0)
        model = build_baseline(BaselineConfig(kind, 3, 12, dim=8, max_len=5)).eval()
        with torch.no_grad():
            model.item_embeddings.weight[0].normal_()  # even a non-zero pad row must not leak
            a = model.sequence_repr(torch.tensor([[0, 0, 3, 4, 5]]))
            b = model.sequence_repr(torch.tensor([[0, 0, 3, 4, 5]]))
            c = model.sequence_repr(torch.tensor([[0, 1, 3, 4, 5]]))
        assert torch.allclose(a, b) and not torch.allclose(a, c)
