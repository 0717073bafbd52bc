"""Creates: the budget, intent before effect, one same-key replay, the soft breaker, not-sent
retries, daily-limit pauses, stop.

A create naming local files gets their URLs first (`uploads`: uploading what it must). Each
create is committed as an attempt, with the exact body it sends, before it is sent and answered
under a shield; its outcome (`runner.providers.base`) decides what follows: poll it, send it
again later under the same key, record the refusal, pause or stop creates, or replay it once
and then hold it.

The replay (docs/evolink.md §17): a create whose outcome is unknown is sent once more with the
same body and the same Idempotency-Key, as EvoLink's own CLI does, and only within
`REPLAY_WINDOW` of its first send (a gateway may forget keys). A replay answered with the
original task (``idempotency-replayed: true``) or a new task settles the job as created;
anything else holds it for `runner resolve`. ``--no-replay`` holds at once.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import deque
from typing import TYPE_CHECKING

import anyio

from ...localfiles import refs_in
from ...providers.base import (
    AccessLost,
    Created,
    CreateOutcome,
    NotSent,
    Rejected,
    Stop,
    TaskGone,
    Transient,
    Unknown,
)
from .. import ledger as L
from ..failpoints import failpoint
from ..limits import MAX_PAUSE, START_RATE, Pause, Rate, Sent, full_jitter
from . import uploads

if TYPE_CHECKING:
    from .core import Dispatcher

REPLAY_WINDOW = 15 * 60.0  # provider seconds after the first send within which a replay may go
REPLAY_DELAY = 1.0  # before replaying a timeout, reset or 5xx
BUSY_REPLAY_DELAY = 60.0  # before replaying `paid_outcome_unknown` ("wait a minute")
DAILY_PAUSE_LIMIT = 12 * 3600.0  # a daily key limit resetting later than this stops the run
ERROR_WINDOW = 20  # the soft breaker looks at this many last create answers...
ERROR_SHARE = 0.5  # ...and opens when this share of them failed (docs/reliability.md §4.10)


class Creates:
    def __init__(self, d: Dispatcher) -> None:
        self.d = d
        # creates per second: automatic (from 2/s up to --max-rate, settling under the
        # provider's limit) or a fixed ceiling (`runner.run.limits`)
        self.rate = Rate.auto(d.s.max_rate) if d.s.rate == "auto" else Rate(d.s.rate)
        self.sent: dict[int, Sent] = {}  # job id -> how its create passed the rate
        self.pause = Pause(d.clock)  # the soft breaker: creates wait
        # pending work as job ids (rows are loaded when sent: 10^5 jobs stay small)
        self.queue: deque[int] = deque()
        self.later: list[tuple[float, int]] = []  # a heap of (when, job id)
        self.sending = 0  # creates sent and not yet answered
        self.unknown_streak = 0
        self.throttled = 0  # 429s in a row: a 429 without Retry-After waits longer each time
        self.recent: deque[bool] = deque(maxlen=ERROR_WINDOW)  # True: that create failed
        self._not_sent: dict[int, int] = {}
        self._breaker_open = False
        self.replays: set[int] = set()  # jobs whose next send replays their unknown attempt
        self.first_sent: dict[int, float] = {}  # attempt id -> clock time of its first send
        self._replay_tries: dict[int, int] = {}  # job id -> replays turned away (not sent)
        self.daily = Pause(d.clock)  # a daily key limit: creates wait until it resets
        self._blocked_said = False  # the file quota stopped creates that need an upload

    async def run(self) -> None:
        try:
            await self._creates()
        finally:
            self._note_rate()

    async def _creates(self) -> None:
        while True:
            job = await self._next_job()
            if job is None:
                return
            sent = await self._turn()
            if self.d.outcome.stop_kind or not await self.d.disk_room(job):
                return
            if sent is not None:
                self.sent[job.job_id] = sent
            self.d.in_flight += 1
            self.d.start_soon(self._submit, job)

    def _note_rate(self) -> None:
        """An automatic rate that met the provider's limit is recorded where it settled (the
        ``rate_settled`` event): `runner plan` times the next runs with it."""
        rate = self.rate
        if rate.automatic and rate.limit is not None:
            self.d.ledger.event(
                self.d.run_id,
                None,
                "rate_settled",
                f"{rate.current:.3g} creates/s (the provider turned creates away at "
                f"{rate.limit:.3g}/s)",
            )

    async def _next_job(self) -> L.JobRecord | None:
        """The next job to create, waiting for a free slot and for delayed retries."""
        d = self.d
        while True:
            if d.outcome.stop_kind:
                return None
            now = d.clock.monotonic()
            if d.in_flight < d.s.concurrency:
                if self.later and self.later[0][0] <= now:
                    return d.ledger.job(heapq.heappop(self.later)[1])
                if self.queue:
                    return d.ledger.job(self.queue.popleft())
            if not self.queue and not self.later and not self.sending and not d.in_flight:
                return None  # nothing left, and no task that could come back for a resubmit
            await d.wait_change(self.later[0][0] - now if self.later else math.inf)

    async def _turn(self) -> Sent | None:
        """After a Retry-After pause, the polls it held go first; then the create rate.
        (Downloads never wait for creates: they have their own client and slots.)"""
        d = self.d
        while True:
            await d.pause.wait(self.stopped)
            while d.polls.held and not d.outcome.stop_kind:
                await d.wait_change(0.05 * d.clock.scale)
            await self.pause.wait(self.stopped)  # a stop ends these waits at once
            await self.daily.wait(self.stopped)
            if self.stopped():
                return None
            sent = await self.rate.acquire()
            if not (d.pause.active or self.pause.active or self.daily.active):
                return sent
            # a 429 came while this waited for the rate: its turn is after the pause, spaced
            # from the others (or they would all leave together when it ends)

    def stopped(self) -> bool:
        return self.d.outcome.stop_kind is not None

    def wake(self) -> None:
        """Creates were stopped: whatever waits for its turn looks again."""
        for pause in (self.d.pause, self.pause, self.daily):
            pause.wake()

    async def _submit(self, job: L.JobRecord) -> None:
        self.sending += 1
        try:
            await self._submit_once(job)
        finally:
            self.sending -= 1
            self.d.wake()

    async def _submit_once(self, job: L.JobRecord) -> None:
        d = self.d
        await d.pause.wait(self.stopped)  # a Retry-After that came while this waited its turn
        if d.outcome.stop_kind:
            d.release_slot()
            self.queue.appendleft(job.job_id)
            return
        replay = job.job_id in self.replays
        if replay and not self._still_replayable(job):
            d.release_slot()
            return
        body = None  # the job's own: no local file in it; a replay: the one it sent
        if not replay and refs_in(job.body):
            got = await d.uploads.body_for(job)
            if not isinstance(got, dict):
                d.release_slot()
                self._not_uploaded(job, got)
                return
            body = got
        try:
            attempt = d.ledger.begin_attempt(
                d.run_id,
                job.job_id,
                job.job_key,
                job.est_credits,
                d.s.budget,
                replay=replay,
                body=body,
            )
        except L.BudgetExceeded as exc:
            d.release_slot()
            self.queue.appendleft(job.job_id)
            d.stop_creates("budget", str(exc))
            return
        failpoint("after_intent_commit")
        if attempt.attempt_id not in self.first_sent:  # its first send, on this clock
            since = d.clock.age(attempt.started_at) if attempt.reopened else 0.0
            self.first_sent[attempt.attempt_id] = d.clock.monotonic() - since
        sent = dict(attempt.body if attempt.body is not None else job.body)
        with anyio.CancelScope(shield=True):  # a create, once sent, is always answered
            result = await d.provider.create(sent, attempt.idempotency_key)
            failpoint("after_response_before_commit")
            if replay:
                self.replays.discard(job.job_id)
                self._record_replay(job, attempt, result)
            else:
                self._record(job, attempt, result)

    def _not_uploaded(self, job: L.JobRecord, problem: uploads.Problem) -> None:
        """A job whose local files could not be made URLs (`runner.run.dispatch.uploads`)."""
        d = self.d
        if isinstance(problem, uploads.Wait):
            self._retry_later(job, NotSent(problem.reason))
        elif isinstance(problem, uploads.Reject):
            d.finish(job, L.REJECTED, problem.code, problem.message)
        elif isinstance(problem, uploads.Blocked):
            if not self._blocked_said:
                self._blocked_said = True
                d.emit("paused", detail=problem.message)
        else:
            self.queue.appendleft(job.job_id)
            d.stop_creates(problem.kind, problem.message)

    def _record(self, job: L.JobRecord, attempt: L.Attempt, result: CreateOutcome) -> None:
        d = self.d
        sent = self.sent.pop(job.job_id, None)
        if isinstance(result, Created):
            d.ledger.created(
                d.run_id,
                attempt,
                result.task_id,
                result.credits_reserved,
                result.estimated_time,
                result.replayed,
                result.http_status,
            )
            failpoint("after_task_id_commit")
            d.created_at[job.job_id] = d.clock.monotonic()
            self.unknown_streak = self.throttled = 0
            self._answered(failed=False)
            self.rate.increase(sent)
            fresh = d.reload(job)
            d.emit("submitted", fresh)
            d.start_soon(d.polls.track, fresh, False)
            return
        d.release_slot()
        if isinstance(result, NotSent | Unknown) and not self._probed(result, sent):
            self._answered(failed=True)
        if isinstance(result, NotSent):
            d.ledger.not_sent(d.run_id, attempt, result.reason, result.http_status)
            self._retry_later(job, result, sent)
        elif isinstance(result, Rejected):
            d.ledger.rejected(d.run_id, attempt, result.code, result.message, result.http_status)
            d.emit("rejected", job, f"{result.code}: {result.message}")
        elif isinstance(result, Stop):
            d.ledger.not_sent(d.run_id, attempt, result.message, result.http_status)
            self.queue.appendleft(job.job_id)
            self._stop(result)
        else:
            d.ledger.unknown(d.run_id, attempt, result.reason, result.http_status)
            if d.s.replay and result.replayable and self.may_replay(attempt):
                delay = BUSY_REPLAY_DELAY if result.code == "paid_outcome_unknown" else REPLAY_DELAY
                d.emit("replaying", job, f"{result.reason}; sending it once more with the same key")
                self.replay_later(job.job_id, delay)
            else:
                self._hold(job, result.reason)

    def _probed(self, result: NotSent | Unknown, sent: Sent | None) -> bool:
        """A 429 the automatic rate met above where it starts: the answer to its probe (it
        slows down), not a failing API for the soft breaker. Below that, 429s count as
        before."""
        return (
            isinstance(result, NotSent)
            and result.rate_limited
            and self.rate.automatic
            and sent is not None
            and sent.rate > START_RATE
        )

    def _record_replay(self, job: L.JobRecord, attempt: L.Attempt, result: CreateOutcome) -> None:
        """The one replay's answer: a task settles the job; anything else holds it (a replay
        turned away for the rate is sent again, same key, after the wait)."""
        d = self.d
        if isinstance(result, Created):
            self._record(job, attempt, result)
            return
        sent = self.sent.pop(job.job_id, None)
        d.release_slot()
        if isinstance(result, NotSent | Unknown):
            self._answered(failed=True)
        if isinstance(result, NotSent):
            d.ledger.unknown(
                d.run_id, attempt, f"replay not sent: {result.reason}", None, replay_sent=False
            )
            if result.rate_limited:
                self.rate.decrease(sent)
            if result.rate_limited and result.retry_after is not None:
                d.pause.pause(min(result.retry_after, MAX_PAUSE) * d.clock.scale)
            tries = self._replay_tries[job.job_id] = self._replay_tries.get(job.job_id, 0) + 1
            self.replay_later(job.job_id, self._jitter(job, tries))
            return
        reason = result.message if isinstance(result, Rejected | Stop) else result.reason
        status = result.http_status
        d.ledger.unknown(d.run_id, attempt, f"the replay failed too: {reason}", status)
        self._hold(job, f"the replay with the same key failed too ({reason})")
        if isinstance(result, Stop):
            self._stop(result)

    def may_replay(self, attempt: L.Attempt) -> bool:
        """Not replayed yet, and young enough that the gateway still knows its key."""
        return attempt.replays == 0 and self._young(attempt)

    def _young(self, attempt: L.Attempt) -> bool:
        clock = self.d.clock
        sent = self.first_sent.get(attempt.attempt_id)
        age = clock.monotonic() - sent if sent is not None else clock.age(attempt.started_at)
        return age < REPLAY_WINDOW

    def _still_replayable(self, job: L.JobRecord) -> bool:
        """Checked again when a scheduled replay is about to go (it may have waited for a
        slot, a pause or the breaker): still within the window, and not turned away more
        than `not_sent_retries` times; otherwise the job is held."""
        attempt = self.d.ledger.last_attempt(job.job_id)
        tries = self._replay_tries.get(job.job_id, 0)
        if attempt is not None and self._young(attempt) and tries <= self.d.s.not_sent_retries:
            return True
        self.replays.discard(job.job_id)
        why = (
            "the replay could not be sent in time"
            if tries <= self.d.s.not_sent_retries
            else f"the replay was turned away {tries} times"
        )
        reason = f"{why}; the create's outcome stays unknown"
        self.d.ledger.finish(self.d.run_id, job.job_id, L.UNKNOWN, "create_outcome_unknown", reason)
        self._hold(job, reason)
        return False

    def replay_later(self, job_id: int, delay: float) -> None:
        self.replays.add(job_id)
        heapq.heappush(self.later, (self.d.clock.monotonic() + delay, job_id))
        self.d.wake()

    def _hold(self, job: L.JobRecord, reason: str) -> None:
        d = self.d
        d.emit("held", job, reason)
        self.unknown_streak += 1
        if self.unknown_streak >= d.s.unknown_breaker:
            d.start_soon(
                self._breaker, f"{self.unknown_streak} creates in a row had an unknown outcome"
            )

    def _answered(self, *, failed: bool) -> None:
        """Note a create's answer for the soft breaker, which opens when at least half of the
        last `ERROR_WINDOW` creates failed (429, 408, no connection, unknown outcome)."""
        self.recent.append(failed)
        errors = sum(self.recent)
        if failed and errors >= ERROR_WINDOW * ERROR_SHARE:
            self.d.start_soon(
                self._breaker, f"{errors} of the last {len(self.recent)} creates failed"
            )

    def _stop(self, result: Stop) -> None:
        """A create refused for the account or key: a daily limit resetting within
        `DAILY_PAUSE_LIMIT` pauses creates until then; anything else stops them."""
        d = self.d
        reset_in = result.reset_in
        if result.kind == "daily" and reset_in is not None and 0 <= reset_in <= DAILY_PAUSE_LIMIT:
            until = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.clock.wall_after(reset_in)))
            self.daily.pause(reset_in + 1.0)
            d.emit(
                "paused",
                detail=f"the API key's daily limit is reached; new videos wait until it "
                f"resets at {until} (paid ones go on)",
            )
            return
        d.stop_creates(result.kind, result.message)

    def _retry_later(self, job: L.JobRecord, result: NotSent, sent: Sent | None = None) -> None:
        d = self.d
        if result.rate_limited:
            self.rate.decrease(sent)
            self.throttled += 1
            wait = result.retry_after  # wall seconds
            if wait is not None and wait > MAX_PAUSE:
                self.queue.appendleft(job.job_id)
                resume_at = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.clock.wall() + wait))
                d.stop_creates(
                    "paused",
                    f"the provider asked to pause for {wait / 3600:.1f} h "
                    f"(Retry-After); continue after {resume_at} with `runner resume`",
                )
                return
            pause = (
                wait * d.clock.scale
                if wait is not None
                else full_jitter(self.throttled - 1, 2.0, 120.0, d.rand)
            )
            d.pause.pause(max(pause, 0.05 * d.clock.scale))
            d.emit(
                "throttled",
                job,
                f"rate limited; pausing {d.clock.to_wall(pause):.1f} s, "
                f"then {self.rate.current:.1f} creates/s",
            )
            self._later_at(job, 0.0)
            return
        count = self._not_sent.get(job.job_id, 0) + 1
        self._not_sent[job.job_id] = count
        if count > d.s.not_sent_retries:
            d.emit(
                "failed",
                job,
                f"could not reach the API after {count} tries "
                f"({result.reason}); it stays pending for `runner resume`",
            )
            return
        self._later_at(job, self._jitter(job, count))

    def _jitter(self, job: L.JobRecord, n: int | None = None) -> float:
        tries = n if n is not None else self._not_sent.get(job.job_id, 0)
        return full_jitter(tries, 2.0, 120.0, self.d.rand)

    def _later_at(self, job: L.JobRecord, delay: float) -> None:
        heapq.heappush(self.later, (self.d.clock.monotonic() + delay, job.job_id))
        self.d.wake()

    def resubmit_later(self, job: L.JobRecord, delay: float) -> None:
        """A retryable task failure: the job is sent again after ``delay``."""
        self._later_at(job, delay)

    async def _breaker(self, why: str) -> None:
        """Soft breaker: creates wait while the free balance call probes the API."""
        if self._breaker_open:
            return
        d = self.d
        self._breaker_open = True
        try:
            for probe_n in range(d.s.breaker_probes):
                cooldown = min(300.0, 10.0 * 2**probe_n)
                self.pause.hold()  # until the probe answers
                d.emit(
                    "breaker",
                    detail=f"{why}; creates wait {cooldown:.0f} s, then a credit check",
                )
                await d.clock.sleep(cooldown)
                try:
                    await d.provider.balance()
                except (Transient, AccessLost, TaskGone):
                    continue
                # half-open: one more unknown, or failed create, opens it again
                self.unknown_streak = min(self.unknown_streak, d.s.unknown_breaker - 1)
                self.pause.clear()
                return
            d.stop_creates(
                "breaker",
                f"creates kept failing ({why}) and the "
                "API did not answer the credit check; held jobs are listed by "
                "`runner resolve`, and `runner resume` continues",
            )
            self.pause.clear()  # the creator sees the stop instead of waiting on
        finally:
            self._breaker_open = False
