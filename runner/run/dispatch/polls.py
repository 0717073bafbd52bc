"""Polls: read each paid task until it ends, under a `PollPolicy`; then hand it to fetches.

Each tracked task asks for its next read at a time its estimate warrants; `Reads` gathers the
reads that fall due together (a read may go up to `PollPolicy.slack` early) into one provider
call, which EvoLink answers with one ``POST /v1/tasks/batch`` per 50 ids (docs/evolink.md
§15, §23). A task read answering 404 is read again until past the task's expected finish plus
``GONE_GRACE`` (and at least ``GONE_REREADS`` times), then the job is lost and its slot freed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
import stamina

from ...providers.base import AccessLost, TaskGone, TaskView, Transient
from .. import ledger as L
from ..limits import MAX_PAUSE, Rate

if TYPE_CHECKING:
    from .core import Dispatcher

log = logging.getLogger(__name__)

RETRYABLE_TASK_ERRORS = frozenset(
    {
        "service_error",
        "generation_timeout",
        "resource_exhausted",
        "service_unavailable",
        "quota_exceeded",
    }
)
RESULT_TTL = 24 * 3600.0  # result links stay valid 24 h (docs/evolink.md §5.2)
EXPIRY_MARGIN = 0.02  # treat links as expired 2 % early
MAX_TASK_AGE = 6 * 3600.0  # a task still unfinished after this long is reported lost
GONE_GRACE = 300.0  # a task read answering 404 is re-read until this long after its expected end
GONE_REREADS = 3  # ... and at least this many times
RUNNING_STATES = ("pending", "processing", "queued", "running")


@dataclass(frozen=True)
class PollPolicy:
    """When to read a task, in provider seconds (the clock applies a simulator's speed)."""

    default_estimate: float = 120.0  # when the create gave no estimated_time
    first_read: float = 0.9  # share of the estimate before the first read
    backoff: float = 0.25  # share of the estimate between reads, growing by `growth`
    growth: float = 1.5
    min_delay: float = 0.5
    jitter: float = 0.2  # each delay is scaled by a uniform 1 ± jitter
    gone_grace: float = GONE_GRACE
    gone_rereads: int = GONE_REREADS
    max_task_age: float = MAX_TASK_AGE

    def estimate(self, estimated_time: float | None) -> float:
        return estimated_time or self.default_estimate

    def first_delay(self, estimate: float, resumed: bool) -> float:
        return 0.0 if resumed else estimate * self.first_read

    def next_delay(self, estimate: float, step: int, rand: float) -> float:
        base = max(self.min_delay, estimate * self.backoff * self.growth**step)
        return base * (1 - self.jitter + 2 * self.jitter * rand)

    batch_gap: float = 5.0  # provider seconds at least between two batch reads

    def slack(self, delay: float) -> float:
        """How early a read may go to share a batch with others: a quarter of the wait, at
        most 15 s (EvoLink's CLI reads a video task every 8 s at most)."""
        return min(15.0, 0.25 * delay)

    def gone_delay(self, tries: int) -> float:
        return min(60.0, 5.0 * tries)

    def gone_for_good(self, tries: int, age: float, estimate: float) -> bool:
        """Whether a task read as unknown (404) is lost: read often enough, and past its
        expected finish plus the grace."""
        return tries >= self.gone_rereads and age > estimate + self.gone_grace


@dataclass(eq=False)
class _Wanted:
    task_id: str
    earliest: float  # clock time it may be read
    due: float  # clock time it should be read
    done: anyio.Event = field(default_factory=anyio.Event)
    view: TaskView | Exception | None = None


class Reads:
    """Task reads gathered into batches: each tracked task waits in `read` for its due time;
    one leader task sends every read whose earliest time has come, in chunks of
    `BATCH`, retried as a whole (stamina) on what a retry may fix."""

    BATCH = 50

    def __init__(self, polls: Polls) -> None:
        self.polls = polls
        self.d = polls.d
        self.wanted: dict[str, _Wanted] = {}
        self._leading = False
        self._changed = anyio.Event()
        self._last_sent = -math.inf
        self.requests = 0  # provider calls made (each one HTTP request per 50 ids)

    async def read(self, task_id: str, delay: float, slack: float) -> TaskView:
        """The task's view, read ``delay`` from now (or up to ``slack`` earlier, with others)."""
        now = self.d.clock.monotonic()
        want = _Wanted(task_id, now + delay - slack, now + delay)
        self.wanted[task_id] = want
        if not self._leading:
            self._leading = True
            self.d.start_soon(self._lead)
        else:
            self._wake()
        await want.done.wait()
        assert want.view is not None
        if isinstance(want.view, Exception):
            raise want.view
        return want.view

    def _wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def _lead(self) -> None:
        clock = self.d.clock
        gap = self.polls.policy.batch_gap
        try:
            while self.wanted:
                now = clock.monotonic()
                # the first read due, but no sooner than a gap after the last batch, so reads
                # falling due close together share one request (a read may come a gap late),
                # unless a whole batch is waiting
                first = min(w.due for w in self.wanted.values())
                if len(self.wanted) < self.BATCH:
                    first = max(first, self._last_sent + gap)
                if first > now:
                    await clock.wait(self._changed, first - now)
                    continue
                self._last_sent = now
                ready = sorted(
                    (w for w in self.wanted.values() if w.earliest <= now), key=lambda w: w.due
                )
                for w in ready:
                    del self.wanted[w.task_id]
                for i in range(0, len(ready), self.BATCH):
                    await self._send(ready[i : i + self.BATCH])
        finally:
            self._leading = False

    async def _send(self, chunk: list[_Wanted]) -> None:
        try:
            views = await self.polls.read_many([w.task_id for w in chunk])
        except Exception as exc:
            for w in chunk:
                w.view = exc
                w.done.set()
            return
        self.requests += 1
        for w in chunk:
            w.view = views.get(w.task_id) or TaskGone(f"task {w.task_id} was not in the answer")
            w.done.set()


class Polls:
    def __init__(self, d: Dispatcher, policy: PollPolicy) -> None:
        self.d = d
        self.policy = policy
        self.rate = Rate(d.s.poll_rate)
        self.held = 0  # polls held by a Retry-After pause: they go before creates
        self._unseen_status_logged: set[str] = set()
        self.reads = Reads(self)

    async def track(self, job: L.JobRecord, resumed: bool) -> None:
        """Poll a paid task until it ends; then download its result."""
        d, p = self.d, self.policy
        estimate = p.estimate(job.estimated_time)
        delay = p.first_delay(estimate, resumed)
        gone_tries = step = 0
        running = job.state == L.RUNNING
        while True:
            try:
                assert job.task_id is not None  # tracked jobs have a task
                view = await self.reads.read(job.task_id, delay, p.slack(delay))
            except TaskGone as exc:
                # a task may not be visible everywhere yet, or a read may fail once: read it
                # again until well past its expected finish, then it is lost (slot freed)
                if not p.gone_for_good(gone_tries, d.age(job), estimate):
                    gone_tries += 1
                    delay = p.gone_delay(gone_tries)
                    continue
                d.release_slot()
                d.finish(
                    job,
                    L.LOST,
                    "task_not_found",
                    f"the provider no longer knows "
                    f"task {job.task_id} ({exc}); `runner retry` sends it again",
                )
                return
            except AccessLost as exc:
                d.stop_creates(
                    "auth",
                    f"the API key no longer works ({exc}); set "
                    f"{d.provider.key_env} and run `runner resume`",
                )
                d.release_slot()
                return
            except Transient as exc:  # retried for hours in vain
                d.release_slot()
                d.finish(
                    job,
                    L.LOST,
                    "task_unreachable",
                    f"the task could not be read for too long ({exc}); `runner resume` tries again",
                )
                return
            if view.status == "completed" and view.result_url:
                d.release_slot()
                expires = d.clock.wall_after(RESULT_TTL * (1 - EXPIRY_MARGIN))
                d.ledger.completed(
                    job.job_id, view.result_url, expires, d.run_id, view.credits_used
                )
                d.fetches.enqueue(job.job_id)
                return
            if view.status == "completed":  # paid for, but there is no link to fetch
                d.release_slot()
                d.ledger.task_ended(
                    d.run_id,
                    job.job_id,
                    view.status,
                    charged=view.credits_used,
                    reserved=view.credits_reserved,
                )
                d.finish(
                    job,
                    L.RESULT_ERROR,
                    "no_result",
                    "the task completed without a result link; `runner retry` reads it again "
                    "for free (never a new paid task)",
                )
                return
            if view.status in ("failed", "cancelled"):
                d.release_slot()
                self._failed(job, view)
                return
            if view.status not in RUNNING_STATES and view.status not in self._unseen_status_logged:
                self._unseen_status_logged.add(view.status)
                log.warning(
                    "unknown task status %r (task %s); polling on", view.status, job.task_id
                )
            if view.status == "processing" and not running:
                running = True  # recorded once: a commit per progress step would cost a sync
                d.ledger.progress(job.job_id, view.progress)
                d.emit("running", job)
            if d.age(job) > p.max_task_age:
                d.release_slot()
                d.finish(job, L.LOST, "task_too_old", "the task did not finish within 6 h")
                return
            delay = p.next_delay(estimate, step, d.rand())
            step += 1

    async def read_many(self, task_ids: list[str]) -> dict[str, TaskView | TaskGone]:
        """One provider read of ``task_ids`` through the poll limit, retried (stamina) on
        what a retry may fix: timeouts, resets, 5xx, malformed answers, and 429 after its
        Retry-After."""
        d = self.d
        to_wall = d.clock.to_wall  # stamina sleeps in wall seconds

        def retry(exc: Exception) -> bool | float:
            if not isinstance(exc, Transient):
                return False
            if exc.retry_after is not None:  # wall seconds
                d.pause.pause(min(exc.retry_after, MAX_PAUSE) * d.clock.scale)
                return min(exc.retry_after, MAX_PAUSE)
            return True

        async for attempt in stamina.retry_context(
            on=retry,
            attempts=None,
            timeout=to_wall(self.policy.max_task_age),
            wait_initial=to_wall(2.0),
            wait_max=to_wall(60.0),
            wait_jitter=to_wall(2.0),
        ):
            with attempt:
                if d.pause.active:
                    self.held += 1
                    try:
                        await d.pause.wait()
                        await self.rate.acquire()
                    finally:
                        self.held -= 1
                        d.wake()
                else:
                    await self.rate.acquire()
                return dict(await d.provider.read_tasks(task_ids))
        raise AssertionError("unreachable: stamina re-raises the last error")

    def _failed(self, job: L.JobRecord, view: TaskView) -> None:
        d = self.d
        code = view.error_code or (
            "request_cancelled" if view.status == "cancelled" else "unknown_error"
        )
        message = view.error_message or (
            "the task was cancelled"
            if view.status == "cancelled"
            else "the task failed, no reason given"
        )
        d.ledger.task_ended(
            d.run_id,
            job.job_id,
            view.status,
            refunded=view.refunded,
            reserved=view.credits_reserved,
        )
        fresh = d.reload(job)
        if (
            code in RETRYABLE_TASK_ERRORS
            and fresh.resubmits < d.s.max_resubmits
            and not d.outcome.stop_kind
        ):
            d.ledger.resubmit(d.run_id, job.job_id, f"{code}: {message}")
            d.emit("retrying", job, f"{code}: resubmitting once")
            d.creates.resubmit_later(d.reload(job), 60.0)
            return
        d.finish(job, L.FAILED, code, message)
