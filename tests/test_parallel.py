"""The parallel training path (``--train-path parallel``) against the sequential MDP.

For the same allocation, :meth:`AllocationProcess.replay` must give what stepping
the process gives: the groups before every step, every step's log-probability,
the target's log-likelihood, and so the same loss and gradients.
"""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from adasplit_env import constants
from adasplit_env.data import load_dataset
from adasplit_env.model.adasplit import AdaSplitModel
from adasplit_env.model.config import ModelConfig, RewardConfig
from adasplit_env.model.init import init_weights
from adasplit_env.model.updaters import AllocationIndex, GroupVersions, make_group_updater
from adasplit_env.process import AllocationProcess
from agents.a2c import ActorCriticAgent
from agents.base import run_episodes
from agents.config import TrainConfig
from agents.reinforce import ReinforceAgent
from tests.test_options import SMALL
from tests.test_options import make_process as make_small_process

UPDATERS = ("attn_gru", "lstm", "mean", "gated", "gated_vector")


@pytest.fixture(scope="module")
def dataset():
    return load_dataset("synthetic", synthetic=SMALL)


def make_process(dataset, rewards=None, **options) -> AllocationProcess:
    """:func:`tests.test_options.make_process`, with the clusters fitted (``join_logit cluster``)."""
    process = make_small_process(dataset, rewards, **options)
    process.model.policy.fit(dataset.split, seed=0)  # a no-op for the other joins
    return process


def samples_of(dataset, count=16, short=False):
    """Training samples; ``short``: only histories shorter than max_len (6), so that
    every episode of the batch takes fewer than L + 1 steps."""
    samples = dataset.split.train_samples(6)
    if short:
        return samples.subset(torch.nonzero(samples.lengths < 4).flatten()[:count].numpy())
    return samples.subset(slice(0, count))


def sampled_allocation(process, samples, seed=0):
    """A sampled rollout's allocation (B, L+1) and the rollout, creating often."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        rollout = run_episodes(process, samples, process.policy_logits, generator=generator)
    return rollout.final_state.assignments, rollout


def test_mean_and_gated_are_parallel_and_the_recurrent_ones_are_not():
    assert make_group_updater("mean", 4).parallel and make_group_updater("gated", 4).parallel
    assert make_group_updater("gated_vector", 4).parallel
    assert not make_group_updater("attn_gru", 4).parallel
    assert not make_group_updater("lstm", 4).parallel


@pytest.mark.parametrize("updater", UPDATERS)
def test_group_states_equal_the_process_steps(dataset, updater):
    """Every position's groups, from the updater's closed form where it has one and from
    the walk by depth, equal the groups the MDP holds when it reaches that position
    along the same allocation."""
    process = make_process(dataset, RewardConfig(), group_updater=updater, eps=2.0)
    samples = samples_of(dataset)
    assignments, _ = sampled_allocation(process, samples)
    assert int(assignments.max()) >= 2  # several groups were opened
    state = process.reset(samples)
    group_updater = process.model.group_updater
    arguments = (state.user_embs, state.step_items, state.step_update_terms)
    replayed = group_updater.group_versions(*arguments, assignments, process.max_groups).states()
    index = AllocationIndex.of(assignments, process.max_groups)
    walked = GroupVersions.of(
        state.user_embs, group_updater.walk_by_depth(*arguments, index), index
    ).states()
    assert int(index.depth.max()) >= 1  # some group absorbed several items
    assert torch.allclose(replayed, walked, atol=1e-5)
    if group_updater.parallel:  # the closed form at every position, not only where it is read
        closed = group_updater.closed_form_states(*arguments, assignments, process.max_groups)
        assert torch.allclose(closed, walked, atol=1e-5)
    # and the process itself, position by position
    rows = torch.arange(len(samples))
    while not bool(state.done.all()):
        position = state.cursor.clamp(max=state.target_position)
        live = ~state.done
        assert torch.allclose(
            state.group_reprs[live], replayed[rows[live], position[live]], atol=1e-5
        )
        assert torch.allclose(
            state.group_reprs[live], walked[rows[live], position[live]], atol=1e-5
        )
        state, _ = process.step(state, assignments[rows, position])


def test_allocation_index_by_hand():
    """Two episodes of P = 5 positions (the last the target), G = 3 slots: the version
    each slot holds before each position, and each item's depth and predecessor."""
    assignments = torch.tensor([[0, 1, 0, 0, 2], [-1, -1, 0, 1, 1]])
    index = AllocationIndex.of(assignments, 3)
    assert index.depth.tolist() == [[0, 0, 1, 2, -1], [-1, -1, 0, 0, -1]]
    assert index.previous_item().tolist() == [[-1, -1, 0, 2, -1], [-1, -1, -1, -1, -1]]
    # 0 unopened, 1 the start, 2 + s the group just after position s
    assert index.version_table().tolist() == [
        [[1, 0, 0], [2, 0, 0], [2, 3, 0], [4, 3, 0], [5, 3, 0]],
        [[1, 0, 0], [1, 0, 0], [1, 0, 0], [4, 0, 0], [4, 5, 0]],
    ]


