"""A run's recorded state after a stop that was not clean (kill -9, crash, power loss):
`status` shows the real one at once (no process holds the lock), the next writer records it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from runner.grid.plan import make_plan
from runner.run import ledger as L
from runner.run import runs
from runner.run.backend import choose
from runner.run.dispatch import Settings

from .runhelp import grid


def killed_while_running(tmp_path: Path) -> tuple[Path, str]:
    """A run recorded "running" whose process is gone (the lock released, nothing else)."""
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
        ledger.set_run_state(run_id, "running")
    return ws, run_id


def test_status_shows_a_run_whose_process_is_gone_as_stopped_and_how_to_go_on(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    ws, run_id = killed_while_running(tmp_path)

    one = cli("status", run_id, "--workspace", ws).output
    every = cli("status", "--workspace", ws).output

    assert f"Run {run_id} (t): stopped" in one
    assert "without a clean stop" in one and f"runner resume {run_id}" in one
    assert f"{run_id}  fast     stopped" in every


def test_status_shows_running_while_a_process_holds_the_ledger(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    ws, run_id = killed_while_running(tmp_path)

    lock = L._take_lock(ws / "ledger.lock")  # what a live runner holds
    try:
        shown = cli("status", run_id, "--workspace", ws).output
    finally:
        lock.close()

    assert f"Run {run_id} (t): running" in shown
    assert "clean stop" not in shown


def test_the_next_writer_records_the_stop_with_its_reason(tmp_path: Path) -> None:
    ws, run_id = killed_while_running(tmp_path)

    with L.Ledger.open(ws):
        pass
    with L.reader(ws) as store:
        record = store.run(run_id)
        stored = store.conn.execute(
            "SELECT state FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()[0]

    assert stored == "stopped" and record.finished_at is not None
    assert record.stop_reason is not None and "without a clean stop" in record.stop_reason


def test_a_reader_looking_at_the_lock_does_not_turn_a_writer_away(tmp_path: Path) -> None:
    import fcntl
    import threading

    ws, _ = killed_while_running(tmp_path)
    with open(ws / "ledger.lock") as looking:  # what `status` holds for an instant
        fcntl.flock(looking.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        threading.Timer(0.2, fcntl.flock, (looking.fileno(), fcntl.LOCK_UN)).start()

        with L.Ledger.open(ws) as ledger:  # waits out the look, then writes
            assert ledger.runs()
