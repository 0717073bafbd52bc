"""What a run's report shows, as plain values.

Two halves: `Summary` (the header, rendered by Jinja and escaped there) and `payload()`
(every card's data, embedded once in the page as JSON through ``|tojson`` and drawn by the
page's script). Promoted runs also get their fast parents (`Parents`), whose media are linked
into the child's folder by `report.build`.

Nothing here trusts user text: prompts, names, dimension values and provider messages are
carried as data. Media paths are reduced to bare file names matching `SAFE_NAME` and turned
into relative ``media/...`` URLs; anything else is dropped.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..grid.pricing import PriceTable
from ..run import ledger as L
from ..run.ledger import Store
from ..run.records import RunRecord
from .summary import active_seconds

# A media file name as our pipeline writes them (job keys, ``.mp4``/``.jpg``/``.strip.jpg``).
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
MESSAGE_LIMIT = 600  # characters of a provider message shown in the header

# state -> (label, tone); tone picks the colour: ok, bad, warn, wait
STATES: dict[str, tuple[str, str]] = {
    L.DONE: ("done", "ok"),
    L.FAILED: ("failed", "bad"),
    L.REJECTED: ("rejected", "bad"),
    L.UNKNOWN: ("held", "warn"),
    L.EXPIRED: ("expired", "bad"),
    L.LOST: ("lost", "bad"),
    L.RESULT_ERROR: ("bad file", "bad"),
    L.PENDING: ("pending", "wait"),
    L.SUBMITTING: ("submitting", "wait"),
    L.SUBMITTED: ("queued", "wait"),
    L.RUNNING: ("running", "wait"),
    L.COMPLETED: ("downloading", "wait"),
}
FAILED_STATES = frozenset({L.FAILED, L.REJECTED, L.LOST, L.RESULT_ERROR, L.EXPIRED})

# The columns of one job in the embedded JSON (an array per job keeps 10,000 jobs small).
JOB_FIELDS = (
    "key",
    "variant",
    "sample",
    "name",
    "dims",
    "prompt",
    "state",
    "code",
    "message",
    "credits",
    "estimate",
    "latency",
    "media",
    "mismatches",
    "reused",
    "parent",
)
# The columns of one job's media: the video URL, then the poster and strip URLs (1 when they
# sit beside the video as <stem>.jpg and <stem>.strip.jpg), then what the probe measured,
# then, when `runner prune` removed the video, what became of it (the page shows the poster).
MEDIA_FIELDS = (
    "video",
    "poster",
    "strip",
    "duration",
    "width",
    "height",
    "audio",
    "fps",
    "pruned",
)


@dataclass(frozen=True, slots=True)
class StateCount:
    state: str
    label: str
    tone: str
    count: int


@dataclass(frozen=True, slots=True)
class FailureReason:
    """Jobs that ended on one error code, with the provider's first message for it."""

    code: str
    count: int
    message: str
    states: str


@dataclass(frozen=True, slots=True)
class PromotionCost:
    """A promoted run against its fast parent: what rendering everything on this tier would
    have cost, and what the fast sweep plus the promoted winners did cost."""

    parent_run: str
    parent_tier: str
    parent_jobs: int
    promoted: int
    all_on_tier: float
    parent_spent: float
    child_spent: float
    saved: float
    saved_usd: float
    unpriced: int


@dataclass(frozen=True, slots=True)
class Summary:
    run_id: str
    name: str
    experiment: str
    tier: str
    backend: str
    simulated: bool
    state: str
    created: str
    total: int
    states: tuple[StateCount, ...]
    failures: tuple[FailureReason, ...]
    credits: float
    charged: float
    refunded: float
    usd: float
    wall: str
    p50: str
    p95: str
    stop_reason: str | None
    held: int
    held_credits: float
    expired: int
    expired_credits: float
    mismatched: int
    reused: int
    dimensions: tuple[str, ...]
    promotion: PromotionCost | None = None

    @property
    def failed(self) -> int:
        return sum(s.count for s in self.states if s.tone == "bad")


@dataclass(frozen=True, slots=True)
class Parents:
    """The fast parents of a promoted run's jobs, keyed by the parent's job key."""

    run: RunRecord
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    # parent job key -> {"video": name, "poster": name, "strip": name} as linked into
    # the child's media/parent/ folder
    linked: dict[str, dict[str, str]] = field(default_factory=dict)


