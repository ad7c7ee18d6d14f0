"""The CPU dropout: nn.Dropout's distribution and scaling, from uniform floats."""

from __future__ import annotations

import torch
from torch import nn

from adasplit_env.model.dropout import Dropout


def test_keeps_each_element_with_probability_one_minus_p_and_scales_it():
    torch.manual_seed(0)
    dropout = Dropout(0.3)
    inputs = torch.full((400, 500), 2.0)
    outputs = dropout(inputs)
    kept = outputs != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.005  # 200,000 draws: sd 0.001
    assert torch.allclose(outputs[kept], torch.tensor(2.0 / 0.7))
    # independent elements: rows and columns keep the same share
    assert kept.float().mean(dim=0).std() < 0.05 and kept.float().mean(dim=1).std() < 0.05


def test_gradient_is_the_scaled_mask():
    torch.manual_seed(1)
    inputs = torch.randn(64, 8, requires_grad=True)
    outputs = Dropout(0.5)(inputs)
    outputs.sum().backward()
    kept = outputs.detach() != 0
    assert torch.equal(inputs.grad, kept.float() * 2.0)
    assert torch.allclose(outputs[kept], inputs.detach()[kept] * 2.0)


def test_identity_in_eval_mode_and_at_zero_and_a_module_like_nn_dropout():
    inputs = torch.randn(5, 7)
    assert torch.equal(Dropout(0.4).eval()(inputs), inputs)
    assert torch.equal(Dropout(0.0)(inputs), inputs)
    assert torch.equal(Dropout(1.0)(inputs), torch.zeros_like(inputs))
    assert isinstance(Dropout(0.2), nn.Dropout) and Dropout(0.2).state_dict() == {}
    inplace = inputs.clone()
    torch.manual_seed(2)
    result = Dropout(0.5, inplace=True)(inplace)
    assert result is inplace and set(
        torch.unique((result / inputs).round(decimals=4)).tolist()
    ) <= {0.0, 2.0}


def test_seeded_draws_repeat():
    torch.manual_seed(3)
    first = Dropout(0.2)(torch.ones(100))
    torch.manual_seed(3)
    assert torch.equal(Dropout(0.2)(torch.ones(100)), first)
