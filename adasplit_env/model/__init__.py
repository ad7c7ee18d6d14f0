"""AdaSplit's learnable modules, each citing the paper's equation."""

from adasplit_env.model.adasplit import AdaSplitModel
from adasplit_env.model.config import (
    CURRICULA,
    ENCODERS,
    ModelConfig,
    RewardConfig,
)
from adasplit_env.model.encoder import HistoryEncoder, TransformerBlock
from adasplit_env.model.join_rules import JOIN_RULES, JoinRule, masked_softmax, register_join_rule
from adasplit_env.model.updaters import GROUP_UPDATERS, AttentionGRU, LSTMUpdater, MeanUpdater

__all__ = [
    "CURRICULA",
    "ENCODERS",
    "GROUP_UPDATERS",
    "AdaSplitModel",
    "JOIN_RULES",
    "JoinRule",
    "AttentionGRU",
    "HistoryEncoder",
    "LSTMUpdater",
    "MeanUpdater",
    "ModelConfig",
    "RewardConfig",
    "TransformerBlock",
    "masked_softmax",
    "register_join_rule",
]
