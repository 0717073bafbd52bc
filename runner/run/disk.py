"""Free disk space for the videos (README "Disk space").

A paid video that cannot be saved is money lost until a `runner retry` fetches it again, so
runner checks the disk before a run (the plan's estimate, `runner.run.outlook`) and before
every create while it runs. Before a create it wants

    max(--min-free-disk, 2 × (paid videos not saved yet + 1) × the expected size of a video)

free. When only the videos already paid for stand in the way, the create waits for them to be
saved (and measured); when even the next video alone would not fit, creates stop.

``--min-free-disk`` (or ``RUNNER_MIN_FREE_DISK``) defaults to 1 GB. The expected size of a
video is, per quality, the largest bytes per second of video among this workspace's latest
downloads from the same backend, doubled for its poster and strip; before any download, the
plan's assumed sizes (`outlook.BYTES_PER_SECOND` plus `outlook.EXTRAS_BYTES`). Below the
margin, creates stop (exit 3, resumable) while the videos already paid for are still polled
and downloaded into the room the margin kept for them.

Testing aid: ``RUNNER_DISK_BUDGET_BYTES=N`` makes the workspace's disk N bytes big: free space
is N minus the bytes of the files under the workspace's ``<run>/media`` folders, and a video
write that would go past N fails as a full disk would (ENOSPC). It exists so that tests (and
anyone who wants to see the stop) can fill a small disk with real downloads.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from .outlook import BYTES_PER_SECOND, EXTRAS_BYTES, SPARE_BYTES, Outlook, size_text

MIN_FREE = SPARE_BYTES  # 1 GB
MIN_FREE_ENV = "RUNNER_MIN_FREE_DISK"
BUDGET_ENV = "RUNNER_DISK_BUDGET_BYTES"
SAMPLES = 100  # latest downloads that set the expected size
REMEASURE = 25  # checks between two looks at this run's downloads

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9}
_UNITS |= {"gb": 10**9, "t": 10**12, "tb": 10**12}


class Size(click.ParamType):  # type: ignore[type-arg]
    """A size in bytes: ``2GB``, ``500MB``, ``1.5g``, ``800000``."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
        unit = match.group(2).lower() if match else ""
        if match is None or unit not in _UNITS:
            self.fail(f"{value!r} is not a size: write e.g. 2GB, 500MB or a number of bytes")
        return int(float(match.group(1)) * _UNITS[unit])


SIZE = Size()


# --- how much is free ------------------------------------------------------------------------


def _budget() -> int | None:
    raw = os.environ.get(BUDGET_ENV, "").strip()
    return int(raw) if raw.isdigit() else None


def media_bytes(workspace: Path) -> int:
    """Bytes of the files under the workspace's ``<run>/media`` folders."""
    total = 0
    for media in workspace.glob("*/media"):
        for entry in os.scandir(media):
            with contextlib.suppress(FileNotFoundError):  # a .part renamed meanwhile
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
    return total


