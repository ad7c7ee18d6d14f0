"""Hyper-parameters of the AdaSplit model and of the allocation MDP's reward.

Defaults follow the paper (docs/design.md, section 3); every departure from it is a
named option that is off by default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from adasplit_env.errors import ConfigError
from adasplit_env.model.join_rules import JOIN_RULES
from adasplit_env.model.scorers import GROUP_VIEWS, ITEM_SCORERS, READOUTS
from adasplit_env.model.updaters import GROUP_UPDATERS
from adasplit_env.options import option

ENCODERS = ("bidirectional", "causal", "none")
CURRICULA = ("exponential", "linear", "keep", "none")
GROUP_STARTS = ("user", "zero", "learned")
ENCODER_BLOCKS = ("paper", "standard")
# the scorings that read every group of the history, not one routed group per candidate
GROUP_SCORINGS = tuple(name for name, cls in ITEM_SCORERS.items() if not cls.routes_candidates)


def _one_of(names) -> str:
    """``a, b or c``."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _from_dict(cls, values: dict):
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} key(s): {', '.join(sorted(unknown))}")
    return cls(**values)


@dataclass(frozen=True)
class ModelOptions:
    """The options of the recommender and the allocation policy (Eq. 4-13), declared
    once: the training config nests them, the command line is generated from them.

    ``max_groups`` bounds the number of groups h (None: ``max_len + 1``).
    ``eps`` is the logit of "create a new group" (Eq. 8); ``temperature``
    divides all logits (1.0 = the paper's policy).

    Options beyond the paper (docs/design.md, section 7), off by default:
    ``group_start`` is what every group starts from and what the encoder's user
    slot holds: ``user`` (the paper's e_u, a free vector per user), ``zero``
    or ``learned`` (one vector shared by all users: no per-user parameters).
    ``scoring`` is how a candidate item is scored: ``paper`` (section 3.3: the
    policy's argmax group for that item) or ``max`` (the best-matching group,
    ``max_i p_i . e_c``, as multi-interest recommenders score; L_seq is then
    trained on the same rule) or ``lse`` (its smooth form, ``log sum_i exp(p_i . e_c)``)
    or ``attend`` (the groups mixed by the whole history's SASRec state ``s``:
    ``(sum_i z_i p_i) . e_c`` with ``z = softmax_i(p_i . s / sqrt(d))``, so the context
    says which interest is active now; needs ``readout sasrec``). ``readout`` is what scores items: ``group``
    (the paper: the group representation) or ``sasrec`` (the group plus the
    state of a SASRec encoder over the whole history, 2 blocks x 2 heads,
    dropout 0.5, on the same item table: with the group part at zero it is
    SASRec, so the allocation can only add to a full sequence model).
    ``encoder_block``: ``paper`` (Eq. 5-6 as written: no residual around the
    attention, feed-forward width d) or ``standard`` (residual, width 4d).
    ``join_logit``: ``sigmoid`` (Eq. 7-8: a join's logit is a sigmoid value in
    (0, 1) beside ``eps``, so the policy can never be more decisive than
    ``exp(1 - eps)`` to one, and a saturated sigmoid stops its gradient) or
    ``linear`` (the score itself is the logit) or ``affinity`` (no Eq. 7
    MLP: the logit is ``(v W_a) . p_i / sqrt(d)`` with ``W_a`` starting at the
    identity, so an item joins the group whose representation predicts it, the
    similarity Eq. 12 and 14 already use; the create logit stays ``eps``) or
    ``cluster`` (not learned: an item joins the group holding items of its
    co-occurrence cluster, one of ``cluster_count``, else an empty group, else
    opens one; :class:`~adasplit_env.model.join_rules.ClusterJoin`; needs ``max`` or ``lse`` scoring).
    ``group_repr``: what represents a group where items are scored: ``updater``
    (the paper: Eq. 9-11's p_i) or ``encoder`` (a SASRec encoder, 2 blocks x 2
    heads, run over the history with attention kept inside each group: a group
    is the encoder's state at its newest item, so one group holding the whole
    history is SASRec; the policy and the rewards still read the updater's p_i;
    needs ``max`` or ``lse`` scoring).
    """

    dim: int = option(64, "embedding dimension d")
    max_len: int = option(10, "history length l (paper's best: 10)")
    encoder: str = option(
        "bidirectional",
        "history encoder (Adasplit-Single: causal, -Zero: none)",
        choices=ENCODERS,
        adasplit_only=True,
    )
    num_layers: int | None = option(None, "transformer blocks (default: AdaSplit 1, SASRec 2)")
    num_heads: int | None = option(
        None, "attention heads per block (default: AdaSplit 1, SASRec 2)"
    )
    dropout: float | None = option(
        None,
        "dropout during training (default: AdaSplit 0.2 in the encoder; "
        "SASRec 0.5, GRU4Rec 0.3 as in RecBole)",
    )
    eps: float = option(
        0.5, "logit of 'create a new group' (Eq. 8; paper range 0.2-0.8)", adasplit_only=True
    )
    temperature: float = option(
        1.0,
        "policy temperature (1.0 = the paper's policy; an option beyond it)",
        adasplit_only=True,
    )
    group_updater: str = option(
        "attn_gru",
        "group updater: " + GROUP_UPDATERS.help() + ". All but attn_gru go beyond the paper",
        choices=GROUP_UPDATERS.choices,
        adasplit_only=True,
    )
    max_groups: int | None = option(
        None, "upper bound on the number of groups h (default max_len + 1)", adasplit_only=True
    )
    group_start: str = option(
        "user",
        "what groups start from: user (the paper's e_u), zero or learned (shared by all users; "
        "no per-user parameters). Beyond the paper",
        choices=GROUP_STARTS,
        adasplit_only=True,
    )
    scoring: str = option(
        "paper",
        "item scoring: " + ITEM_SCORERS.help() + ". All but paper go beyond the paper",
        choices=ITEM_SCORERS.choices,
        adasplit_only=True,
    )
    readout: str = option(
        "group",
        "what scores items: " + READOUTS.help() + ". All but group go beyond the paper",
        choices=READOUTS.choices,
        adasplit_only=True,
    )
    encoder_block: str = option(
        "paper",
        "encoder block: paper (Eq. 5 as written, no residual around attention, feed-forward "
        "width d) or standard (residual, width 4d). Beyond the paper",
        choices=ENCODER_BLOCKS,
        adasplit_only=True,
    )
    join_logit: str = option(
        "sigmoid",
        "a join's logit: " + JOIN_RULES.help() + ". All but sigmoid go beyond the paper",
        choices=JOIN_RULES.choices,
        adasplit_only=True,
    )
    cluster_count: int = option(
        20,
        "with --join-logit cluster: how many co-occurrence clusters the items fall into "
        "(spherical k-means of the training PPMI's spectral embedding)",
        adasplit_only=True,
    )
    group_repr: str = option(
        "updater",
        "what represents a group where items are scored: "
        + GROUP_VIEWS.help()
        + ". All but updater go beyond the paper",
        choices=GROUP_VIEWS.choices,
        adasplit_only=True,
    )

    def to_dict(self) -> dict:
        return asdict(self)


