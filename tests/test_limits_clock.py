"""The limits on a virtual clock: spacing, AIMD and pauses measured without a real sleep."""

from __future__ import annotations

import itertools

import anyio
import pytest

from runner.run.clock import Clock, VirtualClock
from runner.run.limits import Pause, Rate

pytestmark = pytest.mark.anyio


async def _driven(clock: VirtualClock, body: object) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.drive)
        await body  # type: ignore[misc]
        tg.cancel_scope.cancel()


async def test_a_rate_spaces_requests_evenly_even_when_they_all_wait_at_once() -> None:
    rate = Rate(50.0)  # real time (aiolimiter): 20 ms apart, at least
    times: list[float] = []

    async def one() -> None:
        await rate.acquire()
        times.append(anyio.current_time())

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(one)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) == 6 and min(gaps) >= 0.015  # never faster (a busy machine is slower)


async def test_a_rate_halves_on_429_and_climbs_back_to_its_ceiling() -> None:
    rate = Rate(2.0)
    rate.decrease()
    assert rate.current == 1.0
    for _ in range(40):
        rate.increase()
    assert rate.current == 2.0


async def test_a_pause_holds_waiters_until_it_has_passed_and_a_clear_frees_them() -> None:
    clock = VirtualClock(start=0.0)
    pause = Pause(clock)
    woke: list[float] = []

    async def waiter() -> None:
        await pause.wait()
        woke.append(clock.now)

    async def scenario() -> None:
        pause.pause(30.0)
        assert pause.active
        await waiter()
        pause.hold()
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await clock.sleep(100.0)
            pause.clear()

    await _driven(clock, scenario())
    assert woke == [30.0, 130.0]


async def test_a_real_clock_applies_the_simulators_speed_once() -> None:
    clock = Clock(scale=100.0)
    assert clock.to_wall(120.0) == pytest.approx(1.2)
    before = clock.monotonic()
    await clock.sleep(1.0)  # 10 ms of wall time
    assert clock.monotonic() - before >= 1.0
