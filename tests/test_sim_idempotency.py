"""Idempotency-Key: a replay returns the same task without a new charge; a reused key with
another body is a 409 conflict; malformed keys are refused."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from runner.simulator.app import DEFAULT_KEY, KeyConfig, SimConfig, create_app
from runner.simulator.tasks import body_hash as content_hash
from runner.simulator.tasks import key_label
from runner.simulator.testing import asgi_client

BODY: dict[str, Any] = {
    "model": "seedance-2.0-fast-text-to-video",
    "prompt": "A red kite",
    "duration": 5,
    "quality": "720p",
}
KEY = "0123456789abcdef-fast-1-1"


@pytest.mark.anyio
async def test_a_replay_returns_the_same_task_without_charging_again() -> None:
    app = create_app()
    async with asgi_client(app) as client:
        first = await client.post(
            "/v1/videos/generations", json=BODY, headers={"Idempotency-Key": KEY}
        )
        again = await client.post(
            "/v1/videos/generations", json=BODY, headers={"Idempotency-Key": KEY}
        )
        # same JSON, other key order and spacing: still the same request
        raw = (
            b'{"quality":"720p", "duration":5,"prompt":"A red kite",'
            b'"model":"seedance-2.0-fast-text-to-video"}'
        )
        third = await client.post(
            "/v1/videos/generations", content=raw, headers={"Idempotency-Key": KEY}
        )
    assert first.status_code == again.status_code == third.status_code == 200
    assert "idempotency-replayed" not in first.headers
    assert again.headers["idempotency-replayed"] == "true"
    assert third.headers["idempotency-replayed"] == "true"
    assert again.json() == third.json() == first.json()
    state = app.state.sim.snapshot()
    assert len(state["tasks"]) == 1
    assert state["creates_by_idempotency_key"] == {KEY: 1}
    assert state["replays_by_idempotency_key"] == {KEY: 2}
    assert state["creates_by_body"] == {content_hash(BODY): 1}
    account = state["accounts"][key_label(DEFAULT_KEY)]
    assert account["reserved"] == first.json()["usage"]["credits_reserved"]


@pytest.mark.anyio
async def test_the_same_key_with_another_body_is_a_409_conflict() -> None:
    app = create_app()
    async with asgi_client(app) as client:
        await client.post("/v1/videos/generations", json=BODY, headers={"Idempotency-Key": KEY})
        other = await client.post(
            "/v1/videos/generations", json={**BODY, "duration": 6}, headers={"Idempotency-Key": KEY}
        )
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_conflict"
    assert len(app.state.sim.snapshot()["tasks"]) == 1


@pytest.mark.parametrize(
    "bad", ["short-key", "x" * 97, "has space in it ok", "key/with/slashes-0123"]
)
@pytest.mark.anyio
async def test_malformed_idempotency_keys_are_refused(bad: str) -> None:
    app = create_app()
    async with asgi_client(app) as client:
        response = await client.post(
            "/v1/videos/generations", json=BODY, headers={"Idempotency-Key": bad}
        )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "Idempotency-Key"
    assert app.state.sim.snapshot()["tasks"] == []


@pytest.mark.anyio
async def test_keys_are_scoped_to_the_api_key_and_distinct_keys_create_distinct_tasks() -> None:
    app = create_app(SimConfig(keys={DEFAULT_KEY: KeyConfig(), "sk-second-key": KeyConfig()}))
    async with asgi_client(app) as client:
        mine = await client.post(
            "/v1/videos/generations", json=BODY, headers={"Idempotency-Key": KEY}
        )
        theirs = await client.post(
            "/v1/videos/generations",
            json=BODY,
            headers={"Idempotency-Key": KEY, "Authorization": "Bearer sk-second-key"},
        )
        attempt2 = await client.post(
            "/v1/videos/generations", json=BODY, headers={"Idempotency-Key": KEY[:-1] + "2"}
        )
    ids = {mine.json()["id"], theirs.json()["id"], attempt2.json()["id"]}
    assert len(ids) == 3
    assert "idempotency-replayed" not in theirs.headers


@pytest.mark.anyio
async def test_concurrent_replays_of_one_key_create_exactly_one_task() -> None:
    app = create_app()
    ids: list[str] = []
    async with asgi_client(app) as client:

        async def post() -> None:
            response = await client.post(
                "/v1/videos/generations", json=BODY, headers={"Idempotency-Key": KEY}
            )
            ids.append(response.json()["id"])

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(post)
    assert len(set(ids)) == 1 and len(ids) == 20
    assert app.state.sim.snapshot()["creates_by_idempotency_key"] == {KEY: 1}


@pytest.mark.anyio
async def test_a_rejected_request_does_not_use_up_its_key() -> None:
    app = create_app()
    async with asgi_client(app) as client:
        bad = await client.post(
            "/v1/videos/generations",
            json={**BODY, "duration": 99},
            headers={"Idempotency-Key": KEY},
        )
        good = await client.post(
            "/v1/videos/generations", json=BODY, headers={"Idempotency-Key": KEY}
        )
    assert bad.status_code == 400
    assert good.status_code == 200 and "idempotency-replayed" not in good.headers
