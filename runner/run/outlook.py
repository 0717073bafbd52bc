"""What a plan will really take: the jobs left to send after reuse, their price, the wall time
and the disk the videos need (docs/evolink.md "Timing"; README "Plan").

Generation time of one job: the typical end-to-end seconds of a 4 s 480p video per tier, as
EvoLink's live observations measured them (mini 109, fast 113, standard 156 s), then our own
assumptions, stated here and in the README: 8 % longer per extra second of video, ×1.3 at
720p and ×1.8 at 1080p, +20 s with web search, +15 s with input videos. When this workspace
has finished at least `MIN_MEASURED` jobs on the real API, the median ratio of their measured
time (create to completion) to this estimate scales every estimate.

Wall time: creates leave at the create rate and at most ``concurrency`` tasks generate at
once, so jobs finish at min(rate, concurrency / mean generation time) per second, and the
last one still needs its own generation time. With ``--rate auto`` the rate assumed is the one
this workspace's latest real run settled on after the provider turned creates away (its
``rate_settled`` event), else ``--max-rate``: the estimate says which.

Disk: MP4 bytes per second of video by quality (assumed: 0.15 / 0.35 / 0.8 MB at 480p /
720p / 1080p; refined by the median of this workspace's real downloads), plus a poster and a
frame strip per job.
"""

from __future__ import annotations

import json
import shutil
import statistics
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..grid.plan import LARGE_JOBS, LARGE_USD, Plan
from ..models import Shape
from .ledger import Store
from .limits import MAX_RATE

TYPICAL_SECONDS = {"mini": 109.0, "fast": 113.0, "standard": 156.0}  # 4 s at 480p, observed
PER_EXTRA_SECOND = 0.08
QUALITY_FACTOR = {"480p": 1.0, "720p": 1.3, "1080p": 1.8}
WEB_SEARCH_SECONDS = 20.0
INPUT_VIDEO_SECONDS = 15.0
BYTES_PER_SECOND = {"480p": 150_000.0, "720p": 350_000.0, "1080p": 800_000.0}
EXTRAS_BYTES = 150_000  # a poster and a frame strip
MIN_MEASURED = 5
SPARE_BYTES = 1_000_000_000  # what a disk should keep free besides the videos


def generation_seconds(
    tier: str, duration: int, quality: str, *, web_search: bool = False, videos: int = 0
) -> float:
    """Typical seconds from create to a finished video, before this workspace's measurements."""
    seconds = TYPICAL_SECONDS.get(tier, TYPICAL_SECONDS["standard"])
    seconds *= 1 + PER_EXTRA_SECOND * max(0, duration - 4)
    seconds *= QUALITY_FACTOR.get(quality, 1.0)
    if web_search:
        seconds += WEB_SEARCH_SECONDS
    if videos:
        seconds += INPUT_VIDEO_SECONDS
    return seconds


@dataclass(frozen=True)
class Measured:
    """What earlier runs against the real API measured in this workspace."""

    time_factor: float | None = None  # measured / estimated generation time (median)
    time_jobs: int = 0
    bytes_per_second: Mapping[str, float] | None = None  # quality -> median MP4 bytes/s
    size_jobs: int = 0
    settled_rate: float | None = None  # creates/s the latest real auto run settled on


