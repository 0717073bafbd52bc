"""Fault plans: what the simulator does instead of (or after) answering a request normally.

A `Fault` names an endpoint (``create``, ``task``, ``credits``, ``file``, ``batch``, ``list``,
``models``, ``pricing``, and the file service's ``upload``, ``upload_quota``, ``upload_list``,
``upload_delete``, ``upload_receipt``, ``upload_file``), *when* it fires and *what* happens.
The same JSON shape is used in process (``SimConfig(faults=...)``, ``sim.set_faults(...)``) and
over HTTP (``POST /_sim/faults``)::

    {"endpoint": "create", "kind": "reset", "calls": [1], "processed": true}

When (all optional; a fault with none of them fires on every call):

- ``calls``: 1-based call indexes on that endpoint; ``call_from``/``call_to``: an inclusive
  range. Calls are counted per endpoint from the moment the plan was installed.
- ``probability``: chance of firing on a matching call, drawn from the seed (deterministic
  for a given seed and call sequence).
- ``times``: fire at most this many times. ``task_id``: only requests for that task
  (``task`` and ``file`` endpoints).

The first fault of the plan that matches a call fires; the others wait for later calls.

What (``kind``):

====================  ========================================================================
``respond``           answer ``status`` with ``headers`` and ``body`` (raw text) or
                      ``json_body``; with neither, the documented error body for that status
                      on that endpoint (``int_code`` → the integer-code variant)
``patch``             the normal JSON answer with ``json_body`` merged in (``null`` deletes a
                      key): unknown statuses, missing fields, odd ``results``...
``pass``              the normal answer (use with ``delay``)
``hang``              never answer; ends when the client gives up
``reset``             abort the TCP connection (RST) without a response
``drop``              close the connection (FIN) without a response
``truncate``          the normal answer cut after ``truncate_at`` bytes (default half) while
                      declaring ``content_length`` (default: the full length), then close
``throttle``          the normal answer sent at ``bytes_per_second``
``endless``           200 ``video/mp4`` without Content-Length, streamed until the client
                      stops reading (or ``max_bytes``)
``redirect``          ``status`` (default 302) to ``location``
``rate_limit``        429 ``rate_limit_exceeded`` with ``Retry-After`` = ``retry_after``
                      seconds, or an HTTP date when ``retry_after_format`` is ``"date"``
``expire``            the expired result link answer (403)
====================  ========================================================================

``processed: true`` lets the simulator handle the request first (the task *is* created and
charged) and only then replaces the answer: ``create_then(500 | hang | reset | garbage 2xx)``;
a create with an Idempotency-Key stays "being processed" until the faulted answer has gone, so
a concurrent create with that key meanwhile is a 409 ``paid_outcome_unknown``;
``processed: false`` (the default) faults the request before it is handled (nothing created).
``patch``, ``pass``, ``truncate`` and ``throttle`` act on the normal answer, so they always
process the request. ``delay`` seconds (``delay_clock`` ``"wall"``, or ``"sim"``: simulated
seconds divided by the speed) are waited before processing, or after it when ``processed``;
a client that gives up during a delay before processing leaves nothing created.

Faults are test tooling outside EvoLink's surface [INF]; the connection-level ones are
verified against uvicorn (h11) and httpx in ``tests/test_sim_server.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

from .wire import ENDPOINTS, Endpoint

FaultKind = Literal[
    "respond",
    "patch",
    "pass",
    "hang",
    "reset",
    "drop",
    "truncate",
    "throttle",
    "endless",
    "redirect",
    "rate_limit",
    "expire",
]
FAULT_KINDS: Final[tuple[str, ...]] = get_args(FaultKind)
# kinds that need the normal answer to act on
PROCESSING_KINDS: Final = frozenset({"patch", "pass", "truncate", "throttle"})


@dataclass(frozen=True, repr=False)
class Fault:
    """One entry of a fault plan (see the module docstring for the fields)."""

    endpoint: Endpoint
    kind: FaultKind = "respond"
    calls: tuple[int, ...] = ()
    call_from: int | None = None
    call_to: int | None = None
    probability: float = 1.0
    times: int | None = None
    task_id: str | None = None
    processed: bool = False
    delay: float = 0.0
    delay_clock: Literal["wall", "sim"] = "wall"
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | None = None
    json_body: Any = None
    content_type: str | None = None
    int_code: bool = False
    location: str | None = None
    retry_after: float | None = None
    retry_after_format: Literal["seconds", "date"] = "seconds"
    truncate_at: int | None = None
    content_length: int | None = None
    bytes_per_second: float | None = None
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ValueError(f"invalid fault {self.to_json()}: " + "; ".join(problems))
        object.__setattr__(self, "calls", tuple(self.calls))
        object.__setattr__(self, "headers", dict(self.headers))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.to_json().items())
        return f"Fault({fields})"

    @property
    def processes(self) -> bool:
        """Whether the request is handled normally before the fault acts."""
        return self.processed or self.kind in PROCESSING_KINDS

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this fault: only the fields that differ from the defaults."""
        out: dict[str, Any] = {"endpoint": self.endpoint, "kind": self.kind}
        for f in dataclasses.fields(self):
            if f.name in out:
                continue
            value = getattr(self, f.name)
            default = (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else (f.default)
            )
            if value != default:
                out[f.name] = (
                    list(value)
                    if isinstance(value, tuple)
                    else (dict(value) if isinstance(value, Mapping) else value)
                )
        return out

    @classmethod
    def from_json(cls, data: object) -> Fault:
        """Parse one fault; raises ValueError naming what is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a fault must be a JSON object, got {data!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown fault field(s) {unknown}; known: {sorted(names)}")
        kwargs = dict(data)
        if "calls" in kwargs:
            calls = kwargs["calls"]
            if not isinstance(calls, list | tuple):
                raise ValueError(f"calls must be a list of call numbers, got {calls!r}")
            kwargs["calls"] = tuple(calls)
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ValueError(f"invalid fault {dict(data)!r}: {exc}") from None


def _problems(f: Fault) -> list[str]:
    out: list[str] = []

    def is_int(v: object) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    def is_num(v: object) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    if f.endpoint not in ENDPOINTS:
        out.append(f"endpoint must be one of {list(ENDPOINTS)}")
    if f.kind not in FAULT_KINDS:
        out.append(f"kind must be one of {list(FAULT_KINDS)}")
    if not all(is_int(c) and c >= 1 for c in f.calls):
        out.append("calls must be call numbers >= 1")
    for name in ("call_from", "call_to", "times", "truncate_at", "content_length", "max_bytes"):
        value, least = getattr(f, name), 0 if name == "truncate_at" else 1
        if value is not None and not (is_int(value) and value >= least):
            out.append(f"{name} must be a whole number >= {least}")
    if not is_num(f.probability) or not 0.0 <= f.probability <= 1.0:
        out.append("probability must be between 0 and 1")
    if not is_num(f.delay) or f.delay < 0:
        out.append("delay must be seconds >= 0")
    if f.delay_clock not in ("wall", "sim"):
        out.append("delay_clock must be 'wall' or 'sim'")
    if f.status is not None and not (is_int(f.status) and 100 <= f.status <= 599):
        out.append("status must be an HTTP status 100-599")
    if not isinstance(f.headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in f.headers.items()
    ):
        out.append("headers must map names to string values")
    if f.body is not None and not isinstance(f.body, str):
        out.append("body must be text (use json_body for JSON values)")
    if f.body is not None and f.json_body is not None:
        out.append("give body or json_body, not both")
    if f.kind == "patch" and not isinstance(f.json_body, Mapping):
        out.append("a patch needs json_body: an object of keys to set (null deletes)")
    if f.kind == "redirect" and not f.location:
        out.append("a redirect needs location")
    if f.kind == "throttle" and not (is_num(f.bytes_per_second) and (f.bytes_per_second or 0) > 0):
        out.append("a throttle needs bytes_per_second > 0")
    if f.retry_after is not None and not is_num(f.retry_after):
        out.append("retry_after must be seconds")
    if f.retry_after_format not in ("seconds", "date"):
        out.append("retry_after_format must be 'seconds' or 'date'")
    if f.task_id is not None and f.endpoint not in ("task", "file"):
        out.append("task_id applies to the task and file endpoints only")
    return out


def parse_plan(data: object) -> list[Fault]:
    """A plan from JSON: a list of faults, or ``{"faults": [...]}``."""
    if isinstance(data, Mapping):
        data = data.get("faults")
    if not isinstance(data, list):
        raise ValueError('a fault plan is a JSON list of faults or {"faults": [...]}')
    return [Fault.from_json(item) for item in data]


class FaultPlan:
    """The installed faults with their call counters and remaining firings (not thread-safe:
    the simulator calls it under its lock)."""

    def __init__(self, faults: Sequence[Fault] = (), *, seed: int = 0) -> None:
        self.seed = seed
        self.generation = 0
        self.faults: list[Fault] = []
        self.remaining: list[int | None] = []
        self.fired: list[int] = []
        self.calls: dict[str, int] = {}
        self.install(faults)

    def install(self, faults: Sequence[Fault], *, append: bool = False) -> None:
        """Replace the plan (call counters restart at 1), or add to it (counters go on)."""
        if not append:
            self.faults, self.remaining, self.fired = [], [], []
            self.calls = dict.fromkeys(ENDPOINTS, 0)
            self.generation += 1
        for fault in faults:
            self.faults.append(fault)
            self.remaining.append(fault.times)
            self.fired.append(0)

    def next_call(self, endpoint: Endpoint, task_id: str | None) -> tuple[int, Fault | None]:
        """Count a call on ``endpoint`` and return its 1-based index and the fault to apply."""
        index = self.calls[endpoint] = self.calls[endpoint] + 1
        for pos, fault in enumerate(self.faults):
            if fault.endpoint != endpoint or self.remaining[pos] == 0:
                continue
            if fault.calls and index not in fault.calls:
                continue
            if fault.call_from is not None and index < fault.call_from:
                continue
            if fault.call_to is not None and index > fault.call_to:
                continue
            if fault.task_id is not None and fault.task_id != task_id:
                continue
            if fault.probability < 1.0 and self._draw(pos, endpoint, index) >= fault.probability:
                continue
            remaining = self.remaining[pos]
            if remaining is not None:
                self.remaining[pos] = remaining - 1
            self.fired[pos] += 1
            return index, fault
        return index, None

    def _draw(self, pos: int, endpoint: str, index: int) -> float:
        text = f"{self.seed}|fault|{self.generation}|{pos}|{endpoint}|{index}"
        digest = hashlib.sha256(text.encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def describe(self) -> list[dict[str, Any]]:
        """The plan as JSON, each fault with how often it fired and how often it still may."""
        return [
            {**f.to_json(), "fired": fired, "remaining": rem}
            for f, fired, rem in zip(self.faults, self.fired, self.remaining, strict=True)
        ]
