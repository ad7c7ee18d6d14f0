"""The one-way data path: raw file -> interactions -> k-core -> sequences -> split -> samples."""

from adasplit_env.data.datasets import (
    DATA_ENV_VAR,
    NAMED_DATASETS,
    SYNTHETIC,
    Dataset,
    default_data_dir,
    load_dataset,
    resolve_dataset_path,
)
from adasplit_env.data.interactions import (
    PAD,
    DatasetStats,
    Interactions,
    UserSequences,
    build_sequences,
    kcore_filter,
)
from adasplit_env.data.readers import FORMATS, detect_format, read_interactions
from adasplit_env.data.split import LeaveOneOutSplit, Samples
from adasplit_env.data.synthetic import SyntheticConfig, SyntheticData, generate_synthetic

__all__ = [
    "DATA_ENV_VAR",
    "FORMATS",
    "NAMED_DATASETS",
    "PAD",
    "SYNTHETIC",
    "Dataset",
    "DatasetStats",
    "Interactions",
    "LeaveOneOutSplit",
    "Samples",
    "SyntheticConfig",
    "SyntheticData",
    "UserSequences",
    "build_sequences",
    "default_data_dir",
    "detect_format",
    "generate_synthetic",
    "kcore_filter",
    "load_dataset",
    "read_interactions",
    "resolve_dataset_path",
]
