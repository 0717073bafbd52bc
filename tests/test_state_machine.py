"""P14 (docs/reliability.md §7.2): a Hypothesis state machine over a small run, driven in
process against the simulator on a virtual clock.

Rules inject faults (create, task read, download), move the clock, run the dispatcher for a
slice of simulated time (then abandon it: a kill) or to its end, kill it at a named crash
point, and take the operator's decisions (`runner resolve --mark-created` / `--resubmit`,
`runner retry`; giving up leaves a job held, which the end accepts as reported). Every run
rule is one process lifetime: the ledger is opened, in-flight creates are classified and
unsaved results put back as `runner resume` does, and it is closed at the end. After every
step the ledger is checked against the simulator's ground truth; at the end a resume
without faults must leave every job done or reported with the command that settles it.

The world is single-threaded and deterministic: worker threads and processes run inline,
the ledger's clock is the virtual clock's wall, and a create the simulator hangs on ends
as the client's read timeout (in process httpx has none).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_process
import anyio.to_thread
import httpx
import pytest
import stamina
from click.testing import CliRunner
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from runner.cli.base import print_summary
from runner.grid.plan import make_plan
from runner.providers.evolink import EvoLink
from runner.run import ledger as L
from runner.run import runs
from runner.run.backend import choose
from runner.run.clock import VirtualClock
from runner.run.dispatch import Dispatcher, Settings
from runner.run.dispatch import creates as creates_module
from runner.run.dispatch import fetches as fetches_module
from runner.simulator.app import SimApp, SimConfig, create_app
from runner.simulator.config import DEFAULT_KEY
from runner.simulator.faults import Fault
from runner.simulator.video import render_video

from .runhelp import grid

SIM = "http://sim.test"
JOBS = 5
REAL_LIMIT = 60.0  # wall seconds one runner session may take before it counts as hung
EPS = 1e-6

# Job states in the order a job moves through them (docs/reliability.md §4.3). `unknown` is
# where `submitting` ends when the outcome is not known; both may go back to the other
# (a replay), never below. The last rank is terminal: it changes only with a counted
# resubmit (a failed task, or an operator) or a recheck (`runner resume`/`retry` re-reads a
# paid task whose result was not saved).
RANK = {
    L.PENDING: 0,
    L.SUBMITTING: 1,
    L.UNKNOWN: 1,
    L.SUBMITTED: 2,
    L.RUNNING: 3,
    L.COMPLETED: 4,
    L.DONE: 5,
    L.EXPIRED: 5,
    L.RESULT_ERROR: 5,
    L.FAILED: 5,
    L.LOST: 5,
    L.REJECTED: 5,
}
RECHECKED_FROM = (L.LOST, L.RESULT_ERROR)
RETRIED = (L.FAILED, L.LOST, L.EXPIRED, L.RESULT_ERROR)
# where a job may end after a full resume without faults, and what the summary says of it
REPORTED = {
    L.UNKNOWN: "runner resolve",
    L.FAILED: "runner retry",
    L.LOST: "runner retry",
    L.RESULT_ERROR: "runner retry",
    L.EXPIRED: "EXPIRED",
}

CREATE_FAULTS: dict[str, dict[str, Any]] = {
    "ok": {"kind": "pass"},
    "429 Retry-After": {"kind": "rate_limit", "retry_after": 7},
    "500 after creating": {"kind": "respond", "status": 500, "processed": True},
    "504 after creating": {"kind": "respond", "status": 504, "processed": True},
    "503 before creating": {"kind": "respond", "status": 503},
    "timeout after creating": {"kind": "hang", "processed": True},
    "reset after creating": {"kind": "reset", "processed": True},
    "reset before creating": {"kind": "reset"},
    "garbled 2xx after creating": {
        "kind": "respond",
        "status": 200,
        "body": "<html>upstream error</html>",
        "content_type": "text/html",
        "processed": True,
    },
    "409 paid_outcome_unknown": {
        "kind": "respond",
        "status": 409,
        "json_body": {
            "error": {
                "code": "paid_outcome_unknown",
                "message": "wait a minute and retry with the same key",
                "type": "invalid_request_error",
            }
        },
    },
}
_NO_BATCH = {"endpoint": "batch", "kind": "patch", "json_body": {"data": []}, "times": 1}
READ_FAULTS: dict[str, list[dict[str, Any]]] = {
    "500": [
        {"endpoint": "batch", "kind": "respond", "status": 500, "times": 1},
        {"endpoint": "task", "kind": "respond", "status": 500, "times": 1},
    ],
    "404 once": [_NO_BATCH, {"endpoint": "task", "kind": "respond", "status": 404, "times": 1}],
    "unknown status": [
        _NO_BATCH,
        {"endpoint": "task", "kind": "patch", "json_body": {"status": "mystery"}, "times": 1},
    ],
}
FILE_FAULTS: dict[str, dict[str, Any]] = {
    "truncate": {"kind": "truncate"},
    "expire once": {"kind": "expire"},
    "expire for good": {"kind": "expire", "times": 3},
    "html": {
        "kind": "respond",
        "status": 200,
        "body": "<html><body>Checking your browser</body></html>",
        "content_type": "text/html",
    },
}
CRASH_POINTS = (
    "after_intent_commit",
    "after_response_before_commit",
    "after_task_id_commit",
    "before_download",
    "after_rename_before_done_commit",
)


@functools.cache
def _clip() -> bytes:
    return render_video(
        prompt="state machine", duration=4, aspect_ratio="16:9", tier="fast", generate_audio=True
    )


class Killed(Exception):
    """The runner process died at a named crash point (kill -9)."""


class World:
    """What the patched seams of the runner read: the current example's clock and the armed
    crash point."""

    clock: VirtualClock | None = None
    crash: tuple[str, int] | None = None  # (point, hits left before it fires)

    def now(self) -> float:
        return self.clock.wall() if self.clock is not None else 0.0

    def failpoint(self, name: str) -> None:
        if self.crash is None or self.crash[0] != name:
            return
        if self.crash[1] > 1:
            self.crash = (name, self.crash[1] - 1)
            return
        self.crash = None
        raise Killed(name)


WORLD = World()


async def _inline(func: Callable[..., Any], *args: Any, **_: Any) -> Any:
    """A worker thread or process, run in the event loop (deterministic, no real waits)."""
    await anyio.lowlevel.checkpoint()
    return func(*args)


class SimTransport(httpx.AsyncBaseTransport):
    """The simulator in process. A request it hangs on (a ``hang`` fault, which gives up at
    once here) ends as the client's read timeout rather than a dropped connection."""

    def __init__(self, app: SimApp) -> None:
        self.app = app
        self.inner = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        hangs = self._hangs()
        try:
            return await self.inner.handle_async_request(request)
        except httpx.RemoteProtocolError:
            if self._hangs() > hangs:
                raise httpx.ReadTimeout("timed out", request=request) from None
            raise

    def _hangs(self) -> int:
        return sum(c.get("hang", 0) for c in self.app.sim.requests.values())


