"""Tasks and accounts, how long generation takes, and each key's generation slots.

[INF] Generation takes about 110 s (fast), 105 s (mini) or 155 s (standard) for a 4 s video at
480p (live observations: 113/109/156 s end to end; ``docs/simulator.md``, "Timing"), 8 % longer
per extra second of video, ×1.3 at 720p and ×1.8 at 1080p, +20 s with web search and +15 s
with input videos; each task varies by ± the configured jitter. Per key, at most ``limit``
tasks hold a generation slot (`Slots`); the others wait, in creation order, as ``pending``. A
task's slot time starts with ``pending_seconds`` shown as ``pending``, then ``processing``.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

UNITS_PER_CREDIT: Final = 10_000  # balances are kept as integers of 1e-4 credits: exact sums
# Generation seconds of a 4 s 480p video per tier (109/113/156 s observed; docs/simulator.md).
BASE_SECONDS: Final[dict[str, float]] = {"mini": 105.0, "fast": 110.0, "standard": 155.0}
QUALITY_SLOWDOWN: Final[dict[str, float]] = {"480p": 1.0, "720p": 1.3, "1080p": 1.8}
# When a failing task fails, as a fraction of its generation time (min, max).
FAIL_AT: Final[dict[str, tuple[float, float]]] = {
    "content_policy_violation": (0.02, 0.1),
    "invalid_parameters": (0.02, 0.1),
    "image_processing_error": (0.02, 0.1),
    "image_dimension_mismatch": (0.02, 0.1),
    "generation_timeout": (1.1, 1.4),
}


@dataclass
class Account:
    """One key's money, in credits units of 1e-4 (``UNITS_PER_CREDIT``).

    ``charged`` is what creates debited (gross), ``refunded`` what came back; ``reserved`` is
    held by unfinished tasks and ``held`` by failed or cancelled ones not (yet) refunded.
    ``total_limit`` and ``daily_limit`` are the key's own limits (None: none)."""

    key: str = field(repr=False)
    available: int
    models: frozenset[str] | None
    reserved: int = 0
    charged: int = 0
    refunded: int = 0
    held: int = 0
    total_limit: int | None = None
    daily_limit: int | None = None
    reset_timezone: str = "Asia/Shanghai"
    tasks: list[Task] = field(default_factory=list, repr=False)  # in creation order

    def to_json(self) -> dict[str, float]:
        return {
            "balance": self.available / UNITS_PER_CREDIT,
            "reserved": self.reserved / UNITS_PER_CREDIT,
            "charged": self.charged / UNITS_PER_CREDIT,
            "refunded": self.refunded / UNITS_PER_CREDIT,
            "held": self.held / UNITS_PER_CREDIT,
        }


@dataclass
class Task:
    """One created task and everything decided about it at creation."""

    id: str
    key: str = field(repr=False)
    model: str
    tier: str
    body: dict[str, Any]
    body_hash: str
    n: int  # this body's n-th creation
    idempotency_key: str | None
    created: float  # simulated unix time
    created_wall: float  # injected monotonic clock
    credits: int  # units reserved
    base_seconds: float  # typical generation time (no jitter)
    gen_seconds: float  # this task's generation time
    run_seconds: float  # slot time after pending: gen_seconds, or until it fails
    outcome: str | None  # None: completes; else the task error code it fails with
    estimated_end: float
    run_id: str | None = None  # the X-Evo-Run-Id header of its create
    started_at: float | None = None  # slot acquired
    ends_at: float | None = None
    finished_at: float | None = None
    status: str = "pending"  # the stored status; "completed"/"failed"/"cancelled" once finished
    settled: str | None = None  # "charged" | "held" (failed, not refunded yet) | "refunded"
    refund_at: float | None = None  # when its refund is (or was) due; None: none due
    refunded_at: float | None = None
    mark: tuple[int, int, int] | None = None  # the colour of an uploaded image it cites (§24)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": key_label(self.key),
            "model": self.model,
            "status": self.status,
            "outcome": self.outcome or "completed",
            "body": self.body,
            "body_hash": self.body_hash,
            "n": self.n,
            "idempotency_key": self.idempotency_key,
            "run_id": self.run_id,
            "created": self.created,
            "created_wall": self.created_wall,
            "credits_reserved": self.credits / UNITS_PER_CREDIT,
            "reserved": self.credits / UNITS_PER_CREDIT,
            "credits_used": self.credits / UNITS_PER_CREDIT if self.status == "completed" else None,
            "refunded": self.credits / UNITS_PER_CREDIT if self.refunded_at is not None else 0.0,
            "refund_at": self.refund_at,
            "refunded_at": self.refunded_at,
            "generation_seconds": self.gen_seconds,
            "started_at": self.started_at,
            "ends_at": self.ends_at,
            "finished_at": self.finished_at,
            "settled": self.settled,
            "mark": None if self.mark is None else list(self.mark),
        }


