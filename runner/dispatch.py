"""The dispatcher: create -> poll -> download for every job of a run, in one anyio task group.

Invariants (``shared/reference/reliability.md`` §4.1):

- Intent before effect: the attempt is committed (with its budget reservation) before the
  create is sent, and the create's answer is committed before anything else happens to it.
- A create is never abandoned: it runs shielded from cancellation (Ctrl-C lets it answer).
- A create whose outcome is unknown is held and never re-sent automatically; three in a row
  open a breaker that is probed with the free ``GET /v1/credits``, never with a paid create.
- 401/402/403/404 at create stop all creates; polling and downloading of what is already
  paid for go on.
- Failed jobs are data: recorded, never raised.

Priority when work competes: downloads, then polls, then creates. Downloads have their own
HTTP client and slots, so a slow file host never holds up the API; creates and polls have
separate rate limits; after a Retry-After pause, the polls it held go before any create.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import random
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_process
import httpx
import stamina

from . import ledger as L
from .events import Event
from .failpoints import failpoint
from .limits import MAX_PAUSE, Pause, Rate, full_jitter
from .media import Downloaded, DownloadError, download
from .providers.base import (
    AccessLost,
    Created,
    NotSent,
    Provider,
    Rejected,
    Stop,
    TaskGone,
    TaskView,
    Transient,
    Unknown,
)

log = logging.getLogger(__name__)

RETRYABLE_TASK_ERRORS = frozenset({
    "service_error", "generation_timeout", "resource_exhausted", "service_unavailable",
    "quota_exceeded",
})
RESULT_TTL = 24 * 3600.0  # result links stay valid 24 h (reference §5.2)
EXPIRY_MARGIN = 0.02  # treat links as expired 2 % early
MAX_TASK_AGE = 6 * 3600.0  # a task still unfinished after this long is reported lost
GONE_GRACE = 300.0  # a task read answering 404 is re-read until this long after its expected end
GONE_REREADS = 3  # ... and at least this many times


@dataclass(frozen=True)
class Settings:
    rate: float = 2.0  # creates per second
    poll_rate: float = 5.0  # task queries per second
    concurrency: int = 50  # tasks in flight (created, not yet finished remotely)
    downloads: int = 4  # downloads at once
    budget: float | None = None  # credits
    max_resubmits: int = 1  # after a retryable task failure
    not_sent_retries: int = 8  # creates that provably did not go out, per job and run
    unknown_breaker: int = 3  # unknown create outcomes in a row that stop creates
    breaker_probes: int = 5  # credit probes before the run stops for good
    time_scale: float = 1.0  # API seconds per wall second (a simulator's speed)
    trusted_origin: str | None = None  # result files may come from here over http
    max_video_bytes: int = 512 * 1024 * 1024


@dataclass
class Outcome:
    stop_reason: str | None = None  # why creates stopped early, in plain words
    stop_kind: str | None = None  # budget, auth, balance, access, endpoint, interrupted, ...
    counts: dict[str, int] = field(default_factory=dict)


class Dispatcher:
    def __init__(
        self, ledger: L.Ledger, run_id: str, api: Provider, files: httpx.AsyncClient,
        media_dir: Path, settings: Settings, emit: Callable[[Event], None] | None = None,
        rand: Callable[[], float] | None = None,
    ) -> None:
        self.ledger = ledger
        self.run_id = run_id
        self.api = api
        self.files = files
        self.media_dir = media_dir
        self.s = settings
        self._emit = emit or (lambda e: None)
        self.rand = rand or random.random
        self.create_rate = Rate(settings.rate)
        self.poll_rate = Rate(settings.poll_rate)
        self.pause = Pause()  # Retry-After: every request waits
        self.create_pause = Pause()  # the soft breaker: creates wait
        self.download_slots = anyio.Semaphore(settings.downloads)
        self.media_slots = anyio.CapacityLimiter(1)  # one decoding process: the loop keeps a core
        self.outcome = Outcome()
        self.in_flight = 0
        self.held_polls = 0  # polls held by a Retry-After pause: they go before creates
        self._changed = anyio.Event()
        # pending work as job ids (rows are loaded when sent: 10^5 jobs stay small)
        self._queue: deque[int] = deque()
        self._later: list[tuple[float, int]] = []  # a heap of (when, job id)
        self._unknown_streak = 0
        self._not_sent: dict[int, int] = {}
        self._unseen_status_logged: set[str] = set()
        self._tg: anyio.abc.TaskGroup | None = None
        self._sending = 0  # creates sent and not yet answered
        self._breaker_open = False

    # ------------------------------------------------------------------ public

    def emit(self, kind: str, row: sqlite3.Row | None = None, detail: str = "",
             credits: float = 0.0) -> None:
        self._emit(Event(kind, row["job_key"] if row is not None else None, detail, credits))

    def stop_creates(self, kind: str, reason: str) -> None:
        """No new creates from now on; what is paid for is still polled and downloaded."""
        if self.outcome.stop_kind is None:
            self.outcome.stop_kind = kind
            self.outcome.stop_reason = reason
            self.ledger.event(self.run_id, None, f"stop_{kind}", reason)
            self.emit("stopped", detail=reason)
        self._wake()

    async def run(self) -> Outcome:
        self.ledger.recover(self.run_id)
        async with anyio.create_task_group() as tg:
            self._tg = tg
            completed = self.ledger.jobs(self.run_id, [L.COMPLETED])
            for job in sorted(completed, key=lambda j: j["result_expires_at"] or 0):
                tg.start_soon(self._fetch, job)  # downloads first: links expire
            for job in self.ledger.jobs(self.run_id, L.ACTIVE):
                self.in_flight += 1
                tg.start_soon(self._track, job, True)
            self._queue.extend(self.ledger.job_ids(self.run_id, L.PENDING))
            tg.start_soon(self._creator)
        self.outcome.counts = self._counts()
        return self.outcome

    # ------------------------------------------------------------------ creates

    async def _creator(self) -> None:
        assert self._tg is not None
        while True:
            job = await self._next_job()
            if job is None:
                return
            await self._turn_for_creates()
            if self.outcome.stop_kind:
                return
            self.in_flight += 1
            self._tg.start_soon(self._submit, job)

    async def _next_job(self) -> sqlite3.Row | None:
        """The next job to create, waiting for a free slot and for delayed retries."""
        while True:
            if self.outcome.stop_kind:
                return None
            now = anyio.current_time()
            if self.in_flight < self.s.concurrency:
                if self._later and self._later[0][0] <= now:
                    return self._row(heapq.heappop(self._later)[1])
                if self._queue:
                    return self._row(self._queue.popleft())
            if not self._queue and not self._later and not self._sending and not self.in_flight:
                return None  # nothing left, and no task that could come back for a resubmit
            wait = self._later[0][0] - now if self._later else 3600.0
            await self._wait_change(wait)

    async def _turn_for_creates(self) -> None:
        """After a Retry-After pause, the polls it held go first; then the create rate.
        (Downloads never wait for creates: they have their own client and slots.)"""
        await self.pause.wait()
        while self.held_polls and not self.outcome.stop_kind:
            await self._wait_change(0.05)
        await self.create_pause.wait()
        await self.create_rate.acquire()

    async def _submit(self, job: sqlite3.Row) -> None:
        self._sending += 1
        try:
            await self._submit_once(job)
        finally:
            self._sending -= 1
            self._wake()

    async def _submit_once(self, job: sqlite3.Row) -> None:
        await self.pause.wait()  # a Retry-After that arrived while this create waited its turn
        if self.outcome.stop_kind:
            self._release_slot()
            self._queue.appendleft(job["job_id"])
            return
        try:
            attempt = self.ledger.begin_attempt(
                self.run_id, job["job_id"], job["job_key"], job["est_credits"], self.s.budget)
        except L.BudgetExceeded as exc:
            self._release_slot()
            self._queue.appendleft(job["job_id"])
            self.stop_creates("budget", str(exc))
            return
        failpoint("after_intent_commit")
        body = json.loads(job["body_json"])
        with anyio.CancelScope(shield=True):  # a create, once sent, is always answered
            result = await self.api.create(body, attempt.idempotency_key)
            failpoint("after_response_before_commit")
            self._record_create(job, attempt, result)

    def _record_create(self, job: sqlite3.Row, attempt: L.Attempt,
                       result: Created | NotSent | Rejected | Stop | Unknown) -> None:
        assert self._tg is not None
        if isinstance(result, Created):
            self.ledger.created(self.run_id, attempt, result.task_id, result.credits_reserved,
                                result.estimated_time, result.replayed, result.http_status)
            failpoint("after_task_id_commit")
            self._unknown_streak = 0
            self.create_rate.increase()
            fresh = self._reload(job)
            self.emit("submitted", fresh, credits=fresh["credits"] or 0.0)
            self._tg.start_soon(self._track, fresh, False)
            return
        self._release_slot()
        if isinstance(result, NotSent):
            self.ledger.not_sent(self.run_id, attempt, result.reason, result.http_status)
            self._retry_later(job, result)
        elif isinstance(result, Rejected):
            self.ledger.rejected(self.run_id, attempt, result.code, result.message,
                                 result.http_status)
            self.emit("rejected", job, f"{result.code}: {result.message}")
        elif isinstance(result, Stop):
            self.ledger.not_sent(self.run_id, attempt, result.message, result.http_status)
            self._queue.appendleft(job["job_id"])
            self.stop_creates(result.kind, result.message)
        else:
            self.ledger.unknown(self.run_id, attempt, result.reason, result.http_status)
            self.emit("held", job, result.reason)
            self._unknown_streak += 1
            if self._unknown_streak >= self.s.unknown_breaker:
                self._tg.start_soon(self._breaker)

    def _retry_later(self, job: sqlite3.Row, result: NotSent) -> None:
        if result.rate_limited:
            self.create_rate.decrease()
            wait = result.retry_after
            if wait is not None and wait > MAX_PAUSE:
                self._queue.appendleft(job["job_id"])
                resume_at = time.strftime("%H:%M", time.localtime(time.time() + wait))
                self.stop_creates(
                    "paused", f"the provider asked to pause for {wait / 3600:.1f} h "
                    f"(Retry-After); continue after {resume_at} with `runner resume`")
                return
            if wait is None:
                wait = self._jitter(2.0, 120.0, job)
            self.pause.pause(max(wait, 0.05))
            self.emit("throttled", job, f"rate limited; pausing {wait:.1f} s")
            self._later_at(job, 0.0)
            return
        count = self._not_sent.get(job["job_id"], 0) + 1
        self._not_sent[job["job_id"]] = count
        if count > self.s.not_sent_retries:
            self.emit("failed", job, f"could not reach the API after {count} tries "
                      f"({result.reason}); it stays pending for `runner resume`")
            return
        self._later_at(job, self._jitter(2.0, 120.0, job, count))

    def _jitter(self, base: float, cap: float, job: sqlite3.Row, n: int | None = None) -> float:
        tries = n if n is not None else self._not_sent.get(job["job_id"], 0)
        return full_jitter(tries, base, cap, self.rand) / self.s.time_scale

    def _later_at(self, job: sqlite3.Row, delay: float) -> None:
        heapq.heappush(self._later, (anyio.current_time() + delay, job["job_id"]))
        self._wake()

    async def _breaker(self) -> None:
        """Soft breaker: creates wait while the free credits call probes the API."""
        if self._breaker_open:
            return
        self._breaker_open = True
        try:
            for probe_n in range(self.s.breaker_probes):
                cooldown = min(300.0, 10.0 * 2 ** probe_n) / self.s.time_scale
                self.create_pause.pause(cooldown + 3600.0)  # held until the probe answers
                self.emit("breaker", detail=f"{self._unknown_streak} creates in a row had an "
                          f"unknown outcome; creates wait {cooldown:.0f} s, then a credit check")
                await anyio.sleep(cooldown)
                try:
                    await self.api.balance()
                except (Transient, AccessLost, TaskGone):
                    continue
                self._unknown_streak = self.s.unknown_breaker - 1  # half-open: one more try
                self.create_pause.clear()
                return
            self.stop_creates("breaker", "creates kept ending with an unknown outcome and the "
                              "API did not answer the credit check; held jobs are listed by "
                              "`runner resolve`, and `runner resume` continues")
        finally:
            self._breaker_open = False

    # ------------------------------------------------------------------ polls

    async def _track(self, job: sqlite3.Row, resumed: bool) -> None:
        """Poll a paid task until it ends; then download its result."""
        estimate = (job["estimated_time"] or 120.0) / self.s.time_scale
        delay = 0.0 if resumed else estimate * 0.9
        gone_tries = step = 0
        running = job["state"] == L.RUNNING
        while True:
            await anyio.sleep(delay)
            try:
                view = await self._query(job["task_id"])
            except TaskGone as exc:
                # a task may not be visible everywhere yet, or a read may fail once: read it
                # again until well past its expected finish, then it is lost (slot freed)
                if gone_tries < GONE_REREADS or not self._past_gone_grace(job):
                    gone_tries += 1
                    delay = min(60.0, 5.0 * gone_tries) / self.s.time_scale
                    continue
                self._release_slot()
                self._finish(job, L.LOST, "task_not_found", f"the provider no longer knows "
                             f"task {job['task_id']} ({exc}); `runner retry` sends it again")
                return
            except AccessLost as exc:
                self.stop_creates("auth", f"the API key no longer works ({exc}); set "
                                  "EVOLINK_API_KEY and run `runner resume`")
                self._release_slot()
                return
            except Transient as exc:  # retried for hours in vain
                self._release_slot()
                self._finish(job, L.LOST, "task_unreachable", f"the task could not be read "
                             f"for too long ({exc}); `runner resume` tries again")
                return
            if view.status == "completed" and view.result_url:
                self._release_slot()
                expires = time.time() + RESULT_TTL * (1 - EXPIRY_MARGIN) / self.s.time_scale
                self.ledger.completed(job["job_id"], view.result_url, expires)
                await self._fetch(self._reload(job))
                return
            if view.status in ("failed", "cancelled") or (
                view.status == "completed" and not view.result_url
            ):
                self._release_slot()
                self._task_failed(job, view)
                return
            if (view.status not in ("pending", "processing", "queued", "running")
                    and view.status not in self._unseen_status_logged):
                self._unseen_status_logged.add(view.status)
                log.warning("unknown task status %r (task %s); polling on",
                            view.status, job["task_id"])
            if view.status == "processing" and not running:
                running = True  # recorded once: a commit per progress step would cost a sync
                self.ledger.progress(job["job_id"], view.progress)
                self.emit("running", job)
            if self._age(job) > MAX_TASK_AGE / self.s.time_scale:
                self._release_slot()
                self._finish(job, L.LOST, "task_too_old", "the task did not finish within 6 h")
                return
            delay = max(0.5 / self.s.time_scale, estimate * 0.25 * 1.5 ** step) * (
                0.8 + 0.4 * self.rand())
            step += 1

    async def _query(self, task_id: str) -> TaskView:
        """One task query through the poll limit, retried (stamina) on what a retry may fix:
        timeouts, resets, 5xx, malformed answers, and 429 after its Retry-After."""
        scale = self.s.time_scale

        def retry(exc: Exception) -> bool | float:
            if not isinstance(exc, Transient):
                return False
            if exc.retry_after is not None:
                self.pause.pause(min(exc.retry_after, MAX_PAUSE))
                return min(exc.retry_after, MAX_PAUSE)
            return True

        async for attempt in stamina.retry_context(
            on=retry, attempts=None, timeout=MAX_TASK_AGE / scale, wait_initial=2.0 / scale,
            wait_max=60.0 / scale, wait_jitter=2.0 / scale,
        ):
            with attempt:
                if self.pause.until > anyio.current_time():
                    self.held_polls += 1
                    try:
                        await self.pause.wait()
                        await self.poll_rate.acquire()
                    finally:
                        self.held_polls -= 1
                        self._wake()
                else:
                    await self.poll_rate.acquire()
                read = (await self.api.read_tasks([task_id]))[task_id]
                if isinstance(read, TaskGone):
                    raise read
                return read
        raise AssertionError("unreachable: stamina re-raises the last error")

    def _task_failed(self, job: sqlite3.Row, view: TaskView) -> None:
        code = view.error_code or ("request_cancelled" if view.status == "cancelled"
                                   else "unknown_error")
        message = view.error_message or ("the task ended without a result"
                                         if view.status == "completed" else "no message")
        fresh = self._reload(job)
        if (code in RETRYABLE_TASK_ERRORS and fresh["resubmits"] < self.s.max_resubmits
                and not self.outcome.stop_kind):
            self.ledger.resubmit(self.run_id, job["job_id"], f"{code}: {message}")
            self.emit("retrying", job, f"{code}: resubmitting once")
            self._later_at(self._reload(job), 60.0 / self.s.time_scale)
            return
        self._finish(job, L.FAILED, code, message)

    # ------------------------------------------------------------------ downloads

    async def _fetch(self, job: sqlite3.Row) -> None:
        """Download, verify, probe; the job ends done, expired or result_error."""
        await self.download_slots.acquire()
        try:
            await self._fetch_locked(job)
        finally:
            self.download_slots.release()
            self._wake()

    async def _fetch_locked(self, job: sqlite3.Row) -> None:
        dest = self.media_dir / f"{job['job_key']}.mp4"
        self.media_dir.mkdir(parents=True, exist_ok=True)
        if dest.is_file() and await anyio.to_process.run_sync(_complete_video, str(dest)):
            # downloaded and renamed before a crash: verified, not fetched (and paid) again
            got: Downloaded | None = Downloaded(dest, dest.stat().st_size, _sha256(dest))
        else:
            got = await self._download(job, dest)
        if got is None:
            return
        failpoint("after_rename_before_done_commit")
        body = json.loads(job["body_json"])
        try:  # decoding holds the GIL: in a worker process, the event loop stays free
            media = await anyio.to_process.run_sync(
                _media_info, str(dest), body["duration"], body["aspect_ratio"],
                body["generate_audio"], limiter=self.media_slots)
        except DownloadError as exc:
            self._finish(job, L.RESULT_ERROR, exc.code, exc.message)
            return
        rel = dest.relative_to(self.ledger.workspace).as_posix()
        self.ledger.finish(self.run_id, job["job_id"], L.DONE, None, None, file_path=rel,
                           file_bytes=got.size, file_sha256=got.sha256,
                           media_json=json.dumps(media))
        self.emit("done", job)

    async def _download(self, job: sqlite3.Row, dest: Path) -> Downloaded | None:
        """The file, retried (stamina) on what a retry may fix until the link expires;
        None after recording why the job ended expired or result_error."""
        expires = job["result_expires_at"] or 0.0
        scale = self.s.time_scale
        refused = 0

        def retry(exc: Exception) -> bool:
            nonlocal refused
            if not isinstance(exc, DownloadError):
                return False
            if exc.code == "expired":  # 403/404/410 before the link should expire: a few tries
                refused += 1
                return refused < 3 and time.time() < expires
            return exc.retryable

        try:
            async for attempt in stamina.retry_context(
                on=retry, attempts=8, timeout=max(1.0, expires - time.time()),
                wait_initial=2.0 / scale, wait_max=60.0 / scale, wait_jitter=2.0 / scale,
            ):
                with attempt:
                    failpoint("before_download")
                    return await download(self.files, job["result_url"], dest,
                                          trusted_origin=self.s.trusted_origin,
                                          max_bytes=self.s.max_video_bytes)
        except DownloadError as exc:
            if exc.code == "expired" or time.time() >= expires:
                self._finish(job, L.EXPIRED, "result_expired", exc.message)
            else:
                self._finish(job, L.RESULT_ERROR, exc.code, exc.message)
        return None

    # ------------------------------------------------------------------ helpers

    def _finish(self, job: sqlite3.Row, state: str, code: str | None, message: str) -> None:
        self.ledger.finish(self.run_id, job["job_id"], state, code, message)
        self.emit(state, job, f"{code}: {message}" if code else message)

    def _release_slot(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _reload(self, job: sqlite3.Row) -> sqlite3.Row:
        return self._row(job["job_id"])

    def _row(self, job_id: int) -> sqlite3.Row:
        row: sqlite3.Row = self.ledger.conn.execute(
            "SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return row

    def _past_gone_grace(self, job: sqlite3.Row) -> bool:
        """Whether a task that reads as unknown (404) is past its expected finish plus the
        grace, so that it can be reported lost."""
        expected = (job["estimated_time"] or 120.0) + GONE_GRACE
        return self._age(job) > expected / self.s.time_scale

    def _age(self, job: sqlite3.Row) -> float:
        return time.time() - (job["submitted_at"] or time.time())

    def _wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def _wait_change(self, seconds: float) -> None:
        with anyio.move_on_after(max(0.0, seconds)):
            await self._changed.wait()

    def _counts(self) -> dict[str, int]:
        return {state: n for state, n in self.ledger.conn.execute(
            "SELECT state, COUNT(*) FROM jobs WHERE run_id = ? GROUP BY state", (self.run_id,))}


def _media_info(path: str, duration: int, aspect_ratio: str, generate_audio: bool
                ) -> dict[str, Any]:
    """`runner.probe.media_info`, imported in the worker process only (PyAV, Pillow and
    numpy need not weigh on the runner's own memory)."""
    from .probe import media_info

    return media_info(path, duration, aspect_ratio, generate_audio)


def _complete_video(path: str) -> bool:
    from .probe import probe

    try:
        probe(Path(path))
    except DownloadError:
        return False
    return True


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
