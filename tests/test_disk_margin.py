"""Free disk (README "Disk space"): checked before a run and before every create, so that creates
stop (exit 3, resumable) before a video already paid for cannot be saved.

The small disks here are ``RUNNER_DISK_BUDGET_BYTES`` (`runner.run.disk`): free space is the
budget minus the bytes under the workspace's media folders, and a video write past the budget
fails as a full disk does, so a margin that came too late shows as a failed download."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import Result

from runner.grid.plan import make_plan
from runner.run import ledger as L
from runner.run import runs
from runner.run.backend import choose
from runner.run.clock import VirtualClock
from runner.run.disk import BUDGET_ENV, SIZE, WAIT, DiskGuard, media_bytes
from runner.run.dispatch import Settings

from .dispatchhelp import Run, Sim, dispatch, new_run
from .runhelp import creates_per_body, simulator, truth

BODY = {"quality": "480p", "duration": 4}  # about 750 KB with poster and strip, before measuring


def small_grid(path: Path, jobs: int, prompt: str = "A lamp on a desk") -> Path:
    values = " | ".join(f"take {i}" for i in range(jobs))
    path.write_text(
        f'prompt,take,duration,quality\n"{prompt}: {{{{ take }}}}",{values},4,480p\n',
        encoding="utf-8",
    )
    return path


def rows(ws: Path, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(ws / "ledger.sqlite")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def states(ws: Path) -> dict[str, int]:
    return dict(Counter(s for (s,) in rows(ws, "SELECT state FROM jobs")))


# ------------------------------------------------------------------ the "Done when"


@pytest.mark.slow
def test_a_small_disk_filled_by_real_videos_stops_creates_before_a_download_fails_resume_ends(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp, ws = small_grid(tmp_path / "g.csv", 12), tmp_path / "ws"
    budget = 1_600_000
    with simulator(speed=1000.0) as url:
        monkeypatch.setenv(BUDGET_ENV, str(budget))
        full = cli(
            "run", exp, "--base-url", url, "--workspace", ws, "--concurrency", "2",
            "--min-free-disk", "1.3MB", "--yes",
        )  # fmt: skip
        at_stop = truth(url)
        counts_at_stop = states(ws)
        used_at_stop = media_bytes(ws)
        (summary_path,) = ws.glob("2*/summary.json")
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        monkeypatch.setenv(BUDGET_ENV, str(4 * budget))  # space was freed
        resumed = cli("resume", "latest", "--workspace", ws, "--base-url", url)
        after = truth(url)

    run_id = rows(ws, "SELECT run_id FROM runs")[0][0]
    assert full.exit_code == 3, full.output
    paid = len(at_stop["tasks"])
    assert 1 <= paid < 12  # creates stopped: fewer tasks than jobs at the simulator
    assert counts_at_stop == {"done": paid, "pending": 12 - paid}  # every paid video saved
    assert budget - 1_300_000 < used_at_stop <= budget  # filled to the margin, not past it
    assert "free, below the 1.3 MB runner keeps free (--min-free-disk 1.3 MB)" in full.output
    assert f"then `runner resume {run_id}`" in full.output
    assert summary["state"] == "stopped" and "disk" in summary["stop_reason"]

    assert resumed.exit_code == 0, resumed.output
    assert states(ws) == {"done": 12}
    assert len(after["tasks"]) == 12 and sorted(creates_per_body(after)) == [1] * 12
    assert not rows(ws, "SELECT 1 FROM jobs WHERE error_code IS NOT NULL")


@pytest.mark.anyio
async def test_the_test_disk_really_fills_a_download_past_it_fails_as_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the margin (the check told there is room), the small disk makes the download
    fail: what the test above shows is the margin's doing, not a disk that cannot fill."""
    async with new_run(tmp_path, 2) as run:
        clock = VirtualClock()
        monkeypatch.setenv(BUDGET_ENV, "10000")
        outcome = await dispatch(
            run, clock=clock, sim=Sim(clock), free_bytes=lambda: 10**12, concurrency=1
        )
        counts = run.counts()
        errors = run.ledger.conn.execute(
            "SELECT error_code, error_message FROM jobs WHERE state = ?", (L.RESULT_ERROR,)
        ).fetchall()

    assert outcome.stop_kind == "disk"
    assert counts.get("result_error", 0) >= 1 and set(counts) <= {"result_error", "pending"}
    assert all(code == "disk" and "the disk is full" in message for code, message in errors)


