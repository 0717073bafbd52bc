"""EvoLink as a provider, in process against the simulator's ASGI app."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from runner.models import Request
from runner.providers.base import Created, NotSent, Rejected, Stop, TaskGone, TaskView, Unknown
from runner.providers.evolink import EvoLink
from runner.simulator.app import SimConfig, create_app
from runner.simulator.config import DEFAULT_KEY
from runner.simulator.faults import parse_plan
from runner.simulator.testing import ManualClock

pytestmark = pytest.mark.anyio
REQUEST = Request("text", "A lamp on a desk", 4, "720p", "16:9", False, False)


def _provider(*faults: dict[str, Any], key: str = DEFAULT_KEY) -> tuple[EvoLink, Any]:
    app = create_app(SimConfig(speed=10.0), clock=ManualClock())
    if faults:
        app.sim.set_faults(parse_plan(list(faults)))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim.test")
    return EvoLink(http, key), app


async def test_a_create_then_reads_keyed_by_id_with_gone_per_id() -> None:
    provider, app = _provider()
    body = provider.body_for(REQUEST, "fast")
    assert body["model"] == "seedance-2.0-fast-text-to-video"
    created = await provider.create(body, "idempotency-key-0001")
    assert isinstance(created, Created)
    reads = await provider.read_tasks([created.task_id, "task-unified-nope"])
    assert isinstance(reads[created.task_id], TaskView)
    assert isinstance(reads["task-unified-nope"], TaskGone)
    assert len(app.sim.snapshot()["tasks"]) == 1
    assert provider.time_scale() == 10.0
    assert await provider.models() is None
    assert provider.key_env == "EVOLINK_API_KEY"
    await provider.http.aclose()


@pytest.mark.parametrize(
    ("status", "processed", "outcome", "tasks"),
    [
        (408, False, NotSent, 0),
        (429, False, NotSent, 0),
        (422, False, Rejected, 0),
        (402, False, Stop, 0),
        (500, True, Unknown, 1),
    ],
)
async def test_create_outcomes_match_what_the_simulator_did(
    status: int,
    processed: bool,
    outcome: type,
    tasks: int,
) -> None:
    provider, app = _provider(
        {
            "endpoint": "create",
            "kind": "respond",
            "status": status,
            "calls": [1],
            "processed": processed,
        }
    )
    result = await provider.create(provider.body_for(REQUEST, "fast"), "idempotency-key-0001")
    assert isinstance(result, outcome)
    assert len(app.sim.snapshot()["tasks"]) == tasks
    await provider.http.aclose()


async def test_balance_is_the_free_credits_call() -> None:
    provider, app = _provider()
    assert (await provider.balance()).available == 1_000_000.0
    assert app.sim.snapshot()["tasks"] == []
    await provider.http.aclose()
