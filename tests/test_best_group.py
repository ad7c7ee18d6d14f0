"""``best_group_logits`` (``scoring max``) against the plain masked ``amax``: values, and
the gradients to the groups and to the item table."""

from __future__ import annotations

import pytest
import torch

from adasplit_env.model.best_group import best_group_logits


def reference(group_reprs, num_groups, items):
    mask = torch.arange(group_reprs.shape[1])[None, :] < num_groups[:, None]
    logits = torch.einsum("bgd,id->bgi", group_reprs, items)
    return logits.masked_fill(~mask[:, :, None], -torch.inf).amax(dim=1)


@pytest.mark.parametrize("num_groups", [[1, 1, 1], [3, 1, 2, 5, 1, 4], [2, 2, 2, 2]])
def test_best_group_logits_equal_the_masked_amax(num_groups):
    generator = torch.Generator().manual_seed(len(num_groups))
    num_groups = torch.tensor(num_groups)
    groups = torch.randn(len(num_groups), 6, 5, generator=generator, requires_grad=True)
    items = torch.randn(40, 5, generator=generator, requires_grad=True)
    expected = reference(groups, num_groups, items)
    got = best_group_logits(groups, num_groups, items)
    assert torch.allclose(got, expected, atol=1e-6)
    weights = torch.randn(expected.shape, generator=generator)
    expected_grads = torch.autograd.grad((expected * weights).sum(), (groups, items))
    got_grads = torch.autograd.grad((got * weights).sum(), (groups, items))
    for got_grad, expected_grad in zip(got_grads, expected_grads):
        assert torch.allclose(got_grad, expected_grad, atol=1e-5)
    # a slot past a user's groups gets nothing, whatever it holds
    unused = torch.arange(6)[None, :] >= num_groups[:, None]
    assert got_grads[0][unused].abs().sum() == 0
    with torch.no_grad():
        assert torch.allclose(best_group_logits(groups, num_groups, items), expected, atol=1e-6)


def test_a_tie_sends_the_gradient_to_the_first_group():
    """Two equal groups: max(dim) semantics, the first one takes the whole gradient."""
    group = torch.tensor([[1.0, 2.0]])
    groups = torch.stack([group, group], dim=1).requires_grad_()  # (1, 2, 2)
    items = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    logits = best_group_logits(groups, torch.tensor([2]), items)
    (grad,) = torch.autograd.grad(logits.sum(), groups)
    assert torch.equal(grad[0, 0], torch.tensor([1.0, 1.0]))
    assert grad[0, 1].abs().sum() == 0
