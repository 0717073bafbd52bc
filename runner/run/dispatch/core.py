"""The coordinator: one anyio task group for a run's creates, polls and downloads.

Invariants (``docs/reliability.md`` §4.1):

- Intent before effect: the attempt is committed (with its budget reservation) before the
  create is sent, and the create's answer is committed before anything else happens to it.
- A create is never abandoned: it runs shielded from cancellation (Ctrl-C lets it answer).
- A create whose outcome is unknown is held and never re-sent automatically; three in a row,
  or half of the last 20 creates failing (429s, no connection, unknown outcomes), open a
  breaker that is probed with the free balance call, never with a paid create.
- 401/402/403/404 at create stop all creates; polling and downloading of what is already
  paid for go on.
- Failed jobs are data: recorded, never raised.
- Local files are uploaded before the create that first needs them (`uploads`); the body with
  their URLs is what the attempt records, and a replay resends it unchanged.
- Crash points (`runner.run.failpoints`): ``after_intent_commit``, ``after_response_before_commit``,
  ``after_task_id_commit`` (creates), ``before_download``, ``after_rename_before_done_commit``
  (fetches); ``after_post_sent_before_response`` (`runner.run.backend`), ``mid_download``
  (`runner.run.media`) and ``during_checkpoint`` (`runner.run.ledger`) are outside.

Priority when work competes: downloads, then polls, then creates. Downloads have their own
HTTP client and slots, so a slow file host never holds up the API; creates and polls have
separate rate limits; after a Retry-After pause, the polls it held go before any create.

The dispatcher talks to a `runner.providers.base.Provider` only, and reads time from a
`runner.run.clock.Clock` only (never ``time.time`` or ``anyio.sleep``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.abc
import httpx

from ...providers.base import AccessLost, Provider, TaskView, Transient
from .. import ledger as L
from ..clock import Clock
from ..disk import WAIT, DiskGuard
from ..events import Event
from ..limits import MAX_RATE, Pause
from .creates import Creates
from .fetches import Fetches
from .polls import PollPolicy, Polls
from .uploads import Uploads


@dataclass(frozen=True)
class Settings:
    # creates per second: "auto" probes from 2/s up to max_rate and settles under the
    # provider's limit; a number is a fixed ceiling (`runner.run.limits.Rate`)
    rate: float | Literal["auto"] = "auto"
    max_rate: float = MAX_RATE  # creates per second an automatic rate climbs to at most
    poll_rate: float = 5.0  # task queries per second
    concurrency: int = 50  # tasks in flight (created, not yet finished remotely)
    downloads: int = 4  # downloads at once
    budget: float | None = None  # credits
    max_resubmits: int = 1  # after a retryable task failure
    not_sent_retries: int = 8  # creates that provably did not go out, per job and run
    unknown_breaker: int = 3  # unknown create outcomes in a row that stop creates
    replay: bool = True  # replay an unknown create once with the same key (--no-replay)
    breaker_probes: int = 5  # credit probes before the run stops for good
    time_scale: float = 1.0  # API seconds per wall second (a simulator's speed)
    # result files may come over http from these origins (`runner.run.media.check_url`)
    trusted_origins: tuple[str, ...] = ()
    max_video_bytes: int = 512 * 1024 * 1024
    grace: float = 60.0  # wall seconds paid work may go on after a Ctrl-C or SIGTERM (--grace)
    min_free_disk: int | None = None  # bytes kept free under the videos (`runner.run.disk`)


@dataclass
class Outcome:
    stop_reason: str | None = None  # why creates stopped early, in plain words
    stop_kind: str | None = None  # budget, auth, balance, access, endpoint, interrupted, ...
    counts: dict[str, int] = field(default_factory=dict)
    balance_before: float | None = None  # the account's credits when the run started
    balance_after: float | None = None  # ... and when it ended (any other use included)


class Dispatcher:
    def __init__(
        self,
        ledger: L.Ledger,
        run_id: str,
        provider: Provider,
        files: httpx.AsyncClient,
        media_dir: Path,
        settings: Settings,
        emit: Callable[[Event], None] | None = None,
        rand: Callable[[], float] | None = None,
        *,
        clock: Clock | None = None,
        policy: PollPolicy | None = None,
        free_bytes: Callable[[], int | None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.run_id = run_id
        self.provider = provider
        self.s = settings
        self.clock = clock if clock is not None else Clock(settings.time_scale)
        self._emit = emit or (lambda e: None)
        self.rand = rand or random.random
        self.pause = Pause(self.clock)  # Retry-After: every request waits
        self.outcome = Outcome()
        self.in_flight = 0  # tasks created and not yet finished remotely (the slots)
        self.created_at: dict[int, float] = {}  # job id -> clock time of its task's create
        self._changed = anyio.Event()
        self._tg: anyio.abc.TaskGroup | None = None
        self._timers: anyio.abc.TaskGroup | None = None  # the grace after an interrupt
        self._tg_cut = False  # the grace ran out: work was cut short
        self.creates = Creates(self)
        self.uploads = Uploads(self)
        self.polls = Polls(self, policy if policy is not None else PollPolicy())
        self.fetches = Fetches(self, files, media_dir)
        # free bytes for the videos: the disk's, or ``free_bytes()`` (tests)
        self.disk = DiskGuard(
            ledger.conn, run_id, media_dir, settings.min_free_disk, free_bytes, settings.downloads
        )

    def __repr__(self) -> str:
        return (
            f"<Dispatcher run={self.run_id} in_flight={self.in_flight} "
            f"stop={self.outcome.stop_kind}>"
        )

    # ------------------------------------------------------------------ public

    def stop_creates(self, kind: str, reason: str) -> None:
        """No new creates from now on; what is paid for is still polled and downloaded."""
        if self.outcome.stop_kind is None:
            self.outcome.stop_kind = kind
            self.outcome.stop_reason = reason
            self.ledger.event(self.run_id, None, f"stop_{kind}", reason)
            self.emit("stopped", detail=reason)
        self.creates.wake()
        self.wake()

    def interrupt(self, reason: str) -> None:
        """A first Ctrl-C or SIGTERM (docs/reliability.md §4.12): no new creates; a create on
        its way still answers and is committed; what is paid for is polled and downloaded for
        ``grace`` seconds, then the run ends and the rest waits in the ledger for `resume`."""
        self.stop_creates("interrupted", reason)
        if self._timers is not None:
            self._timers.start_soon(self._end_after_grace)

    async def _end_after_grace(self) -> None:
        await self.clock.sleep(self.s.grace * self.clock.scale)
        tally = self.ledger.tally(self.run_id)
        unfinished = sum(tally[state] for state in (*L.ACTIVE, L.COMPLETED))
        if self._tg is not None:
            self._tg.cancel_scope.cancel()  # shielded creates still answer and commit
        self.outcome.stop_reason = (
            f"{self.outcome.stop_reason} The {self.s.grace:g} s grace ran out with "
            f"{unfinished} paid video(s) unfinished: they are kept, and `runner resume "
            f"{self.run_id}` polls and downloads them."
        )

    async def run(self) -> Outcome:
        self.ledger.recover(self.run_id)
        async with anyio.create_task_group() as timers:
            self._timers = timers
            await self._work()
            timers.cancel_scope.cancel()
        self._timers = None
        kept_back = self.uploads.blocked and self.ledger.job_ids(self.run_id, L.PENDING)
        if kept_back and not self.outcome.stop_kind:  # jobs the full file quota kept back
            self.outcome.stop_kind = "uploads"
            self.outcome.stop_reason = self.uploads.blocked
        if not self._tg_cut:
            await self.settle_refunds()
        self.outcome.counts = dict(self.ledger.tally(self.run_id).states)
        return self.outcome

    async def _work(self) -> None:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            for job_id in self.ledger.job_ids(self.run_id, L.COMPLETED, by="result_expires_at"):
                self.fetches.enqueue(job_id)  # downloads first: links expire
            for job in self.ledger.jobs(self.run_id, L.ACTIVE):
                self.in_flight += 1
                tg.start_soon(self.polls.track, job, True)
            self.creates.queue.extend(self.ledger.job_ids(self.run_id, L.PENDING))
            if self.s.replay:  # held by a crash or a failed send, young enough to replay once
                for attempt in self.ledger.held_attempts(self.run_id):
                    if self.creates.may_replay(attempt):
                        self.creates.replay_later(attempt.job_id, 0.0)
            tg.start_soon(self.creates.run)
        self._tg_cut = tg.cancel_scope.cancel_called

    async def settle_refunds(self) -> int:
        """Read again, for free, every failed task of the run whose refund is not proven yet
        (a refund may land after the failure; docs/evolink.md §18). Returns how many refunds
        were newly proven; the rest wait for the next `runner resume`."""
        ids = self.ledger.unrefunded_tasks(self.run_id)
        proven = 0
        for i in range(0, len(ids), 50):
            try:
                views = await self.provider.read_tasks(ids[i : i + 50])
            except (Transient, AccessLost):
                return proven
            for task_id, view in views.items():
                if isinstance(view, TaskView) and view.refunded is not None:
                    proven += self.ledger.refund(self.run_id, task_id, view.refunded)
        return proven

    # ------------------------------------------------------------------ for the parts

    def start_soon(self, func: Callable[..., Any], *args: Any) -> None:
        assert self._tg is not None, "the dispatcher is not running"
        self._tg.start_soon(func, *args)

    async def disk_room(self, job: L.JobRecord) -> bool:
        """Room on the disk for this job's video and the paid ones not saved yet; while only
        those stand in the way, wait for them; when the next alone would not fit, stop
        creates (`runner.run.disk`)."""
        while not self.outcome.stop_kind:
            # tasks being made and finished ones waiting for a download slot: both owe a video
            making = self.in_flight + len(self.fetches.waiting)
            verdict = self.disk.check(job.body, making, self._owed)
            if verdict is None:
                return True
            if verdict != WAIT:
                self.stop_creates("disk", verdict[0].upper() + verdict[1:])
                break
            await self.wait_change(5.0 * self.clock.scale)
        return False

    def _owed(self) -> int:
        """Videos paid for (or being created) and not saved yet."""
        tally = self.ledger.tally(self.run_id)
        return sum(tally[state] for state in (L.SUBMITTING, *L.ACTIVE, L.COMPLETED))

    def emit(self, kind: str, row: L.JobRecord | None = None, detail: str = "") -> None:
        """Tell the display; every event carries the run's spent figure from the ledger."""
        key = row.job_key if row is not None else None
        self._emit(Event(kind, key, detail, self.ledger.spent(self.run_id)))

    def finish(self, job: L.JobRecord, state: str, code: str | None, message: str) -> None:
        self.ledger.finish(self.run_id, job.job_id, state, code, message)
        self.emit(state, job, f"{code}: {message}" if code else message)

    def release_slot(self) -> None:
        self.in_flight -= 1
        self.wake()

    def reload(self, job: L.JobRecord) -> L.JobRecord:
        return self.ledger.job(job.job_id)

    def age(self, job: L.JobRecord) -> float:
        """Provider seconds since the job's task was created: on the clock when created in
        this run, else from the ledger's wall time."""
        if (created := self.created_at.get(job.job_id)) is not None:
            return self.clock.monotonic() - created
        submitted = job.submitted_at
        return self.clock.age(submitted) if submitted is not None else 0.0

    def wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_change(self, seconds: float) -> None:
        """Until something changes (a slot, a stop, a queued job) or ``seconds`` pass."""
        await self.clock.wait(self._changed, seconds)
