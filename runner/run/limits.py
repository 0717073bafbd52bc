"""Rate limits, pauses and backoff for the dispatcher, on an injected `Clock`.

- Creates and task queries each pass a leaky-bucket limiter (aiolimiter) with a capacity of
  one request, so requests are spaced evenly at the configured rate (per wall second).
- The create rate adapts to the provider. With a fixed rate (``--rate N``) it is AIMD under that
  ceiling: halved on every 429, raised back by a small step after each success. With ``--rate
  auto`` (`Rate.auto`) it starts at `START_RATE` and probes upward (×`PROBE_STEP` after each
  clean step: about a second's worth of successes, none of them turned away) up to ``--max-rate``;
  a 429 sets it to `BACKOFF` × the rate in force when that request was sent (not a halving:
  against a hard limit a halving averages about 0.75 of it), then probing waits `HOLD_STEPS`
  clean steps and goes on by ×(1 + `CREEP`) per step near that rate (×`RECOVER` well below it,
  or once `FORGET` above it without a 429), so it settles just under the provider's limit.
  Only sends the rate held back count as probes: when the in-flight cap, not the rate, is
  what paces creates, the rate does not climb on successes that never tested it. A rate
  change keeps the spacing from the last request (a new limiter would let one go at once).
- A 429's Retry-After pauses every worker (creates and queries) until it has passed.
- Backoff elsewhere is capped exponential with full jitter.

With a `runner.run.clock.VirtualClock`, pauses and backoff run in tests without a real sleep (the
rates are real: tests set them high); the jitter source is injectable for deterministic tests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from aiolimiter import AsyncLimiter

from .clock import Clock

MAX_PAUSE = 15 * 60.0  # a Retry-After longer than this stops the run instead of pausing it
START_RATE = 2.0  # creates per second an automatic rate starts at
MAX_RATE = 20.0  # ... and climbs to at most (--max-rate)
PROBE_STEP = 1.5  # × per clean step while no 429 has come
BACKOFF = 0.9  # a 429 sets the rate to this share of the rate its request was sent at
HOLD_STEPS = 3  # clean steps after a 429 before probing again
CREEP = 0.01  # then × (1 + this) per clean step near the rate where the 429 came
FORGET = 0.1  # this share above that rate without a 429: the limit is forgotten
RECOVER = 1.1  # × per clean step, after a first 429, away from the last one


def full_jitter(attempt: int, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Capped exponential backoff with full jitter: uniform in [0, min(cap, base * 2^n)]."""
    return rand() * min(cap, base * math.pow(2, max(0, attempt)))


