"""`SimConfig`: every knob of the simulator, with the defaults of a quiet, faithful EvoLink.

`DEFAULT_KEY` is the one key the default configuration knows (1,000,000 credits, every
model): the in-process default backend authenticates with it. ``SimConfig.from_json`` reads
the same settings from plain JSON values (a CLI's ``--config``, a child process).

With ``journal`` set the simulator outlives its process: every change of state is appended to
that file (fsync-ed before the answer) and a simulator started later on the same file replays
it and goes on, with simulated time anchored to the wall clock (see `runner.simulator.journal`
and `Simulator`). The settings replay depends on (``speed``, ``concurrency``,
``pending_seconds``, ``refunds``, ``refund_delay``) must stay the same across processes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .faults import Fault, parse_plan
from .prices import PriceBook
from .tasks import key_label
from .uploads import UPLOAD_TYPES
from .wire import TASK_FAILURES

DEFAULT_KEY: Final = "sk-sim-local"
"""The key the default configuration knows (balance 1,000,000 credits, every model)."""
KEY_FIELDS: Final = ("balance", "models", "total_limit", "daily_limit", "reset_timezone")


@dataclass(frozen=True)
class KeyConfig:
    """One API key the simulator knows: its account's balance, the models it may use (None:
    all) and its own limits (``docs/simulator.md`` §20): ``total_limit`` credits over its
    life, ``daily_limit`` credits per day from midnight to midnight in ``reset_timezone``
    (None: no such limit)."""

    balance: float = 1_000_000.0
    models: frozenset[str] | None = None
    total_limit: float | None = None
    daily_limit: float | None = None
    reset_timezone: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        problems = key_problems(self.total_limit, self.daily_limit, self.reset_timezone)
        if problems:
            raise ValueError("invalid KeyConfig: " + "; ".join(problems))

    @classmethod
    def from_json(cls, label: str, spec: object) -> KeyConfig:
        """A key from ``{"balance", "models", "total_limit", "daily_limit",
        "reset_timezone"}`` (all optional); raises ValueError naming what is wrong."""
        if not isinstance(spec, Mapping) or not set(spec) <= set(KEY_FIELDS):
            raise ValueError(f"{label}: give some of {', '.join(KEY_FIELDS)}")
        models = spec.get("models")
        if models is not None and not isinstance(models, list):
            raise ValueError(f"{label}: models must be a list of model ids or null")
        try:
            return cls(
                balance=float(spec.get("balance", cls.balance)),
                models=None if models is None else frozenset(map(str, models)),
                total_limit=_credits(spec.get("total_limit")),
                daily_limit=_credits(spec.get("daily_limit")),
                reset_timezone=str(spec.get("reset_timezone", cls.reset_timezone)),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{label}: {exc}") from None


def key_problems(
    total_limit: float | None, daily_limit: float | None, reset_timezone: str
) -> list[str]:
    """What is wrong with a key's limits (empty: nothing)."""
    out = [
        f"{name} must be credits >= 0 or None"
        for name, value in (("total_limit", total_limit), ("daily_limit", daily_limit))
        if value is not None and not value >= 0
    ]
    if daily_limit is not None:  # the zone matters (and is looked up) only then
        try:
            ZoneInfo(reset_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            out.append(f"reset_timezone {reset_timezone!r} is not an IANA time zone")
    return out


def _credits(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"a limit must be a number of credits or null, got {value!r}")
    return float(value)


def origin_parts(origin: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an origin like ``http://127.0.0.1:9000``; ValueError when it
    is not an http(s) origin without a path."""
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{origin!r} is not an http(s) origin")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{origin!r} must be scheme://host[:port], without a path")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, parts.hostname.lower(), port


@dataclass(frozen=True)
class SimConfig:
    """Every knob of the simulator. The defaults are a quiet, faithful EvoLink at real speed."""

    # API keys are secrets: kept out of repr() so a logged config never shows them
    keys: Mapping[str, KeyConfig] = field(
        default_factory=lambda: {DEFAULT_KEY: KeyConfig()}, repr=False
    )
    accept_any_key: bool = False  # any non-empty Bearer key works, with `default_balance`
    default_balance: float = 1_000_000.0
    speed: float = 1.0  # simulated seconds per wall second
    start_time: float | None = None  # simulated unix time at start; None: the real time
    seed: int = 0
    create_rate: float | None = None  # creates per second per key; None: unlimited
    create_burst: int = 1
    query_rate: float | None = None  # task queries per second per key; None: unlimited
    query_burst: int = 1
    retry_after_format: Literal["seconds", "date", "none"] = "seconds"
    concurrency: int | None = None  # generation slots per key; None: unlimited
    pending_seconds: float = 3.0
    jitter: float = 0.15  # generation time ± this fraction
    fail_rates: Mapping[str, float] = field(default_factory=dict)  # §7.2 code -> probability
    trigger_words: Mapping[str, str] = field(
        default_factory=lambda: {"celebrity": "content_policy_violation"}
    )
    result_ttl: float = 86_400.0  # simulated seconds a result URL stays valid
    int_error_codes: bool = False  # HTTP errors use integer codes + param/fallback_suggestion
    faults: Sequence[Fault] = ()
    video_source: Callable[..., bytes] | None = None  # instead of the real renderer
    video_cache_dir: Path | None = None
    journal: Path | None = None  # state log a new process resumes from (see journal.py)
    public_base_url: str | None = None  # base of result URLs; None: the request's base URL
    max_hang_seconds: float = 600.0  # a `hang` fault gives up after this many wall seconds
    prices: PriceBook | None = None  # None: EvoLink's public prices (prices.DEFAULT_PRICES)
    # failed and cancelled tasks get their reservation back: at once, `refund_delay`
    # simulated seconds after they end, or never (docs/simulator.md §19)
    refunds: Literal["immediate", "late", "never"] = "immediate"
    refund_delay: float = 600.0
    # simulated seconds an Idempotency-Key is remembered; None: keys are ignored entirely
    # (every create makes a new task and is charged again)
    idempotency_ttl: float | None = 86_400.0
    # a model the key may not use: 402 key_model_not_allowed (the gateway), or the older
    # documented 403 model_access_denied
    model_denial: Literal["key_model_not_allowed", "model_access_denied"] = "key_model_not_allowed"
    # result files on a second origin (e.g. "http://files.simulator.local"); None: on the
    # API's origin under /files/ as before
    file_origin: str | None = None
    # the file origin refuses (403 "error code: 1010") a library's default User-Agent, none,
    # or an Authorization header
    strict_file_host: bool = False
    # the file service for input media (docs/simulator.md §24) on an origin of its own (e.g.
    # "http://files-api.simulator.local"); None: on the API's origin under /api/v1/files/
    upload_origin: str | None = None
    upload_quota: int = 100  # files a key may keep at once
    upload_max_bytes: int = 100 * 1024 * 1024  # per file
    upload_ttl: float = 72 * 3600.0  # simulated seconds an uploaded file lives
    upload_types: tuple[str, ...] = UPLOAD_TYPES  # MIME types the service accepts

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SimConfig:
        """A config from plain JSON values (a CLI's ``--config``, a child process).

        ``keys`` is ``{key: {"balance": credits, "models": [ids] | null, "total_limit":
        credits | null, "daily_limit": credits | null, "reset_timezone": zone}}`` (each part
        optional, `KeyConfig.from_json`), ``faults`` a list of fault objects
        (`Fault.from_json`), ``video_cache_dir`` and ``journal`` paths as strings;
        ``video_source`` and ``prices`` cannot be given.
        Raises ValueError naming what is wrong.
        """
        names = {f.name for f in dataclasses.fields(cls)} - {"video_source", "prices"}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown simulator setting(s) {unknown}; known: {sorted(names)}")
        kwargs = dict(data)
        try:
            if kwargs.get("keys") is not None:
                kwargs["keys"] = {
                    str(key): KeyConfig.from_json(f"keys: {key_label(str(key))}", spec)
                    for key, spec in kwargs["keys"].items()
                }
            if "faults" in kwargs:
                kwargs["faults"] = tuple(parse_plan(kwargs["faults"]))
            for name in ("video_cache_dir", "journal"):
                if kwargs.get(name) is not None:
                    kwargs[name] = Path(kwargs[name])
            return cls(**kwargs)
        except (TypeError, AttributeError) as exc:
            raise ValueError(f"invalid simulator settings: {exc}") from None

    def __post_init__(self) -> None:
        if isinstance(self.journal, str):  # a caller without type checks
            object.__setattr__(self, "journal", Path(self.journal))
        problems: list[str] = []
        if not self.speed > 0:
            problems.append("speed must be > 0")
        for name in ("create_rate", "query_rate"):
            rate = getattr(self, name)
            if rate is not None and not rate > 0:
                problems.append(f"{name} must be > 0 or None")
        if self.create_burst < 1 or self.query_burst < 1:
            problems.append("bursts must be >= 1")
        if self.concurrency is not None and self.concurrency < 1:
            problems.append("concurrency must be >= 1 or None")
        unknown = sorted({*self.fail_rates, *self.trigger_words.values()} - set(TASK_FAILURES))
        if unknown:
            problems.append(f"unknown task error codes {unknown}; known: {sorted(TASK_FAILURES)}")
        if any(p < 0 for p in self.fail_rates.values()) or sum(self.fail_rates.values()) > 1:
            problems.append("fail_rates must be >= 0 and sum to at most 1")
        if not 0 <= self.jitter < 1:
            problems.append("jitter must be in [0, 1)")
        if self.refunds not in ("immediate", "late", "never"):
            problems.append("refunds must be 'immediate', 'late' or 'never'")
        if not self.refund_delay >= 0:
            problems.append("refund_delay must be simulated seconds >= 0")
        if self.idempotency_ttl is not None and not self.idempotency_ttl > 0:
            problems.append("idempotency_ttl must be simulated seconds > 0 or None")
        if self.model_denial not in ("key_model_not_allowed", "model_access_denied"):
            problems.append("model_denial must be 'key_model_not_allowed' or 'model_access_denied'")
        for name in ("file_origin", "upload_origin"):
            value = getattr(self, name)
            if value is not None:
                try:
                    origin_parts(value)
                except ValueError as exc:
                    problems.append(f"{name}: {exc}")
        if self.upload_quota < 0 or self.upload_max_bytes < 1 or not self.upload_ttl > 0:
            problems.append("upload_quota must be >= 0, upload_max_bytes >= 1, upload_ttl > 0")
        if isinstance(self.upload_types, list):  # from JSON
            object.__setattr__(self, "upload_types", tuple(self.upload_types))
        if problems:
            raise ValueError("invalid SimConfig: " + "; ".join(problems))
