"""Process, disk and clock faults of the fault matrix (docs/reliability.md §7.2: P5–P9, P11,
P13), each checked against the simulator's ground truth and the ledger: readers during a run,
a ledger locked or on a full disk, a full disk under the videos, wall-clock jumps, the budget
with unknown outcomes, and the rate limiter's accuracy."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pandas as pd
import pytest

from runner.review import report
from runner.run.clock import VirtualClock
from runner.run.ledger import reader

from .dispatchhelp import Sim, dispatch, new_run
from .runhelp import creates_per_body, grid, runner, simulator, spawn, truth


def ledger_rows(ws: Path, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(ws / "ledger.sqlite")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def states(ws: Path) -> dict[str, int]:
    return dict(Counter(s for (s,) in ledger_rows(ws, "SELECT state FROM jobs")))


def attempt_keys(ws: Path) -> set[str]:
    return {k for (k,) in ledger_rows(ws, "SELECT idempotency_key FROM attempts")}


def sent_keys(state: dict[str, Any]) -> set[str]:
    return {t["idempotency_key"] for t in state["tasks"]}


def wal_size(ws: Path) -> int:
    wal = ws / "ledger.sqlite-wal"
    return wal.stat().st_size if wal.exists() else 0


# ---------------------------------------------------------------------- P5: readers


@pytest.mark.slow
@pytest.mark.fault("P5")
def test_reports_built_over_and_over_during_a_run_see_consistent_counts_and_the_wal_ends_empty(
    tmp_path: Path,
) -> None:
    exp, ws = grid(tmp_path / "g.csv", 10), tmp_path / "ws"
    seen: list[dict[str, int]] = []
    reports = 0
    watcher: sqlite3.Connection | None = None  # a reader still connected when the run ends
    with simulator(speed=60.0) as url:
        proc = spawn("run", exp, "--base-url", url, "--workspace", ws, "--rate", "4")
        while proc.poll() is None:
            if (ws / "ledger.sqlite").exists() and any(ws.glob("2*/media")):
                if watcher is None:
                    watcher = sqlite3.connect(f"file:{ws / 'ledger.sqlite'}?mode=ro", uri=True)
                watcher.execute("SELECT COUNT(*) FROM jobs").fetchone()
                built = runner("report", "latest", "--workspace", ws)
                assert built.returncode == 0, built.stderr
                reports += 1
                with reader(ws) as store:
                    run_id = store.run("latest").run_id
                    tally = dict(store.tally(run_id).states)
                    files = {j.job_key for j in store.jobs(run_id, ["done"])}
                seen.append(tally)
                assert sum(tally.values()) == 10  # every job counted once, in one state
                media = next(ws.glob("2*/media"))
                assert all((media / f"{key}.mp4").is_file() for key in files)  # done = saved
            time.sleep(0.2)
        _, err = proc.communicate(timeout=60)
        state = truth(url)
        wal_after = wal_size(ws)  # with a reader connected, only the checkpoint empties it
        assert watcher is not None
        watcher.close()

    assert proc.returncode == 0, err  # the writer never gave up waiting for a reader
    assert reports >= 3
    done = [t.get("done", 0) for t in seen]
    assert done == sorted(done)  # never backwards
    assert states(ws) == {"done": 10}
    assert sorted(creates_per_body(state)) == [1] * 10
    assert wal_after == 0  # checkpointed and reset at the end of the run


@pytest.mark.anyio
@pytest.mark.fault("P5")
async def test_reports_built_at_the_same_time_never_trip_over_each_others_files(
    tmp_path: Path,
) -> None:
    """The run's own report and a `runner report` may be written at once."""
    clock = VirtualClock()
    async with new_run(tmp_path, 3) as run:
        await dispatch(run, clock=clock, sim=Sim(clock))
        ws = run.ledger.workspace
        errors: list[BaseException] = []

        def build_often() -> None:
            for _ in range(8):
                try:
                    with reader(ws) as store:
                        report.build(store, ws, run.run_id)
                except Exception as exc:
                    errors.append(exc)

        def at_once() -> None:
            threads = [threading.Thread(target=build_often) for _ in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        await anyio.to_thread.run_sync(at_once)
    assert errors == []
    folder = ws / run.run_id
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == [
        "index.html",
        "results.csv",
        "results.parquet",
    ]
    assert len(pd.read_parquet(folder / "results.parquet")) == 3
    assert (folder / "index.html").read_text().rstrip().endswith("</html>")


# ---------------------------------------------------------------------- P11: the budget


@pytest.mark.anyio
@pytest.mark.fault("P11")
async def test_the_budget_counts_unknown_outcomes_and_creates_exactly_the_jobs_that_fit(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    # the first two creates end unknown (a 500 before anything was made): held, counted spent
    sim = Sim(clock, {"endpoint": "create", "kind": "respond", "status": 500, "calls": [1, 2]})
    async with new_run(tmp_path, 8) as run:
        (est,) = {j.est_credits for j in run.ledger.jobs(run.run_id, ["pending"])}
        budget = 5 * est + 1  # room for five: two unknown, three made
        outcome = await dispatch(
            run, clock=clock, sim=sim, concurrency=1, replay=False, budget=budget
        )
        assert run.counts() == {"unknown": 2, "done": 3, "pending": 3}
        spent = run.ledger.spent(run.run_id)
    truth_now = sim.truth()
    assert len(truth_now["tasks"]) == 3
    assert [a["status"] for a in truth_now["create_arrivals"]] == ["500", "500"] + ["200"] * 3
    assert spent <= budget
    assert outcome.stop_kind == "budget"
    reason = outcome.stop_reason or ""
    assert f"the budget of {budget:,.2f} credits is reached" in reason
    assert f"{5 * est:,.2f} spent or reserved" in reason
    assert f"{budget - 5 * est:,.2f} left" in reason
    assert f"the next job needs about {est:,.2f}" in reason
