"""Time for the dispatcher and the limits, passed in: a real `Clock`, or a `VirtualClock` that
tests move without sleeping.

Durations given to a clock and read from it are *provider seconds*: the time of the API the
run talks to. A simulator may run faster than the wall (``scale`` provider seconds pass per
wall second); the dispatcher reasons in provider seconds throughout, and the scale is applied
here, once. ``wall`` is the epoch, as the ledger stores it.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time

import anyio
import anyio.lowlevel


class Clock:
    """The real clock: anyio's monotonic time and sleeps, at ``scale``."""

    def __init__(self, scale: float = 1.0) -> None:
        if not scale > 0:
            raise ValueError(f"a clock's scale must be > 0, not {scale!r}")
        self.scale = scale

    def __repr__(self) -> str:
        return f"<{type(self).__name__} scale={self.scale}>"

    def monotonic(self) -> float:
        return anyio.current_time() * self.scale

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds) / self.scale)

    async def wait(self, event: anyio.Event, seconds: float) -> None:
        """Until ``event`` is set or ``seconds`` have passed (``math.inf``: no timeout)."""
        with anyio.move_on_after(max(0.0, seconds) / self.scale):
            await event.wait()

    def to_wall(self, seconds: float) -> float:
        """Provider seconds as wall seconds (for libraries that sleep on their own)."""
        return seconds / self.scale

    def age(self, epoch: float) -> float:
        """Provider seconds since the wall time ``epoch``."""
        return (self.wall() - epoch) * self.scale

    def wall_after(self, seconds: float) -> float:
        """The wall time when ``seconds`` provider seconds will have passed."""
        return self.wall() + seconds / self.scale


class VirtualClock(Clock):
    """Time that moves only when every task waits on it: no real sleep, in order.

    Run `drive` in the test's task group. Whenever the other tasks have settled (``settle``
    scheduler turns without a new timer), time jumps to the earliest timer and wakes it.
    ``wall`` is the real epoch plus the virtual time that has passed. Callable, so it can be
    the simulator's clock too (``create_app(clock=clock)``): one time for both sides.
    """

    def __init__(self, start: float = 1000.0, *, settle: int = 50) -> None:
        super().__init__(1.0)
        self.now = self._start = start
        self._settle = settle
        self._timers: list[tuple[float, int, anyio.Event]] = []
        self._seq = itertools.count()
        self._added = anyio.Event()

    def __call__(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return time.time() + (self.now - self._start)

    async def sleep(self, seconds: float) -> None:
        await self.wait(anyio.Event(), seconds)

    async def wait(self, event: anyio.Event, seconds: float) -> None:
        if event.is_set():
            return
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        if math.isinf(seconds):
            await event.wait()
            return
        timer = anyio.Event()
        heapq.heappush(self._timers, (self.now + seconds, next(self._seq), timer))
        self._added.set()
        async with anyio.create_task_group() as tg:

            async def until(ev: anyio.Event) -> None:
                await ev.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(until, event)
            tg.start_soon(until, timer)
        if not timer.is_set():  # woken by the event: the timer is dropped when it comes due
            timer.set()

    async def drive(self) -> None:
        """Move time forever (cancel the task group to end)."""
        while True:
            for _ in range(self._settle):
                await anyio.lowlevel.checkpoint()
            while self._timers and self._timers[0][2].is_set():
                heapq.heappop(self._timers)  # cancelled waits
            if not self._timers:
                self._added = anyio.Event()
                await self._added.wait()
                continue
            when, _, timer = heapq.heappop(self._timers)
            self.now = max(self.now, when)
            timer.set()
