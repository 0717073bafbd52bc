"""The limits on a virtual clock: spacing, AIMD and pauses measured without a real sleep."""

from __future__ import annotations

import anyio
import pytest

from runner.clock import Clock, VirtualClock
from runner.limits import Pause, Rate

pytestmark = pytest.mark.anyio


async def _driven(clock: VirtualClock, body: object) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.drive)
        await body  # type: ignore[misc]
        tg.cancel_scope.cancel()


async def test_a_rate_spaces_requests_evenly_even_when_they_all_wait_at_once() -> None:
    clock = VirtualClock(start=0.0)
    rate = Rate(2.0, clock)
    times: list[float] = []

    async def one() -> None:
        await rate.acquire()
        times.append(clock.now)

    async def all_at_once() -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(one)

    await _driven(clock, all_at_once())
    assert times == [0.0, 0.5, 1.0, 1.5, 2.0]


async def test_a_rate_halves_on_429_and_climbs_back_to_its_ceiling() -> None:
    rate = Rate(2.0, Clock())
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
