"""Dataset names and paths -> a loaded, filtered, split :class:`Dataset`.

A dataset is given as a name or a path:

* ``synthetic``: the embedded default (no file needed); ``synthetic:noise=1.0,seed=3``
  the same generator with some of :class:`SyntheticConfig`'s fields changed;
* ``lastfm``, ``garden``, ``baby``, ``beauty``: ``<data dir>/<name>/interactions.tsv.gz``,
  where the data dir is the ``data_dir`` argument, else ``$ADASPLIT_DATA``,
  else ``./data``;
* any path to a file in one of the formats of :mod:`adasplit_env.data.readers`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from adasplit_env.data.interactions import (
    DatasetStats,
    UserSequences,
    build_sequences,
    kcore_filter,
)
from adasplit_env.data.readers import read_interactions
from adasplit_env.data.split import LeaveOneOutSplit
from adasplit_env.data.synthetic import SyntheticConfig, generate_synthetic
from adasplit_env.errors import DataError

NAMED_DATASETS = ("lastfm", "garden", "baby", "beauty")
SYNTHETIC = "synthetic"
DATA_ENV_VAR = "ADASPLIT_DATA"


def default_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """``data_dir`` if given, else ``$ADASPLIT_DATA``, else ``./data``."""
    if data_dir is not None:
        return Path(data_dir)
    return Path(os.environ.get(DATA_ENV_VAR) or "data")


def resolve_dataset_path(spec: str, data_dir: str | os.PathLike | None = None) -> Path:
    """The file behind a dataset name or path (``synthetic`` has none)."""
    if spec in NAMED_DATASETS:
        root = default_data_dir(data_dir)
        path = root / spec / "interactions.tsv.gz"
        if not path.exists():
            raise DataError(
                f"dataset {spec!r} not found at {path}; pass --data-dir or set "
                f"${DATA_ENV_VAR} to the folder holding {spec}/interactions.tsv.gz "
                "(see the README for where the files come from)"
            )
        return path
    path = Path(spec)
    if path.is_file():
        return path
    if path.is_dir() and (path / "interactions.tsv.gz").is_file():
        return path / "interactions.tsv.gz"
    if os.sep in spec or "." in path.name:
        raise DataError(f"{spec}: no such file")
    raise DataError(
        f"unknown dataset {spec!r}; use {SYNTHETIC}, one of {', '.join(NAMED_DATASETS)}, "
        "or a path to an interactions file"
    )


@dataclass(frozen=True)
class Dataset:
    """A dataset after the k-core filter, re-indexing and the split."""

    name: str
    source: str
    raw_stats: DatasetStats
    sequences: UserSequences
    split: LeaveOneOutSplit
    k_core: int
    item_groups: np.ndarray | None = None  # (num_items + 1,) planted group, -1 at padding

    @property
    def num_users(self) -> int:
        return self.sequences.num_users

    @property
    def num_items(self) -> int:
        return self.sequences.num_items

    @property
    def stats(self) -> DatasetStats:
        return self.sequences.stats()


def synthetic_spec(spec: str) -> SyntheticConfig | None:
    """The generator's config of a ``synthetic`` or ``synthetic:field=value,...`` spec
    (see :class:`SyntheticConfig`), or None for any other spec."""
    name, _, options = spec.partition(":")
    if name != SYNTHETIC:
        return None
    config = SyntheticConfig()
    types = {f.name: type(getattr(config, f.name)) for f in fields(SyntheticConfig)}
    changes = {}
    for option in filter(None, options.split(",")):
        key, equals, value = option.partition("=")
        if key not in types or not equals:
            raise DataError(
                f"{spec!r}: expected synthetic:field=value,... with fields {', '.join(types)}"
            )
        try:
            changes[key] = types[key](value)
        except ValueError:
            raise DataError(f"{spec!r}: {key} must be a {types[key].__name__}") from None
    config = replace(config, **changes)
    config.validate()
    return config


def load_dataset(
    spec: str = SYNTHETIC,
    data_dir: str | os.PathLike | None = None,
    k_core: int = 5,
    format: str | None = None,
    synthetic: SyntheticConfig | None = None,
) -> Dataset:
    """Read, filter, re-index and split a dataset given by name or path."""
    item_group: dict[str, int] | None = None
    from_spec = synthetic_spec(spec)
    if from_spec is not None:
        if synthetic is not None and from_spec != SyntheticConfig():
            # the name would say one generator and the data come from another
            raise DataError(f"{spec!r}: give the generator's fields by the spec or by config")
        generated = generate_synthetic(synthetic or from_spec)
        interactions, item_group, source = generated.interactions, generated.item_group, "generated"
        name = spec
    else:
        path = resolve_dataset_path(spec, data_dir)
        interactions = read_interactions(path, format=format)
        source = str(path)
        name = spec if spec in NAMED_DATASETS else path.name.split(".")[0]
    raw_stats = interactions.stats()
    filtered = kcore_filter(interactions, k_core)
    if len(filtered) == 0:
        raise DataError(
            f"dataset {spec!r} is empty after the {k_core}-core filter "
            f"({raw_stats.interactions} raw interactions); use a smaller --k-core"
        )
    sequences = build_sequences(filtered)
    item_groups = None
    if item_group is not None:
        item_groups = np.full(sequences.num_items + 1, -1, dtype=np.int64)
        for dense, raw in enumerate(sequences.item_raw_ids[1:], start=1):
            item_groups[dense] = item_group[raw]
    return Dataset(
        name=name,
        source=source,
        raw_stats=raw_stats,
        sequences=sequences,
        split=LeaveOneOutSplit(sequences),
        k_core=k_core,
        item_groups=item_groups,
    )
