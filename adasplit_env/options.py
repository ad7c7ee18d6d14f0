"""Options declared once: a dataclass field with its default, its help and its choices.

The model's options (:class:`~adasplit_env.model.config.ModelOptions`), the reward's
(:class:`~adasplit_env.model.config.RewardConfig`) and the learners'
(``agents.config.LearnerConfig``) are such dataclasses; the training config nests them,
and the command line, the config files and ``--help`` are generated from these fields:
an option's flag is its name, its type its annotation, its choices a tuple or a
registry's (read when asked, so a part registered later is a valid choice too).
"""

from __future__ import annotations

import math
from dataclasses import Field, field
from typing import Any

from adasplit_env.errors import ConfigError


def option(default, help: str, **metadata) -> Any:
    """A dataclass field that is an option: ``choices`` (a tuple, or a function returning
    one), ``adasplit_only`` (the baselines SASRec and GRU4Rec ignore it)."""
    return field(default=default, metadata={"help": help, **metadata})


_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def option_type(spec: Field) -> type:
    """The type an option takes, read from its annotation (``int | None``: int)."""
    return _TYPES[str(spec.type).replace(" | None", "")]


def option_choices(spec: Field) -> tuple | None:
    """The values an option takes: its ``choices``, read from a registry when that is a
    function, or None."""
    choices = spec.metadata.get("choices")
    return tuple(choices()) if callable(choices) else choices


def flag(spec: Field) -> str:
    return "--" + spec.name.replace("_", "-")


def checked(spec: Field, value: Any) -> Any:
    """``value`` as option ``spec`` takes it (ints accepted for floats), or ConfigError."""
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
            raise ConfigError(f"{flag(spec)} must be a finite number, got {value!r}")
        value = float(value) if ok else value
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ConfigError(f"{flag(spec)} takes a {kind.__name__}, got {value!r}"[:200])
    choices = option_choices(spec)
    if choices and value not in choices:
        raise ConfigError(
            f"{flag(spec)}: {value!r} is not one of {', '.join(map(str, choices))}"[:300]
        )
    return value