# ------------------------------------------------------------------ the room for paid videos


@pytest.mark.anyio
async def test_creates_wait_for_paid_videos_then_stop_when_the_next_would_not_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = tmp_path / "ws"
    clock = VirtualClock()
    sim = Sim(clock)
    with L.Ledger.open(ws) as ledger:
        first, _ = runs.create(
            ledger, make_plan(small_grid(tmp_path / "a.csv", 1, "A cup")), choose("sim", None, ws),
            Settings(), name="warm", reuse=False,
        )  # fmt: skip
        await dispatch(Run(ledger, first), clock=clock, sim=sim)
        second, _ = runs.create(
            ledger, make_plan(small_grid(tmp_path / "b.csv", 20)), choose("sim", None, ws),
            Settings(), name="fill", reuse=False,
        )  # fmt: skip
        budget = media_bytes(ws) + 700_000
        monkeypatch.setenv(BUDGET_ENV, str(budget))  # video writes past it fail
        run = Run(ledger, second)
        outcome = await dispatch(run, clock=clock, sim=sim, concurrency=4, min_free_disk=0)
        counts = run.counts()

    made = len(sim.truth()["tasks"]) - 1  # the warm-up's one task apart
    assert outcome.stop_kind == "disk", outcome
    assert outcome.stop_reason and "room for the next video" in outcome.stop_reason
    assert 3 <= made < 20
    assert counts == {"done": made, "pending": 20 - made}  # no download failed
    assert media_bytes(ws) <= budget


@pytest.mark.anyio
async def test_the_guard_keeps_room_for_each_paid_video_twice_over(tmp_path: Path) -> None:
    if True:
        async with new_run(tmp_path, 1) as run:
            free = [0]
            guard = DiskGuard(
                run.ledger.conn, run.run_id, tmp_path / "m", 0, lambda: free[0], downloads=4
            )
            video = guard.video_bytes(BODY)
            assert video == 150_000 * 4 + 150_000  # the plan's assumption, nothing measured
            free[0] = 2 * video
            assert guard.check(BODY, 0, lambda: 0) is None  # the next one fits, twice over
            assert guard.check(BODY, 1, lambda: 1) == WAIT  # once the paid one is saved
            free[0] = 2 * video - 1
            stop = guard.check(BODY, 0, lambda: 0)
            assert stop and "room for the next video, about 750 KB, twice over" in stop
            free[0] = 10 * video
            assert guard.check(BODY, 4, lambda: 4) is None
            assert guard.check(BODY, 4, lambda: 5) == WAIT  # paid ones waiting to download
            hard = DiskGuard(run.ledger.conn, run.run_id, tmp_path / "m", 10**9, lambda: 10**8)
            reason = hard.check(BODY, 0, lambda: 0)
            assert reason and "100.0 MB free, below the 1.0 GB" in reason
            assert f"`runner resume {run.run_id}`" in reason


# ------------------------------------------------------------------ before the run


def test_a_run_whose_videos_would_not_leave_the_margin_is_refused_before_anything_starts(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp, ws = small_grid(tmp_path / "g.csv", 12), tmp_path / "ws"
    monkeypatch.setenv(BUDGET_ENV, "5000000")

    result = cli("run", exp, "--workspace", ws, "--min-free-disk", "1GB")

    assert result.exit_code == 2
    assert "the videos need about 9.0 MB and the disk under" in result.stderr
    assert "5.0 MB free, so less than the 1.0 GB runner keeps free" in result.stderr
    assert "Add --yes to start anyway" in result.stderr
    assert not list(ws.glob("2*"))  # no run, nothing sent


def test_sizes_are_read_as_people_write_them() -> None:
    assert SIZE.convert("2GB", None, None) == 2_000_000_000
    assert SIZE.convert("1.3MB", None, None) == 1_300_000
    assert SIZE.convert("500 mb", None, None) == 500_000_000
    assert SIZE.convert("800000", None, None) == 800_000
    with pytest.raises(click.BadParameter, match="not a size"):
        SIZE.convert("lots", None, None)
