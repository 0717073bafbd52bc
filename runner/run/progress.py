"""What a person watching a run sees: a live progress bar on a terminal, plain periodic log
lines otherwise (cron, CI, a file). Both subscribe to the dispatcher's events."""

from __future__ import annotations

import time
from collections import Counter
from types import TracebackType
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .events import Event

_DONE_KINDS = {"done", "failed", "rejected", "held", "expired", "lost", "result_error"}
_FAIL_KINDS = _DONE_KINDS - {"done"}
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


class Display:
    """Counts events; shows them as a rich progress bar (terminal) or log lines."""

    def __init__(
        self, total: int, already_done: int, stream: IO[str], *, interval: float = 10.0
    ) -> None:
        self.total = total
        self.counts: Counter[str] = Counter()
        self.credits = 0.0
        self.finished = already_done
        self.console = Console(file=stream, highlight=False, soft_wrap=True)
        self.live = self.console.is_terminal
        self.interval = interval
        self._last_line = 0.0
        self._throttle_told = False
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> Display:
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(
                "videos", total=self.total, completed=self.finished, status=self._status()
            )
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.__exit__(kind, exc, tb)
        else:
            self._line(force=True)

    def notice(self, message: str) -> None:
        self.console.print(message, markup=False)

    def __call__(self, event: Event) -> None:
        self.counts[event.kind] += 1
        if event.spent is not None:
            self.credits = event.spent
        if event.kind in _DONE_KINDS:
            self.finished += 1
        if event.kind in _NOTICES:
            if event.kind != "throttled" or not self._throttle_told:
                self._throttle_told |= event.kind == "throttled"
                self.notice(f"{event.kind}: {event.detail}")
        elif event.kind in _FAIL_KINDS and event.job_key:
            self.notice(f"{event.kind} {event.job_key}: {event.detail[:300]}")
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=self.finished, status=self._status())
        else:
            self._line()

    def _status(self) -> str:
        c = self.counts
        running = c["submitted"] - sum(c[k] for k in _DONE_KINDS - {"rejected", "held"})
        failed = sum(c[k] for k in _FAIL_KINDS)
        return (
            f"submitted {c['submitted']} | running {max(running, 0)} | done {c['done']} | "
            f"failed {failed} | {self.credits:,.1f} credits"
        )

    def _line(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_line >= self.interval:
            self._last_line = now
            stamp = time.strftime("%H:%M:%S")
            self.console.print(
                f"{stamp} {self.finished}/{self.total} finished: {self._status()}", markup=False
            )
