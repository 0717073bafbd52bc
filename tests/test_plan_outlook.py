"""A plan a marketer can approve: the jobs left to send after reuse and their price, the wall
time and the disk (README "Plan"), and a budget in dollars that status keeps showing."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from runner.grid.plan import make_plan
from runner.run import ledger as L
from runner.run import runs
from runner.run.backend import choose
from runner.run.dispatch import Settings
from runner.run.outlook import outlook, outlook_warnings

from .runhelp import grid

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "experiments" / "demo.csv"


def test_the_plan_shows_time_at_the_rate_and_cap_it_assumes(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    exp = grid(tmp_path / "g.csv", 3000)  # fast, 4 s: about 113 s each, 480p
    ws = tmp_path / "ws"

    default = cli("plan", exp, "--workspace", ws, "--set", "quality=480p")
    wide = cli(
        "plan",
        exp,
        "--workspace",
        ws,
        "--set",
        "quality=480p",
        "--concurrency",
        "500",
        "--rate",
        "2",
    )

    # 50 in flight finish 50/113 jobs a second: 3,000 jobs take 6,780 s, plus the last one;
    # --rate auto (the default) assumes its --max-rate, which the cap keeps it under here
    assert (
        "Time: about 1 h 50 min at up to 20 creates/s (auto: longer if the provider allows "
        "fewer), 50 in flight (about 113 s" in default.output
    )
    # 500 in flight: the create rate limits, 1,500 s plus the last one
    assert "Time: about 27 min at 2 creates/s, 500 in flight" in wide.output
    assert "Disk: about 2.2 GB of videos" in default.output  # 3,000 x (4 s x 150 KB + 150 KB)


def test_a_rerun_quotes_only_what_is_new_and_no_large_grid_warning(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    exp = grid(tmp_path / "g.csv", 4, duration=15)
    ws = tmp_path / "ws"
    costly = ("--tier", "standard", "--set", "quality=1080p", "--set", "repeats=3")
    before = cli("plan", exp, "--workspace", ws, *costly)
    done = cli("run", exp, "--workspace", ws, *costly)
    again = json.loads(cli("plan", exp, "--workspace", ws, *costly, "--json").output)
    rerun = cli("run", exp, "--workspace", ws, *costly)
    gross = cli("plan", exp, "--workspace", ws, *costly, "--no-reuse")

    assert done.exit_code == 0, done.output
    assert "To send: 12 of 12 job(s)" in before.output and "large grid" in before.output
    assert again["outlook"] | {"free_bytes": None} == again["outlook"] | {
        "reused": 12,
        "send": 0,
        "credits": 0.0,
        "usd": 0.0,
        "free_bytes": None,
    }
    assert not [w for w in again["warnings"] if "large grid" in w]
    assert again["quotes"]["standard"]["jobs"] == 12  # the table still prices the whole grid
    assert "0 of 12 job(s)" in rerun.output and "12 reused from earlier runs at 0" in rerun.output
    assert "large grid" not in rerun.output
    assert "To send: 12 of 12 job(s)" in gross.output


def test_times_measured_on_earlier_real_runs_refine_the_estimate(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    plan = make_plan(grid(tmp_path / "g.csv", 6), "fast", ["quality=480p"])
    with L.Ledger.open(ws) as ledger:
        runs.create(ledger, plan, choose("sim", None, ws), Settings(), name="t", reuse=False)
    with sqlite3.connect(ws / "ledger.sqlite") as db:  # as if made on EvoLink: twice as slow
        db.execute("UPDATE runs SET backend = 'evolink'")
        db.execute(
            "UPDATE jobs SET state = 'done', submitted_at = 1000, completed_at = 1226,"
            " file_bytes = 2400000, file_path = 'x.mp4'"
        )
    new = make_plan(grid(tmp_path / "h.csv", 10, prompt="A cat"), "fast", ["quality=480p"])

    with L.reader(ws) as store:
        plain = outlook(new, None, ws, rate=2, concurrency=50)
        refined = outlook(new, store, ws, rate=2, concurrency=50, measured_from=store)

    assert plain.generation == pytest.approx(113.0)
    assert refined.measured.time_jobs == 6
    assert refined.generation == pytest.approx(226.0)
    assert refined.disk_bytes == 10 * (2_400_000 + 150_000)  # as measured at 480p, 4 s
    assert refined.reused == 0  # the earlier jobs' files are not there: nothing to reuse


def test_a_disk_too_small_for_the_videos_is_a_warning_naming_the_way_out(tmp_path: Path) -> None:
    plan = make_plan(grid(tmp_path / "g.csv", 20), "fast")
    ahead = outlook(plan, None, tmp_path, rate=2, concurrency=50)

    assert not [w for w in outlook_warnings(ahead, "fast", tmp_path) if "disk" in w]
    short = dataclasses.replace(ahead, free_bytes=500_000_000)
    (warning,) = outlook_warnings(short, "fast", tmp_path)
    assert f"the disk under {tmp_path} has 500.0 MB free" in warning
    assert "--workspace" in warning


def test_a_budget_in_dollars_is_converted_and_status_shows_the_budget_in_force(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    first = cli("run", DEMO, "--workspace", ws, "--budget-usd", "2")
    status = cli("status", "latest", "--workspace", ws).output
    resumed = cli("resume", "latest", "--workspace", ws, "--budget", "1000")
    after = cli("status", "latest", "--workspace", ws).output

    assert "Budget: $2.00 = 136.00 credits at 68 credits per USD." in first.output
    assert first.exit_code == 3  # the demo costs about $7: creates stopped at the budget
    assert "of a 136.00 budget" in status
    assert resumed.exit_code == 0, resumed.output
    assert "of a 1,000.00 budget" in after


def test_a_budget_given_twice_is_refused(cli: Callable[..., Result], tmp_path: Path) -> None:
    result = cli("run", DEMO, "--workspace", tmp_path, "--budget", "5", "--budget-usd", "1")

    assert result.exit_code == 2
    assert "--budget (credits) or --budget-usd, not both" in result.output


def test_the_readmes_sweep_plan_shows_shape_time_net_cost_and_price_source(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    out = cli("plan", ROOT / "experiments" / "sweep.csv", "--workspace", tmp_path / "ws").output

    assert "grid: 5 rows × 4 styles × 2 aspect ratios × 5 hooks" in out
    assert "To send: 200 of 200 job(s) on the fast tier, about 3,050.88 credits ($44.87)" in out
    assert "Time: about 9 min at up to 20 creates/s (auto" in out  # 200 / (50 / 113 s) + 113 s
    assert "Prices: built-in table of 2026-10-10 (68 credits = 1 USD)." in out