def summarize(
    store: Store,
    run: RunRecord,
    rows: Sequence[Mapping[str, Any]],
    prices: PriceTable,
    parents: Parents | None = None,
) -> Summary:
    tally = store.tally(run.run_id)
    counts = dict(tally.states)
    order = list(STATES)
    states = tuple(
        StateCount(s, *STATES.get(s, (s, "wait")), n)
        for s, n in sorted(
            counts.items(),
            key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]),
        )
    )
    latencies = sorted(
        r["latency_s"] for r in rows if r["latency_s"] is not None and r["state"] == L.DONE
    )
    credits = tally.spent
    expired = [r for r in rows if r["state"] == L.EXPIRED]
    active = active_seconds(store, run.run_id)  # the gaps between a stop and a resume left out
    if active is None:
        wall = "not started"
    elif run.state == "running":
        wall = f"{duration_text(active)} so far"
    else:
        wall = duration_text(active)
    return Summary(
        run_id=run.run_id,
        name=run.name,
        experiment=run.experiment,
        tier=run.tier,
        backend=run.backend,
        simulated=run.backend == "sim",
        state=run.state,
        created=time.strftime("%Y-%m-%d %H:%M", time.localtime(run.created_at)),
        total=tally.total,
        states=states,
        failures=tuple(failure_reasons(rows)),
        credits=credits,
        charged=tally.charged,
        refunded=tally.refunded,
        usd=prices.usd(credits),
        wall=wall,
        p50=duration_text(quantile(latencies, 0.5)),
        p95=duration_text(quantile(latencies, 0.95)),
        stop_reason=run.stop_reason,
        held=tally[L.UNKNOWN],
        held_credits=tally.held_credits,
        expired=len(expired),
        expired_credits=sum(float(r["credits"] or 0) for r in expired),
        mismatched=sum(1 for r in rows if r.get("mismatches")),
        reused=sum(1 for r in rows if r.get("reused_from")),
        dimensions=tuple(varied(run)),
        promotion=promotion(store, run, rows, prices, parents) if parents else None,
    )


def failure_reasons(rows: Iterable[Mapping[str, Any]]) -> list[FailureReason]:
    """Failed, rejected, lost, expired and unusable jobs grouped by error code, most first."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        if row["state"] in FAILED_STATES:
            groups.setdefault(row["error_code"] or row["state"], []).append(row)
    reasons = []
    for code, members in groups.items():
        message = next((str(m["error_message"]) for m in members if m["error_message"]), "")
        if len(message) > MESSAGE_LIMIT:
            message = message[: MESSAGE_LIMIT - 1] + "…"
        kinds = sorted({STATES.get(m["state"], (m["state"], ""))[0] for m in members})
        reasons.append(FailureReason(code, len(members), message, ", ".join(kinds)))
    return sorted(reasons, key=lambda r: (-r.count, r.code))


def promotion(
    store: Store,
    run: RunRecord,
    rows: Sequence[Mapping[str, Any]],
    prices: PriceTable,
    parents: Parents,
) -> PromotionCost:
    """Saved = the whole parent sweep re-priced on this run's tier, minus what the parent
    sweep and this run cost. Parent jobs whose parameters this tier does not price (e.g.
    a reference-video job with an unknown quality) are counted as ``unpriced``."""
    parent_id = parents.run.run_id
    all_on_tier, unpriced = 0.0, 0
    parent_jobs = store.jobs(parent_id)
    for job in parent_jobs:
        try:
            all_on_tier += prices.credits(run.tier, job.request.shape)
        except (KeyError, ValueError, TypeError):
            unpriced += 1
    parent_spent = store.spent(parent_id)
    child_spent = store.spent(run.run_id)
    saved = all_on_tier - parent_spent - child_spent
    return PromotionCost(
        parent_run=parent_id,
        parent_tier=parents.run.tier,
        parent_jobs=len(parent_jobs),
        promoted=sum(1 for r in rows if r.get("parent_job_key")),
        all_on_tier=all_on_tier,
        parent_spent=parent_spent,
        child_spent=child_spent,
        saved=saved,
        saved_usd=prices.usd(saved),
        unpriced=unpriced,
    )


def varied(run: RunRecord) -> list[str]:
    """The run's varied dimensions, in the experiment's order (``name`` included)."""
    return list(run.dimensions)


def payload(
    run: RunRecord,
    rows: Sequence[Mapping[str, Any]],
    fps: Mapping[str, float],
    prices: PriceTable,
    parents: Parents | None = None,
) -> dict[str, Any]:
    """The data of every card, for the page's script (see `JOB_FIELDS`)."""
    cards = Cards(run, prices, parents)
    jobs = [cards.job(row, fps.get(row["job_key"])) for row in rows]
    return {**cards.head(), "jobs": jobs, **cards.tail()}


