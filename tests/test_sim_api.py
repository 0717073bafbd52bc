"""Contract: the simulator answers with the documented EvoLink shapes, field for field.

The expected shapes are EvoLink's documented examples (docs/simulator.md §4 create, §5.1 task
per status, §5.5 query errors, §7.1 create errors) and the docs' get-credits example, with the
gateway's additions (§19 task money, §18 the token's limits, §7.3 flat 402 figures).
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from runner.simulator.app import DEFAULT_KEY, Fault, KeyConfig, SimConfig, create_app
from runner.simulator.tasks import key_label
from runner.simulator.testing import ManualClock, asgi_client

BODY: dict[str, Any] = {
    "model": "seedance-2.0-fast-text-to-video",
    "prompt": "A red kite over a beach",
    "duration": 5,
    "quality": "720p",
    "aspect_ratio": "16:9",
    "generate_audio": True,
}
FAKE_MP4 = b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 40

DOC_CREATE = {
    "created": 1761313744,
    "id": "task-unified-1774857405-abc123",
    "model": "seedance-2.0-text-to-video",
    "object": "video.generation.task",
    "progress": 0,
    "status": "pending",
    "task_info": {"can_cancel": True, "estimated_time": 165, "video_duration": 8},
    "type": "video",
    "usage": {"billing_rule": "per_second", "credits_reserved": 50, "user_group": "default"},
}
DOC_PENDING = {
    "id": "task-unified-x",
    "object": "video.generation.task",
    "created": 1,
    "model": "m",
    "status": "pending",
    "progress": 0,
    "type": "video",
    "task_info": {"can_cancel": True, "estimated_time": 165, "video_duration": 5},
    "usage": {"credits_reserved": 50},
}
DOC_PROCESSING = {
    **DOC_PENDING,
    "status": "processing",
    "progress": 65,
    "task_info": {"can_cancel": True},
}
DOC_COMPLETED = {
    **DOC_PENDING,
    "status": "completed",
    "progress": 100,
    "results": ["https://x/task-unified-x.mp4"],
    "task_info": {"can_cancel": False},
    "usage": {"credits_used": 50, "cost": {"credits": 50, "usd": 0.73529412}},
}
DOC_FAILED = {
    **DOC_PENDING,
    "status": "failed",
    "progress": 0,
    "task_info": {"can_cancel": False},
    "error": {
        "code": "content_policy_violation",
        "message": "Content policy violation.",
        "type": "task_error",
    },
    "billing": {
        "reserved_credits": 50,
        "charge_status": "released",
        "refund_status": "completed",
        "refund_scope": "account_balance",
        "refunded_credits": 50,
        "refunded_at": 1,
    },
}
DOC_CREDITS = {
    "data": {
        "token": {
            "remaining_credits": None,
            "unlimited_credits": True,
            "used_credits": 583.5571,
            "daily_limit_credits": None,
            "daily_used_credits": None,
            "reset_timezone": None,
        },
        "user": {"remaining_credits": 1095.3996, "used_credits": 135.9048},
    },
    "message": "",
    "success": True,
}


def shape(value: object) -> object:
    """Keys and JSON types, recursively (ints and floats are both numbers)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def video_source(**_: object) -> bytes:
    return FAKE_MP4


def make_app(**overrides: Any) -> tuple[Any, ManualClock]:
    clock = ManualClock()
    config = SimConfig(video_source=video_source, start_time=1_800_000_000.0, **overrides)
    return create_app(config, clock=clock), clock