@dataclass(frozen=True)
class Seen:
    """One job as the ledger showed it after a step."""

    state: str
    resubmits: int
    rechecks: int


def _job_of(idempotency_key: str | None) -> str:
    """The job key an Idempotency-Key was sent for (``<job_key>-<n>``)."""
    return (idempotency_key or "").rsplit("-", 1)[0]


class RunMachine(RuleBasedStateMachine):
    """A run of `JOBS` jobs against the simulator; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="p14-"))
        self.ws = self.tmp / "ws"
        self.clock = VirtualClock()
        WORLD.clock, WORLD.crash = self.clock, None
        self.app: SimApp | None = None
        self.run_id = ""
        self.seen: dict[str, Seen] = {}
        self.operator_sends: dict[str, int] = {}  # job key -> operator resubmits and retries
        self.broken = False  # an invariant failed: the final resume is not run

    # ------------------------------------------------------------------ setup

    @initialize(
        seed=st.integers(0, 2**16),
        failures=st.sampled_from([0.0, 0.3]),
        concurrency=st.sampled_from([1, 2, 4]),
        budget=st.sampled_from([None, 2.5]),
        creates=st.lists(st.sampled_from(sorted(CREATE_FAULTS)), max_size=6),
        reads=st.lists(st.sampled_from(sorted(READ_FAULTS)), max_size=2),
        downloads=st.lists(st.sampled_from(sorted(FILE_FAULTS)), max_size=3),
    )
    def start(
        self,
        seed: int,
        failures: float,
        concurrency: int,
        budget: float | None,
        creates: list[str],
        reads: list[str],
        downloads: list[str],
    ) -> None:
        """A fresh simulator (a share of its tasks failing, most with a retryable code), a
        recorded run of `JOBS` jobs, a ``budget`` (in jobs' estimates) or none, and the
        faults of its first calls."""
        rates = {"service_error": failures * 2 / 3, "generation_failed_no_content": failures / 3}
        self.app = create_app(
            SimConfig(
                accept_any_key=True,
                seed=seed,
                fail_rates=rates if failures else {},
                video_source=lambda **_: _clip(),
                max_hang_seconds=0,
            ),
            clock=self.clock,
        )
        plan = make_plan(grid(self.tmp / "g.csv", JOBS))
        with L.Ledger.open(self.ws) as ledger:
            self.run_id, _ = runs.create(
                ledger, plan, choose("sim", None, self.ws), Settings(), name="p14", reuse=False
            )
            estimate = ledger.jobs(self.run_id)[0].est_credits
        self.settings = Settings(
            rate=1e6,
            poll_rate=1e6,
            concurrency=concurrency,
            budget=None if budget is None else budget * estimate,
            trusted_origins=(SIM,),
        )
        for kind in creates:
            self.create_fault(kind)
        for kind in reads:
            self.read_fault(kind)
        for kind in downloads:
            self.file_fault(kind)
        self.seen = {}

    def teardown(self) -> None:
        try:
            if self.app is not None and not self.broken:
                self._finish()
        finally:
            WORLD.clock, WORLD.crash = None, None
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------------ faults and time

    def _add(self, *faults: dict[str, Any]) -> None:
        assert self.app is not None
        self.app.sim.set_faults([Fault.from_json(f) for f in faults], append=True)

    @rule(kind=st.sampled_from(sorted(CREATE_FAULTS)))
    def create_fault(self, kind: str) -> None:
        """The next create not yet given a fault gets this one."""
        self._add({"endpoint": "create", "times": 1, **CREATE_FAULTS[kind]})

    @rule(kind=st.sampled_from(sorted(READ_FAULTS)))
    def read_fault(self, kind: str) -> None:
        self._add(*READ_FAULTS[kind])

    @rule(kind=st.sampled_from(sorted(FILE_FAULTS)))
    def file_fault(self, kind: str) -> None:
        self._add({"endpoint": "file", "times": 1, **FILE_FAULTS[kind]})

    @rule(seconds=st.sampled_from([30.0, 300.0, 1200.0, 7200.0, 25 * 3600.0]))
    def advance(self, seconds: float) -> None:
        """Time passes while no runner is running (the simulator's tasks go on)."""
        self.clock.now += seconds

    # ------------------------------------------------------------------ runner sessions

    @rule(seconds=st.sampled_from([1.0, 10.0, 60.0, 150.0, 400.0, None]))
    def resume(self, seconds: float | None) -> None:
        """`runner resume`, killed after ``seconds`` of simulated time (None: to its end)."""
        self._session(seconds)

    @rule(point=st.sampled_from(CRASH_POINTS), nth=st.integers(1, 3))
    def kill_at(self, point: str, nth: int) -> None:
        """`runner resume`, killed at the ``nth`` hit of a named crash point (or at its end)."""
        WORLD.crash = (point, nth)
        try:
            self._session(None)
        finally:
            WORLD.crash = None

    def _session(self, seconds: float | None) -> None:
        anyio.run(self._resume, seconds)

    async def _resume(self, seconds: float | None) -> None:
        assert self.app is not None
        transport = SimTransport(self.app)
        with L.Ledger.open(self.ws) as ledger:
            with pytest.raises(L.LedgerBusy):  # I4: one writer
                L.Ledger.open(self.ws).__enter__()
            runs.recheck_unsaved(ledger, self.run_id, "operator: runner resume")
            async with (
                httpx.AsyncClient(base_url=SIM, transport=transport) as http,
                httpx.AsyncClient(transport=transport) as files,
            ):
                dispatcher = Dispatcher(
                    ledger,
                    self.run_id,
                    EvoLink(http, DEFAULT_KEY),
                    files,
                    self.ws / self.run_id / "media",
                    self.settings,
                    clock=self.clock,
                    rand=lambda: 0.5,
                )
                with stamina.set_testing(True, attempts=20):
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(self.clock.drive)
                        with anyio.fail_after(REAL_LIMIT):  # a hang fails the example
                            await self._dispatch(dispatcher, seconds)
                        tg.cancel_scope.cancel()

    async def _dispatch(self, dispatcher: Dispatcher, seconds: float | None) -> None:
        """Run until the dispatcher ends, ``seconds`` pass, or a crash point fires."""
        try:
            async with anyio.create_task_group() as tg:
                if seconds is not None:

                    async def kill_later() -> None:
                        await self.clock.sleep(seconds)
                        tg.cancel_scope.cancel()  # the process is gone: nothing more happens

                    tg.start_soon(kill_later)
                await dispatcher.run()
                tg.cancel_scope.cancel()
        except* Killed:
            pass

    # ------------------------------------------------------------------ operator

    def _jobs_in(self, *states: str) -> list[str]:
        return sorted(k for k, s in self.seen.items() if s.state in states)

    @precondition(lambda self: bool(self._jobs_in(L.UNKNOWN)))
    @rule(pick=st.integers(0, JOBS - 1))
    def resolve(self, pick: int) -> None:
        """`runner resolve`: the operator looks the held job up on the dashboard (the
        simulator's tasks) and marks it created with its task id, or resubmits it when no
        task was made."""
        held = self._jobs_in(L.UNKNOWN)
        key = held[pick % len(held)]
        with L.Ledger.open(self.ws) as ledger:
            job = ledger.find_job(self.run_id, key)
            attempt = ledger.last_attempt(job.job_id)
            assert attempt is not None
            made = [
                t for t in self._truth()["tasks"] if t["idempotency_key"] == attempt.idempotency_key
            ]
            if made:
                ledger.mark_created(self.run_id, job.job_id, made[0]["id"])
            else:
                ledger.resubmit(self.run_id, job.job_id, "operator: runner resolve --resubmit")
                self.operator_sends[key] = self.operator_sends.get(key, 0) + 1

    @precondition(lambda self: bool(self._jobs_in(*RETRIED)))
    @rule()
    def retry(self) -> None:
        """`runner retry`: unsaved paid results are read again, the rest sent again."""
        with L.Ledger.open(self.ws) as ledger:
            plan = runs.plan_retry(ledger, self.run_id, RETRIED)
            runs.apply_retry(ledger, self.run_id, plan, "operator: runner retry")
        for job in plan.resend:
            self.operator_sends[job.job_key] = self.operator_sends.get(job.job_key, 0) + 1

    # ------------------------------------------------------------------ invariants

    def _truth(self) -> dict[str, Any]:
        assert self.app is not None
        state: dict[str, Any] = self.app.sim.snapshot()
        return state

    @invariant()
    def ledger_agrees_with_ground_truth(self) -> None:
        """Every check below, after every step; one assertion, so a failure is one failure
        to shrink whichever check found it."""
        if self.app is None:
            return
        truth = self._truth()
        with L.reader(self.ws) as store:
            integrity = store.conn.execute("PRAGMA integrity_check").fetchone()[0]
            jobs = {j.job_key: j for j in store.jobs(self.run_id)}
            attempts = store.conn.execute(
                "SELECT j.job_key, a.idempotency_key, a.outcome, a.task_id"
                " FROM attempts a JOIN jobs j USING (job_id)"
            ).fetchall()
            resubmits = store.conn.execute(
                "SELECT j.job_key, e.detail FROM events e JOIN jobs j USING (job_id)"
                " WHERE e.kind = 'resubmit'"
            ).fetchall()
            money = store.money(self.run_id)
            spent = store.spent(self.run_id)
        problems = [
            *([] if integrity == "ok" else [f"integrity_check: {integrity}"]),
            *self._tasks(truth, jobs, attempts),
            *self._resends(truth, jobs, resubmits),
            *self._forward(jobs),
            *self._files(jobs),
            *self._money(truth, money, spent, attempts),
        ]
        self.broken = bool(problems)
        assert not problems, "\n".join(problems)
        self.seen = {k: Seen(j.state, j.resubmits, j.rechecks) for k, j in jobs.items()}

    def _tasks(
        self, truth: dict[str, Any], jobs: dict[str, L.JobRecord], attempts: list[Any]
    ) -> Iterator[str]:
        """I1: every create the simulator took was committed as an attempt first. Nothing
        lost: every task is known to the ledger by id, or its attempt is held (in flight or
        unknown). A job's task id is a real task of that job."""
        by_key = {a["idempotency_key"]: a for a in attempts}
        known_ids = {a["task_id"] for a in attempts if a["task_id"]}
        for task in truth["tasks"]:
            attempt = by_key.get(task["idempotency_key"])
            if attempt is None:
                yield f"task {task['id']} was created without an intent"
            elif task["id"] not in known_ids and attempt["outcome"] not in ("in_flight", "unknown"):
                yield (
                    f"task {task['id']} of {attempt['job_key']} is unknown to the ledger "
                    f"and its attempt is {attempt['outcome']}"
                )
        tasks = {t["id"]: t for t in truth["tasks"]}
        for key, job in jobs.items():
            if job.task_id is None:
                continue
            if job.task_id not in tasks:
                yield f"{key} has a task id the provider never made"
            elif _job_of(tasks[job.task_id]["idempotency_key"]) != key:
                yield f"{key} has the task of another job"

    def _resends(
        self, truth: dict[str, Any], jobs: dict[str, L.JobRecord], resubmits: list[Any]
    ) -> Iterator[str]:
        """No job has more tasks than 1 + its failed tasks + the operator's resends; runner
        resends by itself at most `max_resubmits` times, after a failed task only."""
        made: dict[str, int] = {}
        failed: dict[str, int] = {}
        for task in truth["tasks"]:
            job = _job_of(task["idempotency_key"])
            made[job] = made.get(job, 0) + 1
            if task["status"] in ("failed", "cancelled"):
                failed[job] = failed.get(job, 0) + 1
        for key in jobs:
            operator = self.operator_sends.get(key, 0)
            allowed = 1 + failed.get(key, 0) + operator
            if made.get(key, 0) > allowed:
                yield (
                    f"{key}: {made[key]} tasks, allowed {allowed} (failed "
                    f"{failed.get(key, 0)}, operator {operator})"
                )
        automatic: dict[str, int] = {}
        for key, detail in resubmits:
            if not str(detail).startswith("operator"):
                automatic[key] = automatic.get(key, 0) + 1
        for key, n in automatic.items():
            if n > min(self.settings.max_resubmits, failed.get(key, 0)):
                yield f"{key}: resubmitted {n} times by itself, {failed.get(key, 0)} failed"

    def _forward(self, jobs: dict[str, L.JobRecord]) -> Iterator[str]:
        """I8: states move forward only (`RANK`), except through a counted resubmit or recheck."""
        for key, job in jobs.items():
            before = self.seen.get(key)
            if before is None or job.resubmits > before.resubmits:
                continue
            was, now = before.state, job.state
            if job.rechecks > before.rechecks:
                ok = was in RECHECKED_FROM
            elif RANK[was] == RANK[L.DONE]:
                ok = now == was
            else:
                ok = RANK[now] >= RANK[was]
            if not ok:
                yield f"{key}: {was} -> {now}"

    def _files(self, jobs: dict[str, L.JobRecord]) -> Iterator[str]:
        """I6: a done job's file is at its final path, complete, the provider's bytes."""
        want = hashlib.sha256(_clip()).hexdigest()
        for key, job in jobs.items():
            if job.state != L.DONE:
                continue
            path = self.ws / (job.file_path or "missing")
            if not path.is_file():
                yield f"{key} is done without its file"
                continue
            data = path.read_bytes()
            sha = hashlib.sha256(data).hexdigest()
            if len(data) != job.file_bytes or not sha == job.file_sha256 == want:
                yield f"{key} is done with a file that is not the provider's ({len(data)} B)"

    def _money(
        self, truth: dict[str, Any], money: L.Money, spent: float, attempts: list[Any]
    ) -> Iterator[str]:
        """The ledger never counts less than the provider took (unknowns count as spent),
        and once nothing is in doubt its charges are at most the provider's. I5: spent,
        reserved and held stay within the budget."""
        accounts = truth["accounts"].values()
        charged = sum(a["charged"] for a in accounts)
        refunded = sum(a["refunded"] for a in accounts)
        if spent < charged - refunded - EPS:
            yield f"spent {spent} < the provider's {charged} - {refunded}"
        budget = self.settings.budget
        if budget is not None and spent > budget + EPS:  # I5
            yield f"spent {spent} over the budget {budget}"
        settled = all(a["outcome"] not in ("in_flight", "unknown") for a in attempts)
        if settled and money.charged > charged + EPS:
            yield f"charged {money.charged} > the provider's {charged}"

    # ------------------------------------------------------------------ the end

    def _finish(self) -> None:
        """A full resume without faults (twice: the first may settle held creates the
        second then polls); then every job is done or reported, with the command that
        settles it in the run's summary, and the key is nowhere in the ledger (I7)."""
        assert self.app is not None
        self.app.sim.set_faults([])
        WORLD.crash = None
        self.settings = dataclasses.replace(self.settings, budget=None)  # `--budget` raised
        for _ in range(2):
            self._session(None)
            self.ledger_agrees_with_ground_truth()
        with L.reader(self.ws) as store, CliRunner().isolation() as (out, _err, _log):
            print_summary(store, self.run_id, None)
            summary = out.getvalue().decode()
            dump = "\n".join(store.conn.iterdump())
        problems = [
            f"{key} ended {seen.state} and the summary does not say what to do"
            for key, seen in sorted(self.seen.items())
            if seen.state != L.DONE and REPORTED.get(seen.state, "?") not in summary
        ]
        if DEFAULT_KEY in dump:
            problems.append("the API key is in the ledger")
        assert not problems, "\n".join(problems) + "\n" + summary


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setattr(anyio.to_thread, "run_sync", _inline)
    monkeypatch.setattr(anyio.to_process, "run_sync", _inline)
    monkeypatch.setattr(L, "_now", WORLD.now)
    monkeypatch.setattr(L, "LOCK_TRIES", 1)  # no reader looks at the lock here: refuse at once
    monkeypatch.setattr(creates_module, "failpoint", WORLD.failpoint)
    monkeypatch.setattr(fetches_module, "failpoint", WORLD.failpoint)
    yield WORLD


@pytest.mark.slow
@pytest.mark.fault("P14")
def test_runs_hold_their_invariants_under_faults_crashes_and_operators(world: World) -> None:
    run_state_machine_as_test(  # type: ignore[no-untyped-call]
        RunMachine,
        settings=settings(
            max_examples=100,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
