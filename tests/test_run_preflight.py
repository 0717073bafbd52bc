"""Before anything is spent: the key's model list and credits (both free calls), and a daily
key limit that pauses creates until it resets instead of ending the run. Checked against the
simulator's ground truth (its creates, its 402s)."""

from __future__ import annotations

import functools
import sqlite3
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from runner.run.clock import VirtualClock
from runner.simulator.config import DEFAULT_KEY, KeyConfig
from runner.simulator.video import render_video

from .dispatchhelp import Sim, dispatch, new_run
from .runhelp import grid, runner, simulator, truth

FAST = "seedance-2.0-fast-text-to-video"
STANDARD = "seedance-2.0-text-to-video"


def _states(ws: Path) -> dict[str, int]:
    with sqlite3.connect(ws / "ledger.sqlite") as db:
        return dict(db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())


@pytest.mark.slow
def test_a_key_without_the_standard_model_exits_2_before_any_create(tmp_path: Path) -> None:
    exp, ws = grid(tmp_path / "g.csv", 3), tmp_path / "ws"
    keys = {DEFAULT_KEY: KeyConfig(models=frozenset({FAST}))}
    with simulator(keys=keys, accept_any_key=False) as url:
        result = runner(
            "run", exp, "--tier", "standard", "--base-url", url, "--workspace", ws, timeout=60
        )
        state = truth(url)
    assert result.returncode == 2, result.stdout + result.stderr
    assert STANDARD in result.stderr and FAST in result.stderr  # the model and the allowed ones
    assert "create" not in state["requests"]  # nothing was sent, nothing paid
    assert state["requests"]["models"] == {"200": 1}
    assert _states(ws) == {"pending": 3}


@pytest.mark.slow
def test_a_balance_short_of_the_quote_refuses_or_with_yes_stops_before_it(
    tmp_path: Path,
) -> None:
    exp = grid(tmp_path / "g.csv", 6)
    # a 4-second fast job costs about 32.8 credits: 100 credits pay for three
    keys = {DEFAULT_KEY: KeyConfig(balance=100.0)}
    with simulator(keys=keys, accept_any_key=False) as url:
        refused = runner("run", exp, "--base-url", url, "--workspace", tmp_path / "a")
        assert "create" not in truth(url)["requests"]
        capped = runner(
            "run", exp, "--base-url", url, "--workspace", tmp_path / "b", "--yes", timeout=90
        )
        state = truth(url)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "100.00" in refused.stderr and "--yes" in refused.stderr
    assert capped.returncode == 3, capped.stdout + capped.stderr
    assert state["requests"]["create"] == {"200": 3}  # stopped before the shortfall: no 402
    assert _states(tmp_path / "b") == {"done": 3, "pending": 3}
    charged = sum(a["charged"] for a in state["accounts"].values())
    # the summary: runner's figure, and the account's own change beside it
    assert f"spent {charged:,.2f} credits" in capped.stdout
    assert f"Account balance: 100.00 -> {100 - charged:,.2f} credits" in capped.stdout


@functools.cache
def _video() -> bytes:
    return render_video(
        prompt="daily", duration=4, aspect_ratio="16:9", tier="fast", generate_audio=True
    )


@pytest.mark.anyio
async def test_a_daily_limit_reached_mid_run_pauses_until_its_reset_then_continues(
    tmp_path: Path,
) -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    start = datetime(2027, 3, 1, 23, 50, tzinfo=shanghai).timestamp()  # 10 min to midnight
    clock = VirtualClock()
    sim = Sim(
        clock,
        accept_any_key=False,
        keys={DEFAULT_KEY: KeyConfig(daily_limit=100.0)},  # three 4-second fast jobs a day
        start_time=start,
        video_source=lambda **_: _video(),
    )
    async with new_run(tmp_path, 5) as run:
        outcome = await dispatch(run, clock=clock, sim=sim, give_up_after=120)
        assert run.counts() == {"done": 5}
        paused = [e for e in run.events if e.kind == "paused"]
    state = sim.truth()
    assert outcome.stop_kind is None
    assert state["requests"]["create"]["402"] >= 1  # the limit was hit...
    assert len(state["tasks"]) == 5  # ...and every job was made after it reset
    after = [a for a in state["create_arrivals"] if a["status"] == "200"][-2:]
    midnight = datetime(2027, 3, 2, tzinfo=shanghai).timestamp()
    assert all(a["sim"] >= midnight for a in after), after
    assert paused and "resets at" in paused[0].detail


@pytest.mark.anyio
async def test_a_replay_kept_waiting_past_the_window_by_a_daily_pause_is_held_not_sent(
    tmp_path: Path,
) -> None:
    """The second create is charged but its answer lost; before its replay goes, the third
    hits the key's daily limit and creates wait 30 minutes for midnight: by then the gateway
    may have forgotten the key, so the replay is not sent and the job is held."""
    shanghai = ZoneInfo("Asia/Shanghai")
    start = datetime(2027, 3, 1, 23, 30, tzinfo=shanghai).timestamp()  # 30 min to midnight
    clock = VirtualClock()
    sim = Sim(
        clock,
        {"endpoint": "create", "kind": "respond", "status": 504, "processed": True, "calls": [2]},
        accept_any_key=False,
        keys={DEFAULT_KEY: KeyConfig(daily_limit=70.0)},  # two 4-second fast jobs a day
        start_time=start,
        video_source=lambda **_: _video(),
    )
    async with new_run(tmp_path, 4) as run:
        await dispatch(run, clock=clock, sim=sim, concurrency=4, give_up_after=120)
        counts = run.counts()
        held = run.ledger.jobs(run.run_id, ["unknown"])
    state = sim.truth()
    assert counts == {"done": 3, "unknown": 1}
    assert sum(state["replays_by_idempotency_key"].values()) == 0  # never replayed late
    (job,) = held
    assert state["creates_by_idempotency_key"][f"{job.job_key}-1"] == 1  # sent once only
    assert "could not be sent in time" in (job.error_message or "")
