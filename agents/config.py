"""Every option of ``train_agent.py``, with its default and its meaning.

:class:`TrainConfig` holds the run's own options (data, optimisation, evaluation,
running) and nests three sections, each declared once where it is used:
``model_options`` (:class:`~adasplit_env.model.config.ModelOptions`), ``reward``
(:class:`~adasplit_env.model.config.RewardConfig`) and ``learner``
(:class:`LearnerConfig`). Option names are unique across them, so the command line,
``--config FILE`` (YAML or JSON, dashes or underscores) and ``config.json`` in a run
dir are flat (the flag names); ``TrainConfig(dim=8, beta=0.5)`` and
:meth:`TrainConfig.from_dict` route each name to its section.
"""

from __future__ import annotations

import functools
import json
from dataclasses import Field, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

from adasplit_env.data.readers import FORMATS
from adasplit_env.errors import ConfigError
from adasplit_env.model.config import ModelOptions, RewardConfig
from adasplit_env.options import checked, option, option_choices, option_type
from adasplit_env.recommenders import RECOMMENDERS
from agents.baselines import REINFORCE_BASELINES

__all__ = [
    "LearnerConfig",
    "TrainConfig",
    "adasplit_only_keys",
    "option_choices",
    "option_fields",
    "option_groups",
    "option_type",
    "read_config_file",
]


@dataclass
class LearnerConfig:
    """How the learners train the allocation policy (Eq. 18-21 and the other learners'
    knobs); ``reinforce`` reads the first group, ``a2c`` and ``ppo`` the second too."""

    beta: float = option(
        0.1, "weight of L_rl in L = L_seq + beta * L_rl (Eq. 21)", adasplit_only=True
    )
    lambda_d: float = option(0.9, "discount of future rewards (Eq. 18)", adasplit_only=True)
    reinforce_baseline: str = option(
        "none",
        "reinforce: what each step's return is reduced by: "
        + REINFORCE_BASELINES.help()
        + ". All but none go beyond the paper",
        choices=REINFORCE_BASELINES.choices,
        adasplit_only=True,
    )
    rl_gradient: str = option(
        "full",
        "where L_rl's gradient goes: full (policy, encoder, embeddings: the paper) or policy "
        "(stopped at the policy's inputs)",
        choices=("full", "policy"),
        adasplit_only=True,
    )
    seq_rollout: str = option(
        "sampled",
        "which allocation L_seq is trained on: sampled (the paper: the rollout L_rl uses) or "
        "greedy (a second, argmax rollout: the allocation prediction makes). Beyond the paper",
        choices=("sampled", "greedy"),
        adasplit_only=True,
    )
    train_path: str = option(
        "sequential",
        "how reinforce computes its loss: sequential (every MDP step with its graph) or "
        "parallel (the allocation sampled without gradients, then the groups, every step's "
        "log-probability and the target's likelihood in one pass over it: the same loss; "
        "5-10%% faster on a CPU, 1.4x on a GPU, 1.9x there with --group-updater gated, whose "
        "groups have a closed form; benchmarks/README.md)",
        choices=("sequential", "parallel"),
    )
    # other learners (ignored by reinforce)
    gae_lambda: float = option(
        0.95, "a2c: GAE lambda (1.0: return minus value)", adasplit_only=True
    )
    value_coef: float = option(0.5, "a2c, ppo: weight of the value loss", adasplit_only=True)
    entropy_coef: float = option(0.0, "a2c, ppo: weight of the entropy bonus", adasplit_only=True)
    ppo_n_steps: int = option(
        64, "ppo: environment steps per sub-env between updates", adasplit_only=True
    )
    ppo_num_envs: int = option(
        64, "ppo: episodes stepped together (SB3 VecEnv size)", adasplit_only=True
    )
    ppo_epochs: int = option(4, "ppo: optimisation epochs per rollout", adasplit_only=True)
    ppo_clip: float = option(0.2, "ppo: clip range", adasplit_only=True)

    def validate(self) -> None:
        if not 0.0 <= self.lambda_d <= 1.0:
            raise ConfigError(f"lambda_d must lie in [0, 1], got {self.lambda_d}")
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise ConfigError(f"gae_lambda must lie in [0, 1], got {self.gae_lambda}")


