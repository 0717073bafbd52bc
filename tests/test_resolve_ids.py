"""`runner resolve --mark-created` takes only a real task id (docs/evolink.md §17): anything
else is refused in plain words before the ledger is touched."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from runner.grid.plan import make_plan
from runner.run import ledger as L
from runner.run import runs
from runner.run.backend import choose
from runner.run.dispatch import Settings

from .runhelp import grid


def _run(tmp_path: Path) -> tuple[Path, str, str]:
    ws = tmp_path / "ws"
    plan = make_plan(grid(tmp_path / "g.csv", 1))
    with L.Ledger.open(ws) as ledger:
        run_id, _ = runs.create(
            ledger, plan, choose("sim", None, ws), Settings(), name="t", reuse=False
        )
        (job,) = ledger.jobs(run_id)
    return ws, run_id, job.job_key


@pytest.mark.parametrize(
    "task_id",
    ["../../v1/credits", "task-unified-1/2", "a..b", "", " ", "x" * 129, "task unified", "é"],
)
def test_mark_created_refuses_an_invalid_task_id(
    cli: Callable[..., Result], tmp_path: Path, task_id: str
) -> None:
    ws, run_id, job_key = _run(tmp_path)
    result = cli("resolve", run_id, "--workspace", ws, "--mark-created", f"{job_key}={task_id}")
    assert result.exit_code != 0
    assert "is not a task id" in result.output
    assert "Traceback" not in result.output
    with L.Ledger.open(ws) as ledger:
        (job,) = ledger.jobs(run_id)
    assert (job.state, job.task_id) == (L.PENDING, None)


def test_mark_created_accepts_a_valid_id_then_checks_the_job(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    ws, run_id, job_key = _run(tmp_path)
    mark = f"{job_key}=task-unified-1774857405-abc12345"
    result = cli("resolve", run_id, "--workspace", ws, "--mark-created", mark)
    assert "is not a task id" not in result.output
    assert "not held as unknown" in result.output  # the id passed; the job is not held


def test_mark_created_without_an_equals_sign_says_how_to_write_it(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    ws, run_id, job_key = _run(tmp_path)
    result = cli("resolve", run_id, "--workspace", ws, "--mark-created", job_key)
    assert result.exit_code != 0 and "write JOB=TASK_ID" in result.output


def test_a_task_already_recorded_for_another_job_is_refused_in_plain_words(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    with L.Ledger.open(ws) as ledger:
        run_id, _ = runs.create(
            ledger,
            make_plan(grid(tmp_path / "g.csv", 2)),
            choose("sim", None, ws),
            Settings(),
            name="t",
            reuse=False,
        )
        first, second = ledger.jobs(run_id)
        for job in (first, second):  # both creates' answers were lost
            attempt = ledger.begin_attempt(run_id, job.job_id, job.job_key, 1.0, None)
            ledger.unknown(run_id, attempt, "timeout", None)
    task = "task-unified-1774857405-abc12345"
    cli("resolve", run_id, "--workspace", ws, "--mark-created", f"{first.job_key}={task}")

    result = cli("resolve", run_id, "--workspace", ws, "--mark-created", f"{second.job_key}={task}")

    assert result.exit_code == 2
    assert f"already recorded for job {first.job_key}" in result.output
    assert "Traceback" not in result.output
    with L.Ledger.open(ws) as ledger:
        assert ledger.job(second.job_id).state == L.UNKNOWN  # still held, for the right task
