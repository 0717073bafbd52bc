"""A first Ctrl-C or SIGTERM is bounded (docs/reliability.md §4.12, P3): no new creates, paid
work goes on for the grace, then the run ends and `resume` finishes the rest without paying
again. Checked against the simulator's ground truth, on a virtual clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.run import ledger as L
from runner.run.clock import VirtualClock
from runner.run.dispatch import Dispatcher

from .dispatchhelp import Sim, dispatch, new_run

pytestmark = [pytest.mark.anyio, pytest.mark.fault("P3")]

# the limiters sleep in real time (aiolimiter): rates that never make them wait keep the
# virtual clock from jumping ahead while they do
FAST = {"rate": 1e6, "poll_rate": 1e6, "concurrency": 3}


def interrupt_at(clock: VirtualClock, at: float, ended: list[float]) -> object:
    async def during(d: Dispatcher) -> None:
        await clock.sleep(at - clock.monotonic())
        d.interrupt("Interrupted (test).")
        ended.append(clock.monotonic())

    return during


async def test_the_grace_bounds_the_stop_and_resume_finishes_without_paying_again(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    sim = Sim(clock)
    start, interrupted = clock.monotonic(), list[float]()
    async with new_run(tmp_path, 6) as run:
        first = await dispatch(
            run,
            clock=clock,
            sim=sim,
            grace=30,
            **FAST,
            during=interrupt_at(clock, start + 20, interrupted),  # type: ignore[arg-type]
        )
        stopped_after = clock.monotonic() - interrupted[0]
        at_stop = run.counts()
        tasks_at_stop = len(sim.truth()["tasks"])

        second = await dispatch(run, clock=clock, sim=sim, **FAST)
        tasks = sim.truth()["tasks"]
        final = run.counts()

    assert first.stop_kind == "interrupted" and first.stop_reason is not None
    assert f"30 s grace ran out with {tasks_at_stop} paid video(s) unfinished" in first.stop_reason
    assert 30 <= stopped_after < 31  # not the ~110 s the videos take
    assert 1 <= tasks_at_stop < 6  # no create after the interrupt
    assert at_stop.get(L.PENDING) == 6 - tasks_at_stop and at_stop.get(L.DONE, 0) == 0
    assert second.stop_kind is None and final == {L.DONE: 6}
    assert len(tasks) == 6  # each job paid once, those cut short included


@pytest.mark.parametrize("held_by", ["daily", "pause", "retry_after"])
async def test_a_stop_while_creates_wait_out_a_pause_ends_the_run_at_once(
    tmp_path: Path, held_by: str
) -> None:
    clock = VirtualClock()
    sim = Sim(clock)
    ended = list[float]()

    async def during(d: Dispatcher) -> None:
        waits = {"daily": d.creates.daily, "pause": d.creates.pause, "retry_after": d.pause}
        waits[held_by].pause(12 * 3600)  # a daily limit, the breaker or a long Retry-After
        await clock.sleep(600)  # what was paid for is done by then
        d.stop_creates("disk", "the disk is full (test)")
        ended.append(clock.monotonic())

    async with new_run(tmp_path, 4) as run:
        outcome = await dispatch(run, clock=clock, sim=sim, during=during, **FAST)
        waited = clock.monotonic() - ended[0]
        counts = run.counts()

    assert outcome.stop_kind == "disk"
    assert waited < 60  # not the twelve hours the pause had left
    paid = len(sim.truth()["tasks"])
    assert counts == {L.DONE: paid, L.PENDING: 4 - paid} if paid else {L.PENDING: 4}
