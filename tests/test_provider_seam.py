"""The provider seam: the dispatcher runs a whole run against a tiny in-memory provider
(no HTTP API at all), so EvoLink is one implementation of `Provider`, not a dependency."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.models import Request
from runner.providers.base import (
    Created,
    CreateOutcome,
    Funds,
    Provider,
    TaskGone,
    TaskReads,
    TaskView,
)
from runner.run.clock import VirtualClock
from runner.simulator.video import render_video

from .dispatchhelp import dispatch, new_run

pytestmark = pytest.mark.anyio
FILES = "http://files.fake"


class FakeProvider:
    """Tasks in memory: each read answers from a queue of statuses, then "completed"."""

    key_env = "FAKE_API_KEY"

    def __init__(self, statuses: Sequence[str] = ("pending", "processing")) -> None:
        self.statuses = statuses
        self.tasks: dict[str, deque[str]] = {}
        self.bodies: list[dict[str, Any]] = []
        self.reads = 0  # provider calls
        self.task_reads = 0  # task views answered
        self._ids = itertools.count(1)

    async def create(self, body: dict[str, Any], idempotency_key: str) -> CreateOutcome:
        task_id = f"fake-{next(self._ids)}"
        self.tasks[task_id] = deque(self.statuses)
        self.bodies.append(body)
        return Created(task_id, 1.0, 60.0, replayed=False, http_status=200)

    async def read_tasks(self, task_ids: Sequence[str]) -> TaskReads:
        self.reads += 1
        self.task_reads += len(task_ids)
        views: dict[str, TaskView | TaskGone] = {}
        for task_id in task_ids:
            queue = self.tasks.get(task_id)
            if queue is None:
                views[task_id] = TaskGone(task_id)
                continue
            status = queue.popleft() if queue else "completed"
            url = f"{FILES}/{task_id}.mp4" if status == "completed" else None
            views[task_id] = TaskView(task_id, status, None, url, None, None, 60.0)
        return views

    async def balance(self) -> Funds:
        return Funds(
            account=100.0, key=None, daily_limit=None, daily_used=None, reset_timezone=None
        )

    async def models(self) -> list[str] | None:
        return None

    def body_for(self, request: Request, tier: str) -> dict[str, Any]:
        return {"model": f"fake-{tier}", **request.canonical()}

    def time_scale(self) -> float | None:
        return None


def _files(video: bytes) -> httpx.ASGITransport:
    """A file host serving ``video`` at every path."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"video/mp4"), (b"content-length", b"%d" % len(video))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": video})

    return httpx.ASGITransport(app=app)


async def test_a_run_goes_to_done_through_a_fake_provider(tmp_path: Path) -> None:
    fake = FakeProvider()
    provider: Provider = fake  # the fake satisfies the protocol (checked by mypy-like use)
    video = render_video(
        prompt="fake", duration=4, aspect_ratio="16:9", tier="fast", generate_audio=True
    )
    clock = VirtualClock()
    async with new_run(tmp_path, 3) as run:
        outcome = await dispatch(
            run, clock=clock, provider=lambda http: provider, files=_files(video), trusted=FILES
        )
        errors = [(j.error_code, j.error_message) for j in run.ledger.jobs(run.run_id)]
        assert run.counts() == {"done": 3}, errors
        media = sorted((run.ledger.workspace / run.run_id / "media").glob("*.mp4"))
    assert outcome.stop_kind is None
    assert len(fake.tasks) == 3 and fake.task_reads >= 9  # each task read until completed
    assert fake.reads < fake.task_reads  # reads falling due together went as one call
    assert [p.read_bytes() == video for p in media] == [True] * 3