class Cards:
    """`payload` one job at a time: `head` (what is known before the jobs), `job` for each
    row in order, then `tail` (the dimensions' values and the prompts the jobs referred to).
    The report streams the jobs' JSON between the two, so a 100,000-job page is never one
    Python structure."""

    def __init__(
        self,
        run: RunRecord,
        prices: PriceTable,
        parents: Parents | None,
        notes: Mapping[str, list[list[str]]] | None = None,
    ) -> None:
        self.run, self.prices, self.parents = run, prices, parents
        # the promoted winners' notes (winner_notes), by parent key; shown on their cards
        self.notes = notes or {}
        self.card_notes: dict[str, list[list[str]]] = {}
        self.declared: dict[str, list[str]] = {
            d: [str(v) for v in values] for d, values in run.dimensions.items()
        }
        self.dims = list(self.declared)
        self.index = {d: {v: i for i, v in enumerate(vs)} for d, vs in self.declared.items()}
        self.prompts: list[str] = []
        self.prompt_index: dict[str, int] = {}
        # the audience's figures (runner/review/performance.py; None: no import holds any)
        self.performance: dict[str, Any] | None = None

    def head(self) -> dict[str, Any]:
        run, parents, dims = self.run, self.parents, self.dims
        return {
            "version": 1,
            "run": {
                "id": run.run_id,
                "name": run.name,
                "tier": run.tier,
                "backend": run.backend,
                "parentRun": run.parent_run,
                "parentTier": parents.run.tier if parents else None,
                "creditsPerUsd": float(self.prices.credits_per_usd),
            },
            # winners.csv: one column per varied dimension except name (its own column)
            "csvDims": [d for d in dims if d != "name"],
            "csvColumns": winners_columns([d for d in dims if d != "name"]),
            "states": {s: list(v) for s, v in STATES.items()},
            "fields": list(JOB_FIELDS),
            "mediaFields": list(MEDIA_FIELDS),
        }

    def tail(self) -> dict[str, Any]:
        return {
            "dims": [{"name": d, "values": self.declared[d]} for d in self.dims],
            "prompts": self.prompts,
            "winnerNotes": self.card_notes,
            "performance": self.performance,
        }

    def job(self, row: Mapping[str, Any], fps: float | None) -> list[Any]:
        codes = []
        for d in self.dims:
            value = str(row.get(f"dim_{d}", "") or "")
            seen = self.index[d]
            if value not in seen:
                seen[value] = len(self.declared[d])
                self.declared[d].append(value)
            codes.append(seen[value])
        prompt = str(row.get("prompt") or "")
        p = self.prompt_index.setdefault(prompt, len(self.prompts))
        if p == len(self.prompts):
            self.prompts.append(prompt)
        parent = None
        noted = self.notes.get(str(row.get("parent_job_key") or ""))
        if noted:
            self.card_notes[str(row["job_key"])] = noted
        if self.parents is not None and row.get("parent_job_key"):
            parent = _parent_entry(self.parents, str(row["parent_job_key"]))
        return [
            row["job_key"],
            row["variant_key"],
            row["sample"],
            row["name"],
            codes,
            p,
            row["state"],
            row["error_code"],
            row["error_message"],
            _shown_number(row["credits"]),
            _shown_number(row["estimated_credits"]),
            _shown_number(row["latency_s"]),
            media_entry(row, "media/", fps),
            row.get("mismatches") or "",
            row.get("reused_from"),
            parent,
        ]


class SlimRow(Mapping[str, Any]):
    """The few columns of a result row the header's figures read (`summarize`), kept for
    every job of a large run at a fraction of a full row's memory."""

    KEYS = (
        "state",
        "latency_s",
        "credits",
        "error_code",
        "error_message",
        "mismatches",
        "reused_from",
        "parent_job_key",
    )
    __slots__ = KEYS

    def __init__(self, row: Mapping[str, Any]) -> None:
        for key in self.KEYS:
            object.__setattr__(self, key, row.get(key))

    def __getitem__(self, key: str) -> Any:
        if key not in self.KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.KEYS)

    def __len__(self) -> int:
        return len(self.KEYS)


