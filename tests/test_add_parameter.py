"""Adding a Seedance parameter is one row of the parameter table: the grid column parses and
expands, the body pins it, and every variant key computed before it existed still holds.

The parameter here (``camera_fixed``) is hypothetical; the test extends the table for its own
duration only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runner import params
from runner.errors import ExperimentError
from runner.grid.plan import make_plan
from runner.models import Job
from tests.test_variant_keys import GRID, GRID_KEYS, PINNED, REQUESTS

CAMERA_FIXED = params.Param(
    "camera_fixed", params.parse_bool, False, "camera_fixed", promotable=True
)


@pytest.fixture
def camera_fixed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(params, "TABLE", params.TABLE.with_row(CAMERA_FIXED))
    yield


def _grid(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_new_column_parses_and_expands(camera_fixed: None, tmp_path: Path) -> None:
    path = _grid(tmp_path, "prompt,camera_fixed\nA red fox,yes | false\n")
    plan = make_plan(path, "fast")
    variants = plan.expansion.variants
    assert [v.request.value("camera_fixed") for v in variants] == [True, False]
    assert plan.expansion.dimensions["camera_fixed"] == ("true", "false")
    assert variants[0].variant_key != variants[1].variant_key


def test_a_bad_value_names_the_cell(camera_fixed: None, tmp_path: Path) -> None:
    path = _grid(tmp_path, "prompt,camera_fixed\nA red fox,maybe\n")
    with pytest.raises(ExperimentError) as caught:
        make_plan(path, "fast")
    assert "grid.csv:row 2:camera_fixed: 'maybe' is not true or false" in str(caught.value)


def test_the_body_pins_it_on_every_tier(camera_fixed: None, tmp_path: Path) -> None:
    plan = make_plan(_grid(tmp_path, "prompt\nA red fox\n"), "fast")
    variant = plan.expansion.variants[0]
    for tier in ("mini", "fast", "standard"):
        assert Job(variant, tier, 1).body()["camera_fixed"] is False
    assert "camera_fixed" not in variant.request.canonical()  # at its default: not in the key


def test_pinned_keys_hold_at_its_default(camera_fixed: None, tmp_path: Path) -> None:
    for name, request in REQUESTS.items():
        assert request.variant_key == PINNED[name][0]
        rebuilt = request.from_body(request.body("fast"), request.mode)
        assert rebuilt.value("camera_fixed") is False
        assert rebuilt.variant_key == PINNED[name][0]
    header, *rows = GRID.splitlines()
    path = _grid(tmp_path, "\n".join([header + ",camera_fixed", *(r + "," for r in rows)]))
    variants = make_plan(path, "standard").expansion.variants
    assert {v.name: v.variant_key for v in variants} == GRID_KEYS


def test_a_row_with_it_set_gets_another_key(camera_fixed: None, tmp_path: Path) -> None:
    header, *rows = GRID.splitlines()
    grid = [header + ",camera_fixed", *(r + ",true" for r in rows)]
    variants = make_plan(_grid(tmp_path, "\n".join(grid)), "standard").expansion.variants
    keys = {v.name: v.variant_key for v in variants}
    assert all(keys[name] != GRID_KEYS[name] for name in GRID_KEYS)
    for v in variants:
        assert v.request.variant_key == v.variant_key
        assert v.request.body("fast")["camera_fixed"] is True
        assert v.request.canonical()["camera_fixed"] is True


def test_without_the_row_the_column_is_refused(tmp_path: Path) -> None:
    path = _grid(tmp_path, "prompt,camera_fixed\nA red fox,true\n")
    with pytest.raises(ExperimentError) as caught:
        make_plan(path, "fast")
    assert "no camera_fixed setting" in str(caught.value)


def test_the_simulator_accepts_the_body_that_carries_it(camera_fixed: None, tmp_path: Path) -> None:
    from runner.simulator import rules as sim_rules

    plan = make_plan(_grid(tmp_path, "prompt,camera_fixed\nA red fox,true\n"), "fast")
    for tier in ("mini", "fast", "standard"):
        body = Job(plan.expansion.variants[0], tier, 1).body()
        assert body["camera_fixed"] is True
        assert sim_rules.problems(body) == []  # the simulator's own rules: unknown fields pass