async def create(client: httpx.AsyncClient, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await client.post("/v1/videos/generations", json=body or BODY)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


@pytest.mark.anyio
async def test_create_answers_the_documented_shape_with_our_values() -> None:
    app, _ = make_app()
    async with asgi_client(app) as client:
        response = await client.post("/v1/videos/generations", json=BODY)
    assert response.status_code == 200
    data = response.json()
    assert shape(data) == shape(DOC_CREATE)
    assert list(data) == list(DOC_CREATE)  # same order as the docs, for readers of raw JSON
    assert re.fullmatch(r"task-unified-1800000000-[a-z0-9]{8}", data["id"])
    assert data["created"] == 1_800_000_000
    assert (data["model"], data["object"], data["status"], data["type"], data["progress"]) == (
        BODY["model"],
        "video.generation.task",
        "pending",
        "video",
        0,
    )
    assert data["task_info"]["video_duration"] == 5
    assert data["task_info"]["can_cancel"] is True
    assert isinstance(data["task_info"]["estimated_time"], int)
    assert data["usage"] == {
        "billing_rule": "per_second",
        "credits_reserved": 41.0065,
        "user_group": "default",
    }
    assert re.fullmatch(r"req-[0-9a-f]{24}", response.headers["x-request-id"])


@pytest.mark.anyio
async def test_task_reads_follow_pending_processing_completed_in_simulated_time() -> None:
    app, clock = make_app()
    async with asgi_client(app) as client:
        task = await create(client)
        url = f"/v1/tasks/{task['id']}"
        pending = (await client.get(url)).json()
        assert shape(pending) == shape(DOC_PENDING)
        assert pending["status"] == "pending" and pending["progress"] == 0
        clock.advance(30)
        processing = (await client.get(url)).json()
        assert shape(processing) == shape(DOC_PROCESSING)
        assert processing["status"] == "processing" and 0 < processing["progress"] < 100
        clock.advance(60)
        later = (await client.get(url)).json()
        assert later["progress"] > processing["progress"]
        clock.advance(1000)
        done = (await client.get(url)).json()
    assert shape(done) == shape(DOC_COMPLETED)
    assert done["status"] == "completed" and done["progress"] == 100
    assert done["task_info"] == {"can_cancel": False}
    assert done["results"] == [f"http://sim.test/files/{task['id']}.mp4"]
    for key in ("id", "created", "model", "object", "type"):
        assert done[key] == task[key]


@pytest.mark.anyio
async def test_a_prompt_with_a_trigger_word_fails_with_a_multiline_policy_message() -> None:
    app, clock = make_app()
    async with asgi_client(app) as client:
        task = await create(client, {**BODY, "prompt": "A Celebrity waving"})
        clock.advance(1000)
        failed = (await client.get(f"/v1/tasks/{task['id']}")).json()
    assert shape(failed) == shape(DOC_FAILED)
    assert failed["status"] == "failed" and failed["progress"] == 0
    assert failed["error"]["code"] == "content_policy_violation"
    assert failed["error"]["type"] == "task_error"
    assert failed["error"]["message"].startswith("Content policy violation.\n")
    assert failed["error"]["message"].count("\n") >= 3
    assert "results" not in failed


@pytest.mark.parametrize(
    ("case", "status", "code", "type_", "message"),
    [
        (
            "bad_id",
            400,
            "invalid_task_id",
            "invalid_request_error",
            "Invalid task ID format, must start with 'task-unified-'",
        ),
        ("no_auth", 401, "unauthorized", "authentication_error", "Authentication required"),
        (
            "other_key",
            403,
            "permission_denied",
            "invalid_request_error",
            "You don't have permission to access this task",
        ),
        (
            "unknown",
            404,
            "task_not_found",
            "invalid_request_error",
            "The requested task could not be found",
        ),
        ("rate", 429, "rate_limit_exceeded", "evo_api_error", "Rate limit exceeded"),
        (
            "fault402",
            402,
            "quota_exceeded",
            "insufficient_quota",
            "Insufficient quota. Please top up your account.",
        ),
        ("fault500", 500, "internal_error", "api_error", "Failed to retrieve task status"),
    ],
)
@pytest.mark.anyio
async def test_task_query_errors_match_the_documented_table(
    case: str, status: int, code: str, type_: str, message: str
) -> None:
    faulty = case.startswith("fault")
    faults = [Fault("task", "respond", status=status, calls=(2,))] if faulty else []
    app, _ = make_app(
        keys={DEFAULT_KEY: KeyConfig(), "sk-other-key": KeyConfig()},
        query_rate=1.0 if case == "rate" else None,
        faults=faults,
    )
    async with asgi_client(app) as client:
        task = await create(client)
        url = f"/v1/tasks/{task['id']}"
        if case == "bad_id":
            response = await client.get("/v1/tasks/cgt-2024-abc")
        elif case == "no_auth":
            response = await client.get(url, headers={"Authorization": ""})
        elif case == "other_key":
            response = await client.get(url, headers={"Authorization": "Bearer sk-other-key"})
        elif case == "unknown":
            response = await client.get("/v1/tasks/task-unified-1800000000-zzzzzzzz")
        else:
            assert (await client.get(url)).status_code == 200
            response = await client.get(url)
    assert response.status_code == status
    expected: dict[str, Any] = {"code": code, "message": message, "type": type_}
    if case == "bad_id":
        expected["param"] = "task_id"
    assert response.json() == {"error": expected}


@pytest.mark.parametrize(
    ("case", "status", "code", "type_", "message"),
    [
        ("invalid", 400, "invalid_request", "invalid_request_error", None),
        ("no_auth", 401, "unauthorized", "authentication_error", "Invalid or expired token"),
        ("bad_key", 401, "unauthorized", "authentication_error", "Invalid or expired token"),
        (
            "poor",
            402,
            "insufficient_quota",
            "insufficient_quota",
            "Insufficient quota. Please top up your account.",
        ),
        (
            "denied",
            402,
            "key_model_not_allowed",
            "permission_error",
            "This API key may not use the model seedance-2.0-fast-text-to-video",
        ),
        (
            "denied403",
            403,
            "model_access_denied",
            "invalid_request_error",
            "Token does not have access to the specified model",
        ),
        (
            "rate",
            429,
            "rate_limit_exceeded",
            "rate_limit_error",
            "Too many requests, please try again later",
        ),
        ("fault500", 500, "internal_error", "api_error", "Internal server error"),
    ],
)
@pytest.mark.anyio
async def test_create_errors_match_the_documented_table(
    case: str, status: int, code: str, type_: str, message: str | None
) -> None:
    keys = {
        DEFAULT_KEY: KeyConfig(
            balance=10.0 if case == "poor" else 1000.0,
            models=frozenset({"seedance-2.0-mini-text-to-video"})
            if case.startswith("denied")
            else None,
        )
    }
    app, _ = make_app(
        keys=keys,
        model_denial="model_access_denied" if case == "denied403" else "key_model_not_allowed",
        create_rate=1.0 if case == "rate" else None,
        faults=[Fault("create", status=500)] if case == "fault500" else [],
    )
    headers = {"no_auth": {"Authorization": ""}, "bad_key": {"Authorization": "Bearer sk-nope"}}
    body = {**BODY, "duration": 16} if case == "invalid" else BODY
    async with asgi_client(app) as client:
        if case == "rate":
            await create(client)
        response = await client.post(
            "/v1/videos/generations", json=body, headers=headers.get(case, {})
        )
    assert response.status_code == status
    error = response.json()["error"]
    assert (error["code"], error["type"]) == (code, type_)
    flat = {  # §7.3: a 402's figures are flat members of error
        "poor": {"estimated_credits": 41.0065, "account_balance_credits": 10.0},
        "denied": {
            "allowed_models": ["seedance-2.0-mini-text-to-video"],
            "key_name": key_label(DEFAULT_KEY),
        },
    }.get(case, {})
    if message is not None:
        assert error["message"] == message
        assert error == {"code": code, "message": message, "type": type_, **flat}
    else:
        assert error["param"] == "duration" and "duration" in error["message"]
    assert "x-request-id" in response.headers
    if case == "rate":
        assert response.headers["Retry-After"] == "1"


@pytest.mark.anyio
async def test_integer_error_codes_carry_param_and_fallback_suggestion_when_switched_on() -> None:
    app, _ = make_app(int_error_codes=True)
    async with asgi_client(app) as client:
        bad = await client.post("/v1/videos/generations", json={**BODY, "quality": "4k"})
        anon = await client.get("/v1/credits", headers={"Authorization": ""})
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert error["code"] == 400 and error["param"] == "quality"
    assert error["type"] == "invalid_request_error" and error["fallback_suggestion"]
    assert anon.json()["error"]["code"] == 401 and anon.json()["error"]["param"] is None


@pytest.mark.anyio
async def test_credits_answer_the_documented_shape_and_follow_reservations() -> None:
    app, _ = make_app(keys={DEFAULT_KEY: KeyConfig(balance=1000.0)})
    async with asgi_client(app) as client:
        before = (await client.get("/v1/credits")).json()
        task = await create(client)
        after = (await client.get("/v1/credits")).json()
    assert shape(before) == shape(DOC_CREDITS)
    assert before["data"]["token"] == {
        "remaining_credits": None,
        "unlimited_credits": True,
        "used_credits": 0.0,
        "daily_limit_credits": None,
        "daily_used_credits": None,
        "reset_timezone": None,
    }
    assert before["data"]["user"] == {"remaining_credits": 1000.0, "used_credits": 0.0}
    reserved = task["usage"]["credits_reserved"]
    assert after["data"]["user"]["remaining_credits"] == pytest.approx(1000.0 - reserved)
    assert after["data"]["user"]["used_credits"] == pytest.approx(reserved)
    assert after["data"]["token"]["used_credits"] == pytest.approx(reserved)


@pytest.mark.anyio
async def test_result_file_is_served_with_ranges_and_expires_after_24_simulated_hours() -> None:
    app, clock = make_app()
    async with asgi_client(app) as client:
        task = await create(client)
        early = await client.get(f"/files/{task['id']}.mp4")
        clock.advance(1000)
        url = (await client.get(f"/v1/tasks/{task['id']}")).json()["results"][0]
        full = await client.get(url)
        head = await client.head(url)
        part = await client.get(url, headers={"Range": "bytes=4-11"})
        tail = await client.get(url, headers={"Range": "bytes=-4"})
        beyond = await client.get(url, headers={"Range": f"bytes={len(FAKE_MP4)}-"})
        app.state.sim.advance(24 * 3600 - 1200)
        still = await client.get(url)
        await client.post("/_sim/advance", json={"seconds": 1000})
        gone = await client.get(url)
    assert early.status_code == 404
    assert full.status_code == 200 and full.content == FAKE_MP4
    assert full.headers["content-type"] == "video/mp4"
    assert full.headers["content-length"] == str(len(FAKE_MP4))
    assert full.headers["accept-ranges"] == "bytes"
    assert head.status_code == 200 and head.headers["content-length"] == str(len(FAKE_MP4))
    assert part.status_code == 206 and part.content == FAKE_MP4[4:12]
    assert part.headers["content-range"] == f"bytes 4-11/{len(FAKE_MP4)}"
    assert tail.status_code == 206 and tail.content == FAKE_MP4[-4:]
    assert beyond.status_code == 416
    assert still.status_code == 200
    assert gone.status_code == 403 and b"AccessDenied" in gone.content


@pytest.mark.anyio
async def test_result_urls_use_the_request_base_url_or_the_configured_public_one() -> None:
    app, clock = make_app()
    other, other_clock = make_app(public_base_url="https://files.example.test/v/")
    for sim_app, sim_clock, base, expected in (
        (app, clock, "http://127.0.0.1:9999", "http://127.0.0.1:9999/files/"),
        (other, other_clock, "http://sim.test", "https://files.example.test/v/files/"),
    ):
        async with asgi_client(sim_app, base_url=base) as client:
            task = await create(client)
            sim_clock.advance(1000)
            done = (await client.get(f"/v1/tasks/{task['id']}")).json()
        assert done["results"] == [f"{expected}{task['id']}.mp4"]


@pytest.mark.anyio
async def test_result_file_is_a_real_mp4_from_the_renderer(tmp_path: Any) -> None:
    app = create_app(SimConfig(video_cache_dir=tmp_path), clock=(clock := ManualClock()))
    async with asgi_client(app) as client:
        task = await create(client, {**BODY, "duration": 4, "quality": "480p"})
        clock.advance(1000)
        url = (await client.get(f"/v1/tasks/{task['id']}")).json()["results"][0]
        video = await client.get(url)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp" and len(video.content) > 1000


@pytest.mark.anyio
async def test_unknown_routes_answer_a_json_404() -> None:
    app, _ = make_app()
    async with asgi_client(app) as client:
        response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
