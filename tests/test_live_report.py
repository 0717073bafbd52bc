"""The live report's writer (runner/review/live.py): when it builds, what it writes, what it
costs, and that its failures never touch the run."""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from runner.review import live, report
from runner.run import ledger as L
from tests.runhelp import grid, simulator, truth
from tests.test_report_support import grid_jobs, media_pool, write_run

DATA = re.compile(r'<script type="application/json" id="report-data">(.*?)</script>', re.DOTALL)


def page_data(path: Path) -> dict[str, Any]:
    match = DATA.search(path.read_text(encoding="utf-8"))
    assert match is not None
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def test_the_interval_is_30_s_for_small_runs_and_grows_with_the_size() -> None:
    assert live.interval(1) == live.interval(1000) == 30.0
    assert live.interval(4000) == pytest.approx(60.0)
    assert 30.0 < live.interval(20_000) < live.interval(50_000) < 300.0
    assert live.interval(1_000_000) == 300.0
    assert live.interval(1_000_000, configured=2.0) == 2.0


@pytest.mark.parametrize("cpu", [0.0, 0.5, 3.33, 10.0, 120.0])
def test_the_wait_after_a_build_is_at_least_nine_times_its_cpu_time(cpu: float) -> None:
    wait = live.next_wait(30.0, cpu)
    assert wait >= 30.0
    assert wait >= 9 * cpu
    assert cpu / (cpu + wait) <= 0.1 + 1e-12  # a tenth of the CPU at most


def test_the_environment_sets_the_interval_and_zero_turns_it_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(live.ENV, "2.5")
    assert live.LiveReport(tmp_path, "r", print).every == 2.5
    monkeypatch.setenv(live.ENV, "0")
    assert not live.LiveReport(tmp_path, "r", print).enabled
    for junk in ("soon", "-1", "nan", ""):
        monkeypatch.setenv(live.ENV, junk)
        assert live.LiveReport(tmp_path, "r", print).every is None


@pytest.fixture
def synthetic(tmp_path: Path) -> Path:
    """A workspace with one run ``sweep`` of 8 jobs, half done, half still pending."""
    ws = tmp_path / "ws"
    pool = media_pool(ws / "_pool", 2)
    jobs = grid_jobs(["A", "B"], ["x", "y"], ["16:9", "9:16"], media=2)
    for job in jobs[4:]:
        job.state, job.media = L.PENDING, None
    write_run(ws, "sweep", jobs, pool_dir=ws / "_pool", pool=pool)
    return ws


def test_a_live_build_marks_the_page_and_writes_nothing_else(synthetic: Path) -> None:
    with live.LiveReport(synthetic, "sweep", print, every=0.05) as writer:
        deadline = time.monotonic() + 20
        while writer.builds < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    page = synthetic / "sweep" / "index.html"
    assert writer.builds >= 2 and writer.failures == 0
    marker = page_data(page)["run"]["live"]
    assert marker["every"] == 0.1 or marker["every"] >= 0.05
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", marker["written"])
    folder = sorted(p.name for p in (synthetic / "sweep").iterdir())
    assert folder == ["index.html", "media"]  # no tables, no summary, no temporary file left
    with L.reader(synthetic) as store:  # the final build, as at the end of a run: no marker
        report.build(store, synthetic, "sweep")
    assert "live" not in page_data(page)["run"]
    assert (synthetic / "sweep" / "results.csv").is_file()


def test_builds_take_at_most_a_tenth_of_the_cpu(synthetic: Path) -> None:
    """Each build burns 0.15 s of CPU on top of the real build; with an interval of 0.01 s
    the writer must still wait 9 times a build's CPU time before the next."""
    starts: list[float] = []

    def heavy(*args: Any, **kwargs: Any) -> Path:
        starts.append(time.monotonic())
        until = time.thread_time() + 0.15
        while time.thread_time() < until:
            pass
        return report.build(*args, **kwargs)

    with live.LiveReport(synthetic, "sweep", print, every=0.01, build=heavy) as writer:
        deadline = time.monotonic() + 30
        while len(starts) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(writer.waits) >= 2
    for cpu, wait in writer.waits:
        assert cpu >= 0.15
        assert wait >= 9 * cpu
    # measured from outside: from one build's start to the next, at least 10 × its CPU
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    for (cpu, _), gap in zip(writer.waits[: len(gaps)], gaps, strict=True):
        assert gap >= 10 * cpu * 0.99


def test_no_build_before_the_first_result_and_stop_waits_for_a_build_under_way(
    tmp_path: Path,
) -> None:
    ws = tmp_path / "ws"
    pool = media_pool(ws / "_pool", 1)
    jobs = grid_jobs(["A"], ["x", "y"], ["16:9"], media=1)
    for job in jobs:
        job.state, job.media = L.PENDING, None
    write_run(ws, "sweep", jobs, pool_dir=ws / "_pool", pool=pool)
    entered, release = threading.Event(), threading.Event()

    def slow(*args: Any, **kwargs: Any) -> Path:
        entered.set()
        release.wait(10)
        return report.build(*args, **kwargs)

    writer = live.LiveReport(ws, "sweep", print, every=0.05, build=slow).__enter__()
    time.sleep(0.3)
    assert not entered.is_set()  # nothing settled yet: no page
    with L.Ledger.open(ws) as ledger:
        ledger.conn.execute(
            "UPDATE jobs SET state = 'failed' WHERE job_key = ?", (jobs[0].job_key("fast"),)
        )
        ledger.conn.commit()
    assert entered.wait(10)
    stopper = threading.Thread(target=writer.stop)
    stopper.start()
    time.sleep(0.2)
    assert stopper.is_alive()  # waits for the build, so a final report is never overwritten
    release.set()
    stopper.join(10)
    assert not stopper.is_alive()
    assert "live" in page_data(ws / "sweep" / "index.html")["run"]


def test_a_failing_live_build_is_one_warning_and_the_run_ends_normally(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = report.build

    def broken(*args: Any, live: Any = None, **kwargs: Any) -> Path:
        if live is not None:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(report, "build", broken)
    monkeypatch.setenv(live.ENV, "0.1")
    exp = grid(tmp_path / "g.csv", 4)
    ws = tmp_path / "ws"
    with simulator(speed=150.0, concurrency=1) as url:
        result = cli("run", exp, "--base-url", url, "--workspace", ws, "--rate", "20")
        state = truth(url)
    assert result.exit_code == 0, result.output
    assert len(state["tasks"]) == 4
    (run_dir,) = [p for p in ws.iterdir() if p.is_dir() and (p / "index.html").exists()]
    assert f"Live report: {run_dir / 'index.html'} (written once the first videos" in result.output
    warnings = [
        line for line in result.output.splitlines() if "live report could not be updated" in line
    ]
    assert len(warnings) == 1, result.output  # said once, not at every build
    assert "No space left on device" in warnings[0]
    data = page_data(run_dir / "index.html")
    assert "live" not in data["run"]
    state_at = data["fields"].index("state")
    assert [j[state_at] for j in data["jobs"]] == ["done"] * 4
