"""Sequential-recommendation baselines in the same harness (same split, ranking, metrics)."""

from adasplit_env.baselines.models import (
    BASELINES,
    BaselineConfig,
    GRU4Rec,
    SASRec,
    build_baseline,
)

__all__ = ["BASELINES", "BaselineConfig", "GRU4Rec", "SASRec", "build_baseline"]