def test_gated_updater_by_hand():
    """p' = z p + (1 - z) tanh(W v), z = sigmoid(w_z . v + b_z): two items into one group."""
    updater = make_group_updater("gated", 2)
    with torch.no_grad():
        updater.update_item.weight.copy_(torch.tensor([[1.0, 0.0]]))
        updater.update_item.bias.fill_(0.5)
        updater.candidate_item.weight.copy_(torch.eye(2))
    start = torch.tensor([[0.2, -0.4]])
    first, second = torch.tensor([1.0, 2.0]), torch.tensor([-1.0, 0.5])
    z1 = torch.sigmoid(torch.tensor(1.0 + 0.5))
    z2 = torch.sigmoid(torch.tensor(-1.0 + 0.5))
    expected = z2 * (z1 * start[0] + (1 - z1) * torch.tanh(first)) + (1 - z2) * torch.tanh(second)
    items = torch.stack([first, second, torch.zeros(2)])[None]  # then the target
    states = updater.closed_form_states(
        start, items, updater.item_terms(items), torch.tensor([[0, 0, 0]]), 2
    )
    assert torch.allclose(states[0, 2, 0], expected, atol=1e-6)
    assert torch.allclose(states[0, 0, 0], start[0]) and states[0, :, 1].abs().sum() == 0


CASES = [
    dict(group_updater=updater, join_logit=join, scoring=scoring)
    for updater in UPDATERS
    for join, scoring in (("sigmoid", "paper"), ("affinity", "max"), ("linear", "max"))
] + [
    dict(join_logit="cluster", scoring="max", group_updater="gated", cluster_count=4),
    dict(join_logit="affinity", scoring="max", readout="sasrec", group_start="zero"),
    dict(join_logit="affinity", scoring="lse", group_repr="encoder"),
    dict(join_logit="affinity", scoring="attend", readout="sasrec", group_updater="mean"),
]


@pytest.mark.parametrize("options", CASES, ids=lambda o: "-".join(map(str, o.values())))
@pytest.mark.parametrize("detach", [False, True])
def test_replay_equals_the_sequential_rollout(dataset, options, detach):
    """Log-probabilities, the history's groups, the target's group and log-likelihood,
    and their gradients, as the sequential rollout computes them for that allocation."""
    rewards = RewardConfig(likelihood_reward=1.0)
    process = make_process(dataset, rewards, eps=1.0, **options)
    samples = samples_of(dataset)
    assignments, _ = sampled_allocation(process, samples)

    def policy(state):
        return process.policy_logits(state, detach_inputs=detach)

    sequential = run_episodes(process, samples, policy, forced_actions=assignments)
    start = process.reset(samples)
    replay = process.replay(start, assignments, detach_policy_inputs=detach, allocation_terms=True)
    steps = sequential.log_probs.shape[1]
    log_probs = replay.by_step(replay.log_probs, start.cursor, steps)
    assert torch.allclose(log_probs, sequential.log_probs, atol=1e-5)
    # Eq. 14-15 at every step, as the steps computed them
    for term in ("allocation", "orthogonality"):
        replayed = replay.by_step(getattr(replay, f"{term}_reward"), start.cursor, steps)
        assert torch.allclose(replayed, sequential.reward_terms[term], atol=1e-5), term
    assert (sequential.reward_terms["orthogonality"] != 0).sum() >= len(samples)
    assert ((sequential.reward_terms["allocation"] - 1).abs() > 1e-3).any()
    entropies = replay.by_step(replay.entropies, start.cursor, steps)
    assert torch.allclose(entropies, sequential.entropies, atol=1e-5)
    assert torch.equal(replay.history_group_mask, sequential.history_group_mask)
    assert torch.allclose(replay.history_group_reprs, sequential.history_group_reprs, atol=1e-5)
    assert torch.allclose(replay.target_group_repr, sequential.target_group_repr, atol=1e-5)
    assert torch.allclose(replay.target_log_likelihood, sequential.target_log_likelihood, atol=1e-5)
    weights = torch.randn(log_probs.shape, generator=torch.Generator().manual_seed(1))
    parameters = [p for p in process.model.parameters() if p.requires_grad]

    def gradients(log_probs, likelihood):
        loss = (weights * log_probs).sum() - likelihood.sum()
        return torch.autograd.grad(loss, parameters, allow_unused=True)

    for got, expected in zip(
        gradients(log_probs, replay.target_log_likelihood),
        gradients(sequential.log_probs, sequential.target_log_likelihood),
    ):
        if expected is None:
            assert got is None or got.abs().max() < 1e-6
        else:
            assert got is not None and torch.allclose(got, expected, atol=1e-5)