class Pause:
    """A pause shared by every worker (a 429's Retry-After), in provider seconds."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.until = 0.0
        self.count = 0
        self._changed = anyio.Event()

    def __repr__(self) -> str:
        return f"<Pause until={self.until} count={self.count}>"

    @property
    def active(self) -> bool:
        return self.until > self.clock.monotonic()

    def pause(self, seconds: float) -> None:
        self.count += 1
        self.until = max(self.until, self.clock.monotonic() + seconds)
        self._notify()

    def hold(self) -> None:
        """Paused until `clear` (the breaker, while its probe is out)."""
        self.count += 1
        self.until = math.inf
        self._notify()

    def clear(self) -> None:
        self.until = 0.0
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def wake(self) -> None:
        """Waiters look again at their ``unless`` (e.g. creates were stopped meanwhile)."""
        self._notify()

    async def wait(self, unless: Callable[[], bool] | None = None) -> None:
        """Until the pause is over (it may be extended or cleared while waiting), or ``unless``
        holds when a waiter is woken."""
        while (left := self.until - self.clock.monotonic()) > 0:
            if unless is not None and unless():
                return
            await self.clock.wait(self._changed, left)


@dataclass(frozen=True)
class Sent:
    """How a request passed its rate: the rate in force then, and whether the limiter held it
    back (``paced``: the rate, not a free slot, decided when it left)."""

    rate: float
    paced: bool


class Rate:
    """A request rate (per wall second) through aiolimiter, adjustable while in use (for
    creates: fixed-ceiling AIMD, or automatic with `Rate.auto`). It spaces requests on the event
    loop's clock, not on the injected `Clock`: a rate is a promise to the provider about real
    time. The adjustments count answers, not seconds, so they need no clock."""

    def __init__(self, per_second: float, *, floor: float | None = None) -> None:
        self.ceiling = per_second
        self.floor = floor if floor is not None else min(per_second, 0.05)
        self.current = per_second
        self.automatic = False
        self.limit: float | None = None  # automatic: the rate at which the last 429 came
        self._clean = 0  # automatic: successes at the current rate since the last step
        self._hold = 0  # automatic: clean steps to wait before probing again
        self._met = False  # automatic: a 429 came once (probing is gentler from then on)
        self._limiter = self._make(per_second)
        self._last = -math.inf  # time.monotonic() of the last request let through

    @classmethod
    def auto(cls, max_rate: float = MAX_RATE, start: float = START_RATE) -> Rate:
        """An automatic rate: from ``start`` up to ``max_rate``, settling under the provider's
        limit (see the module's docstring)."""
        rate = cls(max_rate, floor=min(0.05, max_rate))
        rate.automatic = True
        rate._set(min(start, max_rate))
        return rate

    def __repr__(self) -> str:
        mode = "auto" if self.automatic else "fixed"
        return f"<Rate {self.current:.2f}/s {mode} (ceiling {self.ceiling}/s, 429 at {self.limit})>"

    @staticmethod
    def _make(per_second: float) -> AsyncLimiter:
        return AsyncLimiter(1, 1.0 / per_second)

    async def acquire(self) -> Sent:
        paced = False
        while True:
            limiter = self._limiter
            free = limiter.has_capacity()
            early = self._last + 1.0 / self.current - time.monotonic()
            if free and early > 0:
                # a limiter made by a rate change knows nothing of the last request: it
                # would let the next one go at once, two within a few ms
                paced = True
                await anyio.sleep(early)
                continue
            paced = paced or not free
            await limiter.acquire()
            if limiter is self._limiter:  # not replaced by a rate change while waiting
                self._last = time.monotonic()
                return Sent(self.current, paced)

    def decrease(self, sent: Sent | None = None) -> None:
        """A 429 for a request sent as ``sent`` says. Fixed: halve (multiplicative decrease).
        Automatic: `BACKOFF` × the rate it was sent at, and hold before probing again."""
        if not self.automatic:
            self._set(max(self.floor, self.current / 2))
            return
        at = sent.rate if sent is not None else self.current
        self.limit = at
        self._met = True
        self._clean = 0
        self._hold = HOLD_STEPS
        self._set(max(self.floor, min(self.current, BACKOFF * at)))

    def increase(self, sent: Sent | None = None) -> None:
        """A success. Fixed: additive increase, back to the ceiling in about 20 successes.
        Automatic: a success the rate held back, sent at the current rate, counts toward a
        clean step (about a second's worth); each step probes upward."""
        if not self.automatic:
            if self.current < self.ceiling:
                self._set(min(self.ceiling, self.current + self.ceiling / 20))
            return
        if (
            sent is None
            or not sent.paced
            or sent.rate < self.current
            or self.current >= self.ceiling
        ):
            return
        self._clean += 1
        if self._clean < math.ceil(self.current):
            return
        self._clean = 0
        if self._hold:
            self._hold -= 1
            return
        if self.limit is not None and self.current > self.limit * (1 + FORGET):
            self.limit = None  # passed cleanly: that 429 was a blip, or the limit rose
        near = self.limit is not None and self.current >= BACKOFF * self.limit * 0.999
        factor = 1 + CREEP if near else RECOVER if self._met else PROBE_STEP
        self._set(min(self.ceiling, self.current * factor))

    def _set(self, per_second: float) -> None:
        if per_second != self.current:
            self.current = per_second
            self._limiter = self._make(per_second)
