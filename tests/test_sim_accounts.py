"""Keys and money: Bearer auth, model access per key, reservation at create, charge on
completion, refund on failure, 402 when the balance is short, top-ups through /_sim/keys."""

from __future__ import annotations

from typing import Any

import pytest

from runner.simulator.app import DEFAULT_KEY, KeyConfig, SimConfig, create_app
from runner.simulator.tasks import key_label
from runner.simulator.testing import ManualClock, asgi_client

BODY: dict[str, Any] = {
    "model": "seedance-2.0-fast-text-to-video",
    "prompt": "A red kite",
    "duration": 4,
    "quality": "480p",
}
COST = 15.2544  # fast, 4 s, 480p (runner/prices.toml)


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer   ", "Basic sk-sim-local", "Bearer sk-unknown"]
)
@pytest.mark.anyio
async def test_missing_or_unknown_keys_get_401_on_every_endpoint(authorization: str | None) -> None:
    app = create_app()
    headers = {} if authorization is None else {"Authorization": authorization}
    async with asgi_client(app, key=None) as client:
        answers = [
            await client.post("/v1/videos/generations", json=BODY, headers=headers),
            await client.get("/v1/tasks/task-unified-1-abcdefgh", headers=headers),
            await client.get("/v1/credits", headers=headers),
        ]
    for response in answers:
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
    assert app.state.sim.snapshot()["tasks"] == []


@pytest.mark.anyio
async def test_the_bearer_scheme_is_case_insensitive_and_accept_any_key_provisions_keys() -> None:
    app = create_app(SimConfig(accept_any_key=True, default_balance=100.0))
    async with asgi_client(app, key=None) as client:
        response = await client.post(
            "/v1/videos/generations", json=BODY, headers={"Authorization": "bearer sk-whatever-123"}
        )
        credits = await client.get(
            "/v1/credits", headers={"Authorization": "Bearer sk-whatever-123"}
        )
    assert response.status_code == 200
    assert credits.json()["data"]["user"]["remaining_credits"] == pytest.approx(100.0 - COST)


@pytest.mark.anyio
async def test_a_key_limited_to_some_models_gets_402_for_the_others_and_pays_nothing() -> None:
    keys = {
        DEFAULT_KEY: KeyConfig(balance=500.0, models=frozenset({"seedance-2.0-fast-text-to-video"}))
    }
    app = create_app(SimConfig(keys=keys))
    async with asgi_client(app) as client:
        fast = await client.post("/v1/videos/generations", json=BODY)
        standard = await client.post(
            "/v1/videos/generations", json={**BODY, "model": "seedance-2.0-text-to-video"}
        )
    assert fast.status_code == 200
    assert standard.status_code == 402
    assert standard.json()["error"]["code"] == "key_model_not_allowed"
    assert app.state.sim.account(DEFAULT_KEY).to_json()["balance"] == pytest.approx(500.0 - COST)


@pytest.mark.anyio
async def test_reserve_then_charge_on_completion_and_refund_on_failure() -> None:
    clock = ManualClock()
    app = create_app(SimConfig(keys={DEFAULT_KEY: KeyConfig(balance=2 * COST + 1)}), clock=clock)
    sim = app.state.sim
    async with asgi_client(app) as client:
        ok = (await client.post("/v1/videos/generations", json=BODY)).json()
        doomed = (
            await client.post("/v1/videos/generations", json={**BODY, "prompt": "celebrity selfie"})
        ).json()
        assert ok["usage"]["credits_reserved"] == doomed["usage"]["credits_reserved"] == COST
        broke = await client.post("/v1/videos/generations", json={**BODY, "prompt": "third"})
        assert broke.status_code == 402
        assert broke.json()["error"] == {
            "code": "insufficient_quota",
            "type": "insufficient_quota",
            "message": "Insufficient quota. Please top up your account.",
            "estimated_credits": COST,
            "account_balance_credits": 1.0,
        }
        assert sim.account(DEFAULT_KEY).to_json() == {
            "balance": 1.0,
            "reserved": 2 * COST,
            "charged": 2 * COST,
            "refunded": 0.0,
            "held": 0.0,
        }
        clock.advance(400)  # both tasks end: one completes, the other fails
        assert sim.account(DEFAULT_KEY).to_json() == {
            "balance": pytest.approx(1.0 + COST),
            "reserved": 0.0,
            "charged": 2 * COST,
            "refunded": COST,
            "held": 0.0,
        }
        retry = await client.post("/v1/videos/generations", json={**BODY, "prompt": "third"})
        assert retry.status_code == 200  # the refund paid for it
    tasks = {t["id"]: t for t in sim.snapshot()["tasks"]}
    assert tasks[ok["id"]]["settled"] == "charged"
    assert tasks[doomed["id"]]["settled"] == "refunded"
    assert tasks[doomed["id"]]["outcome"] == "content_policy_violation"


@pytest.mark.anyio
async def test_sim_keys_tops_up_a_balance_and_changes_model_access() -> None:
    app = create_app(SimConfig(keys={DEFAULT_KEY: KeyConfig(balance=1.0)}))
    async with asgi_client(app) as client:
        assert (await client.post("/v1/videos/generations", json=BODY)).status_code == 402
        topped = await client.post("/_sim/keys", json={DEFAULT_KEY: {"balance": 100}})
        assert topped.json()["accounts"][key_label(DEFAULT_KEY)]["balance"] == 100.0
        assert (await client.post("/v1/videos/generations", json=BODY)).status_code == 200
        await client.post("/_sim/keys", json={DEFAULT_KEY: {"models": []}})
        assert (await client.post("/v1/videos/generations", json=BODY)).status_code == 402
        await client.post("/_sim/keys", json={"sk-new-key": {"balance": 5}})
        new = await client.get("/v1/credits", headers={"Authorization": "Bearer sk-new-key"})
        bad = await client.post("/_sim/keys", json={DEFAULT_KEY: {"balance": "lots"}})
    assert new.json()["data"]["user"]["remaining_credits"] == 5.0
    assert bad.status_code == 400


def test_ground_truth_names_keys_by_label_never_by_the_secret() -> None:
    secret = "sk-LEAKCHECK-0123456789abcdef"
    app = create_app(SimConfig(keys={secret: KeyConfig()}))
    text = repr(app.state.sim.snapshot())
    assert secret not in text and key_label(secret) in text
