"""Ground truth stays exact under concurrent load, in process and through a real server."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anyio
import httpx
import pytest

from runner.simulator.app import DEFAULT_KEY, KeyConfig, SimConfig, create_app
from runner.simulator.tasks import body_hash as content_hash
from runner.simulator.tasks import key_label
from runner.simulator.testing import ManualClock, asgi_client, serve

BALANCE = 100_000.0


def body(i: int) -> dict[str, Any]:
    return {
        "model": "seedance-2.0-fast-text-to-video" if i % 3 else "seedance-2.0-text-to-video",
        "prompt": f"Product shot #{i}" + (" celebrity" if i % 7 == 0 else ""),
        "duration": 4 + i % 12,
        "quality": "480p" if i % 2 else "720p",
    }


async def _hammer(client: httpx.AsyncClient, n: int, width: int) -> list[dict[str, Any]]:
    created: list[dict[str, Any]] = []
    # `width` requests at once: with dozens in flight, httpcore's pool costs ~10 ms of client
    # CPU per request (it rescans requests x connections), which would dominate the test
    limiter = anyio.CapacityLimiter(width)

    async def post(i: int) -> None:
        async with limiter:
            response = await client.post(
                "/v1/videos/generations",
                json=body(i),
                headers={"Idempotency-Key": f"load-job-{i:04d}-attempt-1"},
            )
        assert response.status_code == 200, response.text
        created.append(response.json())

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(post, i)
    return created


def _check(state: dict[str, Any], created: list[dict[str, Any]], n: int) -> None:
    assert len(state["tasks"]) == n == len({t["id"] for t in created})
    assert state["creates_by_body"] == {content_hash(body(i)): 1 for i in range(n)}
    assert sum(state["creates_by_idempotency_key"].values()) == n
    assert state["requests"]["create"] == {"200": n}
    assert len(state["create_arrivals"]) == n
    reserved = sum(Decimal(str(t["usage"]["credits_reserved"])) for t in created)
    refunded = sum(
        Decimal(str(t["credits_reserved"])) for t in state["tasks"] if t["status"] == "failed"
    )
    account = state["accounts"][key_label(DEFAULT_KEY)]
    assert Decimal(str(account["charged"])) == reserved  # gross: what creates debited
    assert Decimal(str(account["refunded"])) == refunded
    assert Decimal(str(account["reserved"])) == 0
    assert Decimal(str(account["balance"])) == Decimal(str(BALANCE)) - reserved + refunded


@pytest.mark.anyio
async def test_200_concurrent_creates_in_process_make_exactly_200_tasks_and_exact_charges() -> None:
    clock = ManualClock()
    app = create_app(SimConfig(keys={DEFAULT_KEY: KeyConfig(balance=BALANCE)}), clock=clock)
    async with asgi_client(app) as client:
        created = await _hammer(client, 200, width=200)
    clock.advance(10_000)
    _check(app.state.sim.snapshot(), created, 200)


@pytest.mark.slow
@pytest.mark.anyio
async def test_200_concurrent_creates_through_uvicorn_stay_exact() -> None:
    app = create_app(SimConfig(keys={DEFAULT_KEY: KeyConfig(balance=BALANCE)}, concurrency=5))
    limits = httpx.Limits(max_connections=10)
    with serve(app) as url:
        async with httpx.AsyncClient(
            base_url=url,
            limits=limits,
            timeout=10,
            headers={"Authorization": f"Bearer {DEFAULT_KEY}"},
        ) as client:
            created = await _hammer(client, 200, width=10)
            polls = [await client.get(f"/v1/tasks/{t['id']}") for t in created[:20]]
            state = (await client.get("/_sim/state")).json()
    assert {p.status_code for p in polls} == {200}
    assert state["peak_generating"] <= 5
    assert len(state["tasks"]) == 200
    app.state.sim.advance(1_000_000)
    _check(app.state.sim.snapshot(), created, 200)
