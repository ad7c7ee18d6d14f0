"""Checkpoints: written atomically, read with ``torch.load(weights_only=True)``.

A checkpoint is a plain dict of tensors and primitive values, so it loads
without unpickling code. It carries everything needed to rebuild the model
on its own: the model and reward configs, the dataset it was trained on and
the sizes it had, next to the weights (and, for resuming, the optimiser and
the trainer's progress).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from adasplit_env.data.datasets import Dataset, load_dataset
from adasplit_env.errors import CheckpointError, DataError
from adasplit_env.io import atomic_torch_save
from adasplit_env.model.config import RewardConfig
from adasplit_env.recommenders import RECOMMENDERS, Recommender

FORMAT = "adasplit-gym-checkpoint"
VERSION = 1


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (see :func:`make_payload`) atomically."""
    return atomic_torch_save(path, {"format": FORMAT, "version": VERSION, **payload})


def make_payload(
    model: torch.nn.Module,
    rewards: RewardConfig,
    dataset: Dataset,
    dataset_spec: str,
    train_config: dict,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "model_config": model.config.to_dict(),
        "reward_config": rewards.to_dict(),
        "dataset": {
            "spec": dataset_spec,
            "name": dataset.name,
            "k_core": dataset.k_core,
            "format": train_config.get("format"),
            "num_users": dataset.num_users,
            "num_items": dataset.num_items,
        },
        "train_config": train_config,
        "model_state": model.state_dict(),
        **extra,
    }


# What every checkpoint this project writes holds (see make_payload).
REQUIRED_KEYS = ("model_config", "reward_config", "dataset", "train_config", "model_state")


def _unreadable(path: Path, err: Exception) -> CheckpointError:
    """Our own words for why torch.load failed (its messages point elsewhere)."""
    text = str(err)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        is_zip = handle.read(4) == b"PK\x03\x04"  # torch.save's format is a zip archive
    if size == 0:
        why = "the file is empty"
    elif "Unsupported global" in text:
        why = (
            "it holds Python objects, not the plain tensors and values this project "
            "writes: not an adasplit-gym checkpoint"
        )
    elif is_zip or "central directory" in text or isinstance(err, EOFError):
        why = (
            f"the file is truncated or damaged ({size:,} bytes; a checkpoint is a zip archive "
            "and its end is missing: copied in part, or cut by a full disk)"
        )
    else:
        why = "not a PyTorch checkpoint file (not written by adasplit-gym)"
    return CheckpointError(f"{path}: cannot read this checkpoint: {why}")


def read_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and validate the raw checkpoint dict (weights only, no code)."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch.load raises many kinds on a foreign file
        raise _unreadable(path, err) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: a PyTorch file, but not an adasplit-gym checkpoint (no "
            f"format: {FORMAT!r} entry; train_agent.py writes best.pt and last.pt)"
        )
    if payload.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {payload.get('version')} is not supported "
            f"(this adasplit-gym reads version {VERSION}): it comes from another version"
        )
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointError(
            f"{path}: an adasplit-gym checkpoint with missing entries ({', '.join(missing)})"
        )
    return payload


@dataclass
class LoadedCheckpoint:
    recommender: Recommender
    rewards: RewardConfig
    dataset: Dataset
    payload: dict[str, Any]

    @property
    def model(self) -> torch.nn.Module:
        return self.recommender.model


def recommender_from_payload(
    payload: dict[str, Any], device: str | torch.device = "cpu"
) -> Recommender:
    """The recommender a checkpoint holds (``model_type``: adasplit or a baseline), with
    its weights."""
    model_type = payload.get("model_type", "adasplit")
    if model_type not in RECOMMENDERS:
        raise CheckpointError(f"the checkpoint holds an unknown model type {model_type!r}")
    try:
        recommender = RECOMMENDERS[model_type].from_payload(payload)
        recommender.model.load_state_dict(payload["model_state"])
    except (KeyError, TypeError, RuntimeError) as err:
        raise CheckpointError(
            "the checkpoint's weights do not fit this version of the model (written by "
            f"another version of adasplit-gym?): {str(err).splitlines()[0][:200]}"
        ) from None
    return recommender.to(device)


def load_checkpoint(
    path: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    dataset: Dataset | None = None,
    device: str | torch.device = "cpu",
) -> LoadedCheckpoint:
    """Rebuild the model and its dataset from a checkpoint alone."""
    payload = read_checkpoint(path, device)
    info = payload["dataset"]
    if dataset is None:
        try:
            dataset = load_dataset(
                info["spec"], data_dir, k_core=int(info["k_core"]), format=info.get("format")
            )
        except DataError as err:
            raise DataError(f"{err} (the checkpoint was trained on {info['spec']!r})") from None
    if (dataset.num_users, dataset.num_items) != (info["num_users"], info["num_items"]):
        raise CheckpointError(
            f"the dataset has {dataset.num_users} users and {dataset.num_items} items, "
            f"the checkpoint was trained on {info['num_users']} and {info['num_items']} "
            f"({info['spec']!r}); pass the same dataset"
        )
    return LoadedCheckpoint(
        recommender_from_payload(payload, device),
        RewardConfig.from_dict(dict(payload["reward_config"])),
        dataset,
        payload,
    )
