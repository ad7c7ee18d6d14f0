"""Small constant index tensors, built once per (size, device) instead of once per MDP step.

The allocation loop runs a few hundred tiny operations per update; on a CPU (and
as kernel launches on a GPU) each one costs about as much as the arithmetic of
the step, so the constants it used to rebuild every step are cached here. The
tensors are shared: never write into them.
"""

from __future__ import annotations

import functools

import torch


def index_range(size: int, device: torch.device) -> torch.Tensor:
    """``torch.arange(size)`` on ``device`` (int64), cached."""
    if torch.compiler.is_compiling():  # inside a compiled graph it is free, and not a cache
        return torch.arange(size, device=device)
    return _index_range(size, device)


def upper_pairs(size: int, device: torch.device) -> torch.Tensor:
    """(size, size) bool, True above the diagonal: the pairs i < j, cached."""
    if torch.compiler.is_compiling():
        return torch.ones(size, size, dtype=torch.bool, device=device).triu(diagonal=1)
    return _upper_pairs(size, device)


@functools.lru_cache(maxsize=256)
def _index_range(size: int, device: torch.device) -> torch.Tensor:
    # a normal tensor even when first asked for under torch.inference_mode() (the
    # parallel path's rollout): graphs read the cached one too
    with torch.inference_mode(False):
        return torch.arange(size, device=device)


@functools.lru_cache(maxsize=64)
def _upper_pairs(size: int, device: torch.device) -> torch.Tensor:
    with torch.inference_mode(False):  # as _index_range
        return torch.ones(size, size, dtype=torch.bool, device=device).triu(diagonal=1)