def measured(store: Store, limit: int = 500) -> Measured:
    """The median timing and file size of the workspace's latest real (not simulated) jobs."""
    rows = store.conn.execute(
        "SELECT j.tier, j.body_json, j.submitted_at, j.completed_at, j.file_bytes"
        " FROM jobs j JOIN runs r ON r.run_id = j.run_id"
        " WHERE r.backend = 'evolink' AND j.state = 'done' AND j.reused_from IS NULL"
        " ORDER BY j.completed_at DESC LIMIT ?",
        (limit,),
    ).fetchall()
    ratios: list[float] = []
    sizes: dict[str, list[float]] = {}
    for tier, body_json, submitted, completed, size in rows:
        body: dict[str, Any] = json.loads(body_json)
        duration, quality = int(body.get("duration") or 5), str(body.get("quality") or "720p")
        if submitted and completed and completed > submitted:
            typical = generation_seconds(
                tier,
                duration,
                quality,
                web_search=bool(body.get("web_search")),
                videos=len(body.get("video_urls") or ()),
            )
            ratios.append((completed - submitted) / typical)
        if size:
            sizes.setdefault(quality, []).append(size / duration)
    enough = len(ratios) >= MIN_MEASURED
    settled = store.conn.execute(
        "SELECT e.detail FROM events e JOIN runs r ON r.run_id = e.run_id"
        " WHERE r.backend = 'evolink' AND e.kind = 'rate_settled'"
        " ORDER BY e.event_id DESC LIMIT 1"
    ).fetchone()
    per_quality = {q: statistics.median(v) for q, v in sizes.items() if len(v) >= MIN_MEASURED}
    return Measured(
        statistics.median(ratios) if enough else None,
        len(ratios) if enough else 0,
        per_quality or None,
        sum(len(sizes[q]) for q in per_quality),
        _rate_of(settled[0]) if settled else None,
    )


def _rate_of(detail: str | None) -> float | None:
    try:
        return float((detail or "").split()[0])
    except (ValueError, IndexError):
        return None


@dataclass(frozen=True)
class Outlook:
    """A plan's jobs net of reuse, with their cost, time and disk."""

    jobs: int  # in the plan, on its tier
    reused: int  # whose video the workspace already holds: not sent, cost 0
    send: int  # to send
    credits: float  # of the jobs to send
    usd: float
    seconds: float  # wall time, about
    generation: float  # mean generation seconds of a job to send
    disk_bytes: int  # the videos to download, with their posters and strips
    free_bytes: int | None  # on the disk under the workspace
    rate: float  # creates per second assumed
    concurrency: int
    measured: Measured
    auto: bool = False  # --rate auto: ``rate`` is the settled rate if known, else the maximum

    @property
    def large(self) -> bool:
        return self.send > LARGE_JOBS or self.usd > LARGE_USD

    @property
    def disk_short(self) -> bool:
        return self.free_bytes is not None and self.disk_bytes + SPARE_BYTES > self.free_bytes


def outlook(
    plan: Plan,
    store: Store | None,
    workspace: Path,
    *,
    rate: float | Literal["auto"],
    concurrency: int,
    measured_from: Store | None = None,
    max_rate: float = MAX_RATE,
) -> Outlook:
    """The plan as it would run in ``workspace``: jobs whose video ``store`` (its ledger)
    already holds are reused, as `runner run` does (None: none is, as with --no-reuse);
    ``measured_from``: the ledger whose earlier real runs refine time and size."""
    done = store.reusable_keys() if store is not None else frozenset()
    shapes: Counter[Shape] = Counter()
    reused = 0
    for job in plan.jobs():
        if job.job_key in done:
            reused += 1
        else:
            shapes[job.variant.request.shape] += 1
    known = measured(measured_from) if measured_from is not None else Measured()
    auto = rate == "auto"
    if rate == "auto":
        assumed = min(known.settled_rate, max_rate) if known.settled_rate else max_rate
    else:
        assumed = rate
    credits = sum(plan.prices.credits(plan.tier, s) * n for s, n in shapes.items())
    send = sum(shapes.values())
    total_generation = sum(
        generation_seconds(
            plan.tier, s.duration, s.quality, web_search=s.web_search, videos=s.videos
        )
        * n
        for s, n in shapes.items()
    ) * (known.time_factor or 1.0)
    mean = total_generation / send if send else 0.0
    per_second = min(assumed, concurrency / mean) if mean else assumed
    per_quality = {**BYTES_PER_SECOND, **(known.bytes_per_second or {})}
    disk = sum(
        (per_quality.get(s.quality, BYTES_PER_SECOND["1080p"]) * s.duration + EXTRAS_BYTES) * n
        for s, n in shapes.items()
    )
    return Outlook(
        jobs=plan.job_count,
        reused=reused,
        send=send,
        credits=round(credits, 4),
        usd=round(plan.prices.usd(credits), 2),
        seconds=send / per_second + mean if send else 0.0,
        generation=mean,
        disk_bytes=int(disk),
        free_bytes=free_space(workspace),
        rate=assumed,
        concurrency=concurrency,
        measured=known,
        auto=auto,
    )


