"""Per-key rate limits (GCRA on the wall clock): 429 ``rate_limit_exceeded`` with a
``Retry-After`` in seconds or as an HTTP date; separate buckets for creates and queries."""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from runner.simulator.app import DEFAULT_KEY, KeyConfig, SimConfig, create_app
from runner.simulator.testing import ManualClock, asgi_client

BODY: dict[str, Any] = {"model": "seedance-2.0-fast-text-to-video", "prompt": "A red kite"}


def body(i: int) -> dict[str, Any]:
    return {**BODY, "prompt": f"A red kite #{i}"}


@pytest.mark.anyio
async def test_creates_beyond_rate_and_burst_get_429_with_retry_after_seconds() -> None:
    clock = ManualClock()
    app = create_app(SimConfig(create_rate=2.0, create_burst=3), clock=clock)
    async with asgi_client(app) as client:
        codes = [
            (await client.post("/v1/videos/generations", json=body(i))).status_code
            for i in range(4)
        ]
        limited = await client.post("/v1/videos/generations", json=body(9))
        clock.advance(0.5)
        after_wait = await client.post("/v1/videos/generations", json=body(10))
        again = await client.post("/v1/videos/generations", json=body(11))
    assert codes == [200, 200, 200, 429]
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert limited.json()["error"] == {
        "code": "rate_limit_exceeded",
        "type": "rate_limit_error",
        "message": "Too many requests, please try again later",
    }
    assert after_wait.status_code == 200 and again.status_code == 429
    state = app.state.sim.snapshot()
    assert len(state["tasks"]) == 4
    assert state["requests"]["create"] == {"200": 4, "429": 3}


@pytest.mark.anyio
async def test_retry_after_counts_the_whole_wait_in_whole_seconds() -> None:
    clock = ManualClock()
    app = create_app(SimConfig(create_rate=0.1), clock=clock)
    async with asgi_client(app) as client:
        await client.post("/v1/videos/generations", json=body(1))
        clock.advance(2.5)
        limited = await client.post("/v1/videos/generations", json=body(2))
        clock.advance(7.5)
        ok = await client.post("/v1/videos/generations", json=body(3))
    assert limited.headers["Retry-After"] == "8"  # 7.5 s rounded up
    assert ok.status_code == 200


@pytest.mark.anyio
async def test_retry_after_can_be_an_http_date_or_absent() -> None:
    dated = create_app(SimConfig(create_rate=0.2, retry_after_format="date"))
    dated.state.sim.unix_time = lambda: 1_800_000_000.0
    bare = create_app(SimConfig(create_rate=0.2, retry_after_format="none"))
    async with asgi_client(dated) as client:
        await client.post("/v1/videos/generations", json=body(1))
        limited = await client.post("/v1/videos/generations", json=body(2))
    when = parsedate_to_datetime(limited.headers["Retry-After"]).timestamp()
    assert limited.status_code == 429 and 1_800_000_001 <= when <= 1_800_000_005
    assert limited.headers["Retry-After"].endswith(" GMT")
    async with asgi_client(bare) as client:
        await client.post("/v1/videos/generations", json=body(1))
        limited = await client.post("/v1/videos/generations", json=body(2))
    assert limited.status_code == 429 and "Retry-After" not in limited.headers


@pytest.mark.anyio
async def test_limits_are_per_key_and_queries_have_their_own_bucket() -> None:
    keys = {DEFAULT_KEY: KeyConfig(), "sk-second-key": KeyConfig()}
    app = create_app(
        SimConfig(keys=keys, create_rate=1.0, query_rate=1.0, query_burst=2), clock=ManualClock()
    )
    second = {"Authorization": "Bearer sk-second-key"}
    async with asgi_client(app) as client:
        task = (await client.post("/v1/videos/generations", json=body(1))).json()
        other = await client.post("/v1/videos/generations", json=body(2), headers=second)
        url = f"/v1/tasks/{task['id']}"
        polls = [(await client.get(url)).status_code for _ in range(3)]
        limited = await client.get(url)
        credits = await client.get("/v1/credits")  # the free balance call is never limited
    assert other.status_code == 200
    assert polls == [200, 200, 429]
    assert limited.json()["error"]["type"] == "evo_api_error"
    assert limited.headers["Retry-After"] == "1"
    assert credits.status_code == 200


@pytest.mark.anyio
async def test_rate_limits_are_off_by_default() -> None:
    app = create_app(clock=ManualClock())
    async with asgi_client(app) as client:
        codes = {
            (await client.post("/v1/videos/generations", json=body(i))).status_code
            for i in range(50)
        }
    assert codes == {200}
