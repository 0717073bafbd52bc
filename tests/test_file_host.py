"""The result-file host refuses a download (a 403 "1010" block, or a web page instead of the
video, docs/evolink.md §21): the dispatcher reads the task again for a fresh link, twice at
most, and never pays for a new task. In process (the simulator's ASGI app, a virtual clock);
each test checks the simulator's ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

import runner
from runner.run import ledger as L
from runner.run.backend import SIM_FILE_ORIGIN, SIM_ORIGIN, Backend, Secret, choose
from runner.run.clock import VirtualClock
from runner.run.media import check_url
from runner.simulator.app import SimConfig, create_app
from runner.simulator.testing import listen, origin, serve

from .dispatchhelp import SIM, Sim, dispatch, new_run
from .runhelp import grid
from .runhelp import runner as run_cli
from .runhelp import truth as sim_truth

pytestmark = pytest.mark.anyio

BLOCK_1010: dict[str, Any] = {
    "endpoint": "file",
    "kind": "respond",
    "status": 403,
    "body": "error code: 1010",
}
WEB_PAGE: dict[str, Any] = {
    "endpoint": "file",
    "kind": "respond",
    "status": 200,
    "body": "<!DOCTYPE html><html><title>Just a moment...</title></html>",
    "content_type": "text/html",
}


class Spy(httpx.AsyncBaseTransport):
    """The simulator's transport, noting each file request's headers."""

    def __init__(self, sim: Sim) -> None:
        self.inner = sim.transport
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


def _file_statuses(truth: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = truth["requests"].get("file", {})
    return counts


@pytest.mark.parametrize("refusal", [BLOCK_1010, WEB_PAGE], ids=["1010", "web-page"])
async def test_a_refused_download_gets_a_fresh_link_and_the_job_is_done(
    tmp_path: Path, refusal: dict[str, Any]
) -> None:
    clock = VirtualClock()
    sim = Sim(clock, {**refusal, "calls": [1]})
    async with new_run(tmp_path, 1) as run:
        await dispatch(run, clock=clock, sim=sim)
        assert run.counts() == {"done": 1}
    truth = sim.truth()
    assert len(truth["tasks"]) == 1  # no second task was paid for
    assert sum(_file_statuses(truth).values()) == 2
    assert _file_statuses(truth).get("200", 0) >= 1
    assert any(e.kind == "retrying" and "fresh link" in e.detail for e in run.events)


async def test_a_file_host_that_keeps_refusing_ends_result_error_after_two_fresh_links(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    sim = Sim(clock, BLOCK_1010)
    async with new_run(tmp_path, 1) as run:
        await dispatch(run, clock=clock, sim=sim)
        assert run.counts() == {"result_error": 1}
        (job,) = run.ledger.jobs(run.run_id)
    truth = sim.truth()
    assert len(truth["tasks"]) == 1  # never a new paid task
    assert _file_statuses(truth) == {"403": 3}  # the first link and two fresh ones
    assert job.state == L.RESULT_ERROR and job.error_code == "file_host_refused"
    message = job.error_message or ""
    assert "the file host refused the download" in message
    assert "`runner retry`" in message and "for free" in message
    assert "Traceback" not in message


async def test_an_expired_link_is_not_taken_for_a_refusal(tmp_path: Path) -> None:
    clock = VirtualClock()
    sim = Sim(clock, {"endpoint": "file", "kind": "expire"})
    async with new_run(tmp_path, 1) as run:
        await dispatch(run, clock=clock, sim=sim)
        (job,) = run.ledger.jobs(run.run_id)
    assert (job.state, job.error_code) == (L.EXPIRED, "result_expired")  # as before
    truth = sim.truth()
    assert len(truth["tasks"]) == 1
    assert _file_statuses(truth) == {"403": 3}  # the same link a few times, no re-read


async def test_downloads_carry_runners_user_agent_and_never_the_api_key(tmp_path: Path) -> None:
    clock = VirtualClock()
    sim = Sim(clock)
    spy = Spy(sim)
    async with new_run(tmp_path, 2) as run:
        await dispatch(run, clock=clock, sim=sim, files=spy)
        assert run.counts() == {"done": 2}
    files = [r for r in spy.requests if r.url.path.startswith("/files/")]
    assert len(files) == 2 == _file_statuses(sim.truth()).get("200")
    for request in files:
        assert "authorization" not in request.headers
        assert "cookie" not in request.headers
        assert request.headers["user-agent"] == runner.USER_AGENT


async def test_files_from_a_strict_file_host_of_their_own_in_process(tmp_path: Path) -> None:
    # the in-process backend's setup: one ASGI app, the API and the file host told apart by Host
    clock = VirtualClock()
    sim = Sim(clock, file_origin=SIM_FILE_ORIGIN, strict_file_host=True)
    async with new_run(tmp_path, 2) as run:
        await dispatch(run, clock=clock, sim=sim, trusted=(SIM, SIM_FILE_ORIGIN))
        assert run.counts() == {"done": 2}
        urls = {j.result_url for j in run.ledger.jobs(run.run_id)}
    assert all(u and u.startswith(f"{SIM_FILE_ORIGIN}/files/") for u in urls)
    truth = sim.truth()
    assert _file_statuses(truth) == {"200": 2}  # never refused: runner's User-Agent, no key
    assert truth["user_agents"]["file"] == [runner.USER_AGENT]
    assert truth["file_requests_with_authorization"] == 0


async def test_a_file_host_that_is_not_trusted_is_never_fetched(tmp_path: Path) -> None:
    clock = VirtualClock()
    sim = Sim(clock, file_origin=SIM_FILE_ORIGIN)
    async with new_run(tmp_path, 1) as run:
        await dispatch(run, clock=clock, sim=sim, trusted=(SIM,))
        (job,) = run.ledger.jobs(run.run_id)
    assert (job.state, job.error_code) == (L.RESULT_ERROR, "blocked_url")
    assert "file" not in sim.truth()["requests"]


def test_which_origins_each_backend_trusts(tmp_path: Path) -> None:
    in_process = choose("sim", None, tmp_path)
    assert in_process.trusted_origins == (SIM_ORIGIN, SIM_FILE_ORIGIN)
    loopback = Backend("sim", "http://127.0.0.1:8787", Secret("k"))
    for url in (
        "http://127.0.0.1:8787/files/a.mp4",
        "http://127.0.0.1:9999/files/a.mp4",
        "http://localhost:1234/files/a.mp4",
        "http://[::1]:5/files/a.mp4",
    ):
        assert check_url(url, loopback.trusted_origins) is None, url
    assert check_url("http://10.0.0.1:8787/a.mp4", loopback.trusted_origins) is not None
    assert check_url("http://files.simulator.local/a.mp4", loopback.trusted_origins) is not None
    evolink = Backend("evolink", "https://api.evolink.ai", Secret("k"))
    assert evolink.trusted_origins == ()
    assert check_url("https://files.evolink.ai/a/videos/x.mp4", evolink.trusted_origins) is None
    assert check_url("http://files.evolink.ai/a/videos/x.mp4", evolink.trusted_origins) is not None
    remote_sim = Backend("sim", "http://192.168.1.5:8787", Secret("k"))
    assert remote_sim.trusted_origins == ()


@pytest.mark.slow
def test_a_loopback_simulator_with_a_strict_file_host_on_another_port(tmp_path: Path) -> None:
    files = listen()
    app = create_app(
        SimConfig(
            speed=200.0, accept_any_key=True, file_origin=origin(files), strict_file_host=True
        )
    )
    exp, ws = grid(tmp_path / "g.csv", 2), tmp_path / "ws"
    with serve(app) as url, serve(app.files, sock=files) as files_url:
        assert url.rsplit(":", 1)[1] != files_url.rsplit(":", 1)[1]
        result = run_cli("run", exp, "--base-url", url, "--workspace", ws, "--rate", "50")
        state = sim_truth(url)
    assert result.returncode == 0, result.stderr
    assert state["requests"]["file"] == {"200": 2}
    assert state["user_agents"]["file"] == [runner.USER_AGENT]
    assert state["file_requests_with_authorization"] == 0
    assert len(state["tasks"]) == 2
