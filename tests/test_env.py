"""The MDP's invariants and its Gymnasium faces."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

import adasplit_env
from adasplit_env.data import load_dataset
from adasplit_env.envs import AllocationEnv, AllocationVectorEnv
from adasplit_env.envs.core import build_env_parts
from adasplit_env.envs.sb3_vec_env import AllocationSB3VecEnv
from adasplit_env.errors import ConfigError
from adasplit_env.metrics import target_ranks
from adasplit_env.model import AdaSplitModel, ModelConfig
from adasplit_env.model.init import init_weights
from adasplit_env.scoring import _GreedyGroups, _score_bounds, rank_scores, score_all_items


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic")


def rollout_single(env, seed, policy_seed, steps):
    rng = np.random.default_rng(policy_seed)
    obs, info = env.reset(seed=seed)
    trace = []
    for _ in range(steps):
        action = int(rng.choice(np.flatnonzero(info["action_mask"])))
        obs, reward, terminated, truncated, info = env.step(action)
        trace.append((action, reward, info["num_groups"], obs["groups"].copy()))
        if terminated:
            break
    return trace


def test_registered_and_makes_with_no_setup():
    env = gym.make(adasplit_env.ENV_ID, dataset="synthetic")
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    obs, reward, terminated, truncated, info = env.step(
        env.action_space.sample(mask=info["action_mask"])
    )
    assert set(info) >= {
        "action_mask",
        "num_groups",
        "created",
        "allocation_reward",
        "orthogonality_reward",
        "creation_reward",
    }


def test_checkers_pass(synthetic):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = AllocationEnv(synthetic, render_mode="ansi")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # infinite Box bounds are reported, not errors
        check_env(env)
        sb3_check_env(env)


def test_same_seed_same_actions_same_trajectory(synthetic):
    env = AllocationEnv(synthetic)
    a, b = rollout_single(env, 5, 1, 30), rollout_single(env, 5, 1, 30)
    assert [x[:3] for x in a] == [x[:3] for x in b]
    assert all(np.array_equal(x[3], y[3]) for x, y in zip(a, b))


def test_single_vector_and_process_agree(synthetic):
    model = AdaSplitModel(
        ModelConfig(num_users=synthetic.num_users, num_items=synthetic.num_items, dim=16)
    )
    single = AllocationEnv(synthetic, model=model)
    vector = AllocationVectorEnv(4, synthetic, model=model)
    obs, info = vector.reset(seed=10)
    first_samples = info["sample_index"].copy()
    rng = np.random.default_rng(0)
    actions_per_env = [[], [], [], []]
    vector_rewards = [[], [], [], []]
    finished = np.zeros(4, dtype=bool)
    for _ in range(12):
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in info["action_mask"]])
        obs, rewards, terminated, truncated, info = vector.step(actions)
        for i in range(4):
            if not finished[i]:
                actions_per_env[i].append(int(actions[i]))
                vector_rewards[i].append(float(rewards[i]))
        finished |= terminated
        if finished.all():
            break
    assert finished.all()
    samples = single.parts.samples
    process = single.process
    for i in range(4):
        _, info = single.reset(seed=10 + i)
        assert info["sample_index"] == first_samples[i]
        rewards = []
        for action in actions_per_env[i]:
            _, reward, terminated, _, _ = single.step(action)
            rewards.append(reward)
        assert terminated
        assert rewards == pytest.approx(vector_rewards[i], abs=1e-5)
        # and the bare process on the same sample
        with torch.no_grad():
            model.eval()
            state = process.reset(samples.subset(torch.tensor([info["sample_index"]])))
            direct = []
            for action in actions_per_env[i]:
                state, out = process.step(state, torch.tensor([action]))
                direct.append(out.reward.item())
        assert direct == pytest.approx(rewards, abs=1e-5)


def test_vector_env_next_step_autoreset(synthetic):
    vector = AllocationVectorEnv(3, synthetic, dim=8)
    _, info = vector.reset(seed=0)
    done_before = np.zeros(3, dtype=bool)
    for _ in range(40):
        obs, rewards, terminated, _, info = vector.step(np.zeros(3, dtype=np.int64))
        # the step after a termination restarts: reward 0, not terminated, one group
        assert np.all(rewards[done_before] == 0.0)
        assert not np.any(terminated[done_before])
        assert np.all(info["num_groups"][done_before] == 1)
        done_before = terminated


def test_masks_are_joins_plus_create_and_h_is_bounded(synthetic):
    env = AllocationEnv(synthetic, dim=8, max_len=10, max_groups=4)
    rng = np.random.default_rng(0)
    for episode in range(30):
        obs, info = env.reset(seed=episode)
        terminated = False
        while not terminated:
            h = info["num_groups"]
            expected = np.zeros(4, dtype=np.int8)
            expected[: min(h + 1, 4)] = 1
            assert np.array_equal(info["action_mask"], expected)
            assert np.array_equal(env.action_masks(), expected.astype(bool))
            assert np.array_equal(obs["group_mask"], (np.arange(4) < h).astype(np.float32))
            action = int(rng.integers(4))  # every slot means something
            obs, _, terminated, _, info = env.step(action)
            assert info["num_groups"] <= 4
            assert info["created"] == (action >= h)
            assert info["num_groups"] == h + (action >= h)


@pytest.mark.slow
def test_random_masked_agent_runs_1000_episodes(synthetic):
    env = gym.make(adasplit_env.ENV_ID, dataset=synthetic, dim=16)
    _, info = env.reset(seed=0)
    episodes = steps = 0
    while episodes < 1000:
        _, reward, terminated, truncated, info = env.step(
            env.action_space.sample(mask=info["action_mask"])
        )
        assert np.isfinite(reward)
        steps += 1
        if terminated or truncated:
            episodes += 1
            _, info = env.reset()
    assert steps >= 1000 * 2


def test_gradients_reach_encoder_and_embeddings(synthetic):
    parts = build_env_parts(synthetic, dim=8)
    process = parts.process
    process.model.train()
    state = process.reset(parts.samples.subset(slice(0, 16)))
    while not bool(state.done.all()):
        logits = process.policy_logits(state)
        actions = torch.distributions.Categorical(logits=logits).sample()
        state, out = process.step(state, actions)
    loss = (state.group_reprs * state.group_mask[..., None]).pow(2).sum()
    loss.backward()
    model = process.model
    for name in (
        "item_embeddings.weight",
        "user_embeddings.weight",
        "encoder.blocks.0.query.weight",
        "group_updater.candidate_item.weight",
    ):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"encoder": "lstm"}, "unknown encoder"),
        ({"group_updater": "transformer"}, "unknown group updater"),
        ({"max_groups": 0}, "max_groups must be >= 1"),
        ({"dim": 0}, "dim must be a positive integer"),
        ({"rewards": {"curriculum": "cosine"}}, "unknown curriculum"),
    ],
)
def test_bad_configuration_fails_at_construction(synthetic, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        AllocationEnv(synthetic, **kwargs)


def test_action_outside_space_is_refused(synthetic):
    env = AllocationEnv(synthetic, dim=8)
    env.reset(seed=0)
    for bad in (-1, env.action_space.n, 2.5, [0, 1]):
        with pytest.raises(ValueError):
            env.step(bad)
    vector = AllocationVectorEnv(2, synthetic, dim=8)
    vector.reset(seed=0)
    with pytest.raises(ValueError, match="outside the action space"):
        vector.step(np.array([0, 99]))


def test_render_ansi_shows_groups(synthetic):
    env = AllocationEnv(synthetic, dim=8, render_mode="ansi")
    env.reset(seed=3)
    env.step(0)
    env.step(1)
    text = env.render()
    assert "group 0" in text and "group 1" in text and "planted" in text and "<- now" in text


def test_sb3_vec_env_masks_and_terminal_observation(synthetic):
    from sb3_contrib.common.maskable.utils import get_action_masks

    parts = build_env_parts(synthetic, dim=8)
    venv = AllocationSB3VecEnv(parts, 8, seed=0)
    obs = venv.reset()
    assert obs["groups"].shape == (8, parts.process.max_groups, 8)
    seen_terminal = False
    for _ in range(30):
        masks = get_action_masks(venv)
        assert masks.shape == (8, parts.process.max_groups)
        actions = np.array([np.flatnonzero(m)[0] for m in masks])
        obs, rewards, dones, infos = venv.step(actions)
        for i in np.flatnonzero(dones):
            assert "terminal_observation" in infos[i]
            assert obs["group_mask"][i].sum() == 1  # restarted at once
            seen_terminal = True
    assert seen_terminal and venv.finished_episodes


@pytest.mark.parametrize("readout", ["group", "sasrec"])
@pytest.mark.parametrize("cutoff", [None, 10])
@pytest.mark.parametrize("exclude", [False, True])
def test_rank_scores_rank_targets_as_the_full_scores(readout, cutoff, exclude):
    dataset = load_dataset("synthetic")
    parts = build_env_parts(dataset, dim=8, eps=0.6, readout=readout)
    process = parts.process
    torch.manual_seed(0)
    init_weights(process.model, std=0.3)
    process.model.eval()
    samples = dataset.split.eval_samples("test", 10).subset(slice(0, 300))
    seen = None
    if exclude:  # the history and every third item: many that would otherwise outrank
        every_third = np.arange(1, dataset.num_items + 1, 3)
        seen = [np.union1d(h, every_third) for h in dataset.split.seen_items("test")[:300]]
    with torch.no_grad():
        assert process.allocate_history_greedily(samples).num_groups.float().mean() > 2
    full_scores = score_all_items(process, samples)
    pruned_scores = rank_scores(process, samples, cutoff, seen)
    full = target_ranks(full_scores, samples.targets, seen)
    pruned = target_ranks(pruned_scores, samples.targets, seen)
    assert not torch.equal(full_scores, pruned_scores)  # bounds stood in for routes
    top = full <= 10
    assert 0 < int(top.sum()) < len(samples)
    if cutoff is None:
        assert torch.equal(pruned, full)
    else:
        assert torch.equal(pruned[top], full[top])
        assert (pruned[~top] > cutoff).all()


def test_score_bounds_hold_every_routed_score():
    dataset = load_dataset("synthetic")
    parts = build_env_parts(dataset, dim=8, eps=0.6)
    process = parts.process
    torch.manual_seed(0)
    init_weights(process.model, std=0.3)
    with torch.no_grad():  # create scores e_u . e_c well outside the groups' range
        process.model.user_embeddings.weight.mul_(10.0)
    process.model.eval()
    samples = dataset.split.eval_samples("test", 10).subset(slice(0, 300))
    full_scores = score_all_items(process, samples)[:, 1:]
    with torch.no_grad():
        state = process.allocate_history_greedily(samples)
        table = process.model.item_embeddings.weight
        create_scores = state.user_embs @ table.T
        can_create = state.num_groups < process.max_groups
        lower, upper = _score_bounds(
            _GreedyGroups(
                state, state.group_reprs, state.group_mask, can_create, table, create_scores
            )
        )
    creates = can_create[:, None] & (full_scores == create_scores[:, 1:])
    assert creates.any() and (~can_create).any()  # both kinds of route are bounded
    assert (lower[:, 1:] <= full_scores + 1e-6).all()
    assert (full_scores <= upper[:, 1:] + 1e-6).all()
    assert (lower[:, 1:] < upper[:, 1:]).any()


@pytest.mark.parametrize("join_logit", ["sigmoid", "linear", "affinity"])
def test_scorer_matches_per_item_reference(join_logit):
    dataset = load_dataset("synthetic")
    parts = build_env_parts(dataset, dim=8, max_groups=5, eps=0.6, join_logit=join_logit)
    process = parts.process
    # weights as spread as a trained model's, so that no argmax over groups is a near-tie
    torch.manual_seed(0)
    init_weights(process.model, std=0.5)
    process.model.eval()
    samples = dataset.split.eval_samples("test", 10).subset(slice(0, 6))
    fast = score_all_items(process, samples)
    with torch.no_grad():
        state = process.allocate_history_greedily(samples)
        table = process.model.item_embeddings.weight
        for item in range(1, dataset.num_items + 1):
            candidate = table[item].expand(len(samples), -1)
            logits = process.model.policy.logits(candidate, state.group_reprs, state.num_groups)
            best = logits.argmax(dim=1)
            creates = best >= state.num_groups
            groups = torch.where(
                creates[:, None],
                state.user_embs,
                state.group_reprs[torch.arange(len(samples)), best.clamp(max=4)],
            )
            expected = (groups * candidate).sum(1)
            assert torch.allclose(fast[:, item], expected, atol=1e-5), item
    assert torch.isinf(fast[:, 0]).all()


@pytest.mark.parametrize("join_logit", ["sigmoid", "linear", "affinity"])
def test_step_policy_matches_the_reference_policy(synthetic, join_logit):
    """The MDP's policy reads the item's side from terms precomputed at reset and the
    folded weights; it must give the paper's slot logits (the plain Eq. 7-8, 12-13
    computation) at every step, with and without detached inputs."""
    parts = build_env_parts(synthetic, dim=8, max_groups=5, eps=0.6, join_logit=join_logit)
    process = parts.process
    torch.manual_seed(0)
    init_weights(process.model, std=0.5)
    for module in process.model.modules():  # biases too (the scheme zeroes them)
        if isinstance(module, torch.nn.Linear) and module.bias is not None:
            torch.nn.init.normal_(module.bias, std=0.5)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        state = process.reset(parts.samples.subset(slice(0, 32)))
        steps = 0
        while not bool(state.done.all()):
            reference = process.model.policy.logits(
                state.current_items, state.group_reprs, state.num_groups
            )
            for detach in (False, True):
                fast = process.policy_logits(state, detach_inputs=detach)
                assert torch.equal(torch.isinf(fast), torch.isinf(reference))
                finite = torch.isfinite(reference)
                assert torch.allclose(fast[finite], reference[finite], atol=1e-5)
            mask = state.action_mask.numpy()
            actions = torch.tensor([rng.choice(np.flatnonzero(m)) for m in mask])
            state, _ = process.step(state, actions)
            steps += 1
    assert steps == process.model.config.max_len + 1 and int(state.num_groups.max()) > 2


@pytest.mark.parametrize("updater", ["attn_gru", "lstm", "mean"])
def test_only_the_chosen_group_changes(synthetic, updater):
    parts = build_env_parts(synthetic, dim=8, group_updater=updater)
    process = parts.process
    rng = np.random.default_rng(0)
    with torch.no_grad():
        state = process.reset(parts.samples.subset(slice(0, 32)))
        while not bool(state.done.all()):
            mask = state.action_mask.numpy()
            actions = torch.tensor([rng.choice(np.flatnonzero(m)) for m in mask])
            before = state
            state, out = process.step(state, actions)
            for b in range(32):
                if not out.active[b]:
                    assert torch.equal(state.group_reprs[b], before.group_reprs[b])
                    continue
                slot = int(out.chosen[b])
                others = [g for g in range(process.max_groups) if g != slot]
                assert torch.equal(state.group_reprs[b, others], before.group_reprs[b, others])
                start = before.user_embs[b] if out.created[b] else before.group_reprs[b, slot]
                memory = torch.zeros(1, 8) if out.created[b] else before.group_memory[b, slot][None]
                size = torch.tensor([0 if out.created[b] else int(before.group_sizes[b, slot])])
                if out.was_target[b]:
                    expected = start
                else:
                    expected = process.model.group_updater(
                        start[None], before.current_items[b][None], memory, size
                    )[0][0]
                assert torch.allclose(state.group_reprs[b, slot], expected, atol=1e-6)
