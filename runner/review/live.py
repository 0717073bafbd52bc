"""The live report: ``reports/<run>/index.html`` rewritten while a run goes, so a reviewer can
start before the sweep ends (docs/report-page.md, "Live report").

A worker thread (never the run's event loop) opens a read-only ledger connection of its own
and rebuilds the page (`report.build(..., live=...)`: the page only, marked ``run.live``) soon
after the first result, then every `interval`: 30 s for small runs, longer for large ones,
and never less than `SHARE` times the CPU seconds the last build took, so the builds take at
most a tenth of the runner's CPU. Each page is written to a temporary file and renamed over
the old one (`tables.replaced`): a browser never reads half a page. A build that fails is one
line of warning; the run goes on, and its final report is written as always, after `stop`.

The page reloads itself (templates/static/report/95-live.js) after ``run.live.every``
seconds while the marker is there; the final build has none, so reloading stops.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from ..run.ledger import reader
from ..run.records import ACTIVE, COMPLETED, PENDING, SUBMITTING
from . import report

ENV = "RUNNER_LIVE_REPORT_SECONDS"
"""Seconds between live builds instead of the size-based interval (e.g. 5 for a demo or a
test); 0 turns the live report off."""
SMALL = 1000  # up to this many jobs a run is small: a build every BASE seconds
BASE = 30.0
LONGEST = 300.0
SHARE = 9.0  # wait ≥ 9 × a build's CPU time: builds take at most 1/10 of the CPU
FIRST_LOOK = 2.0  # seconds between looks for the first result
NOT_SETTLED = (PENDING, SUBMITTING, *sorted(ACTIVE), COMPLETED)  # five: see the query


def interval(jobs: int, configured: float | None = None) -> float:
    """Seconds between builds for a run of ``jobs`` jobs: 30 s up to 1,000 jobs, then
    growing with the square root of the size (60 s at 4,000, 300 s from 100,000)."""
    if configured is not None:
        return configured
    return min(LONGEST, max(BASE, BASE * math.sqrt(jobs / SMALL)))


def next_wait(base: float, build_cpu: float) -> float:
    """The wait after a build that took ``build_cpu`` CPU seconds: at least ``base``, and
    long enough that building takes at most a tenth of the CPU (wait ≥ 9 × build)."""
    return max(base, SHARE * build_cpu)


def configured_seconds() -> float | None:
    """`ENV` as seconds (None: not set, or not a number ≥ 0)."""
    text = os.environ.get(ENV, "").strip()
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


class LiveReport:
    """``with LiveReport(workspace, run_id, warn):`` around a run: the page is rebuilt in a
    thread until the block ends (the end waits for a build under way, so the final report,
    written after, is never overwritten by a live one)."""

    def __init__(
        self,
        workspace: Path,
        run_id: str,
        warn: Callable[[str], None],
        *,
        every: float | None = None,
        build: Callable[..., Path] | None = None,
    ) -> None:
        self.workspace, self.run_id, self.warn = workspace, run_id, warn
        self.every = configured_seconds() if every is None else every
        self.build = build or report.build
        self.page = workspace / run_id / "index.html"
        self.builds = 0
        self.failures = 0
        self.waits: list[tuple[float, float]] = []  # (CPU seconds of a build, the wait after)
        self._failing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.every != 0

    def __enter__(self) -> LiveReport:
        if self.enabled:
            self._thread = threading.Thread(target=self._loop, name="live-report", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        try:
            jobs = self._wait_for_first_result()
        except Exception as exc:  # never the run's trouble: said once
            self._failed(exc)
            return
        if jobs is None:
            return
        base = interval(jobs, self.every)
        wait = base
        while not self._stop.is_set():
            cpu = self.build_once(wait)
            wait = next_wait(base, cpu)
            self.waits.append((cpu, wait))
            if self._stop.wait(wait):
                return

    def _wait_for_first_result(self) -> int | None:
        """Look every `FIRST_LOOK` seconds until a job of the run has settled; its number of
        jobs then (None: the run ended first)."""
        while True:
            with reader(self.workspace) as store:
                total, settled = store.conn.execute(
                    "SELECT count(*), coalesce(sum(state NOT IN (?, ?, ?, ?, ?)), 0)"
                    " FROM jobs WHERE run_id = ?",
                    (*NOT_SETTLED, self.run_id),
                ).fetchone()
            if settled:
                return int(total)
            if self._stop.wait(min(FIRST_LOOK, self.every or FIRST_LOOK)):
                return None

    def build_once(self, every: float) -> float:
        """One live build, marked to reload after ``every`` seconds; the CPU seconds it took
        (this thread's own). A failure is a warning, never raised."""
        started = time.thread_time()
        marker = {
            "every": round(every, 1),
            "written": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        try:
            with reader(self.workspace) as store:
                self.build(store, self.workspace, self.run_id, live=marker)
            self.builds += 1
            self._failing = False
        except Exception as exc:  # a convenience: the run goes on
            self._failed(exc)
        return time.thread_time() - started

    def _failed(self, exc: BaseException) -> None:
        """One line when builds start failing (not again until one has worked)."""
        self.failures += 1
        if not self._failing:
            self._failing = True
            self.warn(
                f"Warning: the live report could not be updated ({exc!r:.300}); the run goes "
                "on and its report is written at the end."
            )