# AdaSplit's values of the options left at None (the baselines have their own)
ADASPLIT_DEFAULTS = {"num_layers": 1, "num_heads": 1, "dropout": 0.2}


@dataclass(frozen=True, kw_only=True)
class ModelConfig(ModelOptions):
    """An AdaSplit model: its options (:class:`ModelOptions`, those left at None at
    AdaSplit's values, ``max_groups`` at ``max_len + 1``) and the dataset's sizes."""

    num_users: int
    num_items: int

    def __post_init__(self) -> None:
        for name, value in ADASPLIT_DEFAULTS.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if self.max_groups is None:
            object.__setattr__(self, "max_groups", self.max_len + 1)
        self.validate()

    def validate(self) -> None:
        for name in ("num_users", "num_items", "dim", "max_len", "num_layers", "num_heads"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.max_groups < 1:
            raise ConfigError(f"max_groups must be >= 1, got {self.max_groups}")
        if self.dim % self.num_heads:
            raise ConfigError(f"dim ({self.dim}) must be divisible by num_heads ({self.num_heads})")
        if self.encoder not in ENCODERS:
            raise ConfigError(
                f"unknown encoder {self.encoder!r}; choose one of {', '.join(ENCODERS)}"
            )
        if self.group_updater not in GROUP_UPDATERS:
            raise ConfigError(
                f"unknown group updater {self.group_updater!r}; "
                f"choose one of {', '.join(GROUP_UPDATERS)}"
            )
        choices = (
            ("group_start", GROUP_STARTS),
            ("scoring", ITEM_SCORERS.choices()),
            ("readout", READOUTS.choices()),
            ("encoder_block", ENCODER_BLOCKS),
            ("join_logit", JOIN_RULES.choices()),
            ("group_repr", GROUP_VIEWS.choices()),
        )
        for name, allowed in choices:
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"unknown {name} {getattr(self, name)!r}; choose one of {', '.join(allowed)}"
                )
        # the cross-option rules, from what each part declares it needs
        scorer = ITEM_SCORERS[self.scoring]
        history_scorings = _one_of(GROUP_SCORINGS)
        if scorer.needs_context and not READOUTS[self.readout].gives_context:
            readouts = [name for name, cls in READOUTS.items() if cls.gives_context]
            raise ConfigError(
                f"scoring {self.scoring} needs readout {_one_of(readouts)} (a readout "
                f"whose state weighs the groups; readout {self.readout} has none)"
            )
        if scorer.routes_candidates and not JOIN_RULES[self.join_logit].routes_candidates:
            raise ConfigError(
                f"join_logit {self.join_logit} needs scoring {history_scorings} (scoring "
                f"{self.scoring} routes each candidate item through the join rule, which "
                "this rule cannot: it does not read the item's vector alone)"
            )
        if scorer.routes_candidates and GROUP_VIEWS[self.group_repr].needs_history_groups:
            raise ConfigError(
                f"group_repr {self.group_repr} needs scoring {history_scorings} (scoring "
                f"{self.scoring} routes each candidate through the policy, which reads the "
                "updater's groups)"
            )
        if int(self.cluster_count) < 1:
            raise ConfigError(f"cluster_count must be >= 1, got {self.cluster_count}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        return _from_dict(cls, values)


@dataclass(frozen=True)
class RewardConfig:
    """The reward of the allocation MDP (Eq. 14-17), its options declared once.

    ``penalty`` is b1 of the exponential curriculum (lambda = b1 ** T_a), a1 of
    the linear one (lambda = a1 * T_a) and the constant of ``keep``; ``none``
    never penalises. ``lambda_o`` weighs the orthogonality term.

    Beyond the paper (off by default): ``likelihood_reward`` w adds, at the
    target step, w times the target's log-likelihood under the recommender's
    scoring rule (so an allocation is rewarded for predicting the target), and
    ``allocation_reward_weight`` a scales Eq. 14-15 (the creation penalty keeps its own
    knobs, ``curriculum`` and ``penalty``):
    ``r = a (r_loss + lambda_o r_ort) + r_create + w log p(target)``.
    """

    lambda_o: float = option(0.1, "weight of the orthogonality reward (Eq. 18)", adasplit_only=True)
    curriculum: str = option(
        "exponential", "creation penalty schedule (Eq. 17)", choices=CURRICULA, adasplit_only=True
    )
    penalty: float = option(
        1.1,
        "b1 (exponential), a1 (linear) or the constant (keep) of the penalty",
        adasplit_only=True,
    )
    likelihood_reward: float = option(
        0.0,
        "weight w of a reward at the target step: w * log-likelihood of the target under the "
        "scoring rule (0: the paper's reward). Beyond the paper",
        adasplit_only=True,
    )
    allocation_reward_weight: float = option(
        1.0,
        "scale of the allocation and orthogonality rewards, Eq. 14-15 (1: the paper; the "
        "creation penalty has --curriculum and --penalty). Beyond the paper",
        adasplit_only=True,
    )

    def __post_init__(self) -> None:
        if self.curriculum not in CURRICULA:
            raise ConfigError(
                f"unknown curriculum {self.curriculum!r}; choose one of {', '.join(CURRICULA)}"
            )
        if self.penalty < 0:
            raise ConfigError(f"penalty must be >= 0, got {self.penalty}")
        if self.likelihood_reward < 0 or self.allocation_reward_weight < 0:
            raise ConfigError("likelihood_reward and allocation_reward_weight must be >= 0")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> RewardConfig:
        values = dict(values)
        # checkpoints of an earlier development version: ``paper_weight`` scaled all
        # three paper terms; at its default 1.0 it is the same as no scaling now
        legacy = values.pop("paper_weight", 1.0)
        if legacy != 1.0:
            raise ConfigError(
                f"paper_weight {legacy} (an earlier version's option) has no exact "
                "equivalent now: retrain with allocation_reward_weight and the creation penalty"
            )
        # checkpoints written before the fields were named as their flags
        for old, new in _LEGACY_REWARD_KEYS.items():
            if old in values:
                values[new] = values.pop(old)
        return _from_dict(cls, values)


_LEGACY_REWARD_KEYS = {
    "likelihood_weight": "likelihood_reward",
    "allocation_weight": "allocation_reward_weight",
}