PRESET = dict(
    group_start="zero",
    rl_gradient="policy",
    reinforce_baseline="batch_mean",
    scoring="max",
    encoder_block="standard",
    likelihood_reward=1.0,
    allocation_reward_weight=0.0,
    lambda_o=0.0,
    curriculum="none",
    join_logit="affinity",
    readout="sasrec",
)


def _loss_and_gradients(
    dataset, options, short, train_path, log_stats=True, agent_class=ReinforceAgent
):
    """One REINFORCE (or ``agent_class``) loss on a small model (seeded), backward:
    (loss, stats, the recommender's grads)."""
    config = TrainConfig(
        dataset="synthetic", max_len=6, dim=8, eps=1.0, train_path=train_path, **options
    )
    torch.manual_seed(0)
    model_config = ModelConfig(
        num_users=dataset.num_users, num_items=dataset.num_items, **asdict(config.model_options)
    )
    model = init_weights(AdaSplitModel(model_config), std=0.5).eval()
    agent = agent_class(AllocationProcess(model, config.reward), config)
    agent.log_stats = log_stats
    batch = samples_of(dataset, short=short)
    assert short == bool((batch.lengths < 5).all())
    loss, stats = agent.loss(batch, torch.Generator().manual_seed(3))
    loss.backward()
    return loss, stats, {name: p.grad for name, p in model.named_parameters()}


@pytest.mark.parametrize(
    "options",
    [
        dict(PRESET, group_updater="gated"),
        dict(PRESET, group_updater="attn_gru"),
        dict(reinforce_baseline="greedy", seq_rollout="greedy", group_updater="mean"),
        dict(PRESET, reinforce_baseline="greedy", seq_rollout="greedy"),
        {},  # the paper's learner and reward
    ],
    ids=["preset-gated", "preset-attn_gru", "greedy-mean", "preset-greedy", "paper"],
)
@pytest.mark.parametrize("short", [False, True], ids=["full", "short-histories"])
def test_parallel_loss_equals_the_sequential_loss(dataset, options, short):
    """The REINFORCE loss, its statistics and every gradient, on both paths, from the
    same seed (the sampling draws the same numbers on both); also for a batch whose
    episodes are all shorter than L + 1 steps."""
    loss, stats, grads = _loss_and_gradients(dataset, options, short, "sequential")
    parallel_loss, parallel_stats, parallel_grads = _loss_and_gradients(
        dataset, options, short, "parallel"
    )
    assert torch.allclose(parallel_loss, loss, atol=1e-5)
    for key, value in stats.items():
        if isinstance(value, float) and value == value:
            assert parallel_stats[key] == pytest.approx(value, abs=1e-5), key
    for name, grad in grads.items():
        other = parallel_grads[name]
        if grad is None:
            assert other is None or other.abs().max() < 1e-6, name
        else:
            assert other is not None and torch.allclose(other, grad, atol=1e-5), name


def test_the_parallel_path_trains_with_nothing_cached_before_it(dataset):
    """The parallel path samples under ``torch.inference_mode()``: the constants its
    rollout is the first to ask for (index ranges, pair masks, cached for reuse) must
    still be tensors that a graph may save for backward."""
    constants._index_range.cache_clear()
    constants._upper_pairs.cache_clear()
    options = dict(PRESET, group_updater="attn_gru")
    loss, _, grads = _loss_and_gradients(dataset, options, False, "parallel")
    assert torch.isfinite(loss)
    assert grads["item_embeddings.weight"].abs().sum() > 0


@pytest.mark.parametrize(
    "options",
    [dict(PRESET, group_updater="attn_gru"), {}],
    ids=["preset", "paper"],
)
@pytest.mark.parametrize(
    "agent_class, train_path",
    [
        (ReinforceAgent, "sequential"),
        (ReinforceAgent, "parallel"),
        (ActorCriticAgent, "sequential"),
    ],
    ids=["reinforce-sequential", "reinforce-parallel", "a2c"],
)
def test_an_update_whose_stats_are_not_logged_trains_the_same(
    dataset, options, agent_class, train_path
):
    """Between logged updates (``--log-every``) a learner skips what only the logs read
    (the preset's Eq. 14-15, which no reward weighs there, and the statistics): the loss
    and every gradient stay the same to the bit."""
    loss, stats, grads = _loss_and_gradients(
        dataset, options, False, train_path, agent_class=agent_class
    )
    unlogged_loss, unlogged_stats, unlogged_grads = _loss_and_gradients(
        dataset, options, False, train_path, log_stats=False, agent_class=agent_class
    )
    assert stats and unlogged_stats == {}
    assert torch.equal(unlogged_loss, loss)
    for name, grad in grads.items():
        other = unlogged_grads[name]
        assert (grad is None) == (other is None), name
        assert grad is None or torch.equal(other, grad), name
