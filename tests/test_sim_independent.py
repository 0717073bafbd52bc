"""The simulator imports nothing of runner outside `runner.simulator`: it is the tests' ground
truth, so its rules and prices must be its own encoding, never the code it checks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "runner" / "simulator"
MODULES = sorted(PACKAGE.rglob("*.py"))


def _package_of(path: Path) -> list[str]:
    """``["runner", "simulator", ...]``: the package a module file belongs to."""
    return list(path.relative_to(PACKAGE.parent.parent).parts[:-1])


def foreign_imports(path: Path) -> list[str]:
    """Every import in the module file that reaches runner outside runner.simulator."""
    return foreign_imports_in(path.read_text("utf-8"), _package_of(path))


def foreign_imports_in(source: str, package: list[str]) -> list[str]:
    """Every import in ``source`` (a module of ``package``) that leaves runner.simulator, as
    ``line N: dotted.name``; relative imports are resolved against ``package`` first."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = _resolved(node, package)
        else:
            continue
        found += [
            f"line {node.lineno}: {name or '(above the top package)'}"
            for name in names
            if _outside(name)
        ]
    return found


def _resolved(node: ast.ImportFrom, package: list[str]) -> list[str]:
    if not node.level:
        return [node.module or ""]
    if node.level > len(package):
        return [""]  # climbed above the top package
    base = package[: len(package) - node.level + 1]
    if node.module:
        return [".".join([*base, node.module])]
    return [".".join([*base, alias.name]) for alias in node.names]  # from .. import x


def _outside(name: str) -> bool:
    parts = name.split(".")
    return parts[0] in ("runner", "") and parts[:2] != ["runner", "simulator"]


def test_the_simulator_has_modules() -> None:
    assert PACKAGE / "rules.py" in MODULES and PACKAGE / "prices.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_a_simulator_module_imports_nothing_of_runner_outside_the_simulator(path: Path) -> None:
    assert foreign_imports(path) == []


@pytest.mark.parametrize(
    ("source", "bad"),
    [
        ("from runner.rules import check_body", True),
        ("import runner.grid.pricing", True),
        ("import runner", True),
        ("from runner import rules", True),
        ("from .. import rules", True),
        ("from ..pricing import PriceTable", True),
        ("from ...x import y", True),
        ("def f():\n    from runner.models import content_hash", True),
        ("from . import rules", False),
        ("from .prices import PriceBook", False),
        ("from runner.simulator.rules import problems", False),
        ("import runner.simulator.video", False),
        ("import json", False),
    ],
)
def test_the_check_catches_each_way_out(source: str, bad: bool) -> None:
    """The walker itself: absolute imports of runner, relative ones that climb out with ``..``
    (even inside a function), and nothing that stays in the simulator."""
    found = foreign_imports_in(source, ["runner", "simulator"])
    assert bool(found) is bad, found
