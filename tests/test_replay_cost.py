"""What the one same-key replay costs against a gateway that ignored Idempotency-Keys: one
extra task per lost create answer, and nothing when the gateway remembers keys. Measured
against the simulator's books, set to honour keys or to ignore them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner.run.clock import VirtualClock

from .dispatchhelp import Sim, dispatch, new_run

pytestmark = pytest.mark.anyio

LOST = [3, 9, 17, 26]  # create calls whose answer is lost after the task was made


async def _night(tmp_path: Path, **config: Any) -> tuple[dict[str, Any], float, dict[str, int]]:
    clock = VirtualClock()
    sim = Sim(
        clock,
        {"endpoint": "create", "kind": "respond", "status": 504, "processed": True, "calls": LOST},
        **config,
    )
    async with new_run(tmp_path, 30) as run:
        await dispatch(run, clock=clock, sim=sim, concurrency=5)
        counts = run.counts()
        charged = run.ledger.tally(run.run_id).charged
    return sim.truth(), charged, counts


async def test_a_gateway_that_remembers_keys_makes_no_extra_task(tmp_path: Path) -> None:
    truth, charged, counts = await _night(tmp_path)
    assert counts == {"done": 30}
    assert len(truth["tasks"]) == 30
    books = sum(a["charged"] for a in truth["accounts"].values())
    assert charged == pytest.approx(books)


async def test_a_gateway_that_ignores_keys_costs_one_task_per_lost_answer(
    tmp_path: Path,
) -> None:
    truth, charged, counts = await _night(tmp_path, idempotency_ttl=None)
    assert counts == {"done": 30}  # every job settled by its replay...
    assert len(truth["tasks"]) == 30 + len(LOST)  # ...which made a second task each time
    books = sum(a["charged"] for a in truth["accounts"].values())
    price = books / len(truth["tasks"])  # every job here costs the same
    # runner's figure counts the tasks it knows; the orphans are the replay's whole cost
    assert books - charged == pytest.approx(len(LOST) * price)
