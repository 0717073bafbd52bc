"""`SimConfig`: every knob of the simulator, with the defaults of a quiet, faithful EvoLink.

`DEFAULT_KEY` is the one key the default configuration knows (1,000,000 credits, every
model): the in-process default backend authenticates with it. ``SimConfig.from_json`` reads
the same settings from plain JSON values (a CLI's ``--config``, a child process).

With ``journal`` set the simulator outlives its process: every change of state is appended to
that file (fsync-ed before the answer) and a simulator started later on the same file replays
it and goes on, with simulated time anchored to the wall clock (see `runner.simulator.journal`
and `Simulator`). The settings replay depends on (``speed``, ``concurrency``,
``pending_seconds``) must stay the same across processes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from .faults import Fault, parse_plan
from .prices import PriceBook
from .wire import TASK_FAILURES

DEFAULT_KEY: Final = "sk-sim-local"
"""The key the default configuration knows (balance 1,000,000 credits, every model)."""


@dataclass(frozen=True)
class KeyConfig:
    """One API key the simulator knows: its balance and the models it may use (None: all)."""

    balance: float = 1_000_000.0
    models: frozenset[str] | None = None


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

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SimConfig:
        """A config from plain JSON values (a CLI's ``--config``, a child process).

        ``keys`` is ``{key: {"balance": credits, "models": [ids] | null}}``, ``faults`` a list
        of fault objects (`Fault.from_json`), ``video_cache_dir`` and ``journal`` paths as
        strings; ``video_source`` and ``prices`` cannot be given.
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
                    str(key): KeyConfig(
                        balance=float(spec.get("balance", KeyConfig.balance)),
                        models=None
                        if spec.get("models") is None
                        else frozenset(map(str, spec["models"])),
                    )
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
        if problems:
            raise ValueError("invalid SimConfig: " + "; ".join(problems))
