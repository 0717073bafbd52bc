"""Process, disk and clock faults of the fault matrix (docs/reliability.md §7.2: P5–P9, P11,
P13), each checked against the simulator's ground truth and the ledger: readers during a run,
a ledger locked or on a full disk, a full disk under the videos, wall-clock jumps, the budget
with unknown outcomes, and the rate limiter's accuracy."""

from __future__ import annotations

import bisect
import math
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
from runner.run.clock import Clock, VirtualClock
from runner.run.ledger import reader
from runner.run.limits import Pause, Rate

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
        "summary.json",
    ]
    assert len(pd.read_parquet(folder / "results.parquet")) == 3
    assert (folder / "index.html").read_text().rstrip().endswith("</html>")


# ---------------------------------------------------------------------- P6: a locked ledger


@pytest.mark.slow
@pytest.mark.fault("P6")
def test_a_ledger_locked_mid_run_by_another_program_stops_creates_and_nothing_goes_without_intent(
    tmp_path: Path,
) -> None:
    """The lock is held far longer than the busy timeout (45 s against 30 s in the field;
    here 4 s against 0.5 s, through RUNNER_LEDGER_BUSY_SECONDS)."""
    exp, ws = grid(tmp_path / "g.csv", 8), tmp_path / "ws"
    with simulator(speed=50.0) as url:
        proc = spawn(
            "run",
            exp,
            "--base-url",
            url,
            "--workspace",
            ws,
            "--rate",
            "2",
            env={"RUNNER_LEDGER_BUSY_SECONDS": "0.5"},
        )
        deadline = time.monotonic() + 30
        while not truth(url)["tasks"] and time.monotonic() < deadline:
            time.sleep(0.05)
        other = sqlite3.connect(ws / "ledger.sqlite", isolation_level=None, timeout=10)
        other.execute("BEGIN IMMEDIATE")  # e.g. a database browser with a pending write
        locked_at = time.monotonic()
        try:
            _, err = proc.communicate(timeout=4)  # it must give up while the lock is held
            stopped_in = time.monotonic() - locked_at
            during_lock = truth(url)
        finally:
            other.execute("ROLLBACK")
            other.close()
        resumed = runner("resume", "latest", "--workspace", ws, "--base-url", url)
        state = truth(url)

    assert proc.returncode == 3, err
    assert stopped_in >= 0.5  # it waited the busy timeout first
    assert "could not be written" in err and "locked" in err and "runner resume" in err
    assert "Traceback" not in err
    # every create the simulator saw had its intent committed first, and it was not all
    assert sent_keys(during_lock) <= attempt_keys(ws)
    assert 1 <= len(during_lock["tasks"]) < 8
    assert resumed.returncode == 0, resumed.stderr
    assert states(ws) == {"done": 8}
    assert sorted(creates_per_body(state)) == [1] * 8


# ---------------------------------------------------------------------- P7, P8: full disks


@pytest.mark.slow
@pytest.mark.fault("P7")
def test_a_full_disk_under_the_videos_fails_the_downloads_cleanly_and_resume_fetches_them_free(
    tmp_path: Path,
) -> None:
    exp, ws = grid(tmp_path / "g.csv", 6), tmp_path / "ws"
    with simulator() as url:
        full = runner(
            "run",
            exp,
            "--base-url",
            url,
            "--workspace",
            ws,
            "--rate",
            "20",
            "--concurrency",
            "1",
            env={"RUNNER_FAILPOINT": "media_write:full"},
        )
        at_full = truth(url)
        states_at_full = states(ws)
        errors = set(
            ledger_rows(ws, "SELECT error_code, error_message FROM jobs WHERE state != 'pending'")
        )
        media = next(ws.glob("2*/media"))
        left = sorted(p.name for p in media.iterdir())
        report = (media.parent / "index.html").read_text()
        resumed = runner("resume", "latest", "--workspace", ws, "--base-url", url)
        state = truth(url)

    assert full.returncode == 3, full.stderr  # creates stopped: new videos could not be saved
    assert "Traceback" not in full.stderr
    assert "No new videos were started after this: the disk is full" in full.stdout
    paid = len(at_full["tasks"])
    assert 1 <= paid < 6
    assert states_at_full == {"result_error": paid, "pending": 6 - paid}
    assert {code for code, _ in errors} == {"disk"}
    assert all("the disk is full: could not write" in m and str(media) in m for _, m in errors)
    assert left == []  # no partial file, no .part
    assert "the disk is full" in report and str(media) in report  # the report names the disk
    assert resumed.returncode == 0, resumed.stderr
    assert states(ws) == {"done": 6}
    assert len(state["tasks"]) == 6  # the paid ones fetched again for free: no second create
    for key, sha in ledger_rows(ws, "SELECT job_key, file_sha256 FROM jobs"):
        assert sha == sha256(media / f"{key}.mp4")


