"""The layout shows the architecture: imports run one way only.

raw data -> model -> the MDP (process, rewards) -> recommenders, checkpoints -> the
Gymnasium faces; the analysis of allocations beside the faces; the learners
(``agents``) above the environment package; the reproduction (``reproduce``) above
the learners. Read from the source, so a function-local import that dodges a cycle
counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("adasplit_env", "agents", "reproduce")


def imported_modules(path: Path) -> list[tuple[str, bool]]:
    """(module, at the top level) for every import of the file's project modules."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = set(map(id, tree.body))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] in PACKAGES:
                found.append((name, id(node) in top))
    return found


def sources(*parts: str) -> list[Path]:
    root = REPO.joinpath(*parts)
    return sorted(root.rglob("*.py")) if root.is_dir() else [root]


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


# what each part of the code may not import (by module prefix)
FORBIDDEN = [
    (("adasplit_env",), ("agents", "reproduce")),
    (("agents",), ("reproduce",)),
    (
        ("adasplit_env", "data"),
        (
            "adasplit_env.model",
            "adasplit_env.process",
            "adasplit_env.envs",
            "adasplit_env.analysis",
        ),
    ),
    (
        ("adasplit_env", "model"),
        ("adasplit_env.process", "adasplit_env.envs", "adasplit_env.analysis"),
    ),
    (("adasplit_env", "process.py"), ("adasplit_env.envs", "adasplit_env.analysis")),
    (("adasplit_env", "rewards.py"), ("adasplit_env.process", "adasplit_env.envs")),
    (("adasplit_env", "envs", "core.py"), ("adasplit_env.analysis",)),
    (("adasplit_env", "envs", "allocation_env.py"), ("adasplit_env.analysis",)),
    (("adasplit_env", "envs", "vector_env.py"), ("adasplit_env.analysis",)),
    (("adasplit_env", "envs", "sb3_vec_env.py"), ("adasplit_env.analysis",)),
]


@pytest.mark.parametrize("part,forbidden", FORBIDDEN, ids=lambda x: "/".join(x))
def test_no_import_runs_back_up(part, forbidden):
    offending = [
        f"{module_name(path)} imports {name}"
        for path in sources(*part)
        for name, _ in imported_modules(path)
        if any(name == prefix or name.startswith(prefix + ".") for prefix in forbidden)
    ]
    assert not offending, offending


def test_project_modules_are_imported_at_the_top_not_inside_functions():
    """A function-local import of a project module hides a cycle or a layer breach; the
    entry scripts' deferred heavy imports (after argument errors) are the exception."""
    local = [
        f"{module_name(path)} imports {name} inside a function"
        for package in PACKAGES
        for path in sources(package)
        for name, at_top in imported_modules(path)
        if not at_top
    ]
    assert not local, local


def test_the_layering_test_sees_a_breach():
    """The reader above catches a function-local import of a higher layer."""
    probe = REPO / "tests" / "_layering_probe.py"
    probe.write_text("def f():\n    from agents.trainer import Trainer\n    return Trainer\n")
    try:
        assert imported_modules(probe) == [("agents.trainer", False)]
    finally:
        probe.unlink()
