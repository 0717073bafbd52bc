"""Faults on the task-read endpoint, checked against the simulator's ground truth: a 404 on a
task read never hangs a run nor loses a task the provider completed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from .runhelp import grid, install_faults, runner, simulator, truth


def _states(ws: Path) -> dict[str, int]:
    with sqlite3.connect(ws / "ledger.sqlite") as db:
        return dict(db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())


@pytest.mark.slow
def test_a_404_on_a_task_read_then_normal_answers_ends_with_every_job_done(
    tmp_path: Path,
) -> None:
    exp, ws = grid(tmp_path / "g.csv", 4), tmp_path / "ws"
    with simulator() as url:
        install_faults(url, {"endpoint": "task", "kind": "respond", "status": 404, "calls": [1, 3]})
        # before the fix the run never ended: the job was lost and its slot never freed
        result = runner(
            "run", exp, "--base-url", url, "--workspace", ws, "--rate", "50", timeout=90
        )
        state = truth(url)

    assert result.returncode == 0, result.stderr
    assert _states(ws) == {"done": 4}
    assert len(state["tasks"]) == 4  # nothing created twice


@pytest.mark.slow
def test_a_task_that_stays_404_is_lost_and_the_run_still_ends(tmp_path: Path) -> None:
    exp, ws = grid(tmp_path / "g.csv", 3), tmp_path / "ws"
    with simulator() as url:
        install_faults(url, {"endpoint": "task", "kind": "respond", "status": 404, "call_from": 1})
        result = runner(
            "run",
            exp,
            "--base-url",
            url,
            "--workspace",
            ws,
            "--rate",
            "50",
            "--concurrency",
            "1",
            timeout=90,
        )
        state = truth(url)

    assert result.returncode == 1, result.stderr
    # every slot was freed: with one slot, all three jobs were still created
    assert len(state["tasks"]) == 3
    assert _states(ws) == {"lost": 3}
    assert "runner retry" in result.stdout + result.stderr
