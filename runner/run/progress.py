"""What a person watching a run sees: a live progress bar on a terminal, plain log lines
otherwise (cron, CI, a file). Both subscribe to the dispatcher's events, and both take their
figures from the ledger (`runner.run.events.figures`): at the start, at most once a second while
jobs change, and at the end, so the line says what ``status`` and the report say, cumulative
over resumes (README "4. Run it")."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
)
from rich.table import Column
from rich.text import Text

from .events import Event, Figures

# events of one job: a line each in log mode
_JOB_KINDS = {
    "submitted",
    "running",
    "done",
    "failed",
    "rejected",
    "held",
    "expired",
    "lost",
    "result_error",
    "retrying",
    "replaying",
}
_BAD_KINDS = {"failed", "rejected", "held", "expired", "lost", "result_error"}
_NOTICES = {
    "stopped",
    "breaker",
    "throttled",
    "retrying",
    "replaying",
    "paused",
    "uploaded",
    "upload_deleted",
}


def one_line(text: str, limit: int = 300) -> str:
    """A provider's message on one line (newlines and runs of spaces collapsed), cut short."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def clock_text(seconds: float | None) -> str:
    """``0:04:05``; ``-:--:--`` when not known yet."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "-:--:--"
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class _Eta(ProgressColumn):
    """``ETA 0:04:05`` from this session's pace (jobs finished since it started)."""

    def __init__(self, display: Display) -> None:
        super().__init__(table_column=Column(no_wrap=True))
        self.display = display

    def render(self, task: Task) -> Text:
        return Text(f"ETA {clock_text(self.display.eta())}")


class Display:
    """Shows a run's figures as a rich progress line (terminal) or log lines.

    ``source`` gives the run's figures from the ledger; it is read when the display opens,
    at most every ``refresh`` seconds while jobs change, and when it closes. ``interval``:
    seconds between the periodic lines of log mode, which a thread looks to every
    ``heartbeat`` seconds while no event comes (None: only events bring them)."""

    def __init__(
        self,
        source: Callable[[], Figures],
        stream: IO[str] | None = None,
        *,
        interval: float = 10.0,
        refresh: float = 1.0,
        console: Console | None = None,
        now: Callable[[], float] = time.monotonic,
        heartbeat: float | None = 1.0,
    ) -> None:
        self.source = source
        self.console = console or Console(file=stream, highlight=False, soft_wrap=True)
        self.live = self.console.is_terminal
        self.interval = interval
        self.refresh_every = refresh
        self.now = now
        self.fig = source()
        self.started = now()
        self.finished_at_start = self.fig.finished
        self._refreshed = self.started
        self._last_line = self.started
        self._last_said: Figures | None = None
        self._throttle_told = False
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._lock = threading.Lock()  # log lines come from events and from the heartbeat
        self._closing = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._beat_every = heartbeat

    # ------------------------------------------------------------------ figures

    def eta(self) -> float | None:
        """Seconds to go at this session's pace; None before its first finished job."""
        left = self.fig.total - self.fig.finished
        if left <= 0:
            return 0.0
        gained = self.fig.finished - self.finished_at_start
        if gained <= 0:
            return None
        return (self.now() - self.started) / gained * left

    def percent(self) -> float:
        return 100.0 * self.fig.finished / self.fig.total if self.fig.total else 100.0

    def refresh(self) -> None:
        """The figures from the ledger again; one that cannot be read now keeps the last ones
        (the display never stops a run: the run's own error is what matters)."""
        self._refreshed = self.now()
        with contextlib.suppress(Exception):
            self.fig = self.source()

    def headline(self) -> str:
        """``12/40 30% ETA 0:04:05 123.40 credits``: what must fit any terminal."""
        f = self.fig
        return (
            f"{f.finished:,}/{f.total:,} {self.percent():.0f}% ETA {clock_text(self.eta())} "
            f"{f.credits:,.2f} credits"
        )

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Display:
        if self.live:
            ellipsis = Column(no_wrap=True, overflow="ellipsis", ratio=1, min_width=0)
            self._progress = Progress(
                TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
                TextColumn("{task.percentage:>3.0f}%"),
                _Eta(self),
                TextColumn("{task.fields[credits]}"),
                BarColumn(bar_width=10),
                TextColumn("{task.fields[groups]}", table_column=ellipsis),
                console=self.console,
                transient=False,
                expand=True,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(
                "videos", total=self.fig.total, credits="", groups=""
            )
            self._update()
        else:
            self._line(force=True)  # where the run starts from (a resume: what is done)
            if self._beat_every is not None:
                self._heartbeat = threading.Thread(target=self._beat, daemon=True)
                self._heartbeat.start()
        return self

    def _beat(self) -> None:
        """Log mode: the periodic line also while no job changes (videos take minutes), from
        the figures already read (the ledger is read by the run's own thread only)."""
        assert self._beat_every is not None
        while not self._closing.wait(self._beat_every):
            self._line()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        self.refresh()  # the final figures are the ledger's, whatever events said
        if self._progress is not None:
            self._update()
            self._progress.__exit__(kind, exc, tb)
        else:
            self._line(force=True, closing=True)

    # ------------------------------------------------------------------ events

    def notice(self, message: str) -> None:
        if self.live:
            self.console.print(one_line(message, 2000), markup=False)
        else:
            self._write(f"{one_line(message, 2000)}")

    def _write(self, text: str) -> None:
        """A log line, time first; written as is (rich's layout is not needed for plain
        lines, and costs 50 times more: a line per job event at 100,000 jobs)."""
        with self._lock:
            self.console.file.write(f"{time.strftime('%H:%M:%S')} {text}\n")
            self.console.file.flush()  # a log read as it is written, in order with stdout

    def __call__(self, event: Event) -> None:
        if event.spent is not None:
            self.fig = dataclasses.replace(self.fig, credits=event.spent)
        if self.now() - self._refreshed >= self.refresh_every:
            self.refresh()
        detail = one_line(event.detail)
        if not self.live and event.kind in _JOB_KINDS and event.job_key:
            self.notice(f"{event.kind} {event.job_key}" + (f": {detail}" if detail else ""))
        elif event.kind in _NOTICES:
            if event.kind != "throttled" or not self._throttle_told:
                self._throttle_told |= event.kind == "throttled"
                self.notice(f"{event.kind}: {detail}")
        elif event.kind in _BAD_KINDS and event.job_key:
            self.notice(f"{event.kind} {event.job_key}: {detail}")
        if self._progress is not None:
            self._update()
        else:
            self._line()

    # ------------------------------------------------------------------ output

    def _update(self) -> None:
        assert self._progress is not None and self._task is not None
        self._progress.update(
            self._task,
            total=self.fig.total,
            completed=self.fig.finished,
            credits=f"{self.fig.credits:,.2f} credits",
            groups=self.fig.text(first=("done", "running", "failed", "held")),
        )

    def _line(self, force: bool = False, closing: bool = False) -> None:
        """The periodic line of log mode. The closing line is left out when the last line
        said the same figures (the end is not said twice)."""
        with self._lock:
            now = self.now()
            if not force and now - self._last_line < self.interval:
                return
            if closing and self.fig == self._last_said:
                return
            self._last_line, self._last_said = now, self.fig
            text = (
                f"{time.strftime('%H:%M:%S')} {self.headline()} | elapsed "
                f"{clock_text(now - self.started)} | {self.fig.text()}\n"
            )
            self.console.file.write(text)
            self.console.file.flush()
