"""Every row of the fault matrix (docs/reliability.md §7) is proved by a test marked
``@pytest.mark.fault("ROW")``, or the README's Guarantees section says why it does not apply."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^\| ([NPB]\d+) \|", re.MULTILINE)


def matrix_rows() -> list[str]:
    text = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    return ROW.findall(text[text.index("## 7. Fault matrix") :])


def marked_rows() -> dict[str, list[str]]:
    """Row -> the tests whose ``fault`` marker names it (decorators and ``pytestmark``)."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr != "fault" or not ast.unparse(node.func).endswith("mark.fault"):
                continue
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.setdefault(arg.value, []).append(path.name)
    return found


def not_applicable() -> dict[str, str]:
    """Rows the README's Guarantees section says do not apply, with the reason."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Guarantees")
    section = text[start : text.index("\n## ", start + 1)]
    return dict(re.findall(r"^\| ([NPB]\d+) \| (.+?) \|$", section, re.MULTILINE))


def test_the_matrix_has_every_row_of_its_three_tables() -> None:
    rows = matrix_rows()
    assert [r for r in rows if r[0] == "N"] == [f"N{i}" for i in range(1, 27)]
    assert [r for r in rows if r[0] == "P"] == [f"P{i}" for i in range(1, 15)]
    assert [r for r in rows if r[0] == "B"] == [f"B{i}" for i in range(1, 10)]


def test_every_row_is_proved_by_a_test_or_said_not_to_apply() -> None:
    marked, skipped = marked_rows(), not_applicable()
    missing = [row for row in matrix_rows() if row not in marked and row not in skipped]
    assert not missing, f"rows with no test and no reason in the README: {missing}"


def test_markers_and_reasons_name_real_rows_only() -> None:
    rows = set(matrix_rows())
    assert set(marked_rows()) <= rows
    assert set(not_applicable()) <= rows
    both = set(marked_rows()) & set(not_applicable())
    assert not both, f"rows both tested and said not to apply: {sorted(both)}"