def free_bytes(workspace: Path) -> int | None:
    """Free bytes for the videos of ``workspace`` (None: not measurable)."""
    budget = _budget()
    if budget is not None:
        return budget - media_bytes(workspace)
    for folder in (workspace, *workspace.absolute().parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None


def over_budget(part: Path, more: int) -> bool:
    """Whether writing ``more`` bytes to ``part`` (``<ws>/<run>/media/<file>``) goes past the
    test disk of ``RUNNER_DISK_BUDGET_BYTES`` (never, when it is not set)."""
    budget = _budget()
    return budget is not None and media_bytes(part.parent.parent.parent) + more > budget


# --- before the run ----------------------------------------------------------------------


def room_problem(ahead: Outlook, workspace: Path, min_free: int | None) -> str | None:
    """What is wrong when the plan's videos would leave less than the margin free."""
    keep = MIN_FREE if min_free is None else min_free
    free = free_bytes(workspace)
    if free is None or not ahead.send or free - ahead.disk_bytes >= keep:
        return None
    return (
        f"the videos need about {size_text(ahead.disk_bytes)} and the disk under {workspace} "
        f"has {size_text(max(free, 0))} free, so less than the {size_text(keep)} runner keeps "
        "free would be left. Free some space or use --workspace on a larger disk (or lower "
        "--min-free-disk)."
    )


# --- while it runs ----------------------------------------------------------------------


WAIT = "wait"  # a `DiskGuard.check` verdict: room once the paid videos are saved
Verdict = str | None  # None: go; WAIT; else why creates stop


class DiskGuard:
    """Before each create: is there room for the videos in flight and this one, twice over?"""

    def __init__(
        self,
        conn: Any,  # the ledger's sqlite3 connection, for the sizes of earlier downloads
        run_id: str,
        media_dir: Path,
        min_free: int | None,
        free: Callable[[], int | None] | None = None,
        downloads: int = 4,
    ) -> None:
        self.conn = conn
        self.run_id = run_id
        self.media_dir = media_dir
        self.min_free = MIN_FREE if min_free is None else min_free
        self.downloads = downloads  # downloads at once: paid videos not saved besides in flight
        self.free = free or (lambda: free_bytes(media_dir.parent.parent))
        backend = conn.execute("SELECT backend FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        self._earlier = self._rates(
            "SELECT j.body_json, j.file_bytes FROM jobs j JOIN runs r ON r.run_id = j.run_id"
            " WHERE r.backend = ? AND j.state = 'done' AND j.file_bytes > 0"
            " AND j.reused_from IS NULL ORDER BY j.job_id DESC LIMIT ?",
            (backend[0] if backend else "", SAMPLES),
        )
        self.per_second = dict(self._earlier)  # quality -> bytes per second of video
        self._checks = 0

    def _rates(self, sql: str, args: tuple[Any, ...]) -> dict[str, float]:
        rates: dict[str, float] = {}
        for body_json, size in self.conn.execute(sql, args):
            body = json.loads(body_json)
            quality = str(body.get("quality") or "720p")
            rate = size / max(1, int(body.get("duration") or 5))
            rates[quality] = max(rates.get(quality, 0.0), rate)
        return rates

    def _remeasure(self) -> None:
        mine = self._rates(
            "SELECT body_json, file_bytes FROM jobs WHERE run_id = ? AND state = 'done'"
            " AND file_bytes > 0 AND reused_from IS NULL ORDER BY job_id DESC LIMIT ?",
            (self.run_id, SAMPLES),
        )
        for quality, rate in mine.items():
            self.per_second[quality] = max(self._earlier.get(quality, 0.0), rate)

    def video_bytes(self, body: Mapping[str, Any]) -> int:
        """The expected bytes of one job's video with its poster and strip."""
        quality = str(body.get("quality") or "720p")
        duration = int(body.get("duration") or 5)
        if quality in self.per_second:
            return int(2 * self.per_second[quality] * duration)
        return int(BYTES_PER_SECOND.get(quality, BYTES_PER_SECOND["1080p"]) * duration) + (
            EXTRAS_BYTES
        )

    def check(self, body: Mapping[str, Any], in_flight: int, owed: Callable[[], int]) -> Verdict:
        """May the create of a job with ``body`` go now? ``in_flight``: the tasks being made
        and the finished ones waiting for a download; ``owed()``: the paid videos not saved
        yet (a ledger count, asked only near the margin)."""
        if self._checks % REMEASURE == 0:
            self._remeasure()
        self._checks += 1
        free = self.free()
        if free is None:
            return None
        video = self.video_bytes(body)
        if free >= max(self.min_free, 2 * (in_flight + self.downloads + 1) * video):
            return None  # plenty of room: no count needed
        self._remeasure()
        video = self.video_bytes(body)
        paid = owed()
        margin = max(self.min_free, 2 * (paid + 1) * video)
        if free >= margin:
            return None
        alone = max(self.min_free, 2 * video)
        if free >= alone and paid:  # room for the next once the paid ones are saved: wait
            return WAIT
        why = (
            f"--min-free-disk {size_text(self.min_free)}"
            if alone == self.min_free
            else f"room for the next video, about {size_text(video)}, twice over"
        )
        return (
            f"the disk under {self.media_dir} has {size_text(max(free, 0))} free, below the "
            f"{size_text(alone)} runner keeps free ({why}): no new videos were started "
            "after this, and the ones already paid for are still downloaded. Free some space "
            f"(or lower --min-free-disk), then `runner resume {self.run_id}`."
        )
