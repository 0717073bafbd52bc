"""Helpers for the fault-matrix tests (docs/reliability.md §7.1): transports that stand between
the dispatcher and the in-process simulator, and readings of the simulator's ground truth.

Wrap ``sim.transport`` before calling `dispatchhelp.dispatch`; the API client and the file
client both go through it. Times are on the test's `VirtualClock` (the simulator's clock too).
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx

from runner.run import ledger as L
from runner.run.clock import VirtualClock

from .dispatchhelp import Run, Sim

CREATE = "/v1/videos/generations"
# creates and task reads per real second for `dispatch`: the rate limiters wait in real time,
# and a long real wait would let the virtual clock jump ahead (and make a test slow)
FAST: dict[str, Any] = {"rate": 1000.0, "poll_rate": 1000.0}
READS = ("/v1/tasks/batch", "/v1/tasks/")  # path prefixes of the task reads


@dataclass
class Seen:
    """One request as it went: when it left and when its answer (or error) came back."""

    method: str
    host: str
    path: str
    headers: httpx.Headers
    sent: float
    order: int  # its place among the requests and answers `Watch` saw
    answered: float = 0.0
    answered_order: int = 0
    status: int | None = None  # None: no answer (an exception)


class Watch(httpx.AsyncBaseTransport):
    """Passes every request on to ``inner``, noting it (`Seen`) on the clock."""

    def __init__(self, inner: httpx.AsyncBaseTransport, clock: VirtualClock) -> None:
        self.inner = inner
        self.clock = clock
        self.seen: list[Seen] = []
        self._order = itertools.count()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        seen = Seen(
            request.method, url.host, url.path, request.headers, self.clock.now, next(self._order)
        )
        self.seen.append(seen)
        try:
            response = await self.inner.handle_async_request(request)
        finally:
            seen.answered, seen.answered_order = self.clock.now, next(self._order)
        seen.status = response.status_code
        return response

    def on(self, prefix: str) -> list[Seen]:
        """The requests whose path starts with ``prefix``."""
        return [s for s in self.seen if s.path.startswith(prefix)]


class Refuse(httpx.AsyncBaseTransport):
    """Connection refused (`httpx.ConnectError`) for the first ``creates`` creates; the
    request never reaches the simulator."""

    def __init__(self, inner: httpx.AsyncBaseTransport, creates: int) -> None:
        self.inner = inner
        self.left = creates

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == CREATE and self.left > 0:
            self.left -= 1
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return await self.inner.handle_async_request(request)


class ReadTimeout(httpx.AsyncBaseTransport):
    """A client's read timeout, which `httpx.ASGITransport` does not apply: a request on a
    path starting with one of ``prefixes`` (the first ``times`` of them; None: all) that has
    no answer after ``seconds`` of real time raises `httpx.ReadTimeout`, and the simulator
    sees the client leave."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        prefixes: tuple[str, ...],
        *,
        seconds: float = 0.2,
        times: int | None = None,
    ) -> None:
        self.inner = inner
        self.prefixes = prefixes
        self.seconds = seconds
        self.left = times

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.startswith(self.prefixes) or self.left == 0:
            return await self.inner.handle_async_request(request)
        if self.left is not None:
            self.left -= 1
        with anyio.move_on_after(self.seconds):
            return await self.inner.handle_async_request(request)
        raise httpx.ReadTimeout("timed out waiting for the answer", request=request)


class Until(httpx.AsyncBaseTransport):
    """The simulator's fault plan lasts until ``when`` on the clock: the first request after
    that removes it, so faults "for 10 minutes" end on time."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, sim: Sim, clock: VirtualClock, when: float
    ) -> None:
        self.inner = inner
        self.sim = sim
        self.clock = clock
        self.when = when
        self.ended_at: float | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.ended_at is None and self.clock.now >= self.when:
            self.sim.app.sim.set_faults([])
            self.ended_at = self.clock.now
        return await self.inner.handle_async_request(request)


# ---------------------------------------------------------------------- ground truth


def arrivals(truth: dict[str, Any]) -> list[tuple[float, str]]:
    """Each create as the simulator saw it: (clock time, how it ended), in order."""
    return [(a["wall"], str(a["status"])) for a in truth["create_arrivals"]]


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def requests(truth: dict[str, Any], endpoint: str) -> int:
    """How many requests reached ``endpoint``, however they ended."""
    counts: dict[str, int] = truth["requests"].get(endpoint, {})
    return sum(counts.values())


def sim_file_sha256(sim: Sim, task_id: str) -> str:
    """The SHA-256 of the simulator's own file of ``task_id``."""
    core = sim.app.sim
    return hashlib.sha256(core.video_bytes(core.task(task_id))).hexdigest()


def media(run: Run) -> Path:
    return run.ledger.workspace / run.run_id / "media"


def jobs(run: Run) -> list[L.JobRecord]:
    return list(run.ledger.jobs(run.run_id))


def ledger_text(run: Run) -> str:
    """Everything the ledger holds, as SQL text (to look for what must never be stored)."""
    return "\n".join(run.ledger.conn.iterdump())


def attempt_details(run: Run) -> list[str]:
    """The redacted excerpt each create attempt keeps."""
    rows = run.ledger.conn.execute("SELECT detail FROM attempts ORDER BY attempt_id")
    return [str(r[0]) for r in rows if r[0] is not None]
