"""Every answer of the simulator says its time scale in ``x-simulator-speed`` (EvoLink never
does): EvoLink endpoints, result files, ground truth, errors, and faults that send a head."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from runner.simulator.app import DEFAULT_KEY, Fault, SimConfig, create_app
from runner.simulator.asgi import speed_text
from runner.simulator.testing import ManualClock, asgi_client, serve

from .simhelp import BODY, CREATE, FAKE_MP4


def make_app(*faults: Fault, speed: float = 100.0, **overrides: Any) -> Any:
    config = SimConfig(speed=speed, faults=faults, video_source=lambda **_: FAKE_MP4, **overrides)
    return create_app(config, clock=ManualClock())


@pytest.mark.parametrize(
    ("speed", "text"),
    [(1.0, "1"), (100.0, "100"), (2.5, "2.5"), (0.001, "0.001"), (1e6, "1000000")],
)
def test_the_speed_is_written_so_that_float_reads_it_back(speed: float, text: str) -> None:
    assert speed_text(speed) == text
    assert float(text) == speed


@pytest.mark.anyio
async def test_every_endpoint_answers_with_the_speed_errors_included() -> None:
    app = make_app(start_time=1_800_000_000.0)
    async with asgi_client(app) as client, asgi_client(app, key=None) as anonymous:
        created = await client.post(CREATE, json=BODY)
        task_id = created.json()["id"]
        answers = {
            "create": created,
            "create 400": await client.post(CREATE, json={**BODY, "duration": 99}),
            "create 400 json": await client.post(CREATE, content=b"{not json"),
            "create 401": await anonymous.post(CREATE, json=BODY),
            "task pending": await client.get(f"/v1/tasks/{task_id}"),
            "task 400": await client.get("/v1/tasks/nope"),
            "task 404": await client.get("/v1/tasks/task-unified-1-abcdefgh"),
            "credits": await client.get("/v1/credits"),
            "credits 401": await anonymous.get("/v1/credits"),
            "file 404": await client.get("/files/task-unified-1-abcdefgh.mp4"),
            "state": await client.get("/_sim/state"),
            "faults": await client.get("/_sim/faults"),
            "faults 400": await client.post("/_sim/faults", json={"faults": "no"}),
            "advance": await client.post("/_sim/advance", json={"seconds": 200}),
            "advance 400": await client.post("/_sim/advance", json={"seconds": -1}),
            "keys 400": await client.post("/_sim/keys", json=[1]),
            "cancel 404": await client.post("/_sim/cancel/task-unified-1-abcdefgh"),
            "no route": await client.get("/v2/anything"),
            "wrong method": await client.delete(CREATE),
        }
        done = await client.get(f"/v1/tasks/{task_id}")
        url = done.json()["results"][0]
        answers |= {
            "task completed": done,
            "file": await client.get(url),
            "file 206": await client.get(url, headers={"Range": "bytes=0-9"}),
            "file 416": await client.get(url, headers={"Range": "bytes=999999-"}),
        }
        await client.post("/_sim/advance", json={"seconds": 100_000})
        answers["file 403 expired"] = await client.get(url)
        answers["reset"] = await client.post("/_sim/reset")
    statuses = {name: r.status_code for name, r in answers.items()}
    assert statuses == {
        "create": 200,
        "create 400": 400,
        "create 400 json": 400,
        "create 401": 401,
        "task pending": 200,
        "task 400": 400,
        "task 404": 404,
        "credits": 200,
        "credits 401": 401,
        "file 404": 404,
        "state": 200,
        "faults": 200,
        "faults 400": 400,
        "advance": 200,
        "advance 400": 400,
        "keys 400": 400,
        "cancel 404": 404,
        "no route": 404,
        "wrong method": 405,
        "task completed": 200,
        "file": 200,
        "file 206": 206,
        "file 416": 416,
        "file 403 expired": 403,
        "reset": 200,
    }
    speeds = {name: r.headers.get_list("x-simulator-speed") for name, r in answers.items()}
    assert speeds == {name: ["100"] for name in answers}
    assert all(r.headers["x-request-id"].startswith("req-") for r in answers.values())


@pytest.mark.anyio
async def test_the_default_simulator_runs_at_speed_1() -> None:
    async with asgi_client(create_app()) as client:
        response = await client.get("/v1/credits")
    assert response.headers["x-simulator-speed"] == "1"


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        (Fault("create", "respond", status=500), 500),
        (Fault("create", "respond", status=503, processed=True), 503),
        (Fault("create", "respond", status=200, body="<html>oops</html>"), 200),
        (Fault("create", "rate_limit", retry_after=3), 429),
        (Fault("create", "patch", json_body={"status": "queued"}), 200),
        (Fault("create", "pass"), 200),
        (Fault("credits", "redirect", location="/elsewhere"), 302),
        (Fault("task", "respond", status=404), 404),
        (Fault("file", "expire"), 403),
        (Fault("file", "respond", status=502), 502),
    ],
    ids=lambda v: v if isinstance(v, int) else f"{v.endpoint}-{v.kind}-{v.status}",
)
@pytest.mark.anyio
async def test_fault_answers_carry_the_speed_too(fault: Fault, status: int) -> None:
    app = make_app(fault, speed=2.5)
    paths = {
        "create": CREATE,
        "task": "/v1/tasks/task-unified-1-abcdefgh",
        "credits": "/v1/credits",
        "file": "/files/task-unified-1-abcdefgh.mp4",
    }
    async with asgi_client(app) as client:
        if fault.endpoint == "create":
            response = await client.post(CREATE, json=BODY)
        else:
            response = await client.get(paths[fault.endpoint])
    assert response.status_code == status
    assert response.headers.get_list("x-simulator-speed") == ["2.5"]
    assert app.state.sim.snapshot()["faults_fired"][0]["kind"] == fault.kind


@pytest.mark.anyio
async def test_a_fault_that_sets_the_header_itself_keeps_its_value() -> None:
    app = make_app(Fault("credits", "respond", status=200, headers={"X-Simulator-Speed": "7"}))
    async with asgi_client(app) as client:
        response = await client.get("/v1/credits")
    assert response.headers.get_list("x-simulator-speed") == ["7"]


@pytest.mark.slow
def test_a_truncated_answer_sends_the_speed_in_its_head_before_the_cut() -> None:
    app = make_app(Fault("task", "truncate", truncate_at=10), speed=100.0)
    with (
        serve(app) as url,
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {DEFAULT_KEY}"}, timeout=5
        ) as http,
    ):
        task_id = http.post(CREATE, json=BODY).json()["id"]
        with http.stream("GET", f"/v1/tasks/{task_id}") as response:
            assert response.headers["x-simulator-speed"] == "100"
            with pytest.raises(httpx.RemoteProtocolError):
                response.read()