def free_space(path: Path) -> int | None:
    """Free bytes on the disk that holds ``path`` (or would: its nearest existing parent)."""
    for folder in (path, *path.absolute().parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None


def duration_text(seconds: float) -> str:
    """'about 4 h 10 min', 'about 25 min', 'about 40 s'."""
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    hours, rest = divmod(round(seconds / 600) * 10, 60)  # to ten minutes
    return f"about {hours} h {rest} min" if rest else f"about {hours} h"


def size_text(size: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size / 1e3:,.0f} KB"


def outlook_lines(o: Outlook, tier: str) -> list[str]:
    """The plan's net figures as people read them."""
    lines = [
        f"  To send: {o.send:,} of {o.jobs:,} job(s) on the {tier} tier, about "
        f"{o.credits:,.2f} credits (${o.usd:,.2f})"
        + (f"; {o.reused:,} reused from earlier runs at 0" if o.reused else ""),
    ]
    if o.send:
        m = o.measured
        basis = (
            f"this workspace's {m.time_jobs:,} measured job(s), ×{m.time_factor:.2f}"
            if m.time_factor
            else "EvoLink's typical generation times"
        )
        lines.append(
            f"  Time: {duration_text(o.seconds)} at {rate_text(o)}, {o.concurrency} in "
            f"flight (about {o.generation:,.0f} s per video; from {basis})"
        )
        free = f"; {size_text(o.free_bytes)} free" if o.free_bytes is not None else ""
        lines.append(f"  Disk: about {size_text(o.disk_bytes)} of videos{free}")
    return lines


def rate_text(o: Outlook) -> str:
    """The create rate an estimate assumes, in words."""
    if not o.auto:
        return f"{o.rate:g} creates/s"
    if o.measured.settled_rate:
        return f"{o.rate:.3g} creates/s (auto: what this workspace's last run settled on)"
    return f"up to {o.rate:g} creates/s (auto: longer if the provider allows fewer)"


def outlook_warnings(o: Outlook, tier: str, workspace: Path) -> list[str]:
    out = []
    if o.large:
        out.append(
            f"This is a large grid: {o.send:,} jobs to send, about {o.credits:,.0f} credits "
            f"(${o.usd:,.2f}) on the {tier} tier. Check the multi-valued cells multiply as "
            "you meant before running it."
        )
    if o.disk_short and o.free_bytes is not None:
        out.append(
            f"The videos need about {size_text(o.disk_bytes)} and the disk under {workspace} "
            f"has {size_text(o.free_bytes)} free: free some space (keep about "
            f"{size_text(SPARE_BYTES)} spare) or use --workspace on a larger disk."
        )
    return out


def outlook_json(o: Outlook) -> dict[str, Any]:
    return {
        "jobs": o.jobs,
        "reused": o.reused,
        "send": o.send,
        "credits": o.credits,
        "usd": o.usd,
        "wall_seconds": round(o.seconds),
        "generation_seconds": round(o.generation, 1),
        "rate": o.rate,
        "rate_auto": o.auto,
        "concurrency": o.concurrency,
        "measured_jobs": o.measured.time_jobs,
        "time_factor": o.measured.time_factor,
        "disk_bytes": o.disk_bytes,
        "free_bytes": o.free_bytes,
    }