@dataclass(init=False)
class TrainConfig:
    algo: str = option(
        "reinforce",
        "learner: a registered name or package.module:Class (AdaSplit only)",
        adasplit_only=True,
    )
    model: str = option(
        "adasplit",
        "recommender: " + RECOMMENDERS.help(),
        choices=RECOMMENDERS.choices,
    )
    dataset: str = option(
        "synthetic",
        "synthetic (or synthetic:field=value,... with the generator's fields, e.g. "
        "synthetic:noise=1.0), lastfm, garden, baby, beauty, or a file path",
    )
    data_dir: str | None = option(
        None, "folder of <name>/interactions.tsv.gz (default $ADASPLIT_DATA, else ./data)"
    )
    format: str | None = option(
        None,
        "format of a --dataset file (default: detected from its name)",
        choices=FORMATS,
    )
    k_core: int = option(5, "k of the iterative k-core filter")
    # optimisation
    epochs: int = option(100, "maximum number of epochs over the training samples")
    batch_size: int = option(256, "samples (episodes) per update")
    lr: float = option(
        5e-3,
        "Adam learning rate (the default lets the main job converge in about 30 epochs; "
        "the reproduction's configs use 1e-3)",
    )
    weight_decay: float = option(0.0, "Adam weight decay")
    compile: bool = option(
        False,
        "torch.compile the MDP step and the policy (each slot width compiles on first use, "
        "minutes on a CPU; see benchmarks/README.md for where it helps)",
        adasplit_only=True,
    )
    fused_adam: bool = option(
        False,
        "Adam as one fused kernel per step (torch's fused=True): the same update up to "
        "float rounding, several times faster over the embedding tables",
    )
    patience: int = option(
        10, "stop after this many evaluations without a better validation NDCG@10 (0: never)"
    )
    seed: int = option(0, "seed of weights, sampling and shuffling")
    # evaluation
    eval_every: int = option(1, "validate every N epochs")
    eval_users: int = option(
        2000, "validate on a fixed seeded subset of N users (0: all); final numbers use all"
    )
    exclude_history: bool = option(False, "leave history items out of the ranking")
    # running
    device: str = option(
        "auto", "auto (cuda when present), cpu or cuda", choices=("auto", "cpu", "cuda")
    )
    threads: int = option(0, "torch CPU threads (0: torch's default)")
    run_dir: str | None = option(
        None, "where to write logs and checkpoints (default runs/<dataset>-<algo>-<time>)"
    )
    progress: bool = option(True, "show progress bars (only when stderr is a terminal)")
    log_every: int = option(
        10,
        "log an update's statistics to TensorBoard every N updates (1: every update); "
        "the updates between skip what only the logs read, such as Eq. 14-15 where no "
        "reward weighs them and the statistics' host syncs",
    )
    # the sections, each declared where it is used
    model_options: ModelOptions = field(default_factory=ModelOptions)
    reward: RewardConfig = field(default_factory=RewardConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)

    SECTIONS: ClassVar[dict[str, type]] = {
        "model_options": ModelOptions,
        "reward": RewardConfig,
        "learner": LearnerConfig,
    }

    def __init__(self, **options: Any) -> None:
        """Options by name: the run's own, any section's (routed to it), or whole
        sections (``reward=RewardConfig(...)``), which named options then override."""
        owners = _option_owners()
        overrides: dict[str, dict[str, Any]] = {name: {} for name in self.SECTIONS}
        sections = {name: options.pop(name, None) for name in self.SECTIONS}
        for name, value in options.items():
            if name not in owners:
                raise TypeError(f"TrainConfig got an unexpected option {name!r}")
            if owners[name] is None:
                setattr(self, name, value)
            else:
                overrides[owners[name]][name] = value
        for spec in option_groups()[None]:
            if spec.name not in options:
                setattr(self, spec.name, spec.default)
        for name, cls in self.SECTIONS.items():
            # a fresh section object: configs never share a mutable learner section
            setattr(self, name, replace(sections[name] or cls(), **overrides[name]))

    def validate(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.eval_every < 1:
            raise ConfigError(f"eval_every must be >= 1, got {self.eval_every}")
        if self.log_every < 1:
            raise ConfigError(f"log_every must be >= 1, got {self.log_every}")
        if self.patience < 0 or self.eval_users < 0:
            raise ConfigError("patience and eval_users must be >= 0")
        if self.format is not None and self.format not in FORMATS:
            raise ConfigError(f"unknown format {self.format!r}; choose one of {', '.join(FORMATS)}")
        self.learner.validate()
        if self.learner.train_path == "parallel" and self.algo != "reinforce":
            raise ConfigError(
                f"--train-path parallel is the reinforce learner's; --algo {self.algo} "
                "trains on the sequential path"
            )

    def to_dict(self) -> dict[str, Any]:
        """Every option by its flag's name, flat (as ``config.json`` holds them)."""
        flat = {spec.name: getattr(self, spec.name) for spec in option_groups()[None]}
        for name in self.SECTIONS:
            flat.update(asdict(getattr(self, name)))
        return flat

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """A config from flat options (the flags' names, dashes or underscores) and/or
        sections as mappings (``{"reward": {"penalty": 1.0}}``), each value checked."""
        flat: dict[str, Any] = {}
        for key, value in values.items():
            name = str(key).replace("-", "_")
            if name in cls.SECTIONS and isinstance(value, dict):
                flat.update({str(k).replace("-", "_"): v for k, v in value.items()})
            else:
                flat[name] = value
        specs = {spec.name: spec for spec in option_fields()}
        unknown = sorted(set(flat) - set(specs))
        if unknown:
            raise ConfigError(f"unknown option(s): {', '.join(map(repr, unknown))}")
        return cls(**{name: checked(specs[name], value) for name, value in flat.items()})


@functools.cache
def option_groups() -> dict[str | None, tuple[Field, ...]]:
    """The options as dataclass fields by section (None: the run's own); the fields do
    not change at run time, so this is read once."""
    groups: dict[str | None, tuple[Field, ...]] = {
        None: tuple(spec for spec in fields(TrainConfig) if spec.name not in TrainConfig.SECTIONS)
    }
    groups.update({name: fields(cls) for name, cls in TrainConfig.SECTIONS.items()})
    return groups


def option_fields() -> list[Field]:
    """Every option as a dataclass field: the run's own, then each section's."""
    return [spec for group in option_groups().values() for spec in group]


@functools.cache
def _option_owners() -> dict[str, str | None]:
    """Each option's section (None: the run's own)."""
    owners = {spec.name: section for section, specs in option_groups().items() for spec in specs}
    if len(owners) != len(option_fields()):
        raise TypeError("an option is declared in two sections")
    return owners


def adasplit_only_keys() -> tuple[str, ...]:
    """The options the baselines (``model sasrec|gru4rec``) ignore: those declared
    ``adasplit_only``."""
    return tuple(spec.name for spec in option_fields() if spec.metadata.get("adasplit_only"))


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
