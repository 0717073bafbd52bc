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
from runner.run.clock import VirtualClock

from .dispatchhelp import Sim, dispatch, new_run

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