WINNERS_FIXED = ("run_id", "job_key", "variant_key", "tier", "name")
WINNERS_LAST = ("reviewer", "note", "prompt")


def winner_notes(folder: Path) -> dict[str, list[list[str]]]:
    """The notes `runner promote` kept for a promoted run's winners (promote.write_notes):
    {parent job key: [[reviewer, note], ...]}; empty when there are none or the file is
    unreadable (the report is still written without them)."""
    try:
        data = json.loads((folder / "winner-notes.json").read_text("utf-8"))
        notes = data["notes"]
        return {
            str(k): [[str(r), str(n)] for r, n in v]
            for k, v in notes.items()
            if isinstance(v, list)
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def winners_columns(dims: Sequence[str]) -> list[str]:
    """The header of the winners.csv the page exports (`runner promote --winners` reads it):
    the fixed columns, one per varied dimension, then ``reviewer``, ``note`` and ``prompt``
    (the job's rendered prompt). A dimension named like another column is written as
    ``dim_<name>`` so that no column name repeats. See docs/report-page.md."""
    taken = {*WINNERS_FIXED, *WINNERS_LAST}
    columns = list(WINNERS_FIXED)
    for d in dims:
        column = d
        while column in taken:
            column = f"dim_{column}"
        taken.add(column)
        columns.append(column)
    return [*columns, *WINNERS_LAST]


def _parent_entry(parents: Parents, key: str) -> dict[str, Any] | None:
    row = parents.rows.get(key)
    if row is None:
        return {"key": key, "missing": True}
    linked = parents.linked.get(key, {})
    media = None
    if linked.get("video"):
        media = media_entry(
            {
                "file": linked["video"],
                "poster": linked.get("poster"),
                "strip": linked.get("strip"),
                **_probe_of(row),
            },
            "media/parent/",
            None,
        )
    return {
        "key": key,
        "tier": row["tier"],
        "state": row["state"],
        "code": row["error_code"],
        "message": row["error_message"],
        "credits": _shown_number(row["credits"]),
        "estimate": _shown_number(row["estimated_credits"]),
        "latency": _shown_number(row["latency_s"]),
        "media": media,
    }


def _probe_of(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: row.get(k)
        for k in ("video_duration_s", "video_width", "video_height", "video_has_audio")
    }


def media_entry(row: Mapping[str, Any], prefix: str, fps: float | None) -> list[Any] | None:
    """``[video, poster, strip, duration, width, height, audio, fps, pruned]`` with relative
    URLs under ``prefix``, or None when the job has no usable video file. ``pruned``: the
    note of `runner prune` when the video was removed (the poster stays)."""
    video = safe_name(row.get("file"))
    if video is None:
        return None
    stem = video.rsplit(".", 1)[0]
    poster, strip = safe_name(row.get("poster")), safe_name(row.get("strip"))
    return [
        prefix + video,
        1 if poster == f"{stem}.jpg" else (prefix + poster if poster else None),
        1 if strip == f"{stem}.strip.jpg" else (prefix + strip if strip else None),
        _shown_number(row.get("video_duration_s")),
        row.get("video_width"),
        row.get("video_height"),
        row.get("video_has_audio"),
        fps,
        row.get("video_pruned"),
    ]


def safe_name(path: object) -> str | None:
    """The bare file name of a stored media path, if it is one of ours."""
    if not path:
        return None
    name = str(path).replace("\\", "/").rsplit("/", 1)[-1]
    return name if SAFE_NAME.match(name) and ".." not in name else None


def fps_of(store: Store, run_id: str) -> dict[str, float]:
    """Frame rate per job key (for frame stepping in compare), from the probe's record."""
    out = {}
    for job in store.jobs(run_id):
        fps = job.media.get("fps")
        if isinstance(fps, int | float) and fps > 0:
            out[job.job_key] = float(fps)
    return out


def _shown_number(value: object) -> float | None:
    """A number for the page: None, NaN and non-numbers become None; 4 decimals."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if number != number:  # NaN (pandas-style missing values)
        return None
    return round(number, 4)


def quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 90:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m {secs:02d}s" if minutes < 90 else f"{minutes // 60}h {minutes % 60:02d}m"
