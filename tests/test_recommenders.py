"""One recommender interface: AdaSplit, SASRec and GRU4Rec each give a loss, full-sort
scores and ranking scores, are built from the training options and rebuilt from a
checkpoint, and the trainer, the checkpoint and ``eval_rec.py`` use nothing else."""

from __future__ import annotations

import pytest
import torch

from adasplit_env.checkpoint import load_checkpoint, make_payload, save_checkpoint
from adasplit_env.data import SyntheticConfig, load_dataset
from adasplit_env.data.interactions import PAD
from adasplit_env.metrics import target_ranks
from adasplit_env.model.config import RewardConfig
from adasplit_env.model.init import init_weights
from adasplit_env.model.sequence import SASRecEncoder
from adasplit_env.recommenders import RECOMMENDERS
from agents.base import run_episodes
from agents.config import TrainConfig
from agents.reinforce import ReinforceAgent

SMALL = SyntheticConfig(num_users=60, num_groups=4, items_per_group=10, max_length=10, seed=4)
OPTIONS = {"dim": 16, "max_len": 6, "num_layers": None, "num_heads": None, "dropout": None}


@pytest.fixture(scope="module")
def dataset():
    return load_dataset("synthetic", synthetic=SMALL)


def build(name, dataset, **options):
    torch.manual_seed(0)
    return RECOMMENDERS[name].build(
        {**OPTIONS, **options}, dataset.num_users, dataset.num_items, RewardConfig()
    )


def test_the_registry_names_the_models_the_cli_offers():
    assert RECOMMENDERS.choices() == ("adasplit", "sasrec", "gru4rec")
    assert TrainConfig(model="gru4rec").model == "gru4rec"
    assert [name for name, cls in RECOMMENDERS.items() if cls.allocates] == ["adasplit"]


@pytest.mark.parametrize("name", ["adasplit", "sasrec", "gru4rec"])
def test_every_recommender_gives_a_loss_scores_and_cut_ranks(name, dataset):
    recommender = build(name, dataset)
    batch = dataset.split.train_samples(6).subset(slice(0, 40))
    loss = recommender.loss(batch)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    grad = recommender.model.item_embeddings.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    recommender.model.eval()
    samples = dataset.split.eval_samples("test", 6)
    with torch.no_grad():
        full = recommender.full_sort_scores(samples)
        cut = recommender.rank_scores(samples, cutoff=10)
    assert full.shape == (len(samples), dataset.num_items + 1)
    assert torch.isneginf(full[:, PAD]).all()
    # the ranking scores rank every target as the full scores do, exactly up to the cutoff
    full_ranks, cut_ranks = target_ranks(full, samples.targets), target_ranks(cut, samples.targets)
    assert torch.equal(full_ranks.clamp(max=11), cut_ranks.clamp(max=11))
    # the options a baseline has no use for are ignored; left at None, its defaults hold
    if name != "adasplit":
        assert recommender.model.config.num_layers == 2
        assert build(name, dataset, join_logit="cluster").model.config == recommender.model.config


def test_adasplits_own_loss_is_l_seq_on_the_allocation_prediction_makes(dataset):
    """Eq. 20 on the greedy allocation: what a learner's L_seq is with seq_rollout greedy."""
    recommender = build("adasplit", dataset, scoring="max")
    recommender.model.eval()  # no dropout: the two computations see the same encoder output
    batch = dataset.split.train_samples(6).subset(slice(0, 50))
    config = TrainConfig(dim=16, max_len=6, scoring="max", seq_rollout="greedy")
    agent = ReinforceAgent(recommender.process, config)
    greedy = run_episodes(recommender.process, batch, agent.policy_logits, greedy=True)
    expected = agent.sequence_loss(greedy, batch)
    assert recommender.loss(batch).item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("name", ["adasplit", "gru4rec"])
def test_a_checkpoint_rebuilds_the_recommender_it_holds(name, dataset, tmp_path):
    recommender = build(name, dataset)
    recommender.model.eval()
    payload = make_payload(
        recommender.model,
        RewardConfig(penalty=0.7),
        dataset,
        "synthetic",
        {"format": None},
        model_type=name,
    )
    save_checkpoint(tmp_path / "best.pt", payload)
    loaded = load_checkpoint(tmp_path / "best.pt", dataset=dataset)
    assert type(loaded.recommender) is type(recommender)
    assert loaded.model is loaded.recommender.model
    loaded.model.eval()
    samples = dataset.split.eval_samples("val", 6)
    with torch.no_grad():
        assert torch.equal(
            loaded.recommender.full_sort_scores(samples), recommender.full_sort_scores(samples)
        )
    if recommender.allocates:
        assert loaded.recommender.process.rewards.penalty == 0.7


@pytest.mark.parametrize("num_layers, num_heads", [(1, 1), (2, 2), (3, 2)])
def test_sasrec_encoder_reads_the_newest_position_as_encode_does(num_layers, num_heads):
    """SASRec's and the readout's state (``forward``) computes the last block at the
    newest position only: the same output and gradients as the full ``encode``'s last
    row, for histories of every length (left-padded, one of a single item)."""
    torch.manual_seed(3)
    encoder = SASRecEncoder(16, 7, num_layers=num_layers, num_heads=num_heads, dropout=0.0)
    init_weights(encoder)
    for parameter in encoder.parameters():  # init zeroes biases and sets LayerNorm to 1/0
        parameter.data.add_(0.1 * torch.randn_like(parameter))
    lengths = torch.tensor([7, 4, 1, 6])
    histories = torch.randint(1, 30, (4, 7))
    histories[torch.arange(7)[None, :] < (7 - lengths)[:, None]] = PAD
    item_embs = torch.randn(4, 7, 16, requires_grad=True)
    weights = torch.randn(4, 16)

    gradients = []
    for newest_state in (
        lambda: encoder(item_embs, histories),
        lambda: encoder.encode(item_embs, histories)[:, -1],
    ):
        encoder.zero_grad()
        item_embs.grad = None
        output = newest_state()
        (output * weights).sum().backward()
        gradients.append(
            (
                output.detach(),
                item_embs.grad.clone(),
                [p.grad.clone() for p in encoder.parameters()],
            )
        )
    (newest, newest_input_grad, newest_grads), (full, full_input_grad, full_grads) = gradients
    assert newest.shape == (4, 16)
    torch.testing.assert_close(newest, full, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(newest_input_grad, full_input_grad, rtol=1e-5, atol=1e-6)
    for newest_grad, full_grad in zip(newest_grads, full_grads, strict=True):
        torch.testing.assert_close(newest_grad, full_grad, rtol=1e-5, atol=1e-6)
    # not a tautology: another position's row differs from the newest
    assert not torch.allclose(encoder.encode(item_embs, histories)[:, -2], newest)