def key_label(key: str) -> str:
    """How ground truth names a key: a prefix and a digest, never the whole secret.

    A key restored from a journal and not seen since is an alias ``"<label>\\n<sha256>"``
    (`journal.alias`): its label is the original one.
    """
    label, newline, _ = key.partition("\n")
    if newline:
        return label
    return f"{key[:7]}…{hashlib.sha256(key.encode()).hexdigest()[:6]}"


def generation_seconds(
    tier: str, quality: str, duration: int, *, web_search: bool = False, video_input: bool = False
) -> float:
    """Typical generation time in seconds [INF, anchored on the observed 4 s/480p times]."""
    seconds = BASE_SECONDS[tier] * QUALITY_SLOWDOWN[quality] * (1 + 0.08 * (duration - 4))
    return seconds + (20.0 if web_search else 0.0) + (15.0 if video_input else 0.0)


def units(credits: float) -> int:
    return round(credits * UNITS_PER_CREDIT)


def body_hash(body: object) -> str:
    """A request body's identity: BLAKE2b (64 bits, 16 hex characters) of its canonical JSON
    (sorted keys, no spaces, UTF-8 kept). Journals store it, so it must never change."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def fate_rng(seed: int, body_hash: str, n: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}|{body_hash}|{n}".encode()).digest()
    return random.Random(int.from_bytes(digest, "big"))


@dataclass
class _Lane:
    running: list[tuple[float, int, Task]] = field(default_factory=list)  # (ends_at, seq, task)
    waiting: deque[Task] = field(default_factory=deque)


class Slots:
    """Each key's generation slots, played forward lazily to any point of simulated time.

    ``on_finish(task, at)`` is called once per task, in time order per key, when its slot
    time is over (the simulator settles its money there).
    """

    def __init__(
        self, limit: int | None, pending_seconds: float, on_finish: Callable[[Task, float], None]
    ) -> None:
        self.limit = limit
        self.pending_seconds = pending_seconds
        self.on_finish = on_finish
        self._lanes: dict[str, _Lane] = {}
        self._seq = 0

    def admit(self, task: Task, now: float) -> int:
        """Start ``task`` or make it wait; returns its estimated seconds to completion."""
        lane = self._lanes.setdefault(task.key, _Lane())
        self._settle(lane, now)
        typical = self.pending_seconds + task.base_seconds
        if self.limit is None or len(lane.running) < self.limit:
            wait = 0.0
            self._start(lane, task, now)
        else:
            wait = lane.running[0][0] - now + (len(lane.waiting) // self.limit) * typical
            lane.waiting.append(task)
        estimate = max(1, round(wait + typical))
        task.estimated_end = now + estimate
        return estimate

    def settle(self, key: str, now: float) -> None:
        lane = self._lanes.get(key)
        if lane is not None:
            self._settle(lane, now)

    def settle_all(self, now: float) -> None:
        for lane in self._lanes.values():
            self._settle(lane, now)

    def remove(self, task: Task, now: float) -> None:
        """Take an unfinished task out (cancelled at ``now``); its slot goes to the next."""
        lane = self._lanes[task.key]
        self._settle(lane, now)
        if task in lane.waiting:
            lane.waiting.remove(task)
            return
        lane.running = [entry for entry in lane.running if entry[2] is not task]
        heapq.heapify(lane.running)
        if lane.waiting:
            self._start(lane, lane.waiting.popleft(), now)

    def rekey(self, old: str, new: str) -> None:
        """The tasks of key ``old`` now belong to ``new`` (a journal alias met its key)."""
        lane = self._lanes.pop(old, None)
        if lane is not None:
            self._lanes[new] = lane

    def generating(self) -> int:
        return sum(len(lane.running) for lane in self._lanes.values())

    def _start(self, lane: _Lane, task: Task, at: float) -> None:
        self._seq += 1
        task.started_at = at
        task.ends_at = at + self.pending_seconds + task.run_seconds
        task.estimated_end = at + self.pending_seconds + task.base_seconds
        heapq.heappush(lane.running, (task.ends_at, self._seq, task))

    def _settle(self, lane: _Lane, now: float) -> None:
        while lane.running and lane.running[0][0] <= now:
            end, _, task = heapq.heappop(lane.running)
            self.on_finish(task, end)
            if lane.waiting:
                self._start(lane, lane.waiting.popleft(), end)


def peak(tasks: Sequence[Task], now: float) -> int:
    events: list[tuple[float, int]] = []
    for task in tasks:
        if task.started_at is None or task.started_at > now:
            continue
        events.append((task.started_at, 1))
        end = task.finished_at if task.finished_at is not None else task.ends_at
        if end is not None and end <= now:
            events.append((end, -1))
    events.sort()  # at equal times -1 sorts first: a slot handed on is not a second slot
    peak = level = 0
    for _, delta in events:
        level += delta
        peak = max(peak, level)
    return peak
