"""Rate limits, pauses and backoff for the dispatcher, on an injected `Clock`.

- Creates and task queries each pass a leaky-bucket limiter (aiolimiter) with a capacity of
  one request, so requests are spaced evenly at the configured rate (per wall second).
- The create rate adapts to the provider (AIMD): halved on every 429, raised back by a small
  step after each success, never above what the user set.
- A 429's Retry-After pauses every worker (creates and queries) until it has passed.
- Backoff elsewhere is capped exponential with full jitter.

With a `runner.run.clock.VirtualClock`, pauses and backoff run in tests without a real sleep (the
rates are real: tests set them high); the jitter source is injectable for deterministic tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import anyio
from aiolimiter import AsyncLimiter

from .clock import Clock

MAX_PAUSE = 15 * 60.0  # a Retry-After longer than this stops the run instead of pausing it


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


class Rate:
    """A request rate (per wall second) through aiolimiter, adjustable while in use (AIMD
    for creates). It spaces requests on the event loop's clock, not on the injected
    `Clock`: a rate is a promise to the provider about real time."""

    def __init__(self, per_second: float, *, floor: float | None = None) -> None:
        self.ceiling = per_second
        self.floor = floor if floor is not None else min(per_second, 0.05)
        self.current = per_second
        self._limiter = self._make(per_second)

    def __repr__(self) -> str:
        return f"<Rate {self.current}/s (ceiling {self.ceiling}/s)>"

    @staticmethod
    def _make(per_second: float) -> AsyncLimiter:
        return AsyncLimiter(1, 1.0 / per_second)

    async def acquire(self) -> None:
        while True:
            limiter = self._limiter
            await limiter.acquire()
            if limiter is self._limiter:  # not replaced by a rate change while waiting
                return

    def decrease(self) -> None:
        """Multiplicative decrease (on 429)."""
        self._set(max(self.floor, self.current / 2))

    def increase(self) -> None:
        """Additive increase (on success): back to the ceiling in about 20 successes."""
        if self.current < self.ceiling:
            self._set(min(self.ceiling, self.current + self.ceiling / 20))

    def _set(self, per_second: float) -> None:
        if per_second != self.current:
            self.current = per_second
            self._limiter = self._make(per_second)
