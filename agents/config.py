"""Every option of ``train_agent.py``, with its default and its meaning.

The command line, ``--config FILE`` (YAML or JSON with the same keys, dashes
or underscores) and ``config.json`` in a run dir are all this one dataclass.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from adasplit_env.data.readers import FORMATS
from adasplit_env.errors import ConfigError
from adasplit_env.model.config import (
    CURRICULA,
    ENCODER_BLOCKS,
    ENCODERS,
    GROUP_STARTS,
    ModelConfig,
    RewardConfig,
)
from adasplit_env.model.join_rules import JOIN_RULES
from adasplit_env.model.scorers import GROUP_VIEWS, ITEM_SCORERS, READOUTS
from adasplit_env.model.updaters import GROUP_UPDATERS
from adasplit_env.recommenders import RECOMMENDERS
from agents.baselines import REINFORCE_BASELINES


def _opt(default, help: str, **extra):
    return field(default=default, metadata={"help": help, **extra})


@dataclass
class TrainConfig:
    algo: str = _opt(
        "reinforce",
        "learner: a registered name or package.module:Class (AdaSplit only)",
        adasplit_only=True,
    )
    model: str = _opt(
        "adasplit",
        "recommender: " + RECOMMENDERS.help(),
        choices=RECOMMENDERS.choices,
    )
    dataset: str = _opt(
        "synthetic",
        "synthetic (or synthetic:field=value,... with the generator's fields, e.g. "
        "synthetic:noise=1.0), lastfm, garden, baby, beauty, or a file path",
    )
    data_dir: str | None = _opt(
        None, "folder of <name>/interactions.tsv.gz (default $ADASPLIT_DATA, else ./data)"
    )
    format: str | None = _opt(
        None,
        "format of a --dataset file (default: detected from its name)",
        choices=FORMATS,
    )
    k_core: int = _opt(5, "k of the iterative k-core filter")
    # optimisation
    epochs: int = _opt(100, "maximum number of epochs over the training samples")
    batch_size: int = _opt(256, "samples (episodes) per update")
    lr: float = _opt(
        5e-3,
        "Adam learning rate (the default lets the main job converge in about 30 epochs; "
        "the reproduction's configs use 1e-3)",
    )
    weight_decay: float = _opt(0.0, "Adam weight decay")
    compile: bool = _opt(
        False,
        "torch.compile the MDP step and the policy (each slot width compiles on first use, "
        "minutes on a CPU; see benchmarks/README.md for where it helps)",
        adasplit_only=True,
    )
    fused_adam: bool = _opt(
        False,
        "Adam as one fused kernel per step (torch's fused=True): the same update up to "
        "float rounding, several times faster over the embedding tables",
    )
    patience: int = _opt(
        10, "stop after this many evaluations without a better validation NDCG@10 (0: never)"
    )
    seed: int = _opt(0, "seed of weights, sampling and shuffling")
    # model (docs/design.md, section 3)
    max_len: int = _opt(10, "history length l (paper's best: 10)")
    dim: int = _opt(64, "embedding dimension d")
    encoder: str = _opt(
        "bidirectional",
        "history encoder (Adasplit-Single: causal, -Zero: none)",
        choices=ENCODERS,
        adasplit_only=True,
    )
    num_layers: int | None = _opt(None, "transformer blocks (default: AdaSplit 1, SASRec 2)")
    num_heads: int | None = _opt(None, "attention heads per block (default: AdaSplit 1, SASRec 2)")
    dropout: float | None = _opt(
        None,
        "dropout during training (default: AdaSplit 0.2 in the encoder; "
        "SASRec 0.5, GRU4Rec 0.3 as in RecBole)",
    )
    group_updater: str = _opt(
        "attn_gru",
        "group updater: " + GROUP_UPDATERS.help() + ". All but attn_gru go beyond the paper",
        choices=GROUP_UPDATERS.choices,
        adasplit_only=True,
    )
    max_groups: int | None = _opt(
        None,
        "upper bound on the number of groups h (default max_len + 1)",
        adasplit_only=True,
    )
    eps: float = _opt(
        0.5, "logit of 'create a new group' (Eq. 8; paper range 0.2-0.8)", adasplit_only=True
    )
    temperature: float = _opt(
        1.0,
        "policy temperature (1.0 = the paper's policy; an option beyond it)",
        adasplit_only=True,
    )
    group_start: str = _opt(
        "user",
        "what groups start from: user (the paper's e_u), zero or learned (shared by all users; "
        "no per-user parameters). Beyond the paper",
        choices=GROUP_STARTS,
        adasplit_only=True,
    )
    scoring: str = _opt(
        "paper",
        "item scoring: " + ITEM_SCORERS.help() + ". All but paper go beyond the paper",
        choices=ITEM_SCORERS.choices,
        adasplit_only=True,
    )
    readout: str = _opt(
        "group",
        "what scores items: " + READOUTS.help() + ". All but group go beyond the paper",
        choices=READOUTS.choices,
        adasplit_only=True,
    )
    encoder_block: str = _opt(
        "paper",
        "encoder block: paper (Eq. 5 as written, no residual around attention, feed-forward "
        "width d) or standard (residual, width 4d). Beyond the paper",
        choices=ENCODER_BLOCKS,
        adasplit_only=True,
    )
    join_logit: str = _opt(
        "sigmoid",
        "a join's logit: " + JOIN_RULES.help() + ". All but sigmoid go beyond the paper",
        choices=JOIN_RULES.choices,
        adasplit_only=True,
    )
    cluster_count: int = _opt(
        20,
        "with --join-logit cluster: how many co-occurrence clusters the items fall into "
        "(spherical k-means of the training PPMI's spectral embedding)",
        adasplit_only=True,
    )
    group_repr: str = _opt(
        "updater",
        "what represents a group where items are scored: "
        + GROUP_VIEWS.help()
        + ". All but updater go beyond the paper",
        choices=GROUP_VIEWS.choices,
        adasplit_only=True,
    )
    seq_rollout: str = _opt(
        "sampled",
        "which allocation L_seq is trained on: sampled (the paper: the rollout L_rl uses) or "
        "greedy (a second, argmax rollout: the allocation prediction makes). Beyond the paper",
        choices=("sampled", "greedy"),
        adasplit_only=True,
    )
    train_path: str = _opt(
        "sequential",
        "how reinforce computes its loss: sequential (every MDP step with its graph) or "
        "parallel (the allocation sampled without gradients, then the groups, every step's "
        "log-probability and the target's likelihood in one pass over it: the same loss; "
        "5-10%% faster on a CPU, 1.4x on a GPU, 1.9x there with --group-updater gated, whose "
        "groups have a closed form; benchmarks/README.md)",
        choices=("sequential", "parallel"),
    )
    # reward and loss (Eq. 14-21)
    beta: float = _opt(
        0.1, "weight of L_rl in L = L_seq + beta * L_rl (Eq. 21)", adasplit_only=True
    )
    lambda_o: float = _opt(0.1, "weight of the orthogonality reward (Eq. 18)", adasplit_only=True)
    lambda_d: float = _opt(0.9, "discount of future rewards (Eq. 18)", adasplit_only=True)
    curriculum: str = _opt(
        "exponential", "creation penalty schedule (Eq. 17)", choices=CURRICULA, adasplit_only=True
    )
    penalty: float = _opt(
        1.1,
        "b1 (exponential), a1 (linear) or the constant (keep) of the penalty",
        adasplit_only=True,
    )
    likelihood_reward: float = _opt(
        0.0,
        "weight w of a reward at the target step: w * log-likelihood of the target under the "
        "scoring rule (0: the paper's reward). Beyond the paper",
        adasplit_only=True,
    )
    allocation_reward_weight: float = _opt(
        1.0,
        "scale of the allocation and orthogonality rewards, Eq. 14-15 (1: the paper; the "
        "creation penalty has --curriculum and --penalty). Beyond the paper",
        adasplit_only=True,
    )
    reinforce_baseline: str = _opt(
        "none",
        "reinforce: what each step's return is reduced by: "
        + REINFORCE_BASELINES.help()
        + ". All but none go beyond the paper",
        choices=REINFORCE_BASELINES.choices,
        adasplit_only=True,
    )
    rl_gradient: str = _opt(
        "full",
        "where L_rl's gradient goes: full (policy, encoder, embeddings: the paper) or policy "
        "(stopped at the policy's inputs)",
        choices=("full", "policy"),
        adasplit_only=True,
    )
    # other learners (ignored by reinforce)
    gae_lambda: float = _opt(0.95, "a2c: GAE lambda (1.0: return minus value)", adasplit_only=True)
    value_coef: float = _opt(0.5, "a2c, ppo: weight of the value loss", adasplit_only=True)
    entropy_coef: float = _opt(0.0, "a2c, ppo: weight of the entropy bonus", adasplit_only=True)
    ppo_n_steps: int = _opt(
        64, "ppo: environment steps per sub-env between updates", adasplit_only=True
    )
    ppo_num_envs: int = _opt(
        64, "ppo: episodes stepped together (SB3 VecEnv size)", adasplit_only=True
    )
    ppo_epochs: int = _opt(4, "ppo: optimisation epochs per rollout", adasplit_only=True)
    ppo_clip: float = _opt(0.2, "ppo: clip range", adasplit_only=True)
    # evaluation
    eval_every: int = _opt(1, "validate every N epochs")
    eval_users: int = _opt(
        2000, "validate on a fixed seeded subset of N users (0: all); final numbers use all"
    )
    exclude_history: bool = _opt(False, "leave history items out of the ranking")
    # running
    device: str = _opt(
        "auto", "auto (cuda when present), cpu or cuda", choices=("auto", "cpu", "cuda")
    )
    threads: int = _opt(0, "torch CPU threads (0: torch's default)")
    run_dir: str | None = _opt(
        None, "where to write logs and checkpoints (default runs/<dataset>-<algo>-<time>)"
    )
    progress: bool = _opt(True, "show progress bars (only when stderr is a terminal)")

    def validate(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.lambda_d <= 1.0:
            raise ConfigError(f"lambda_d must lie in [0, 1], got {self.lambda_d}")
        if self.eval_every < 1:
            raise ConfigError(f"eval_every must be >= 1, got {self.eval_every}")
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise ConfigError(f"gae_lambda must lie in [0, 1], got {self.gae_lambda}")
        if self.patience < 0 or self.eval_users < 0:
            raise ConfigError("patience and eval_users must be >= 0")
        if self.format is not None and self.format not in FORMATS:
            raise ConfigError(f"unknown format {self.format!r}; choose one of {', '.join(FORMATS)}")
        if self.train_path == "parallel" and self.algo != "reinforce":
            raise ConfigError(
                f"--train-path parallel is the reinforce learner's; --algo {self.algo} "
                "trains on the sequential path"
            )
        self.reward_config()  # validates the reward options

    def model_options(self) -> dict[str, Any]:
        """The :class:`ModelConfig` fields this config sets."""
        names = {f.name for f in fields(ModelConfig)} - {"num_users", "num_items"}
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def reward_config(self) -> RewardConfig:
        return RewardConfig(
            lambda_o=self.lambda_o,
            curriculum=self.curriculum,
            penalty=self.penalty,
            likelihood_weight=self.likelihood_reward,
            allocation_weight=self.allocation_reward_weight,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        normalised = {str(key).replace("-", "_"): value for key, value in values.items()}
        specs = {f.name: f for f in fields(cls)}
        unknown = sorted(set(normalised) - set(specs))
        if unknown:
            raise ConfigError(f"unknown option(s): {', '.join(map(repr, unknown))}")
        for name, value in normalised.items():
            normalised[name] = _checked(specs[name], value)
        return cls(**normalised)


_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def option_type(spec) -> type:
    """The type an option takes, read from its annotation (``int | None``: int)."""
    return _TYPES[str(spec.type).replace(" | None", "")]


def adasplit_only_keys() -> tuple[str, ...]:
    """The options the baselines (``model sasrec|gru4rec``) ignore: those declared
    ``adasplit_only``."""
    return tuple(f.name for f in fields(TrainConfig) if f.metadata.get("adasplit_only"))


def option_choices(spec) -> tuple | None:
    """The values an option takes: its ``choices``, read from a registry when that is a
    function (so a part registered after import is a valid choice too), or None."""
    choices = spec.metadata.get("choices")
    return tuple(choices()) if callable(choices) else choices


def _checked(spec, value: Any) -> Any:
    """``value`` as option ``spec`` takes it (ints accepted for floats), or ConfigError."""
    flag = "--" + spec.name.replace("_", "-")
    kind = option_type(spec)
    if value is None and spec.default is None:
        return None
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            raise ConfigError(f"{flag} must be a finite number, got {value!r}")
        value = float(value) if ok else value
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ConfigError(f"{flag} takes a {kind.__name__}, got {value!r}"[:200])
    choices = option_choices(spec)
    if choices and value not in choices:
        raise ConfigError(f"{flag}: {value!r} is not one of {', '.join(map(str, choices))}"[:300])
    return value


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Options from a YAML or JSON file (keys as the command-line flags)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            values = json.loads(text)
        else:
            import yaml

            values = yaml.safe_load(text)
    except Exception as err:  # yaml and json raise many kinds
        raise ConfigError(f"{path}: cannot parse ({str(err).splitlines()[0]})") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of option names to values")
    return {key.replace("-", "_"): value for key, value in values.items()}
