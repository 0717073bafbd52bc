"""A video the provider made but runner did not save is fetched again for free: `retry` and
`resume` re-read the task for a fresh link before anything is paid again (ground truth: the
simulator's tasks)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from .runhelp import grid, install_faults, runner, simulator, truth

# JSON instead of the video: not a file-host refusal (a web page or a 403 "1010" would get a
# fresh link within the run already, docs/evolink.md §21), so the job ends result_error
NOT_A_VIDEO: dict[str, Any] = {
    "endpoint": "file",
    "kind": "respond",
    "status": 200,
    "body": '{"error": "busy"}',
    "headers": {"content-type": "application/json"},
}


def _states(ws: Path) -> dict[str, int]:
    with sqlite3.connect(ws / "ledger.sqlite") as db:
        return dict(db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())


def _first_run(url: str, tmp_path: Path) -> Path:
    exp, ws = grid(tmp_path / "g.csv", 3), tmp_path / "ws"
    install_faults(url, {**NOT_A_VIDEO, "calls": [1]})
    first = runner("run", exp, "--base-url", url, "--workspace", ws, "--rate", "50")
    assert first.returncode == 1, first.stderr
    assert _states(ws) == {"done": 2, "result_error": 1}
    install_faults(url)  # the file host works again
    return ws


@pytest.mark.slow
def test_retry_fetches_a_made_but_unsaved_video_again_without_paying(tmp_path: Path) -> None:
    with simulator() as url:
        ws = _first_run(url, tmp_path)
        retried = runner("retry", "latest", "--base-url", url, "--workspace", ws)
        state = truth(url)

    assert retried.returncode == 0, retried.stderr
    assert "1 paid video(s)" in retried.stdout and "0 job(s)" in retried.stdout
    assert _states(ws) == {"done": 3}
    assert len(state["tasks"]) == 3  # no second task was paid for


@pytest.mark.slow
def test_resume_fetches_a_made_but_unsaved_video_again_without_paying(tmp_path: Path) -> None:
    with simulator() as url:
        ws = _first_run(url, tmp_path)
        resumed = runner("resume", "latest", "--base-url", url, "--workspace", ws)
        state = truth(url)

    assert resumed.returncode == 0, resumed.stderr
    assert _states(ws) == {"done": 3}
    assert len(state["tasks"]) == 3


@pytest.mark.slow
def test_retry_pays_again_only_once_a_free_reread_did_not_save_it(tmp_path: Path) -> None:
    with simulator() as url:
        ws = _first_run(url, tmp_path)
        install_faults(url, {**NOT_A_VIDEO, "calls": [1]})  # the re-read's download fails too
        again = runner("retry", "latest", "--base-url", url, "--workspace", ws)
        assert again.returncode == 1 and len(truth(url)["tasks"]) == 3
        install_faults(url)
        paid = runner("retry", "latest", "--base-url", url, "--workspace", ws)
        state = truth(url)

    assert "1 job(s) of run" in paid.stdout and "will be sent again as new tasks" in paid.stdout
    assert paid.returncode == 0, paid.stderr
    assert _states(ws) == {"done": 3}
    assert len(state["tasks"]) == 4  # now, and only now, a new task
