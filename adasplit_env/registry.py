"""Registries of parts: an option family's classes by name, filled by a decorator.

Each option family that changes how the model or a learner computes (join rules,
REINFORCE baselines) is one interface and one :class:`Registry`; the option's
value names a registered class, resolved once when the model or the agent is
built. The CLI reads its choices and help from the registry.
"""

from __future__ import annotations

from typing import Generic, TypeVar

Part = TypeVar("Part", bound=type)


class Registry(dict, Generic[Part]):
    """``name -> class`` for one option family; ``kind`` names it in errors."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def register(self, cls: Part) -> Part:
        """Register ``cls`` under ``cls.name`` (a class decorator)."""
        if cls.name in self:
            raise ValueError(f"a {self.kind} named {cls.name!r} is registered already")
        self[cls.name] = cls
        return cls

    def choices(self) -> tuple[str, ...]:
        """The registered names, in the order of registration."""
        return tuple(self)

    def help(self) -> str:
        """``name: help; ...`` of the registered classes, for an option's --help."""
        return "; ".join(f"{name}: {cls.help}" for name, cls in self.items())
