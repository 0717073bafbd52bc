"""Connection-level faults through a real uvicorn server on 127.0.0.1 (`serve`): what an httpx
client really sees for resets, dropped connections, hangs, delays, truncated and slow bodies."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from runner.simulator.app import DEFAULT_KEY, Fault, SimConfig, create_app
from runner.simulator.testing import serve, serve_process

BODY: dict[str, Any] = {
    "model": "seedance-2.0-fast-text-to-video",
    "prompt": "A red kite",
    "duration": 4,
    "quality": "480p",
}
FAKE_MP4 = b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 400  # ~100 KB
CREATE = "/v1/videos/generations"
AUTH = {"Authorization": f"Bearer {DEFAULT_KEY}"}


def make_app(*faults: Fault, **overrides: Any) -> Any:
    return create_app(SimConfig(faults=faults, video_source=lambda **_: FAKE_MP4, **overrides))


def client(url: str, timeout: float = 5.0) -> httpx.Client:
    return httpx.Client(base_url=url, headers=AUTH, timeout=timeout)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "processed", "error", "created"),
    [
        ("reset", False, httpx.ReadError, 0),
        ("reset", True, httpx.ReadError, 1),
        ("drop", False, httpx.RemoteProtocolError, 0),
        ("drop", True, httpx.RemoteProtocolError, 1),
    ],
)
def test_a_reset_or_dropped_connection_reaches_the_client_without_any_response(
    kind: str, processed: bool, error: type[Exception], created: int
) -> None:
    app = make_app(Fault("create", kind, processed=processed, calls=(1,)))  # type: ignore[arg-type]
    with serve(app) as url, client(url) as http:
        with pytest.raises(error) as caught:
            http.post(CREATE, json=BODY)
        after = http.post(CREATE, json={**BODY, "prompt": "next"})  # the server lives on
    if kind == "reset":
        assert "reset" in str(caught.value).lower()
    else:
        assert "without sending a response" in str(caught.value)
    assert after.status_code == 200
    state = app.state.sim.snapshot()
    assert len(state["tasks"]) == created + 1
    assert state["requests"]["create"] == {kind: 1, "200": 1}


@pytest.mark.slow
def test_a_hung_create_times_the_client_out_after_the_task_was_created() -> None:
    app = make_app(Fault("create", "hang", processed=True, calls=(1,)))
    with serve(app) as url, client(url, timeout=0.3) as http:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            http.post(CREATE, json=BODY)
        assert time.monotonic() - started < 2
        time.sleep(0.1)  # the server notices the client left
        state = app.state.sim.snapshot()
    assert len(state["tasks"]) == 1
    assert state["requests"]["create"] == {"hang": 1}


@pytest.mark.slow
def test_a_create_answered_after_the_client_timeout_is_created_but_never_received() -> None:
    app = make_app(Fault("create", "pass", processed=True, delay=5, calls=(1,)))
    with serve(app) as url, client(url, timeout=0.3) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.post(CREATE, json=BODY)
        time.sleep(0.1)
        state = app.state.sim.snapshot()
    assert len(state["tasks"]) == 1
    assert state["requests"]["create"] == {"disconnect": 1}


@pytest.mark.slow
def test_garbled_and_truncated_create_answers_after_the_task_was_created() -> None:
    app = make_app(
        Fault("create", "truncate", processed=True, calls=(1,)),
        Fault(
            "create",
            status=200,
            body="<html>oops</html>",
            content_type="text/html",
            processed=True,
            calls=(2,),
        ),
    )
    with serve(app) as url, client(url) as http:
        with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
            http.post(CREATE, json=BODY)
        garbled = http.post(CREATE, json={**BODY, "prompt": "two"})
    assert garbled.status_code == 200 and garbled.text == "<html>oops</html>"
    assert len(app.state.sim.snapshot()["tasks"]) == 2


def _result_url(http: httpx.Client, app: Any) -> str:
    task = http.post(CREATE, json=BODY).json()
    app.state.sim.advance(10_000)
    url: str = http.get(f"/v1/tasks/{task['id']}").json()["results"][0]
    return url


@pytest.mark.slow
def test_result_urls_point_at_the_server_and_truncated_downloads_fail_then_succeed() -> None:
    app = make_app(Fault("file", "truncate", truncate_at=5000, calls=(1,)))
    with serve(app) as url, client(url) as http:
        result = _result_url(http, app)
        assert result.startswith(f"{url}/files/task-unified-")
        with pytest.raises(httpx.RemoteProtocolError, match="received 5000 bytes"):
            http.get(result)
        again = http.get(result)
        part = http.get(result, headers={"Range": "bytes=10-19"})
    assert again.content == FAKE_MP4
    assert part.status_code == 206 and part.content == FAKE_MP4[10:20]


@pytest.mark.slow
def test_a_throttled_download_arrives_whole_at_the_configured_rate() -> None:
    app = make_app(Fault("file", "throttle", bytes_per_second=400_000, calls=(1,)))
    with serve(app) as url, client(url) as http:
        result = _result_url(http, app)
        started = time.monotonic()
        slow = http.get(result)
        elapsed = time.monotonic() - started
    assert slow.content == FAKE_MP4
    assert 0.2 <= elapsed < 2.0  # 102 KB at 400 KB/s


@pytest.mark.slow
def test_an_endless_download_stops_when_the_client_stops_reading() -> None:
    app = make_app(Fault("file", "endless", max_bytes=10**12, calls=(1,)))
    with serve(app) as url, client(url) as http:
        result = _result_url(http, app)
        received = 0
        with http.stream("GET", result) as response:
            assert "content-length" not in response.headers
            for chunk in response.iter_bytes():
                received += len(chunk)
                if received > 2_000_000:
                    break
        assert http.get(result).content == FAKE_MP4
    assert received > 2_000_000


@pytest.mark.slow
def test_the_simulator_also_runs_in_a_child_process() -> None:
    config = {
        "speed": 1000.0,
        "faults": [{"endpoint": "credits", "kind": "reset", "calls": [1]}],
        "keys": {"sk-child-key": {"balance": 50}},
    }
    with serve_process(config) as (url, process):
        with httpx.Client(
            base_url=url, timeout=5, headers={"Authorization": "Bearer sk-child-key"}
        ) as http:
            with pytest.raises(httpx.ReadError):
                http.get("/v1/credits")
            credits = http.get("/v1/credits").json()
            task = http.post(CREATE, json=BODY).json()
            time.sleep(0.3)  # 300 simulated seconds
            done = http.get(f"/v1/tasks/{task['id']}").json()
        assert process.poll() is None
    assert credits["data"]["user"]["remaining_credits"] == 50.0
    assert done["status"] == "completed"
    assert process.poll() is not None
