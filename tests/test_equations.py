"""Each equation against a hand computation on tiny dimensions with fixed weights."""

import math

import numpy as np
import pytest
import torch

from adasplit_env.model import AdaSplitModel, ModelConfig, RewardConfig
from adasplit_env.model.encoder import HistoryEncoder, TransformerBlock
from adasplit_env.model.join_rules import SigmoidJoin
from adasplit_env.model.updaters import AttentionGRU, LSTMUpdater, MeanUpdater
from adasplit_env.process import AllocationProcess
from adasplit_env.rewards import creation_penalty, discounted_returns, orthogonality_reward


def fill(module: torch.nn.Module, seed: int = 0) -> None:
    """Deterministic, non-trivial weights."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.7)


def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def np_(t):
    return t.detach().numpy().astype(np.float64)


def test_transformer_block_eq_4_to_6():
    block = TransformerBlock(dim=2, num_heads=1)
    fill(block)
    x = torch.tensor([[[0.5, -1.0], [1.5, 0.2], [-0.3, 0.8]]])
    allowed = torch.tensor([[[True, True, False]] * 3])  # third token is padding
    out = block(x, allowed)
    X = np_(x[0])
    Q, K, V = (
        X @ np_(block.query.weight).T,
        X @ np_(block.key.weight).T,
        X @ np_(block.value.weight).T,
    )
    logits = Q @ K.T / math.sqrt(2)
    logits[:, 2] = -np.inf
    attn = np.exp(logits - logits.max(1, keepdims=True))
    attn /= attn.sum(1, keepdims=True)
    S = layer_norm(attn @ V, np_(block.attention_norm.weight), np_(block.attention_norm.bias))
    hidden = np.maximum(
        S @ np_(block.feed_forward_in.weight).T + np_(block.feed_forward_in.bias), 0
    )
    v = hidden @ np_(block.feed_forward_out.weight).T + np_(block.feed_forward_out.bias)
    expected = layer_norm(v + S, np_(block.output_norm.weight), np_(block.output_norm.bias))
    np.testing.assert_allclose(np_(out[0]), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["bidirectional", "causal", "none"])
def test_encoder_direction(mode):
    encoder = HistoryEncoder(dim=4, max_len=4, mode=mode)
    fill(encoder)
    encoder.eval()
    gen = torch.Generator().manual_seed(1)
    user, items = torch.randn(1, 4, generator=gen), torch.randn(1, 4, 4, generator=gen)
    history = torch.tensor([[0, 3, 5, 7]])  # one left pad
    base = encoder(user, items, history)
    later = items.clone()
    later[0, 3] += 1.0  # change the last item
    changed = encoder(user, later, history)
    earlier_moves = not torch.allclose(base[0, 1], changed[0, 1])
    assert earlier_moves == (mode == "bidirectional")
    padded = items.clone()
    padded[0, 0] += 5.0  # the padded slot must not matter to real items
    if mode != "none":
        assert torch.allclose(encoder(user, padded, history)[0, 1:], base[0, 1:], atol=1e-6)
    else:
        assert torch.equal(base, items)


def test_policy_eq_12_13_7_8_unfactorised():
    head = SigmoidJoin(dim=2, eps=0.4, temperature=1.0)
    fill(head, seed=3)
    item = torch.tensor([[0.3, -0.8]])
    groups = torch.tensor([[[1.0, 0.5], [-0.4, 0.9], [0.0, 0.0]]])
    logits = head.logits(item, groups, torch.tensor([2]))

    v, P = np_(item[0]), np_(groups[0, :2])
    z = np.exp(P @ v) / np.exp(P @ v).sum()  # Eq. 12
    s_T = np.concatenate([z @ P, v]) @ np_(head.state_proj.weight).T
    expected = []
    for p in P:  # Eq. 13 then Eq. 7, exactly as written
        s_i = np.concatenate(
            [s_T @ np_(head.item_state_proj.weight).T, p @ np_(head.group_state_proj.weight).T]
        )
        hidden = np.maximum(s_i @ np_(head.hidden.weight).T + np_(head.hidden.bias), 0)
        out = hidden @ np_(head.output.weight).T + np_(head.output.bias)
        score = out @ np_(head.score.weight).T + np_(head.score.bias)
        expected.append(1 / (1 + np.exp(-score[0])))
    np.testing.assert_allclose(np_(logits[0, :2]), expected, rtol=1e-5)
    assert logits[0, 2].item() == pytest.approx(0.4)  # Eq. 8: eps at slot h
    probs = np_(torch.softmax(logits, 1)[0])
    full = np.exp([*expected, 0.4]) / np.exp([*expected, 0.4]).sum()
    np.testing.assert_allclose(probs, full, rtol=1e-5)


def test_policy_temperature_and_full_groups():
    head = SigmoidJoin(dim=2, eps=0.5, temperature=0.5)
    fill(head)
    groups = torch.randn(1, 2, 2, generator=torch.Generator().manual_seed(0))
    logits = head.logits(torch.ones(1, 2), groups, torch.tensor([2]))
    assert torch.isfinite(logits).all()  # h = max_groups: no create slot
    cold = SigmoidJoin(dim=2, eps=0.5, temperature=1.0)
    cold.load_state_dict(head.state_dict())
    warm = cold.logits(torch.ones(1, 2), groups, torch.tensor([2]))
    assert torch.allclose(logits, warm / 0.5)


def test_attention_gru_eq_10():
    gru = AttentionGRU(dim=2)
    fill(gru, seed=5)
    p, v = torch.tensor([[0.2, -0.6]]), torch.tensor([[1.0, 0.3]])
    new, _ = gru(p, v, torch.zeros(1, 2), torch.zeros(1, dtype=torch.long))
    P, V = np_(p[0]), np_(v[0])
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    z = sig(np_(gru.update_item.weight) @ V + np_(gru.update_group.weight) @ P)[0]
    s = sig(np_(gru.reset_item.weight) @ V + np_(gru.reset_group.weight) @ P)[0]
    h = np.tanh(np_(gru.candidate_item.weight) @ V + np_(gru.candidate_group.weight) @ (s * P))
    np.testing.assert_allclose(np_(new[0]), z * P + (1 - z) * h, rtol=1e-5)


def test_mean_and_lstm_updaters():
    mean = MeanUpdater()
    p, v = torch.tensor([[2.0, 4.0]]), torch.tensor([[5.0, 1.0]])
    # p is the mean of e_u and 2 items (3 members); adding v gives the mean of 4
    new, _ = mean(p, v, torch.zeros(1, 2), torch.tensor([2]))
    assert new.tolist() == [[(2 * 3 + 5) / 4, (4 * 3 + 1) / 4]]
    lstm = LSTMUpdater(dim=2)
    h, c = lstm(p, v, torch.zeros(1, 2), torch.tensor([0]))
    ref_h, ref_c = lstm.cell(v, (p, torch.zeros(1, 2)))
    assert torch.equal(h, ref_h) and torch.equal(c, ref_c)


def test_curricula_eq_17():
    created = torch.tensor([0, 1, 2, 3])
    assert creation_penalty(
        created, RewardConfig(curriculum="exponential", penalty=1.2)
    ).tolist() == pytest.approx([1, 1.2, 1.44, 1.728])
    assert creation_penalty(
        created, RewardConfig(curriculum="linear", penalty=0.5)
    ).tolist() == pytest.approx([0, 0.5, 1.0, 1.5])
    assert creation_penalty(
        created, RewardConfig(curriculum="keep", penalty=0.7)
    ).tolist() == pytest.approx([0.7] * 4)
    assert creation_penalty(created, RewardConfig(curriculum="none")).tolist() == [0, 0, 0, 0]


def test_orthogonality_eq_15():
    groups = torch.tensor(
        [[[1.0, 0.0], [1.0, 1.0], [0.0, -2.0]], [[3.0, 1.0], [9.0, 9.0], [9.0, 9.0]]]
    )
    mask = torch.tensor([[True, True, True], [True, False, False]])
    # pairs: |1| + |0| + |-2| over 3 pairs; a single group gives 0
    assert orthogonality_reward(groups, mask).tolist() == pytest.approx([-1.0, 0.0])


def test_discounted_returns_eq_18():
    rewards = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.0, 0.0]])
    returns = discounted_returns(rewards, 0.5)
    assert returns.tolist() == [[1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3.0], [0.5, 0.0, 0.0]]


def tiny_process(**reward_kwargs):
    config = ModelConfig(num_users=3, num_items=6, dim=2, max_len=3, max_groups=3, dropout=0.0)
    torch.manual_seed(0)
    model = AdaSplitModel(config)
    fill(model, seed=7)
    with torch.no_grad():
        model.item_embeddings.weight[0].zero_()
    model.eval()
    return AllocationProcess(model, RewardConfig(**reward_kwargs))


def test_step_rewards_eq_14_to_16_by_hand():
    from adasplit_env.data import Samples

    process = tiny_process(lambda_o=0.3, curriculum="exponential", penalty=1.5)
    model = process.model
    samples = Samples(torch.tensor([1]), torch.tensor([[2, 3, 4]]), torch.tensor([5]))
    with torch.no_grad():
        state = process.reset(samples)
        e_u = np_(model.user_embeddings.weight[1])
        v = np_(state.step_items[0])
        assert np.allclose(np_(state.group_reprs[0, 0]), e_u) and state.num_groups.item() == 1
        # step 1: create (action 2 >= h = 1 -> slot 1)
        s1, out1 = process.step(state, torch.tensor([2]))
        # Eq. 14 over [e_u, e_u(new)]: both equal, so 1/2
        assert out1.allocation_reward.item() == pytest.approx(0.5)
        assert out1.created.item() and out1.chosen.item() == 1
        assert out1.creation_reward.item() == pytest.approx(-1.0)  # 1.5 ** 0
        new_group, _ = model.group_updater(
            torch.tensor(e_u[None], dtype=torch.float32),
            state.step_items[:, 0],
            torch.zeros(1, 2),
            torch.zeros(1, dtype=torch.long),
        )
        assert np.allclose(np_(s1.group_reprs[0, 1]), np_(new_group[0]), atol=1e-6)
        assert np.allclose(np_(s1.group_reprs[0, 0]), e_u)  # only the chosen group changes
        ort = -abs(e_u @ np_(new_group[0]))
        assert out1.orthogonality_reward.item() == pytest.approx(ort, rel=1e-5)
        assert out1.reward.item() == pytest.approx(0.5 + 0.3 * ort - 1.0, rel=1e-5)
        # step 2: join group 0
        s2, out2 = process.step(s1, torch.tensor([0]))
        P = np_(s1.group_reprs[0, :2])
        soft = np.exp(P @ v[1]) / np.exp(P @ v[1]).sum()
        assert out2.allocation_reward.item() == pytest.approx(soft[0], rel=1e-5)
        assert out2.creation_reward.item() == 0.0 and not out2.created.item()
        # step 3: create again -> penalty 1.5 ** 1
        s3, out3 = process.step(s2, torch.tensor([2]))
        assert out3.creation_reward.item() == pytest.approx(-1.5)
        assert s3.num_groups.item() == 3 and s3.num_created.item() == 2
        # target step: read the chosen group, do not update it
        s4, out4 = process.step(s3, torch.tensor([1]))
        assert out4.was_target.item() and s4.done.item()
        assert torch.equal(out4.selected_group_repr[0], s3.group_reprs[0, 1])
        assert torch.equal(s4.group_reprs, s3.group_reprs)
        assert s4.assignments.tolist() == [[1, 0, 2, 1]]
        # a finished episode is frozen and earns nothing
        s5, out5 = process.step(s4, torch.tensor([0]))
        assert out5.reward.item() == 0.0 and not out5.active.item()
        assert torch.equal(s5.group_reprs, s4.group_reprs)
