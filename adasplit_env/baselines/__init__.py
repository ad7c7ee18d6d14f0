"""Sequential-recommendation baselines in the same harness (same split, ranking, metrics)."""

from adasplit_env.baselines.models import (
    BASELINE_DROPOUT,
    BASELINES,
    BaselineConfig,
    GRU4Rec,
    SASRec,
    build_baseline,
)

__all__ = [
    "BASELINE_DROPOUT",
    "BASELINES",
    "BaselineConfig",
    "GRU4Rec",
    "SASRec",
    "build_baseline",
]
