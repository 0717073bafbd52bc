"""Fault plans fire exactly as configured (in process; the socket-level behaviour under a real
server is in test_sim_server.py)."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

import anyio
import httpx
import pytest

from runner.simulator.app import DEFAULT_KEY, Fault, SimConfig, create_app
from runner.simulator.faults import parse_plan
from runner.simulator.tasks import key_label
from runner.simulator.testing import ManualClock, asgi_client

from .simhelp import BODY, CREATE, FAKE_MP4


def make_app(*faults: Fault, clock: ManualClock | None = None, **overrides: Any) -> Any:
    config = SimConfig(faults=faults, video_source=lambda **_: FAKE_MP4, **overrides)
    return create_app(config, clock=clock)


def tasks_of(app: Any) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = app.state.sim.snapshot()["tasks"]
    return tasks


async def completed_url(client: httpx.AsyncClient, app: Any) -> str:
    task = (await client.post(CREATE, json=BODY)).json()
    app.state.sim.advance(10_000)
    url: str = (await client.get(f"/v1/tasks/{task['id']}")).json()["results"][0]
    return url


# --- the JSON shape ---------------------------------------------------------------------------


def test_faults_round_trip_through_json() -> None:
    faults = [
        Fault("create", "reset", calls=(1, 3), processed=True),
        Fault("task", "patch", json_body={"status": "queued"}, probability=0.5, times=2),
        Fault("file", "throttle", bytes_per_second=1000.0, task_id="task-unified-1-abcdefgh"),
        Fault(
            "credits",
            "respond",
            status=503,
            headers={"Retry-After": "3"},
            delay=1.5,
            delay_clock="sim",
        ),
    ]
    data = [f.to_json() for f in faults]
    assert data[0] == {"endpoint": "create", "kind": "reset", "calls": [1, 3], "processed": True}
    assert parse_plan(data) == faults
    assert parse_plan({"faults": data}) == faults


@pytest.mark.parametrize(
    "bad",
    [
        {"endpoint": "teleport", "kind": "reset"},
        {"endpoint": "create", "kind": "explode"},
        {"endpoint": "create", "kind": "reset", "calls": [0]},
        {"endpoint": "create", "kind": "reset", "calls": 1},
        {"endpoint": "create", "kind": "reset", "probability": 2},
        {"endpoint": "create", "kind": "respond", "status": 99},
        {"endpoint": "create", "kind": "patch"},
        {"endpoint": "create", "kind": "redirect"},
        {"endpoint": "file", "kind": "throttle"},
        {"endpoint": "create", "kind": "reset", "colour": "red"},
        {"endpoint": "create", "task_id": "task-unified-1-x"},
        {"kind": "reset"},
        "reset",
    ],
)
def test_invalid_faults_are_refused_with_a_reason(bad: Any) -> None:
    with pytest.raises(ValueError):
        parse_plan([bad])


@pytest.mark.anyio
async def test_sim_faults_installs_a_plan_over_http_and_reports_what_fired() -> None:
    app = make_app()
    async with asgi_client(app) as client:
        installed = await client.post(
            "/_sim/faults",
            json=[{"endpoint": "create", "kind": "respond", "status": 503, "calls": [1]}],
        )
        first = await client.post(CREATE, json=BODY)
        second = await client.post(CREATE, json=BODY)
        plan = (await client.get("/_sim/faults")).json()
        refused = await client.post("/_sim/faults", json=[{"endpoint": "nowhere"}])
        state = (await client.get("/_sim/state")).json()
    assert installed.json()["installed"] == 1
    assert first.status_code == 503 and second.status_code == 200
    assert first.json()["error"]["code"] == "service_unavailable"
    assert plan["faults"][0]["fired"] == 1 and plan["faults"][0]["remaining"] is None
    assert refused.status_code == 400 and "endpoint" in refused.json()["error"]
    assert state["faults_fired"] == [{"endpoint": "create", "call": 1, "seq": 1, "kind": "respond"}]
    assert state["requests"]["create"] == {"503": 1, "200": 1}


# --- when a fault fires -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_call_numbers_ranges_and_times_select_exactly_the_planned_calls() -> None:
    app = make_app(
        Fault("credits", status=500, calls=(2, 4)),
        Fault("credits", status=502, call_from=6, call_to=7),
        Fault("credits", status=503, call_from=9, times=2),
    )
    async with asgi_client(app) as client:
        codes = [(await client.get("/v1/credits")).status_code for _ in range(12)]
    assert codes == [200, 500, 200, 500, 200, 502, 502, 200, 503, 503, 200, 200]


@pytest.mark.anyio
async def test_probability_is_seeded_and_reproducible() -> None:
    async def run(seed: int) -> list[int]:
        app = make_app(Fault("credits", status=500, probability=0.3), seed=seed)
        async with asgi_client(app) as client:
            return [(await client.get("/v1/credits")).status_code for _ in range(200)]

    first, again, other = await run(1), await run(1), await run(2)
    assert first == again and first != other
    assert 35 <= first.count(500) <= 85


@pytest.mark.anyio
async def test_installing_a_plan_restarts_call_numbers_and_append_keeps_them() -> None:
    app = make_app()
    sim = app.state.sim
    async with asgi_client(app) as client:
        for _ in range(3):
            await client.get("/v1/credits")
        sim.set_faults([Fault("credits", status=500, calls=(1,))])
        assert (await client.get("/v1/credits")).status_code == 500
        sim.set_faults([Fault("credits", status=502, calls=(2,))], append=True)
        assert (await client.get("/v1/credits")).status_code == 502


@pytest.mark.anyio
async def test_task_id_restricts_a_fault_to_one_task() -> None:
    app = make_app()
    async with asgi_client(app) as client:
        a = (await client.post(CREATE, json=BODY)).json()["id"]
        b = (await client.post(CREATE, json={**BODY, "prompt": "other"})).json()["id"]
        app.state.sim.set_faults([Fault("task", status=404, task_id=a)])
        lost = await client.get(f"/v1/tasks/{a}")
        fine = await client.get(f"/v1/tasks/{b}")
    assert lost.status_code == 404 and lost.json()["error"]["code"] == "task_not_found"
    assert fine.status_code == 200


# --- what a fault does ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_respond_before_create_sends_any_body_and_creates_nothing() -> None:
    app = make_app(
        Fault(
            "create",
            status=502,
            body="<html><h1>Bad gateway</h1></html>",
            content_type="text/html",
            calls=(1,),
        ),
        Fault(
            "create",
            status=200,
            body='{"id": "task-unified-',
            content_type="application/json",
            calls=(2,),
        ),
        Fault(
            "create",
            status=400,
            json_body={
                "error": {
                    "code": 400,
                    "message": "Invalid prompt parameter",
                    "type": "invalid_request_error",
                    "param": "prompt",
                    "fallback_suggestion": "provide a valid prompt",
                }
            },
            calls=(3,),
        ),
        Fault("create", status=503, headers={"Retry-After": "30"}, calls=(4,)),
    )
    async with asgi_client(app) as client:
        html, broken, int_code, unavailable = [
            await client.post(CREATE, json=BODY) for _ in range(4)
        ]
    assert html.status_code == 502 and html.headers["content-type"].startswith("text/html")
    assert "Bad gateway" in html.text
    assert broken.status_code == 200
    with pytest.raises(ValueError):
        broken.json()
    assert int_code.json()["error"]["code"] == 400
    assert unavailable.headers["Retry-After"] == "30"
    assert unavailable.json()["error"]["type"] == "service_unavailable_error"
    assert tasks_of(app) == []


@pytest.mark.anyio
async def test_default_error_bodies_use_integer_codes_when_asked() -> None:
    app = make_app(
        Fault("create", status=500, int_code=True, calls=(1,)),
        Fault("task", status=429, calls=(1,)),
        int_error_codes=False,
    )
    async with asgi_client(app) as client:
        create = await client.post(CREATE, json=BODY)
        task = await client.get("/v1/tasks/task-unified-1-abcdefgh")
    assert create.json()["error"] == {
        "code": 500,
        "message": "Internal server error",
        "type": "api_error",
        "param": None,
        "fallback_suggestion": "retry later",
    }
    assert task.json()["error"] == {
        "code": "rate_limit_exceeded",
        "type": "evo_api_error",
        "message": "Rate limit exceeded",
    }


@pytest.mark.anyio
async def test_create_then_fail_creates_and_charges_the_task_before_the_fault() -> None:
    app = make_app(
        Fault("create", status=500, processed=True, calls=(1,)),
        Fault(
            "create",
            status=200,
            body="<html>maintenance</html>",
            content_type="text/html",
            processed=True,
            calls=(3,),
        ),
    )
    headers = {"Idempotency-Key": "job-000000000001-fast-1-1"}
    async with asgi_client(app) as client:
        failed = await client.post(CREATE, json=BODY, headers=headers)
        replay = await client.post(CREATE, json=BODY, headers=headers)
        garbage = await client.post(CREATE, json={**BODY, "prompt": "second"})
    assert failed.status_code == 500
    assert garbage.status_code == 200 and garbage.text == "<html>maintenance</html>"
    tasks = tasks_of(app)
    assert len(tasks) == 2
    assert replay.headers["idempotency-replayed"] == "true"
    assert replay.json()["id"] == tasks[0]["id"]
    account = app.state.sim.snapshot()["accounts"][key_label(DEFAULT_KEY)]
    assert account["reserved"] == pytest.approx(2 * 15.2544)


@pytest.mark.parametrize(("processed", "created"), [(False, 0), (True, 1)])
@pytest.mark.parametrize(
    ("kind", "error"), [("reset", httpx.ReadError), ("drop", httpx.RemoteProtocolError)]
)
@pytest.mark.anyio
async def test_in_process_resets_raise_what_httpx_raises_for_a_dead_connection(
    kind: str, error: type[Exception], processed: bool, created: int
) -> None:
    app = make_app(Fault("create", kind, processed=processed, calls=(1,)))  # type: ignore[arg-type]
    async with asgi_client(app) as client:
        with pytest.raises(error):
            await client.post(CREATE, json=BODY)
        assert (await client.post(CREATE, json={**BODY, "prompt": "next"})).status_code == 200
    state = app.state.sim.snapshot()
    assert len(state["tasks"]) == created + 1
    assert state["requests"]["create"] == {kind: 1, "200": 1}


@pytest.mark.anyio
async def test_hang_never_answers_until_the_caller_gives_up() -> None:
    app = make_app(Fault("create", "hang", processed=True, calls=(1,)))
    async with asgi_client(app) as client:
        with anyio.move_on_after(0.3) as scope:
            await client.post(CREATE, json=BODY)
    assert scope.cancelled_caught
    state = app.state.sim.snapshot()
    assert len(state["tasks"]) == 1 and state["requests"]["create"] == {"hang": 1}


@pytest.mark.anyio
async def test_delay_waits_wall_seconds_or_simulated_seconds_divided_by_speed() -> None:
    app = make_app(
        Fault("credits", "pass", delay=0.2, calls=(1,)),
        Fault("credits", "pass", delay=30, delay_clock="sim", calls=(2,)),
        speed=100.0,
    )
    async with asgi_client(app) as client:
        started = time.monotonic()
        wall = await client.get("/v1/credits")
        middle = time.monotonic()
        sim = await client.get("/v1/credits")
        ended = time.monotonic()
    assert wall.status_code == sim.status_code == 200
    assert 0.2 <= middle - started < 1.0
    assert 0.3 <= ended - middle < 1.0


@pytest.mark.parametrize(("processed", "created"), [(False, 0), (True, 1)])
@pytest.mark.anyio
async def test_a_client_leaving_during_a_delay_finds_the_task_created_only_if_processed(
    processed: bool, created: int
) -> None:
    app = make_app(Fault("create", "pass", delay=5, processed=processed, calls=(1,)))
    async with asgi_client(app) as client:
        with anyio.move_on_after(0.2):
            await client.post(CREATE, json=BODY)
    state = app.state.sim.snapshot()
    assert len(state["tasks"]) == created
    assert state["requests"]["create"] == {"disconnect": 1}


@pytest.mark.anyio
async def test_patch_changes_the_normal_answer() -> None:
    app = make_app(
        Fault(
            "task",
            "patch",
            json_body={
                "status": "cancelled",
                "progress": None,
                "results": ["javascript:alert(1)"],
                "surprise": {"nested": True},
            },
        )
    )
    async with asgi_client(app) as client:
        task = (await client.post(CREATE, json=BODY)).json()
        view = await client.get(f"/v1/tasks/{task['id']}")
    data = view.json()
    assert view.status_code == 200 and data["id"] == task["id"]
    assert data["status"] == "cancelled" and "progress" not in data
    assert data["results"] == ["javascript:alert(1)"] and data["surprise"] == {"nested": True}
    assert view.headers["content-length"] == str(len(view.content))


@pytest.mark.anyio
async def test_rate_limit_faults_send_retry_after_as_seconds_or_an_http_date() -> None:
    app = make_app(
        Fault("create", "rate_limit", retry_after=7, calls=(1,)),
        Fault("create", "rate_limit", retry_after=90, retry_after_format="date", calls=(2,)),
        Fault("create", "rate_limit", calls=(3,)),
    )
    app.state.sim.unix_time = lambda: 1_800_000_000.0
    async with asgi_client(app) as client:
        seconds, dated, bare = [await client.post(CREATE, json=BODY) for _ in range(3)]
    assert seconds.status_code == dated.status_code == bare.status_code == 429
    assert seconds.headers["Retry-After"] == "7"
    assert parsedate_to_datetime(dated.headers["Retry-After"]).timestamp() == 1_800_000_090
    assert "Retry-After" not in bare.headers
    assert seconds.json()["error"]["code"] == "rate_limit_exceeded"
    assert tasks_of(app) == []


@pytest.mark.anyio
async def test_file_faults_redirect_expire_truncate_throttle_and_stream_endlessly() -> None:
    app = make_app(
        Fault("file", "redirect", location="http://169.254.169.254/latest", calls=(1,)),
        Fault("file", "expire", calls=(2,)),
        Fault("file", "truncate", truncate_at=100, calls=(3,)),
        Fault("file", "throttle", bytes_per_second=40_000, calls=(4,)),
        Fault("file", "endless", max_bytes=300_000, calls=(5,)),
    )
    async with asgi_client(app) as client:
        url = await completed_url(client, app)
        redirect = await client.get(url)
        expired = await client.get(url)
        with pytest.raises(httpx.RemoteProtocolError, match="received 100 bytes"):
            await client.get(url)
        started = time.monotonic()
        slow = await client.get(url)
        elapsed = time.monotonic() - started
        endless = await client.get(url)
        normal = await client.get(url)
    assert redirect.status_code == 302
    assert redirect.headers["location"] == "http://169.254.169.254/latest"
    assert expired.status_code == 403 and b"AccessDenied" in expired.content
    assert slow.content == FAKE_MP4 and elapsed >= 0.2
    assert "content-length" not in endless.headers and len(endless.content) == 300_000
    assert endless.content[4:8] == b"ftyp"
    assert normal.content == FAKE_MP4
    assert app.state.sim.snapshot()["requests"]["file"] == {
        "302": 1,
        "403": 1,
        "200-truncated": 1,
        "200": 3,
    }


@pytest.mark.anyio
async def test_a_global_int_code_switch_applies_to_fault_bodies_too() -> None:
    app = make_app(Fault("create", status=503), int_error_codes=True, clock=ManualClock())
    async with asgi_client(app) as client:
        response = await client.post(CREATE, json=BODY)
    assert response.json()["error"]["code"] == 503
    assert "fallback_suggestion" in response.json()["error"]
