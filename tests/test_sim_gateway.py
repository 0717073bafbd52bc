"""The simulator grown to EvoLink's gateway (docs/simulator.md §15-§24): batch reads, the task
list, the models list, task money and refunds, cancelled tasks, key limits and their 402s,
paid_outcome_unknown, idempotency memory, a second origin for result files, Date in simulated
time, and the ground truth of all of it. In process through httpx.ASGITransport and a manual
clock, plus a few real servers for the second port and the file host's 1010 rule."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import anyio.lowlevel
import httpx
import pytest

from runner.simulator.app import DEFAULT_KEY, Fault, KeyConfig, SimApp, SimConfig, create_app
from runner.simulator.tasks import key_label
from runner.simulator.testing import (
    ManualClock,
    asgi_client,
    listen,
    origin,
    serve,
    serve_process,
)

from .simhelp import BODY, CREATE, FAKE_MP4

COST = 15.2544  # fast, 4 s, 480p
START = 1_800_000_000.0  # Fri, 15 Jan 2027 08:00:00 GMT
OTHER = "sk-other-0123456789"
FILES = "http://files.simulator.local"
AGENT = {"User-Agent": "EvoLinkClient/1.0"}


def make_app(**overrides: Any) -> tuple[SimApp, ManualClock]:
    clock = ManualClock()
    overrides.setdefault("start_time", START)
    config = SimConfig(video_source=lambda **_: FAKE_MP4, **overrides)
    return create_app(config, clock=clock), clock


def body(i: int, **changes: Any) -> dict[str, Any]:
    return {**BODY, "prompt": f"A red kite, take {i}", **changes}


async def create(client: httpx.AsyncClient, payload: dict[str, Any], **kw: Any) -> dict[str, Any]:
    response = await client.post(CREATE, json=payload, **kw)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def sim_date(response: httpx.Response) -> float:
    return email.utils.parsedate_to_datetime(response.headers["date"]).timestamp()


# --- POST /v1/tasks/batch ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_batch_of_50_ids_answers_each_task_as_a_single_read_and_51_are_refused() -> None:
    app, clock = make_app()
    async with asgi_client(app) as client:
        ids = [(await create(client, body(i)))["id"] for i in range(50)]
        clock.advance(30)
        batch = await client.post("/v1/tasks/batch", json={"task_ids": ids})
        singles = [(await client.get(f"/v1/tasks/{i}")).json() for i in ids]
        too_many = await client.post("/v1/tasks/batch", json={"task_ids": [*ids, ids[0]]})
    assert batch.status_code == 200
    assert batch.json() == {"data": singles}
    assert too_many.status_code == 400
    assert too_many.json()["error"]["code"] == "invalid_request"
    assert too_many.json()["error"]["param"] == "task_ids"


@pytest.mark.anyio
async def test_unknown_foreign_and_malformed_ids_are_absent_and_duplicates_answered_once() -> None:
    app, _ = make_app(keys={DEFAULT_KEY: KeyConfig(), OTHER: KeyConfig()})
    async with asgi_client(app) as mine, asgi_client(app, key=OTHER) as theirs:
        a = (await create(mine, body(1)))["id"]
        b = (await create(mine, body(2)))["id"]
        foreign = (await create(theirs, body(3)))["id"]
        asked = [b, "task-unified-1-zzzzzzzz", foreign, "cgt-2024-abc", a, b, ""]
        response = await mine.post("/v1/tasks/batch", json={"task_ids": asked})
        nobody = await mine.post("/v1/tasks/batch", json={"task_ids": ["task-unified-1-nope"]})
    assert response.status_code == 200
    assert [task["id"] for task in response.json()["data"]] == [b, a]
    assert nobody.status_code == 200 and nobody.json() == {"data": []}


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b"{}",
        b'{"task_ids": []}',
        b'{"task_ids": "task-unified-1-abcdefgh"}',
        b'{"task_ids": [1, 2]}',
        b'{"ids": ["task-unified-1-abcdefgh"]}',
    ],
)
@pytest.mark.anyio
async def test_a_malformed_batch_body_is_a_400_naming_task_ids(content: bytes) -> None:
    app, _ = make_app()
    async with asgi_client(app) as client:
        response = await client.post("/v1/tasks/batch", content=content)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_request", "task_ids")


@pytest.mark.anyio
async def test_a_batch_counts_as_one_query_against_the_rate_limit() -> None:
    app, clock = make_app(query_rate=1.0, query_burst=2)
    async with asgi_client(app) as client:
        ids = [(await create(client, body(i)))["id"] for i in range(20)]
        first = await client.post("/v1/tasks/batch", json={"task_ids": ids})
        second = await client.post("/v1/tasks/batch", json={"task_ids": ids})
        third = await client.get(f"/v1/tasks/{ids[0]}")
        fourth = await client.post("/v1/tasks/batch", json={"task_ids": ids})
        clock.advance(1)
        fifth = await client.post("/v1/tasks/batch", json={"task_ids": ids})
    assert first.status_code == second.status_code == 200
    assert len(second.json()["data"]) == 20
    assert third.status_code == 429 and third.headers["Retry-After"] == "1"
    assert third.json()["error"]["code"] == "rate_limit_exceeded"
    assert fourth.status_code == 429 and fourth.headers["Retry-After"] == "1"
    assert fourth.json()["error"] == third.json()["error"]  # worded like a task read
    assert fifth.status_code == 200


# --- GET /v1/tasks ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_list_pages_the_keys_own_tasks_newest_first_without_prompts() -> None:
    app, clock = make_app(keys={DEFAULT_KEY: KeyConfig(), OTHER: KeyConfig()})
    async with asgi_client(app) as client, asgi_client(app, key=OTHER) as other:
        ids = []
        for i in range(7):
            ids.append((await create(client, body(i)))["id"])
            clock.advance(2)
        await create(other, body(99))
        first = await client.get("/v1/tasks", params={"page_size": 3})
        third = await client.get("/v1/tasks", params={"page_size": 3, "page": 3})
        beyond = await client.get("/v1/tasks", params={"page_size": 3, "page": 4})
        default = await client.get("/v1/tasks")
    assert first.status_code == 200
    page = first.json()
    assert (page["total"], page["page"], page["page_size"]) == (7, 1, 3)
    assert [item["id"] for item in page["data"]] == ids[::-1][:3]
    assert [item["id"] for item in third.json()["data"]] == [ids[0]]
    assert beyond.json() == {"data": [], "total": 7, "page": 4, "page_size": 3}
    assert (default.json()["page"], default.json()["page_size"]) == (1, 20)
    item = page["data"][0]
    assert set(item) == {
        "id",
        "status",
        "model",
        "type",
        "progress",
        "created_at",
        "has_results",
        "credits_used",
        "has_error",
    }
    assert (item["type"], item["model"], item["has_results"], item["has_error"]) == (
        "video",
        BODY["model"],
        False,
        False,
    )
    assert item["created_at"] == int(START) + 12 and item["credits_used"] is None
    assert "prompt" not in first.text and "kite" not in first.text


@pytest.mark.anyio
async def test_the_list_filters_by_status_type_and_model() -> None:
    app, clock = make_app(concurrency=1)
    async with asgi_client(app) as client:
        done = (await create(client, body(0)))["id"]
        clock.advance(400)
        failed = (await create(client, body(1, prompt="a celebrity")))["id"]
        clock.advance(100)
        running = (await create(client, body(2)))["id"]
        queued = (await create(client, body(3)))["id"]
        mini = (await create(client, body(4, model="seedance-2.0-mini-text-to-video")))["id"]
        cancelled = (await create(client, body(5)))["id"]
        await client.post(f"/_sim/cancel/{cancelled}")
        clock.advance(10)

        async def listed(**params: str) -> list[str]:
            response = await client.get("/v1/tasks", params=params)
            assert response.status_code == 200, response.text
            return [item["id"] for item in response.json()["data"]]

        processing = await listed(status="processing")
        completed = await client.get("/v1/tasks", params={"status": "completed"})
        assert await listed(status="failed") == [failed]
        assert await listed(status="cancelled") == [cancelled]
        assert await listed(type="video") == [cancelled, mini, queued, running, failed, done]
        assert await listed(type="image") == []
        assert await listed(model="seedance-2.0-mini-text-to-video") == [mini]
        assert await listed(model="seedance-2.0-mini-text-to-video", status="completed") == []
    assert processing == [mini, queued, running]  # processing includes pending
    item = completed.json()["data"][0]
    assert item["id"] == done and item["has_results"] is True and item["credits_used"] == COST
    assert item["progress"] == 100


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"status": "pending"}, "status"),
        ({"status": "all"}, "status"),
        ({"status": "canceled"}, "status"),
        ({"type": "text"}, "type"),
        ({"page": "0"}, "page"),
        ({"page": "-1"}, "page"),
        ({"page": "two"}, "page"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "51"}, "page_size"),
        ({"page_size": "2.5"}, "page_size"),
    ],
)
@pytest.mark.anyio
async def test_bad_list_parameters_are_a_400_naming_the_parameter(
    params: dict[str, str], param: str
) -> None:
    app, _ = make_app()
    async with asgi_client(app) as client:
        response = await client.get("/v1/tasks", params=params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_request", param)


# --- GET /v1/models ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_models_lists_what_each_key_may_use() -> None:
    allowed = frozenset({"seedance-2.0-fast-text-to-video", "seedance-2.0-mini-text-to-video"})
    app, _ = make_app(keys={DEFAULT_KEY: KeyConfig(), OTHER: KeyConfig(models=allowed)})
    async with asgi_client(app) as client, asgi_client(app, key=OTHER) as other:
        every = await client.get("/v1/models")
        some = await other.get("/v1/models")
        await client.post("/_sim/keys", json={OTHER: {"models": []}})
        none = await other.get("/v1/models")
        anonymous = await client.get("/v1/models", headers={"Authorization": ""})
    assert every.status_code == 200 and every.json()["object"] == "list"
    ids = [m["id"] for m in every.json()["data"]]
    assert len(ids) == 9 and all(set(m) == {"id"} for m in every.json()["data"])
    assert "seedance-2.0-text-to-video" in ids and "seedance-2.0" not in ids
    assert some.json() == {"object": "list", "data": [{"id": m} for m in sorted(allowed)]}
    assert none.json() == {"object": "list", "data": []}
    assert anonymous.status_code == 401


@pytest.mark.anyio
async def test_the_new_endpoints_take_faults_and_are_counted() -> None:
    faults = [
        Fault("batch", "respond", status=503, calls=(1,)),
        Fault("list", "rate_limit", retry_after=7, calls=(1,)),
        Fault("models", "respond", status=500, calls=(1,)),
    ]
    app, _ = make_app(faults=faults)
    async with asgi_client(app) as client:
        task = await create(client, BODY)
        batch = [
            await client.post("/v1/tasks/batch", json={"task_ids": [task["id"]]}) for _ in "ab"
        ]
        lists = [await client.get("/v1/tasks") for _ in "ab"]
        models = [await client.get("/v1/models") for _ in "ab"]
    assert [r.status_code for r in batch] == [503, 200]
    assert batch[0].json()["error"]["code"] == "service_unavailable"
    assert [r.status_code for r in lists] == [429, 200] and lists[0].headers["Retry-After"] == "7"
    assert [r.status_code for r in models] == [500, 200]
    requests = app.state.sim.snapshot()["requests"]
    assert requests["batch"] == {"503": 1, "200": 1}
    assert requests["list"] == {"429": 1, "200": 1}
    assert requests["models"] == {"500": 1, "200": 1}


# --- task money and refunds -------------------------------------------------------------------


@pytest.mark.anyio
async def test_reads_carry_the_reservation_then_the_final_charge_once_completed() -> None:
    app, clock = make_app()
    async with asgi_client(app) as client:
        task = await create(client, BODY)
        url = f"/v1/tasks/{task['id']}"
        pending = (await client.get(url)).json()
        clock.advance(30)
        processing = (await client.get(url)).json()
        clock.advance(400)
        done = (await client.get(url)).json()
    assert task["usage"]["credits_reserved"] == COST  # the create keeps its full usage
    assert pending["usage"] == processing["usage"] == {"credits_reserved": COST}
    assert done["status"] == "completed"
    assert done["usage"] == {
        "credits_used": COST,
        "cost": {"credits": COST, "usd": round(COST / 68, 8)},
    }
    assert "billing" not in done and "billing" not in processing


@pytest.mark.anyio
async def test_immediate_refunds_release_the_charge_when_the_task_fails() -> None:
    app, clock = make_app(keys={DEFAULT_KEY: KeyConfig(balance=100.0)})
    async with asgi_client(app) as client:
        task = await create(client, body(1, prompt="a celebrity"))
        clock.advance(60)
        failed = (await client.get(f"/v1/tasks/{task['id']}")).json()
        credits = (await client.get("/v1/credits")).json()["data"]
    finished = app.state.sim.task(task["id"]).finished_at
    assert failed["status"] == "failed"
    assert failed["usage"] == {"credits_reserved": COST}
    assert failed["billing"] == {
        "reserved_credits": COST,
        "charge_status": "released",
        "refund_status": "completed",
        "refund_scope": "account_balance",
        "refunded_credits": COST,
        "refunded_at": int(finished),
    }
    assert credits["user"] == {"remaining_credits": 100.0, "used_credits": 0.0}


@pytest.mark.anyio
async def test_a_late_refund_is_pending_until_refund_delay_then_restores_the_balance() -> None:
    app, clock = make_app(
        keys={DEFAULT_KEY: KeyConfig(balance=100.0)}, refunds="late", refund_delay=600.0
    )
    sim = app.state.sim
    async with asgi_client(app) as client:
        task = await create(client, body(1, prompt="a celebrity"))
        url = f"/v1/tasks/{task['id']}"
        clock.advance(60)
        finished = sim.task(task["id"]).finished_at
        held = (await client.get(url)).json()
        balance_held = (await client.get("/v1/credits")).json()["data"]["user"]
        clock.advance(finished + 600 - sim.now() - 1)  # one second before the refund
        still = (await client.get(url)).json()
        clock.advance(1)
        refunded = (await client.get(url)).json()
        balance_after = (await client.get("/v1/credits")).json()["data"]["user"]
    assert held["status"] == "failed"
    assert held["billing"] == {
        "reserved_credits": COST,
        "charge_status": "held",
        "refund_status": "pending",
        "refund_scope": "account_balance",
        "refunded_credits": 0,
        "refunded_at": None,
    }
    assert balance_held["remaining_credits"] == pytest.approx(100.0 - COST)
    assert still["billing"]["refund_status"] == "pending"
    assert refunded["billing"]["refund_status"] == "completed"
    assert refunded["billing"]["charge_status"] == "released"
    assert refunded["billing"]["refunded_credits"] == COST
    assert refunded["billing"]["refunded_at"] == int(finished + 600)
    assert balance_after == {"remaining_credits": 100.0, "used_credits": 0.0}
    account = sim.snapshot()["accounts"][key_label(DEFAULT_KEY)]
    assert (account["charged"], account["refunded"], account["held"]) == (COST, COST, 0.0)


@pytest.mark.anyio
async def test_never_refunded_failures_stay_held_and_keep_the_money() -> None:
    app, clock = make_app(keys={DEFAULT_KEY: KeyConfig(balance=100.0)}, refunds="never")
    async with asgi_client(app) as client:
        task = await create(client, body(1, prompt="a celebrity"))
        clock.advance(100_000)
        failed = (await client.get(f"/v1/tasks/{task['id']}")).json()
        credits = (await client.get("/v1/credits")).json()["data"]
    assert failed["billing"]["charge_status"] == "held"
    assert failed["billing"]["refund_status"] == "none"
    assert failed["billing"]["refunded_at"] is None
    assert credits["user"]["remaining_credits"] == pytest.approx(100.0 - COST)
    account = app.state.sim.snapshot()["accounts"][key_label(DEFAULT_KEY)]
    assert (account["charged"], account["refunded"], account["held"]) == (COST, 0.0, COST)


@pytest.mark.parametrize("refunds", ["immediate", "late", "never"])
@pytest.mark.anyio
async def test_cancel_ends_a_task_as_cancelled_refunded_as_the_setting_says(refunds: str) -> None:
    app, clock = make_app(keys={DEFAULT_KEY: KeyConfig(balance=100.0)}, refunds=refunds)
    async with asgi_client(app) as client:
        task = await create(client, BODY)
        clock.advance(20)
        cancelled = await client.post(f"/_sim/cancel/{task['id']}")
        read = (await client.get(f"/v1/tasks/{task['id']}")).json()
        clock.advance(600)
        later = (await client.get(f"/v1/tasks/{task['id']}")).json()
        balance = (await client.get("/v1/credits")).json()["data"]["user"]["remaining_credits"]
    assert cancelled.status_code == 200
    assert read["status"] == "cancelled" and read["error"]["code"] == "request_cancelled"
    assert read["progress"] == 0 and read["task_info"] == {"can_cancel": False}
    assert read["usage"] == {"credits_reserved": COST}
    expected = {"immediate": "completed", "late": "pending", "never": "none"}[refunds]
    assert read["billing"]["refund_status"] == expected
    finally_refunded = refunds != "never"
    assert later["billing"]["refund_status"] == ("completed" if finally_refunded else "none")
    assert balance == pytest.approx(100.0 if finally_refunded else 100.0 - COST)


@pytest.mark.anyio
async def test_the_request_cancelled_fate_ends_tasks_as_cancelled() -> None:
    app, clock = make_app(fail_rates={"request_cancelled": 1.0})
    async with asgi_client(app) as client:
        task = await create(client, BODY)
        clock.advance(400)
        read = (await client.get(f"/v1/tasks/{task['id']}")).json()
    assert read["status"] == "cancelled" and read["error"]["code"] == "request_cancelled"
    assert read["billing"]["refund_status"] == "completed"


# --- key limits and the 402s ------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_model_outside_the_keys_list_is_a_402_naming_the_allowed_models() -> None:
    app, _ = make_app()
    async with asgi_client(app) as client:
        await client.post("/_sim/keys", json={DEFAULT_KEY: {"models": [BODY["model"]]}})
        denied = await client.post(CREATE, json={**BODY, "model": "seedance-2.0-text-to-video"})
    assert denied.status_code == 402
    assert denied.json()["error"] == {
        "code": "key_model_not_allowed",
        "message": "This API key may not use the model seedance-2.0-text-to-video",
        "type": "permission_error",
        "allowed_models": [BODY["model"]],
        "key_name": key_label(DEFAULT_KEY),
    }
    assert app.state.sim.snapshot()["tasks"] == []


@pytest.mark.anyio
async def test_a_keys_total_limit_is_a_402_with_flat_figures_and_refunds_give_it_back() -> None:
    app, clock = make_app(keys={DEFAULT_KEY: KeyConfig(total_limit=40.0)})
    async with asgi_client(app) as client:
        await create(client, body(1))
        doomed = await create(client, body(2, prompt="a celebrity"))
        refused = await client.post(CREATE, json=body(3))
        limited = (await client.get("/v1/credits")).json()["data"]["token"]
        clock.advance(60)  # the celebrity task fails and is refunded
        again = await client.post(CREATE, json=body(3))
    assert doomed["usage"]["credits_reserved"] == COST
    assert refused.status_code == 402
    assert refused.json()["error"] == {
        "code": "key_quota_exhausted",
        "message": refused.json()["error"]["message"],
        "type": "insufficient_quota",
        "key_name": key_label(DEFAULT_KEY),
        "total_limit_credits": 40.0,
        "used_credits": 2 * COST,
        "remaining_credits": pytest.approx(40.0 - 2 * COST),
        "estimated_credits": COST,
    }
    assert "details" not in refused.json()["error"]
    assert limited["unlimited_credits"] is False
    assert limited["remaining_credits"] == pytest.approx(40.0 - 2 * COST)
    assert limited["used_credits"] == 2 * COST
    assert again.status_code == 200


@pytest.mark.anyio
async def test_the_daily_limit_refuses_until_the_next_simulated_midnight_in_its_zone() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    start = datetime(2027, 3, 1, 23, 0, tzinfo=shanghai).timestamp()
    app, clock = make_app(start_time=start, keys={DEFAULT_KEY: KeyConfig(daily_limit=40.0)})
    async with asgi_client(app) as client:
        await create(client, body(1))
        await create(client, body(2))
        refused = await client.post(CREATE, json=body(3))
        token = (await client.get("/v1/credits")).json()["data"]["token"]
        clock.advance(3599)
        still = await client.post(CREATE, json=body(3))
        clock.advance(1)  # midnight in Shanghai
        after = await client.post(CREATE, json=body(3))
        fresh = (await client.get("/v1/credits")).json()["data"]["token"]
    assert refused.status_code == 402
    error = refused.json()["error"]
    assert error == {
        "code": "key_daily_quota_exhausted",
        "message": error["message"],
        "type": "insufficient_quota",
        "key_name": key_label(DEFAULT_KEY),
        "daily_limit_credits": 40.0,
        "daily_used_credits": 2 * COST,
        "estimated_credits": COST,
        "reset_timezone": "Asia/Shanghai",
        "reset_at": "2027-03-02T00:00:00+08:00",
    }
    reset = datetime.fromisoformat(error["reset_at"]).timestamp()
    assert reset - sim_date(refused) == 3600  # a client counts down on the provider's clock
    assert token == {
        "remaining_credits": None,
        "unlimited_credits": True,
        "used_credits": 2 * COST,
        "daily_limit_credits": 40.0,
        "daily_used_credits": 2 * COST,
        "reset_timezone": "Asia/Shanghai",
    }
    assert still.status_code == 402
    assert after.status_code == 200
    assert fresh["daily_used_credits"] == COST and fresh["used_credits"] == 3 * COST


@pytest.mark.anyio
async def test_daily_use_is_net_of_the_refunds_of_the_days_tasks_in_any_zone() -> None:
    start = datetime(2027, 3, 1, 12, 0, tzinfo=UTC).timestamp()
    keys = {DEFAULT_KEY: KeyConfig(daily_limit=20.0, reset_timezone="America/New_York")}
    app, clock = make_app(start_time=start, keys=keys)
    async with asgi_client(app) as client:
        await create(client, body(1, prompt="a celebrity"))
        refused = await client.post(CREATE, json=body(2))
        clock.advance(60)  # refunded: the day's use is 0 again
        ok = await client.post(CREATE, json=body(2))
    assert refused.status_code == 402
    assert refused.json()["error"]["reset_at"] == "2027-03-02T00:00:00-05:00"
    assert ok.status_code == 200


@pytest.mark.anyio
async def test_sim_keys_sets_and_lifts_limits_and_refuses_bad_ones() -> None:
    app, _ = make_app()
    async with asgi_client(app) as client:
        set_ = await client.post(
            "/_sim/keys",
            json={DEFAULT_KEY: {"daily_limit": 10, "reset_timezone": "Europe/Berlin"}},
        )
        refused = await client.post(CREATE, json=BODY)
        await client.post("/_sim/keys", json={DEFAULT_KEY: {"daily_limit": None}})
        allowed = await client.post(CREATE, json=BODY)
        bad_zone = await client.post(
            "/_sim/keys", json={DEFAULT_KEY: {"daily_limit": 5, "reset_timezone": "Mars"}}
        )
        bad_limit = await client.post("/_sim/keys", json={DEFAULT_KEY: {"total_limit": "many"}})
        unknown = await client.post("/_sim/keys", json={DEFAULT_KEY: {"limit": 5}})
    assert set_.status_code == 200
    assert refused.status_code == 402
    assert refused.json()["error"]["reset_timezone"] == "Europe/Berlin"
    assert allowed.status_code == 200
    assert bad_zone.status_code == bad_limit.status_code == unknown.status_code == 400
    assert "Mars" in bad_zone.json()["error"]


def test_from_json_reads_the_new_settings_and_key_limits() -> None:
    config = SimConfig.from_json(
        {
            "keys": {
                "sk-a": {"balance": 5, "total_limit": 100, "daily_limit": 50.5},
                "sk-b": {"models": ["seedance-2.0-fast-text-to-video"], "reset_timezone": "UTC"},
            },
            "refunds": "late",
            "refund_delay": 30,
            "idempotency_ttl": None,
            "file_origin": "http://127.0.0.1:9000",
            "strict_file_host": True,
            "model_denial": "model_access_denied",
        }
    )
    assert config.keys["sk-a"] == KeyConfig(balance=5.0, total_limit=100.0, daily_limit=50.5)
    assert config.keys["sk-b"].reset_timezone == "UTC"
    assert (config.refunds, config.refund_delay, config.idempotency_ttl) == ("late", 30, None)
    assert config.file_origin == "http://127.0.0.1:9000" and config.strict_file_host
    for bad in (
        {"keys": {"sk-a": {"daily_limit": 5, "reset_timezone": "Nowhere/Else"}}},
        {"keys": {"sk-a": {"daily": 5}}},
        {"refunds": "sometimes"},
        {"file_origin": "http://files.test/videos"},
        {"idempotency_ttl": 0},
    ):
        with pytest.raises(ValueError):
            SimConfig.from_json(bad)


# --- idempotency ------------------------------------------------------------------------------


KEY_1 = "run_0123456789abcdef0123456789abcdef"


@pytest.mark.anyio
async def test_a_remembered_key_replays_until_its_ttl_then_makes_a_new_task() -> None:
    app, clock = make_app(keys={DEFAULT_KEY: KeyConfig(balance=100.0)}, idempotency_ttl=3600.0)
    headers = {"Idempotency-Key": KEY_1, "X-Evo-Run-Id": KEY_1}
    async with asgi_client(app) as client:
        first = await client.post(CREATE, json=BODY, headers=headers)
        clock.advance(3600)
        replay = await client.post(CREATE, json=BODY, headers=headers)
        conflict = await client.post(CREATE, json=body(2), headers=headers)
        clock.advance(1)
        forgotten = await client.post(CREATE, json=BODY, headers=headers)
        balance = (await client.get("/v1/credits")).json()["data"]["user"]["remaining_credits"]
    assert first.status_code == replay.status_code == forgotten.status_code == 200
    assert "idempotency-replayed" not in first.headers
    assert replay.headers["idempotency-replayed"] == "true"
    assert replay.json() == first.json()
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "idempotency_conflict"
    assert forgotten.json()["id"] != first.json()["id"]
    assert "idempotency-replayed" not in forgotten.headers
    assert balance == pytest.approx(100.0 - 2 * COST)
    state = app.state.sim.snapshot()
    assert state["creates_by_idempotency_key"] == {KEY_1: 2}
    assert state["replays_by_idempotency_key"] == {KEY_1: 1}
    assert [t["run_id"] for t in state["tasks"]] == [KEY_1, KEY_1]


@pytest.mark.anyio
async def test_a_gateway_that_forgets_keys_charges_a_replay_again() -> None:
    app, _ = make_app(keys={DEFAULT_KEY: KeyConfig(balance=100.0)}, idempotency_ttl=None)
    headers = {"Idempotency-Key": KEY_1}
    async with asgi_client(app) as client:
        first = await client.post(CREATE, json=BODY, headers=headers)
        again = await client.post(CREATE, json=BODY, headers=headers)
        other_body = await client.post(CREATE, json=body(2), headers=headers)
        odd_key = await client.post(CREATE, json=BODY, headers={"Idempotency-Key": "short"})
    assert [r.status_code for r in (first, again, other_body, odd_key)] == [200] * 4
    assert "idempotency-replayed" not in again.headers
    assert len({r.json()["id"] for r in (first, again, other_body)}) == 3
    state = app.state.sim.snapshot()
    assert state["creates_by_idempotency_key"] == {KEY_1: 3, "short": 1}
    assert state["accounts"][key_label(DEFAULT_KEY)]["charged"] == pytest.approx(4 * COST)


@pytest.mark.anyio
async def test_a_create_whose_key_is_still_being_processed_is_paid_outcome_unknown() -> None:
    # the first create is processed, then held 60 wall seconds before its answer
    held = Fault("create", "pass", calls=(1,), processed=True, delay=60.0)
    app, _ = make_app(faults=[held])
    sim = app.state.sim
    headers = {"Idempotency-Key": KEY_1}
    answers: dict[str, httpx.Response] = {}
    async with asgi_client(app) as client:
        async with anyio.create_task_group() as tg:

            async def first() -> None:
                answers["first"] = await client.post(CREATE, json=BODY, headers=headers)

            tg.start_soon(first)
            for _ in range(10_000):  # until the first create is processed (no timing)
                if sim.tasks:
                    break
                await anyio.lowlevel.checkpoint()
            answers["second"] = await client.post(CREATE, json=BODY, headers=headers)
            answers["other_key"] = await client.post(
                CREATE, json=body(2), headers={"Idempotency-Key": "run_another-key-1234"}
            )
            tg.cancel_scope.cancel()  # the first client gives up waiting
        answers["later"] = await client.post(CREATE, json=BODY, headers=headers)
    second = answers["second"]
    assert "first" not in answers
    assert second.status_code == 409
    error = second.json()["error"]
    assert error["code"] == "paid_outcome_unknown"
    assert "wait a minute and retry with the same key" in error["message"]
    assert set(error) == {"code", "message", "type"}
    assert answers["other_key"].status_code == 200
    later = answers["later"]
    assert later.status_code == 200 and later.headers["idempotency-replayed"] == "true"
    state = sim.snapshot()
    assert state["creates_by_idempotency_key"] == {KEY_1: 1, "run_another-key-1234": 1}
    assert state["outcome_unknown_by_idempotency_key"] == {KEY_1: 1}
    assert state["requests"]["create"]["409"] == 1


@pytest.mark.anyio
async def test_paid_outcome_unknown_is_also_a_plain_respond_fault() -> None:
    payload = {
        "error": {
            "code": "paid_outcome_unknown",
            "message": "The earlier submission is still being processed; wait a minute and "
            "retry with the same key",
            "type": "invalid_request_error",
        }
    }
    app, _ = make_app(faults=[Fault("create", status=409, json_body=payload, calls=(1,))])
    async with asgi_client(app) as client:
        faulted = await client.post(CREATE, json=BODY, headers={"Idempotency-Key": KEY_1})
        retried = await client.post(CREATE, json=BODY, headers={"Idempotency-Key": KEY_1})
    assert faulted.status_code == 409 and faulted.json() == payload
    assert retried.status_code == 200 and "idempotency-replayed" not in retried.headers


# --- the file origin --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_result_files_live_on_the_file_origin_routed_by_host_in_one_app() -> None:
    app, clock = make_app(file_origin=FILES)
    async with asgi_client(app) as client, asgi_client(app, key=None, base_url=FILES) as cdn:
        task = await create(client, BODY)
        clock.advance(400)
        url = (await client.get(f"/v1/tasks/{task['id']}")).json()["results"][0]
        on_api = await client.get(f"/files/{task['id']}.mp4")
        full = await cdn.get(url)
        part = await cdn.get(url, headers={"Range": "bytes=4-11"})
        api_on_cdn = await cdn.get("/v1/credits")
        missing = await cdn.get("/files/task-unified-1-zzzzzzzz.mp4")
        clock.advance(86_401)
        expired = await cdn.get(url)
    assert url == f"{FILES}/files/{task['id']}.mp4"
    assert on_api.status_code == 404
    assert full.status_code == 200 and full.content == FAKE_MP4
    assert full.headers["content-type"] == "video/mp4"
    assert part.status_code == 206 and part.content == FAKE_MP4[4:12]
    assert api_on_cdn.status_code == 404 and missing.status_code == 404
    assert b"NoSuchKey" in missing.content
    assert expired.status_code == 403 and b"AccessDenied" in expired.content
    requests = app.state.sim.snapshot()["requests"]
    assert requests["file"] == {"200": 1, "206": 1, "404": 1, "403": 1}


@pytest.mark.anyio
async def test_faults_on_the_file_endpoint_apply_on_the_file_origin() -> None:
    app, clock = make_app(file_origin=FILES, faults=[Fault("file", "expire", calls=(1,))])
    async with asgi_client(app) as client, asgi_client(app, key=None, base_url=FILES) as cdn:
        task = await create(client, BODY)
        clock.advance(400)
        url = (await client.get(f"/v1/tasks/{task['id']}")).json()["results"][0]
        first, second = await cdn.get(url), await cdn.get(url)
    assert first.status_code == 403 and second.status_code == 200


@pytest.mark.parametrize(
    ("headers", "blocked"),
    [
        ({}, True),  # httpx's own python-httpx/… agent
        ({"User-Agent": "python-requests/2.32"}, True),
        ({"User-Agent": "Python-urllib/3.11"}, True),
        ({"User-Agent": "curl/8.5.0"}, True),
        ({"User-Agent": "Wget/1.21"}, True),
        ({"User-Agent": "aiohttp/3.9"}, True),
        ({"User-Agent": ""}, True),
        ({**AGENT, "Authorization": "Bearer sk-sim-local"}, True),
        (AGENT, False),
        ({"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"}, False),
    ],
)
@pytest.mark.anyio
async def test_the_strict_file_host_answers_1010_to_library_agents_and_authorization(
    headers: dict[str, str], blocked: bool
) -> None:
    app, clock = make_app(file_origin=FILES, strict_file_host=True)
    async with asgi_client(app) as client, asgi_client(app, key=None, base_url=FILES) as cdn:
        task = await create(client, BODY)
        clock.advance(400)
        url = (await client.get(f"/v1/tasks/{task['id']}")).json()["results"][0]
        response = await cdn.get(url, headers=headers)
    if blocked:
        assert response.status_code == 403
        assert response.text == "error code: 1010"
        assert response.headers["content-type"].startswith("text/plain")
    else:
        assert response.status_code == 200 and response.content == FAKE_MP4


@pytest.mark.anyio
async def test_ground_truth_keeps_user_agents_and_authorization_seen_by_the_file_host() -> None:
    app, clock = make_app(file_origin=FILES, strict_file_host=True)
    async with asgi_client(app) as client, asgi_client(app, key=None, base_url=FILES) as cdn:
        task = await create(client, BODY, headers={"User-Agent": "runner/0.1"})
        clock.advance(400)
        url = (await client.get(f"/v1/tasks/{task['id']}")).json()["results"][0]
        await cdn.get(url, headers=AGENT)
        await cdn.get(url, headers={**AGENT, "Authorization": "Bearer sk-sim-local"})
        await cdn.get(url)
    state = app.state.sim.snapshot()
    assert state["user_agents"]["create"] == ["runner/0.1"]
    assert state["user_agents"]["task"] == [f"python-httpx/{httpx.__version__}"]
    assert state["user_agents"]["file"] == [
        "EvoLinkClient/1.0",
        f"python-httpx/{httpx.__version__}",
    ]
    assert state["file_requests_with_authorization"] == 1
    assert state["requests"]["file"] == {"200": 1, "403-1010": 2}


@pytest.mark.anyio
async def test_without_a_file_origin_files_stay_on_the_api_origin() -> None:
    app, clock = make_app()
    async with asgi_client(app, base_url="http://127.0.0.1:9999") as client:
        task = await create(client, BODY)
        clock.advance(400)
        url = (await client.get(f"/v1/tasks/{task['id']}")).json()["results"][0]
        file = await client.get(url)
    assert url == f"http://127.0.0.1:9999/files/{task['id']}.mp4"
    assert file.status_code == 200


# --- Date in simulated time -------------------------------------------------------------------


@pytest.mark.anyio
async def test_every_answer_carries_a_date_in_simulated_time() -> None:
    app, clock = make_app(
        speed=100.0, faults=[Fault("credits", status=500, calls=(1,))], file_origin=FILES
    )
    async with asgi_client(app) as client, asgi_client(app, key=None, base_url=FILES) as cdn:
        ok = await client.post(CREATE, json=BODY)
        clock.advance(30)  # 3000 simulated seconds
        await client.post("/_sim/advance", json={"seconds": 7 * 86_400})
        fault = await client.get("/v1/credits")
        error = await client.get("/v1/tasks/nope")
        unknown = await client.get("/v1/nothing-here")
        file = await cdn.get("/files/task-unified-1-zzzzzzzz.mp4")
    assert ok.headers["date"] == "Fri, 15 Jan 2027 08:00:00 GMT"
    later = START + 3000 + 7 * 86_400
    for response in (fault, error, unknown, file):
        assert sim_date(response) == later, response.text
        assert response.headers["x-simulator-speed"] == "100"
    assert fault.headers["date"] == email.utils.formatdate(later, usegmt=True)


# --- journal ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_late_refunds_daily_use_and_limits_replay_from_the_journal(tmp_path: Path) -> None:
    clock = ManualClock(1000.0)
    shanghai = ZoneInfo("Asia/Shanghai")
    start = datetime(2027, 3, 1, 20, 0, tzinfo=shanghai).timestamp()

    def app() -> SimApp:
        config = SimConfig(
            journal=tmp_path / "journal.jsonl",
            start_time=start,
            refunds="late",
            refund_delay=600.0,
            video_source=lambda **_: FAKE_MP4,
        )
        return create_app(config, clock=clock, wall=clock)

    first = app()
    headers = {"Idempotency-Key": KEY_1, "X-Evo-Run-Id": KEY_1}
    async with asgi_client(first) as client:
        await client.post("/_sim/keys", json={DEFAULT_KEY: {"daily_limit": 40, "balance": 100}})
        kept = await create(client, body(1), headers=headers)
        doomed = await create(client, body(2, prompt="a celebrity"))
        clock.advance(60)
        held = (await client.get(f"/v1/tasks/{doomed['id']}")).json()
    before = first.state.sim.snapshot()
    first.state.sim.close()

    second = app()  # another "process" on the same journal, no wall time between
    async with asgi_client(second) as client:
        replay = await client.post(CREATE, json=body(1), headers=headers)
        refused = await client.post(CREATE, json=body(3))
        clock.advance(600)
        refunded = (await client.get(f"/v1/tasks/{doomed['id']}")).json()
        allowed = await client.post(CREATE, json=body(3))
        token = (await client.get("/v1/credits")).json()["data"]["token"]
    after = second.state.sim.snapshot()
    second.state.sim.close()
    assert held["billing"]["refund_status"] == "pending"
    assert replay.headers["idempotency-replayed"] == "true" and replay.json() == kept
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "key_daily_quota_exhausted"
    assert refunded["billing"]["refund_status"] == "completed"
    assert allowed.status_code == 200
    assert token["daily_limit_credits"] == 40.0 and token["daily_used_credits"] == 2 * COST
    tasks_before = {t["id"]: t for t in before["tasks"]}
    tasks_after = {t["id"]: t for t in after["tasks"]}
    assert tasks_after[kept["id"]]["run_id"] == KEY_1
    assert tasks_before[doomed["id"]]["refunded"] == 0.0
    assert tasks_after[doomed["id"]]["refunded"] == COST
    account = after["accounts"][key_label(DEFAULT_KEY)]
    assert (account["charged"], account["refunded"]) == (3 * COST, COST)
    assert account["balance"] == pytest.approx(100 - 2 * COST)


def test_a_journal_refuses_other_refund_settings(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    create_app(SimConfig(journal=path, refunds="late")).state.sim.close()
    with pytest.raises(ValueError, match="refunds='late'"):
        create_app(SimConfig(journal=path))


# --- ground truth -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_ground_truth_shows_money_per_key_and_per_task() -> None:
    app, clock = make_app(refunds="late", refund_delay=100.0)
    async with asgi_client(app) as client:
        ok = await create(client, body(1))
        bad = await create(client, body(2, prompt="a celebrity"))
        cancelled = await create(client, body(3))
        clock.advance(10)
        await client.post(f"/_sim/cancel/{cancelled['id']}")
        clock.advance(200)
        await client.post("/v1/tasks/batch", json={"task_ids": [ok["id"]]})
        await client.get("/v1/tasks")
        await client.get("/v1/models")
        state = (await client.get("/_sim/state")).json()
    tasks = {t["id"]: t for t in state["tasks"]}
    assert {k: tasks[ok["id"]][k] for k in ("status", "reserved", "credits_used", "refunded")} == {
        "status": "completed",
        "reserved": COST,
        "credits_used": COST,
        "refunded": 0.0,
    }
    assert tasks[bad["id"]]["status"] == "failed" and tasks[bad["id"]]["refunded"] == COST
    assert tasks[cancelled["id"]]["status"] == "cancelled"
    assert tasks[cancelled["id"]]["refunded"] == COST
    assert tasks[cancelled["id"]]["credits_used"] is None
    account = state["accounts"][key_label(DEFAULT_KEY)]
    assert account["charged"] == pytest.approx(3 * COST)
    assert account["refunded"] == pytest.approx(2 * COST)
    assert account["balance"] == pytest.approx(1_000_000 - COST)
    for endpoint in ("create", "batch", "list", "models"):
        assert endpoint in state["requests"]


# --- real servers: the file origin on its own port --------------------------------------------


def test_a_real_file_host_on_its_own_port_serves_results_and_enforces_1010() -> None:
    files = listen()
    app = create_app(
        SimConfig(
            speed=1000.0,
            file_origin=origin(files),
            strict_file_host=True,
            video_source=lambda **_: FAKE_MP4,
        )
    )
    auth = {"Authorization": f"Bearer {DEFAULT_KEY}"}
    began = app.state.sim.now()
    with serve(app) as api, serve(app.files, sock=files) as files_url:
        with httpx.Client(base_url=api, headers=auth, timeout=5) as http:
            task = http.post(CREATE, json=BODY).json()
            app.state.sim.advance(400)
            done = http.get(f"/v1/tasks/{task['id']}")
            on_api = http.get(f"/files/{task['id']}.mp4")
        url = done.json()["results"][0]
        with httpx.Client(timeout=5) as plain:
            default_agent = plain.get(url)
            with_auth = plain.get(url, headers={**AGENT, **auth})
            good = plain.get(url, headers=AGENT)
            part = plain.get(url, headers={**AGENT, "Range": "bytes=0-3"})
    assert url == f"{files_url}/files/{task['id']}.mp4" and files_url != api
    assert on_api.status_code == 404
    assert default_agent.status_code == with_auth.status_code == 403
    assert default_agent.text == "error code: 1010"
    assert good.status_code == 200 and good.content == FAKE_MP4
    assert part.status_code == 206 and part.content == FAKE_MP4[:4]
    dates = [sim_date(r) for r in (done, default_agent, good)]
    for response in (done, default_agent, good):
        assert len(response.headers.get_list("date")) == 1  # uvicorn's own is off
    assert began + 400 <= dates[0] <= dates[1] <= dates[2] <= app.state.sim.now()


def test_date_is_the_simulated_one_under_a_real_server() -> None:
    app = create_app(SimConfig(start_time=START, speed=1.0))
    app.state.sim.advance(timedelta(days=30).total_seconds())
    with serve(app) as url, httpx.Client(base_url=url, timeout=5) as http:
        response = http.get("/v1/credits")  # 401: no key
    assert response.status_code == 401
    assert response.headers.get_list("date") == [response.headers["date"]]
    assert abs(sim_date(response) - (START + 30 * 86_400)) < 60


def test_a_child_process_serves_the_file_origin_on_the_socket_it_is_given() -> None:
    files = listen()
    config = {"speed": 1000.0, "file_origin": origin(files), "strict_file_host": True}
    files_url = origin(files)
    with serve_process(config, file_socket=files) as (url, _):
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {DEFAULT_KEY}"}) as api:
            task = api.post(CREATE, json=BODY).json()
            api.post("/_sim/advance", json={"seconds": 1000})
            result = api.get(f"/v1/tasks/{task['id']}").json()["results"][0]
        refused = httpx.get(result, timeout=5)
        video = httpx.get(result, headers=AGENT, timeout=60)
    assert result == f"{files_url}/files/{task['id']}.mp4"
    assert refused.status_code == 403 and refused.text == "error code: 1010"
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
