"""AdaSplit's learnable modules, each citing the paper's equation."""

from adasplit_env.model.adasplit import AdaSplitModel
from adasplit_env.model.config import (
    CURRICULA,
    ENCODERS,
    GROUP_UPDATERS,
    ModelConfig,
    RewardConfig,
)
from adasplit_env.model.encoder import HistoryEncoder, TransformerBlock
from adasplit_env.model.policy import AllocationPolicyHead, masked_softmax
from adasplit_env.model.updaters import AttentionGRU, LSTMUpdater, MeanUpdater

__all__ = [
    "CURRICULA",
    "ENCODERS",
    "GROUP_UPDATERS",
    "AdaSplitModel",
    "AllocationPolicyHead",
    "AttentionGRU",
    "HistoryEncoder",
    "LSTMUpdater",
    "MeanUpdater",
    "ModelConfig",
    "RewardConfig",
    "TransformerBlock",
    "masked_softmax",
]
