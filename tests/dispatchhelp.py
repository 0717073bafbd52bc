"""The dispatcher in process: the simulator's ASGI app, a virtual clock shared by both
sides, and a real ledger on disk. No socket, no real sleep."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import stamina

from runner.grid.plan import make_plan
from runner.providers.base import Provider
from runner.providers.evolink import EvoLink
from runner.run import ledger as L
from runner.run import runs
from runner.run.backend import choose
from runner.run.clock import VirtualClock
from runner.run.dispatch import Dispatcher, Outcome, Settings
from runner.run.events import Event
from runner.simulator.app import SimConfig, create_app
from runner.simulator.config import DEFAULT_KEY
from runner.simulator.faults import parse_plan

from .runhelp import grid

SIM = "http://sim.test"


@dataclass
class Run:
    ledger: L.Ledger
    run_id: str
    events: list[Event] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return dict(self.ledger.tally(self.run_id).states)


@asynccontextmanager
async def new_run(tmp_path: Path, jobs: int) -> AsyncIterator[Run]:
    """A recorded run of ``jobs`` distinct 4-second fast text-to-video jobs."""
    ws = tmp_path / "ws"
    plan = make_plan(grid(tmp_path / "g.csv", jobs))
    with L.Ledger.open(ws) as ledger:
        run_id, _ = runs.create(
            ledger, plan, choose("sim", None, ws), Settings(), name="t", reuse=False
        )
        yield Run(ledger, run_id)


class Sim:
    """The simulator in process, on ``clock``; ``truth()`` is its ``GET /_sim/state``."""

    def __init__(self, clock: VirtualClock, *faults: dict[str, Any], **config: Any) -> None:
        config.setdefault("accept_any_key", True)
        self.app = create_app(SimConfig(**config), clock=clock)
        self.transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=self.app)
        if faults:
            self.app.sim.set_faults(parse_plan(list(faults)))

    def truth(self) -> dict[str, Any]:
        state: dict[str, Any] = self.app.sim.snapshot()
        return state


async def dispatch(
    run: Run,
    *,
    clock: VirtualClock,
    sim: Sim | None = None,
    provider: Callable[[httpx.AsyncClient], Provider] | None = None,
    files: httpx.AsyncBaseTransport | None = None,
    trusted: str | tuple[str, ...] = SIM,
    give_up_after: float = 60,
    during: Callable[[Dispatcher], Awaitable[None]] | None = None,
    kill_after: float | None = None,
    emit: Callable[[Event], None] | None = None,
    free_bytes: Callable[[], int | None] | None = None,
    **settings: Any,
) -> Outcome:
    """Run the dispatcher to its end while ``clock`` drives time (and ``during`` acts on
    it meanwhile, e.g. interrupts it); ``kill_after``: abandon it after that many seconds on
    ``clock``, as a kill -9 would (the ledger keeps what was committed; the outcome is then
    the dispatcher's so far); ``emit``: where events go (default: ``run.events``)."""
    settings.setdefault("rate", 50.0)
    transport = files or (sim.transport if sim else None)
    api_transport = sim.transport if sim else httpx.MockTransport(lambda r: httpx.Response(500))
    async with (
        httpx.AsyncClient(base_url=SIM, transport=api_transport) as http,
        httpx.AsyncClient(transport=transport) as files_client,
    ):
        api = provider(http) if provider else EvoLink(http, DEFAULT_KEY)
        dispatcher = Dispatcher(
            run.ledger,
            run.run_id,
            api,
            files_client,
            run.ledger.workspace / run.run_id / "media",
            Settings(
                trusted_origins=(trusted,) if isinstance(trusted, str) else trusted, **settings
            ),
            emit or run.events.append,
            clock=clock,
            rand=lambda: 0.5,
            free_bytes=free_bytes,
        )
        with stamina.set_testing(True, attempts=20):  # stamina's own waits are wall time
            async with anyio.create_task_group() as tg:
                tg.start_soon(clock.drive)
                if during is not None:
                    tg.start_soon(during, dispatcher)
                with anyio.fail_after(give_up_after):  # a hang fails the test, not the suite
                    if kill_after is None:
                        await dispatcher.run()
                    else:
                        async with anyio.create_task_group() as run_tg:
                            run_tg.start_soon(_kill, run_tg, clock, kill_after)
                            await dispatcher.run()
                            run_tg.cancel_scope.cancel()
                tg.cancel_scope.cancel()
    return dispatcher.outcome


async def _kill(tg: anyio.abc.TaskGroup, clock: VirtualClock, seconds: float) -> None:
    await clock.sleep(seconds)
    tg.cancel_scope.cancel()
