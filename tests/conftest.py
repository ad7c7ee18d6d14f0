"""Shared fixtures. Tests that need the benchmark datasets read ``$ADASPLIT_DATA``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    value = os.environ.get("ADASPLIT_DATA")
    if not value:
        return None
    path = Path(value)
    return path if path.is_dir() else None


@pytest.fixture
def data_dir() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("set $ADASPLIT_DATA to the folder of the benchmark datasets to run this test")
    return path
