"""Rate limits, pauses and backoff for the dispatcher, on an injected `Clock`.

- Creates and task queries each pass a limiter with a burst of one request (GCRA, as in
  aiometer's meters), so requests are spaced evenly at the configured rate (per wall second).
- The create rate adapts to the provider (AIMD): halved on every 429, raised back by a small
  step after each success, never above what the user set.
- A 429's Retry-After pauses every worker (creates and queries) until it has passed.
- Backoff elsewhere is capped exponential with full jitter.

With a `runner.clock.VirtualClock` all of this runs in tests without a real sleep; the jitter
source is injectable for deterministic tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import anyio

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

    async def wait(self) -> None:
        """Until the pause is over (it may be extended or cleared while waiting)."""
        while (left := self.until - self.clock.monotonic()) > 0:
            await self.clock.wait(self._changed, left)


class Rate:
    """A request rate (per wall second), adjustable while in use (AIMD for creates)."""

    def __init__(self, per_second: float, clock: Clock, *, floor: float | None = None) -> None:
        self.clock = clock
        self.ceiling = per_second
        self.floor = floor if floor is not None else min(per_second, 0.05)
        self.current = per_second
        self._tat = -math.inf  # theoretical arrival time of the next request (GCRA)

    def __repr__(self) -> str:
        return f"<Rate {self.current}/s (ceiling {self.ceiling}/s)>"

    @property
    def interval(self) -> float:
        """Provider seconds between two requests."""
        return self.clock.scale / self.current

    async def acquire(self) -> None:
        while (wait := self._tat - self.clock.monotonic()) > 0:
            await self.clock.sleep(wait)
        self._tat = max(self._tat, self.clock.monotonic()) + self.interval

    def decrease(self) -> None:
        """Multiplicative decrease (on 429)."""
        self.current = max(self.floor, self.current / 2)

    def increase(self) -> None:
        """Additive increase (on success): back to the ceiling in about 20 successes."""
        self.current = min(self.ceiling, self.current + self.ceiling / 20)
