"""The options beyond the paper (docs/design.md, section 7): each does what it says, and each
is off by default."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from adasplit_env.baselines import BaselineConfig, build_baseline
from adasplit_env.data import SyntheticConfig, load_dataset
from adasplit_env.errors import ConfigError
from adasplit_env.model.adasplit import AdaSplitModel
from adasplit_env.model.config import ModelConfig, RewardConfig
from adasplit_env.model.init import init_weights
from adasplit_env.process import AllocationProcess
from adasplit_env.rewards import discounted_returns
from adasplit_env.scoring import score_all_items
from agents.base import run_episodes
from agents.baselines import REINFORCE_BASELINES, step_mean
from agents.config import TrainConfig
from agents.trainer import Trainer

SMALL = SyntheticConfig(num_users=60, num_groups=4, items_per_group=8, max_length=12, seed=0)


@pytest.fixture(scope="module")
def dataset():
    return load_dataset("synthetic", synthetic=SMALL)


def make_process(dataset, rewards=None, **options) -> AllocationProcess:
    torch.manual_seed(0)
    config = ModelConfig(
        num_users=dataset.num_users, num_items=dataset.num_items, dim=8, max_len=6, **options
    )
    model = init_weights(AdaSplitModel(config), std=0.5).eval()  # spread, so no ties
    return AllocationProcess(model, rewards or RewardConfig())


def sasrec_with_weights_of(model: AdaSplitModel, encoder: str, dataset):
    """The SASRec baseline (eval mode) holding ``model``'s item table and the SASRec
    encoder it keeps as ``encoder``."""
    sasrec = build_baseline(BaselineConfig("sasrec", dataset.num_users, dataset.num_items, 8, 6))
    sasrec.load_state_dict(
        {
            key.replace(f"{encoder}.", "encoder."): value
            for key, value in model.state_dict().items()
            if key.startswith((f"{encoder}.", "item_embeddings."))
        }
    )
    return sasrec.eval()


def test_defaults_are_the_papers():
    config = TrainConfig()
    assert (config.model_options.group_start, config.model_options.scoring) == ("user", "paper")
    assert (config.reward.likelihood_reward, config.reward.allocation_reward_weight) == (0.0, 1.0)
    assert (config.learner.reinforce_baseline, config.learner.rl_gradient) == ("none", "full")


@pytest.mark.parametrize("start", ["zero", "learned"])
def test_a_shared_group_start_removes_every_per_user_parameter(dataset, start):
    process = make_process(dataset, group_start=start)
    samples = dataset.split.eval_samples("test", 6).subset(slice(0, 4))
    other_users = replace(samples, users=samples.users.flip(0))  # same histories, other users
    state = process.reset(samples)
    expected = torch.zeros(8) if start == "zero" else process.model.shared_start.detach()
    assert torch.allclose(state.group_reprs[:, 0], expected.expand(4, 8))
    assert torch.equal(score_all_items(process, samples), score_all_items(process, other_users))
    user_process = make_process(dataset)
    assert not torch.equal(
        score_all_items(user_process, samples), score_all_items(user_process, other_users)
    )


def test_max_scoring_ranks_by_the_best_matching_group(dataset):
    process = make_process(dataset, scoring="max", eps=0.9)  # eps high: several groups
    samples = dataset.split.eval_samples("test", 6).subset(slice(0, 8))
    scores = score_all_items(process, samples)
    state = process.allocate_history_greedily(samples)
    assert int(state.num_groups.max()) > 1
    table = process.model.item_embeddings.weight.detach()
    for row in range(len(samples)):
        groups = state.group_reprs[row, : int(state.num_groups[row])].detach()
        expected = (groups @ table.T).max(dim=0).values
        assert torch.allclose(scores[row, 1:], expected[1:], atol=1e-5)
    assert scores[:, 0].eq(-torch.inf).all()


def test_lse_scoring_is_the_log_sum_exp_over_the_groups(dataset):
    process = make_process(dataset, scoring="lse", eps=0.9)
    samples = dataset.split.eval_samples("test", 6).subset(slice(0, 8))
    scores = score_all_items(process, samples)
    state = process.allocate_history_greedily(samples)
    table = process.model.item_embeddings.weight.detach()
    for row in range(len(samples)):
        groups = state.group_reprs[row, : int(state.num_groups[row])].detach()
        expected = torch.logsumexp(groups @ table.T, dim=0)
        assert torch.allclose(scores[row, 1:], expected[1:], atol=1e-5)


def test_max_scoring_trains_l_seq_on_the_groups_the_history_built(dataset):
    process = make_process(dataset, scoring="max", eps=0.9)
    samples = dataset.split.train_samples(6).subset(slice(0, 8))
    actions = torch.zeros(8, 7, dtype=torch.int64)
    actions[:, ::2] = 5  # create on every other step (slot >= h creates)
    rollout = run_episodes(process, samples, process.policy_logits, forced_actions=actions)
    history = process.allocate_history(
        samples,
        lambda state: actions.gather(1, state.cursor.clamp(max=state.target_position)[:, None])[
            :, 0
        ],
    )
    assert torch.equal(rollout.history_group_mask, history.group_mask)
    assert torch.allclose(rollout.history_group_reprs, history.group_reprs)
    logits = process.model.target_logits(
        rollout.target_group_repr, rollout.history_group_reprs, rollout.history_group_mask
    )
    assert torch.allclose(
        logits, process.model.best_group_logits(history.group_reprs, history.group_mask)
    )


@pytest.mark.parametrize("scoring", ["max", "lse"])
def test_best_group_logits_match_the_masked_reference(dataset, scoring):
    """max / log-sum-exp of p_i . e_c over the active groups only, with and without a
    graph, and the same gradient as the plain masked computation."""
    process = make_process(dataset, scoring=scoring)
    model = process.model
    torch.manual_seed(0)
    group_reprs = torch.randn(5, 4, model.config.dim, requires_grad=True)
    group_mask = torch.tensor(
        [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 0], [1, 0, 0, 0]]
    )
    group_mask = group_mask.bool()
    logits = torch.einsum("bgd,id->bgi", group_reprs, model.item_embeddings.weight)
    logits = logits.masked_fill(~group_mask[:, :, None], -torch.inf)
    reference = logits.amax(dim=1) if scoring == "max" else torch.logsumexp(logits, dim=1)
    fast = model.best_group_logits(group_reprs, group_mask)
    with torch.no_grad():
        fast_no_graph = model.best_group_logits(group_reprs, group_mask)
    assert torch.allclose(fast, reference, atol=1e-6)
    assert torch.allclose(fast_no_graph, reference, atol=1e-6)
    weights = torch.randn_like(reference)
    expected = torch.autograd.grad((reference * weights).sum(), group_reprs)[0]
    got = torch.autograd.grad((fast * weights).sum(), group_reprs)[0]
    assert torch.allclose(got, expected, atol=1e-6)
    assert got[0, 1:].abs().sum() == 0 and got[2].abs().sum() > 0  # inactive slots: none


@pytest.mark.parametrize("scoring", ["paper", "max"])
def test_likelihood_reward_is_the_targets_log_likelihood_at_the_target_step(dataset, scoring):
    rewards = RewardConfig(likelihood_reward=2.0, allocation_reward_weight=0.5)
    process = make_process(dataset, rewards, scoring=scoring, eps=0.9)
    samples = dataset.split.train_samples(6).subset(slice(0, 8))
    generator = torch.Generator().manual_seed(0)
    rollout = run_episodes(process, samples, process.policy_logits, generator=generator)
    likelihood = rollout.reward_terms["likelihood"]
    last = rollout.active.long().sum(dim=1) - 1  # the target step of each episode
    rows = torch.arange(len(samples))
    logits = process.model.target_logits(
        rollout.target_group_repr, rollout.history_group_reprs, rollout.history_group_mask
    )
    expected = torch.log_softmax(logits, dim=1)[rows, samples.targets]
    assert torch.allclose(likelihood[rows, last], expected, atol=1e-5)
    # The same log-likelihood, with its graph, is what L_seq reads: same loss, same gradient
    # as the cross-entropy of the logits computed after the rollout.
    assert torch.allclose(rollout.target_log_likelihood, expected, atol=1e-5)
    params = [q for q in process.model.parameters() if q.requires_grad]
    shared = torch.autograd.grad(
        -rollout.target_log_likelihood.mean(), params, retain_graph=True, allow_unused=True
    )
    direct = torch.autograd.grad(
        torch.nn.functional.cross_entropy(logits, samples.targets), params, allow_unused=True
    )
    compared = 0
    for param, one, other in zip(params, shared, direct, strict=True):
        assert (one is None) == (other is None)
        if one is not None:
            if param is process.model.item_embeddings.weight:
                # the padding row scores 0 with every group, an exact tie: the max may
                # share its gradient among the groups differently (it is never ranked)
                one, other = one[1:], other[1:]
            assert torch.allclose(one, other, atol=1e-6)
            compared += int(one.abs().sum() > 0)
    assert compared >= 3
    assert likelihood.abs().sum() == pytest.approx(likelihood[rows, last].abs().sum().item())
    terms = rollout.reward_terms
    affinity = terms["allocation"] + 0.1 * terms["orthogonality"]
    expected_reward = 0.5 * affinity + terms["creation"] + 2.0 * likelihood
    assert torch.allclose(rollout.rewards, expected_reward, atol=1e-5)
    off = make_process(dataset, scoring=scoring, eps=0.9)
    generator = torch.Generator().manual_seed(0)
    plain = run_episodes(off, samples, off.policy_logits, generator=generator)
    assert plain.reward_terms["likelihood"].abs().sum() == 0
    assert plain.target_log_likelihood is None


def test_step_mean_baseline_by_hand():
    returns = torch.tensor([[1.0, 2.0, 3.0], [3.0, 4.0, 0.0]])
    active = torch.tensor([[True, True, True], [True, True, False]])
    assert step_mean(returns, active).tolist() == [[2.0, 3.0, 3.0], [2.0, 3.0, 0.0]]


@pytest.mark.parametrize("seq_rollout", ["sampled", "greedy"])
def test_greedy_baseline_is_what_the_argmax_allocation_earns(dataset, tmp_path, seq_rollout):
    config = TrainConfig(
        dim=8, max_len=6, batch_size=64, scoring="max", likelihood_reward=1.0, eps=0.9,
        join_logit="linear", temperature=0.2, reinforce_baseline="greedy", seq_rollout=seq_rollout,
        run_dir=str(tmp_path / "run"), progress=False,
    )  # fmt: skip
    trainer = Trainer(config, dataset=dataset)
    agent = trainer.agent
    init_weights(agent.model, std=0.5)  # a policy that depends on its inputs
    agent.eval()  # no dropout: the same actions earn the same rewards
    batch = trainer.train_samples.subset(slice(0, 64))
    sampled = run_episodes(
        agent.process, batch, agent.policy_logits, generator=torch.Generator().manual_seed(0)
    )
    greedy = run_episodes(agent.process, batch, agent.policy_logits, greedy=True)
    # an argmax rollout already made (seq_rollout greedy) is reused, else one is rolled out
    made = greedy if seq_rollout == "greedy" else sampled  # what sequence_rollout returns
    baseline = agent.baseline_rollout(sampled, batch, made)
    assert (baseline is greedy) == (seq_rollout == "greedy")
    assert torch.equal(baseline.actions, greedy.actions)
    advantages = agent.advantages(sampled, baseline)
    by_hand = discounted_returns(sampled.rewards, 0.9) - discounted_returns(greedy.rewards, 0.9)
    assert torch.allclose(advantages, torch.where(sampled.active, by_hand, 0.0))
    # an episode that sampled the argmax allocation throughout reinforces nothing
    as_greedy = ((sampled.actions == greedy.actions) | ~sampled.active).all(dim=1)
    assert 0 < int(as_greedy.sum()) < len(as_greedy)
    assert advantages[as_greedy].abs().max() == 0
    assert advantages[~as_greedy].abs().max() > 1e-3


@pytest.mark.parametrize("rl_gradient", ["full", "policy"])
def test_rl_gradient_policy_stops_at_the_policys_inputs(dataset, tmp_path, rl_gradient):
    config = TrainConfig(
        dim=8, max_len=6, batch_size=16, beta=1.0, rl_gradient=rl_gradient,
        reinforce_baseline="batch_mean", run_dir=str(tmp_path / "run"), progress=False,
    )  # fmt: skip
    trainer = Trainer(config, dataset=dataset)
    batch = trainer.train_samples.subset(slice(0, 16))
    model = init_weights(trainer.agent.model, std=0.3)  # a policy that depends on its inputs

    def gradients(beta: float) -> tuple[torch.Tensor, torch.Tensor]:
        trainer.agent.config.learner.beta = beta
        trainer.agent.zero_grad()
        torch.manual_seed(0)  # the same dropout masks
        loss, _ = trainer.agent.loss(batch, generator=torch.Generator().manual_seed(0))
        loss.backward()
        return model.policy.hidden.weight.grad.clone(), model.item_embeddings.weight.grad.clone()

    with_rl, without_rl = gradients(1.0), gradients(0.0)  # same sampled actions
    assert not torch.allclose(with_rl[0], without_rl[0])  # L_rl trains the policy head
    rl_on_embeddings = (with_rl[1] - without_rl[1]).abs().max()
    if rl_gradient == "policy":
        assert rl_on_embeddings < 1e-7
    else:
        assert rl_on_embeddings > 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("baseline", ["batch_mean", "greedy"])
def test_options_train_end_to_end(dataset, tmp_path, baseline):
    config = TrainConfig(
        dim=8, max_len=6, batch_size=32, epochs=1, eval_users=20, group_start="learned",
        readout="sasrec",
        scoring="max", likelihood_reward=1.0, allocation_reward_weight=0.0, temperature=0.3,
        reinforce_baseline=baseline, rl_gradient="policy", run_dir=str(tmp_path / "run"),
        progress=False,
    )  # fmt: skip
    trainer = Trainer(config, dataset=dataset)
    model = trainer.model
    assert type(trainer.agent.return_baseline) is REINFORCE_BASELINES[baseline]
    assert model.policy.temperature == 0.3 and model.config.scoring == "max"
    assert hasattr(model.readout, "encoder") and hasattr(model, "shared_start")
    untrained = trainer.evaluate("val")["NDCG@10"]
    start = model.shared_start.detach().clone()
    users = model.user_embeddings.weight.detach().clone()
    results = trainer.fit()
    assert not torch.equal(model.shared_start, start)  # group_start learned: trained
    assert torch.equal(model.user_embeddings.weight, users)  # and no per-user vector read
    # it learns: the validation NDCG@10 of the best epoch beats the untrained model's
    assert results["val"]["NDCG@10"] > untrained + 1.0


@pytest.mark.parametrize("scoring", ["paper", "max"])
def test_sasrec_readout_adds_a_sasrec_state_to_every_score(dataset, scoring):
    process = make_process(dataset, readout="sasrec", scoring=scoring, eps=0.7)
    model = process.model
    samples = dataset.split.eval_samples("test", 6).subset(slice(0, 8))
    group_only = AdaSplitModel(replace(model.config, readout="group")).eval()
    group_only.load_state_dict(model.state_dict(), strict=False)  # the same weights, no readout
    sequence_scores = model.item_logits(model.sequence_state(samples.histories)).detach()
    combined = score_all_items(process, samples)
    expected = score_all_items(AllocationProcess(group_only), samples) + sequence_scores
    assert torch.allclose(combined[:, 1:], expected[:, 1:], atol=1e-5)
    # the sequence part is SASRec itself: the baseline with these weights gives the same state
    sasrec = sasrec_with_weights_of(model, "readout.encoder", dataset)
    assert torch.allclose(
        sasrec.sequence_repr(samples.histories), model.sequence_state(samples.histories)
    )


def test_standard_encoder_block_has_a_residual_and_a_wide_feed_forward(dataset):
    paper = make_process(dataset).model.encoder.blocks[0]
    standard = make_process(dataset, encoder_block="standard").model.encoder.blocks[0]
    assert paper.feed_forward_in.out_features == 8 and standard.feed_forward_in.out_features == 32
    inputs = torch.randn(2, 4, 8)
    allowed = torch.ones(2, 4, 4, dtype=torch.bool)
    with torch.no_grad():
        for block in (paper, standard):  # zero attention: only the residual path is left
            block.value.weight.zero_()
        # Eq. 5 as written: LayerNorm of a zero attention output is constant over positions
        out_paper = paper.eval()(inputs, allowed)
        out_standard = standard.eval()(inputs, allowed)
    assert torch.allclose(out_paper[:, 0], out_paper[:, 1], atol=1e-6)
    assert not torch.allclose(out_standard[:, 0], out_standard[:, 1], atol=1e-3)


def test_greedy_seq_rollout_trains_l_seq_on_the_argmax_allocation(dataset, tmp_path):
    config = TrainConfig(
        dim=8, max_len=6, batch_size=16, seq_rollout="greedy", run_dir=str(tmp_path / "run"),
        progress=False,
    )  # fmt: skip
    trainer = Trainer(config, dataset=dataset)
    agent = trainer.agent
    init_weights(agent.model, std=0.5)
    agent.model.eval()  # no dropout: the two computations below must match
    batch = trainer.train_samples.subset(slice(0, 16))
    sampled = run_episodes(agent.process, batch, agent.policy_logits, generator=None)
    greedy = run_episodes(agent.process, batch, agent.policy_logits, greedy=True)
    chosen = agent.sequence_rollout(sampled, batch)
    assert torch.equal(chosen.actions, greedy.actions)
    assert torch.allclose(agent.sequence_loss(chosen, batch), agent.sequence_loss(greedy, batch))
    agent.config.learner.seq_rollout = "sampled"
    assert agent.sequence_rollout(sampled, batch) is sampled


def test_pair_cosine_of_the_groups_by_hand(dataset):
    from agents.base import mean_pair_cosine

    process = make_process(dataset)
    state = process.reset(dataset.split.train_samples(6).subset(slice(0, 2)))
    groups = torch.zeros_like(state.group_reprs)
    groups[0, :3] = torch.tensor(
        [[2.0] + [0.0] * 7, [0.0, 3.0] + [0.0] * 6, [1.0, 1.0] + [0.0] * 6]
    )
    groups[1, :2] = torch.tensor([[1.0] * 8, [-2.0] * 8])
    state = replace(state, group_reprs=groups, num_groups=torch.tensor([3, 2]))
    # episode 0: pairs (0,1) 0, (0,2) and (1,2) 1/sqrt(2); episode 1: |cos| 1
    expected = ((2 / 2**0.5) / 3 + 1.0) / 2
    assert mean_pair_cosine(state) == pytest.approx(expected)
    single = replace(state, num_groups=torch.tensor([1, 1]))
    assert mean_pair_cosine(single) != mean_pair_cosine(single)  # NaN: no pairs


def test_linear_join_logit_is_the_score_itself(dataset):
    sigmoid = make_process(dataset, eps=0.3)
    linear = make_process(dataset, eps=0.3, join_logit="linear")
    state = sigmoid.reset(dataset.split.train_samples(6).subset(slice(0, 4)))
    with torch.no_grad():
        bounded = sigmoid.policy_logits(state)[:, 0]
        unbounded = linear.policy_logits(state)[:, 0]  # same weights (same seed)
    assert torch.allclose(bounded, torch.sigmoid(unbounded))
    assert unbounded.abs().max() > 1.0  # not confined to (0, 1)


def test_affinity_join_logit_is_the_scaled_affinity(dataset):
    process = make_process(dataset, eps=0.3, join_logit="affinity")
    policy = process.model.policy
    assert torch.equal(policy.affinity_map, torch.eye(8))  # not reset by the init scheme
    with torch.no_grad():
        policy.affinity_map.mul_(2.0)
    items = torch.tensor([[1.0, 0, 0, 0, 0, 0, 0, 0], [0, 1.0, 0, 0, 0, 0, 0, 0]])
    groups = torch.zeros(2, 3, 8)
    groups[:, 0, 0] = 4.0  # predicts item 0 of the batch
    groups[:, 1, 1] = 8.0  # predicts item 1
    logits = policy.logits(items, groups, torch.tensor([2, 2]))
    # (v 2I) . p / sqrt(8); slot 2 creates with eps; nothing beyond
    expected = torch.tensor([[8.0, 0.0, 0.3], [0.0, 16.0, 0.3]])
    expected[:, :2] /= 8**0.5
    assert torch.allclose(logits, expected)
    assert logits.argmax(dim=1).tolist() == [0, 1]  # each item joins the group predicting it
    # the create slot wins where no group is similar enough
    far = policy.logits(-items, groups, torch.tensor([2, 2]))
    assert far.argmax(dim=1).tolist() == [2, 2]
    # and the policy is trained: L_rl reaches W_a
    far.log_softmax(dim=1)[:, 0].sum().backward()
    assert policy.affinity_map.grad is not None and policy.affinity_map.grad.abs().sum() > 0


def test_an_earlier_versions_default_reward_key_still_loads():

    assert RewardConfig.from_dict({"paper_weight": 1.0}) == RewardConfig()
    with pytest.raises(ConfigError, match="paper_weight"):
        RewardConfig.from_dict({"paper_weight": 0.5})


@pytest.mark.parametrize("start", ["user", "zero"])
def test_cluster_join_puts_one_cluster_in_each_group(dataset, start):
    process = make_process(
        dataset, join_logit="cluster", scoring="max", group_start=start, cluster_count=3
    )
    process.model.policy.fit(dataset.split)
    clusters = process.model.policy.item_clusters
    assert clusters.max() == 2 and len(clusters.unique()) == 3
    samples = dataset.split.eval_samples("test", 6)
    greedy = process.allocate_history_greedily(samples)
    sampled = run_episodes(process, samples, process.policy_logits)  # sampling = the rule
    assert torch.equal(sampled.final_state.assignments[:, :-1], greedy.assignments[:, :-1])
    for state in (greedy, sampled.final_state):
        for row in range(len(samples)):
            real = samples.histories[row] != 0
            groups = state.assignments[row, :-1][real]
            items_cluster = clusters[samples.histories[row][real]]
            for group in groups.unique():  # one cluster a group, one group a cluster
                assert len(items_cluster[groups == group].unique()) == 1
            assert len(groups.unique()) == len(items_cluster.unique())
            if start == "zero":  # the empty first group is filled first
                assert groups[0] == 0
    with pytest.raises(ConfigError, match="needs scoring max, lse or attend"):
        ModelConfig(num_users=3, num_items=5, join_logit="cluster")


def test_cooccurrence_clusters_recover_planted_interests():
    from adasplit_env.analysis.allocation_quality import adjusted_rand_index
    from adasplit_env.data.cooccurrence import cooccurrence_clusters

    planted = load_dataset("synthetic")
    labels = cooccurrence_clusters(planted.split, int(planted.item_groups.max()) + 1)
    assert adjusted_rand_index(labels[1:], planted.item_groups[1:]) > 0.7
    again = cooccurrence_clusters(planted.split, int(planted.item_groups.max()) + 1)
    assert (labels == again).all()  # seeded


def test_cluster_join_trains_and_its_checkpoint_keeps_the_clusters(tmp_path, dataset):
    from adasplit_env.checkpoint import load_checkpoint

    config = TrainConfig(
        epochs=1, dim=8, max_len=6, eval_users=30, progress=False, threads=1,
        join_logit="cluster", scoring="max", group_start="zero", cluster_count=4,
    )  # fmt: skip
    trainer = Trainer(config, dataset=dataset, run_dir=tmp_path / "run")
    results = trainer.fit()
    # the final report measures the groups' coherence: clusters are interest-like by make
    coherence = results["group_coherence"]
    assert coherence["split_users"] > 0 and coherence["over_contiguous"][0] > 0
    clusters = trainer.model.policy.item_clusters.clone()
    assert len(clusters.unique()) == 4
    loaded = load_checkpoint(tmp_path / "run" / "best.pt", dataset=dataset)
    assert torch.equal(loaded.model.policy.item_clusters, clusters)


def test_group_encoder_reads_each_group_as_sasrec_over_its_own_items(dataset):
    process = make_process(dataset, group_repr="encoder", scoring="max", eps=0.9)
    model = process.model
    samples = dataset.split.eval_samples("test", 6).subset(slice(0, 8))
    state = process.allocate_history_greedily(samples)
    assert int(state.num_groups.max()) > 1  # eps high: several groups
    encoded = process.scoring_group_reprs(state).detach()
    length = state.target_position
    histories, assignments = samples.histories, state.assignments[:, :length]
    for row in range(len(samples)):
        for slot in range(state.max_groups):
            members = assignments[row] == slot
            if not bool(members.any()):
                assert encoded[row, slot].abs().max() == 0  # no items, no group
                continue
            # the group alone: the other items as padding, read at its newest item
            alone = torch.where(members, histories[row], 0)[None]
            outputs = model.group_view.encoder.encode(model.item_embeddings(alone), alone)
            newest = int(torch.nonzero(members).max())
            assert torch.allclose(encoded[row, slot], outputs[0, newest], atol=1e-5)
    # scores are the max over the encoded groups, not over the updater's
    scores = score_all_items(process, samples)
    table = model.item_embeddings.weight.detach()
    for row in range(len(samples)):
        groups = encoded[row, : int(state.num_groups[row])]
        expected = (groups @ table.T).max(dim=0).values
        assert torch.allclose(scores[row, 1:], expected[1:], atol=1e-5)


def test_one_group_encoder_is_sasrec(dataset):
    process = make_process(dataset, group_repr="encoder", scoring="max", max_groups=1)
    model = process.model
    samples = dataset.split.eval_samples("test", 6).subset(slice(0, 8))
    sasrec = sasrec_with_weights_of(model, "group_view.encoder", dataset)
    expected = sasrec.sequence_repr(samples.histories) @ model.item_embeddings.weight.T
    assert torch.allclose(score_all_items(process, samples)[:, 1:], expected[:, 1:], atol=1e-5)


def test_group_encoder_beside_the_sasrec_state_adds_the_two_scores(dataset):
    process = make_process(dataset, group_repr="encoder", scoring="max", readout="sasrec", eps=0.9)
    model = process.model
    samples = dataset.split.eval_samples("test", 6).subset(slice(0, 8))
    state = process.allocate_history_greedily(samples)
    assert int(state.num_groups.max()) > 1
    encoded = process.scoring_group_reprs(state).detach()
    table = model.item_embeddings.weight.detach()
    whole = sasrec_with_weights_of(model, "readout.encoder", dataset).sequence_repr(
        samples.histories
    )
    scores = score_all_items(process, samples)
    for row in range(len(samples)):
        groups = encoded[row, : int(state.num_groups[row])]
        expected = (groups @ table.T).max(dim=0).values + whole[row] @ table.T
        assert torch.allclose(scores[row, 1:], expected[1:], atol=1e-5)
    # one group: two SASRec encoders over the whole history, summed
    one = make_process(dataset, group_repr="encoder", scoring="max", readout="sasrec", max_groups=1)
    both = sum(
        sasrec_with_weights_of(one.model, name, dataset).sequence_repr(samples.histories)
        for name in ("group_view.encoder", "readout.encoder")
    )
    expected = both @ one.model.item_embeddings.weight.T
    assert torch.allclose(score_all_items(one, samples)[:, 1:], expected[:, 1:], atol=1e-5)


def test_attend_scoring_weighs_the_groups_by_the_sequence_state(dataset):
    with pytest.raises(ConfigError, match="scoring attend needs readout sasrec"):
        ModelConfig(num_users=3, num_items=5, scoring="attend")
    process = make_process(
        dataset, group_repr="encoder", scoring="attend", readout="sasrec", eps=0.9
    )
    model = process.model
    samples = dataset.split.eval_samples("test", 6).subset(slice(0, 8))
    state = process.allocate_history_greedily(samples)
    assert int(state.num_groups.max()) > 1
    encoded = process.scoring_group_reprs(state).detach().double()
    table = model.item_embeddings.weight.detach().double()
    whole = model.sequence_state(samples.histories).detach().double()
    scores = score_all_items(process, samples).double()
    for row in range(len(samples)):
        groups = encoded[row, : int(state.num_groups[row])]  # (h, d)
        relevance = groups @ whole[row] / groups.shape[1] ** 0.5
        weights = relevance.exp() / relevance.exp().sum()
        expected = (weights @ groups + whole[row]) @ table.T
        assert torch.allclose(scores[row, 1:], expected[1:], atol=1e-4)
    # with one group the weight is 1: the same scores as max
    one = make_process(
        dataset, group_repr="encoder", scoring="attend", readout="sasrec", max_groups=1
    )
    as_max = AllocationProcess(AdaSplitModel(replace(one.model.config, scoring="max")).eval())
    as_max.model.load_state_dict(one.model.state_dict())
    assert torch.allclose(
        score_all_items(one, samples), score_all_items(as_max, samples), atol=1e-5
    )


def test_group_encoder_l_seq_and_likelihood_reward_read_the_encoded_groups(dataset):
    rewards = RewardConfig(likelihood_reward=1.0, allocation_reward_weight=0.0)
    process = make_process(dataset, rewards, group_repr="encoder", scoring="lse", eps=0.9)
    samples = dataset.split.train_samples(6).subset(slice(0, 8))
    actions = torch.zeros(8, 7, dtype=torch.int64)
    actions[:, ::2] = 5  # create on every other step
    rollout = run_episodes(process, samples, process.policy_logits, forced_actions=actions)
    history = process.allocate_history(
        samples,
        lambda state: actions.gather(1, state.cursor.clamp(max=state.target_position)[:, None])[
            :, 0
        ],
    )
    logits = process.model.best_group_logits(
        process.scoring_group_reprs(history), history.group_mask
    )
    expected = torch.log_softmax(logits, dim=1).gather(1, samples.targets[:, None])[:, 0]
    assert torch.allclose(rollout.target_log_likelihood, expected, atol=1e-5)
    # the updater's groups would give another likelihood: the encoder is what is read
    updater_logits = process.model.best_group_logits(history.group_reprs, history.group_mask)
    assert not torch.allclose(logits, updater_logits, atol=1e-3)


def test_group_encoder_needs_a_group_scoring_and_trains(dataset, tmp_path):
    with pytest.raises(ConfigError, match="group_repr encoder needs scoring max, lse or attend"):
        ModelConfig(num_users=3, num_items=5, group_repr="encoder")
    config = TrainConfig(
        epochs=1, dim=8, max_len=6, eval_users=30, progress=False, threads=1,
        group_repr="encoder", scoring="max", group_start="zero", likelihood_reward=1.0,
        allocation_reward_weight=0.0, run_dir=str(tmp_path / "run"),
    )  # fmt: skip
    results = Trainer(config, dataset=dataset).fit()
    assert 0.0 <= results["test"]["NDCG@10"] <= 100.0


def test_allocation_gap_is_zero_for_a_fixed_rule_and_matches_the_rollouts(dataset):
    from reproduce.allocation_gap import allocation_gap

    samples = dataset.split.train_samples(6)
    rule = make_process(dataset, join_logit="cluster", scoring="max", cluster_count=3)
    rule.model.policy.fit(dataset.split)
    fixed = allocation_gap(rule.model, samples, count=64)
    assert fixed.mean == 0 and fixed.std == 0  # a deterministic policy: sampled = argmax
    assert fixed.groups_sampled == fixed.groups_greedy > 1
    # a learned policy's gap is the difference of a sampled and an argmax rollout
    learned = make_process(dataset, scoring="max", join_logit="linear", eps=0.9, temperature=5.0)
    gap = allocation_gap(learned.model, samples, count=64, seed=3)
    generator = torch.Generator().manual_seed(3)
    chosen = torch.randperm(len(samples), generator=generator)[:64]
    batch = samples.subset(chosen)
    scored = AllocationProcess(learned.model, RewardConfig(likelihood_reward=1.0))
    sampled = run_episodes(scored, batch, scored.policy_logits, generator=generator)
    greedy = run_episodes(scored, batch, scored.policy_logits, greedy=True)
    by_hand = sampled.target_log_likelihood - greedy.target_log_likelihood
    assert gap.mean == pytest.approx(by_hand.mean().item(), abs=1e-6)
    assert gap.groups_sampled != gap.groups_greedy and abs(gap.mean) > 1e-3