@pytest.mark.slow
@pytest.mark.fault("P8")
def test_a_ledger_on_a_full_disk_stops_the_run_with_the_reason_and_exit_3(tmp_path: Path) -> None:
    exp, ws = grid(tmp_path / "g.csv", 4), tmp_path / "ws"
    with simulator() as url:
        full = runner(
            "run",
            exp,
            "--base-url",
            url,
            "--workspace",
            ws,
            "--rate",
            "20",
            "--concurrency",
            "1",
            # the ledger's 8th commit finds the disk full: the run is under way by then
            env={"RUNNER_FAILPOINT": "ledger_commit:8:full"},
        )
        at_full = truth(url)
        committed = attempt_keys(ws)
        resumed = runner("resume", "latest", "--workspace", ws, "--base-url", url)
        state = truth(url)

    assert full.returncode == 3, full.stderr
    assert "could not be written (database or disk is full)" in full.stderr
    assert f"the disk holding {ws} is full: free some space" in full.stderr
    assert "Traceback" not in full.stderr
    # creates stopped at once: each create the simulator saw had its intent committed
    assert sent_keys(at_full) <= committed
    assert 1 <= len(at_full["tasks"]) < 4
    assert resumed.returncode == 0, resumed.stderr
    assert states(ws) == {"done": 4}
    assert sorted(creates_per_body(state)) == [1] * 4


def sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------- P9: the wall clock


@pytest.mark.anyio
@pytest.mark.fault("P9")
async def test_pauses_and_sleeps_last_their_length_when_the_wall_clock_jumps_an_hour(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = time.time
    offset = 0.0
    monkeypatch.setattr(time, "time", lambda: real() + offset)
    clock = Clock()
    pause = Pause(clock)

    async def jumps() -> None:
        nonlocal offset
        await anyio.sleep(0.05)
        offset = 3600.0
        await anyio.sleep(0.05)
        offset = -3600.0

    started = time.monotonic()
    with anyio.fail_after(5):  # a wait on the wall clock would last an hour here
        async with anyio.create_task_group() as tg:
            tg.start_soon(jumps)
            pause.pause(0.3)
            await pause.wait()
            paused = time.monotonic() - started
            await clock.sleep(0.2)
            slept = time.monotonic() - started - paused
    assert clock.wall() < real() - 3000  # the jump was seen by the wall clock
    assert 0.3 <= paused < 0.8
    assert 0.2 <= slept < 0.7


class JumpingClock(VirtualClock):
    """A virtual clock whose wall time jumps back an hour 10 s in, and forward an hour
    (an hour ahead of the truth) 60 s in."""

    def wall(self) -> float:
        elapsed = self.now - self._start
        jump = 0.0 if elapsed < 10 else -3600.0 if elapsed < 60 else 3600.0
        return super().wall() + jump


@pytest.mark.anyio
@pytest.mark.fault("P9")
async def test_a_run_whose_wall_clock_jumps_both_ways_keeps_its_pauses_and_loses_nothing(
    tmp_path: Path,
) -> None:
    clock = JumpingClock()
    sim = Sim(clock, {"endpoint": "create", "kind": "rate_limit", "retry_after": 30, "calls": [2]})
    async with new_run(tmp_path, 3) as run:
        # a rate the limiter never waits for: its waits are real time, and on a loaded machine
        # the virtual clock jumps through every timer meanwhile (a create then left 168 s late)
        outcome = await dispatch(run, clock=clock, sim=sim, rate=1e6)
        assert run.counts() == {"done": 3}  # nothing taken as expired or lost
    arrivals = sim.truth()["create_arrivals"]
    assert outcome.stop_kind is None
    assert [a["status"] for a in arrivals] == ["200", "429", "200", "200"]
    # the 30 s Retry-After, measured on the simulator's (true) clock, through both jumps
    assert 30 <= arrivals[2]["wall"] - arrivals[1]["wall"] < 32
    assert sorted(sim.truth()["creates_by_body"].values()) == [1, 1, 1]


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


# ---------------------------------------------------------------------- P13: the rate limiter


@pytest.mark.anyio
@pytest.mark.fault("P13")
async def test_a_thousand_acquisitions_never_exceed_the_rate_in_any_window() -> None:
    per_second = 500.0
    rate = Rate(per_second)
    times: list[float] = []

    async def worker(n: int) -> None:
        for _ in range(n):
            await rate.acquire()
            times.append(time.monotonic())

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(worker, 50)
    times.sort()
    assert len(times) == 1000
    for window in (0.01, 0.1, 0.5, 1.0):
        limit = math.floor(per_second * window + 1e-9) + 1  # the bucket holds one
        busiest = max(bisect.bisect_left(times, t + window) - i for i, t in enumerate(times))
        assert busiest <= limit, (window, busiest, limit)
