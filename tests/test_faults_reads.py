"""The fault matrix's task-read rows (docs/reliability.md §7.1, N15–N19) at runner level: the
dispatcher against the in-process simulator on a virtual clock, each test judged by the
simulator's ground truth and the ledger's final states."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner.run import ledger as L
from runner.run import runs
from runner.run.clock import VirtualClock

from .dispatchhelp import Sim, dispatch, new_run
from .faulthelp import FAST, READS, ReadTimeout, Until, Watch, jobs, requests

pytestmark = pytest.mark.anyio


def _reads(endpoint: str, fault: dict[str, Any]) -> list[dict[str, Any]]:
    """``fault`` on the task reads: single reads, batch reads, or both."""
    names = ("task", "batch") if endpoint == "both" else (endpoint,)
    return [{"endpoint": name, **fault} for name in names]


@pytest.mark.fault("N15")
@pytest.mark.parametrize(
    ("endpoint", "jobs_", "concurrency"),
    [("batch", 8, 2), ("task", 4, 1)],
    ids=["batch-reads", "single-reads"],
)
async def test_task_reads_failing_half_the_time_for_ten_minutes_still_end_every_job_done(
    tmp_path: Path, endpoint: str, jobs_: int, concurrency: int
) -> None:
    clock = VirtualClock()
    share = 0.21  # three faults each drawn at 21 %: half of the reads fail
    sim = Sim(
        clock,
        {"endpoint": endpoint, "status": 500, "probability": share},
        {"endpoint": endpoint, "status": 502, "probability": share},
        {"endpoint": endpoint, "kind": "hang", "probability": share},  # a read timeout
        seed=7,
    )
    until = Until(ReadTimeout(sim.transport, READS, seconds=0.1), sim, clock, clock.now + 600)
    sim.transport = until
    async with new_run(tmp_path, jobs_) as run:
        outcome = await dispatch(run, clock=clock, sim=sim, **FAST, concurrency=concurrency)
        assert run.counts() == {"done": jobs_}
    assert outcome.stop_kind is None
    truth = sim.truth()
    failed = truth["requests"][endpoint]
    assert failed["500"] and failed["502"] and failed["hang"]  # the faults did fire
    assert until.ended_at is not None  # and lasted their ten minutes
    # reads are free and retried: creates are unchanged, one per job
    assert truth["requests"]["create"] == {"200": jobs_}
    assert sorted(truth["creates_by_body"].values()) == [1] * jobs_


@pytest.mark.fault("N16")
async def test_a_task_read_as_not_found_past_its_grace_is_lost_and_never_sent_again(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    sim = Sim(clock, *_reads("both", {"status": 404}))
    watch = Watch(sim.transport, clock)
    sim.transport = watch
    async with new_run(tmp_path, 1) as run:
        outcome = await dispatch(run, clock=clock, sim=sim, **FAST)
        (job,) = jobs(run)
    assert (job.state, job.error_code) == (L.LOST, "task_not_found")
    assert "runner retry" in (job.error_message or "")  # reported, with what to do
    assert outcome.stop_kind is None
    truth = sim.truth()
    assert requests(truth, "create") == 1  # lost, not resubmitted
    assert len(truth["tasks"]) == 1
    (created,) = [s.answered for s in watch.on("/v1/videos")]
    reads = [s.sent for s in watch.on("/v1/tasks/")]
    assert len(reads) >= 3  # read again...
    assert reads[-1] - created > 300  # ...until past its expected end plus the grace


@pytest.mark.fault("N17")
@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "patch", "json_body": {"status": "queued_for_gpu"}, "calls": [1, 2]},
        {"kind": "patch", "json_body": {"progress": 250}},
        {
            "kind": "patch",
            "json_body": {"progress": None, "task_info": None, "usage": None, "model": None},
        },
        {"kind": "patch", "json_body": {"status": None}, "calls": [1]},
    ],
    ids=["unknown-status", "progress-over-100", "missing-fields", "missing-status"],
)
async def test_odd_task_reads_keep_polling_until_the_task_is_done(
    tmp_path: Path, fault: dict[str, Any]
) -> None:
    clock = VirtualClock()
    sim = Sim(clock, *_reads("both", fault))
    async with new_run(tmp_path, 1) as run:
        await dispatch(run, clock=clock, sim=sim, **FAST)
        assert run.counts() == {"done": 1}
    truth = sim.truth()
    assert sum(f["fired"] for f in truth["faults"]) >= 1
    assert requests(truth, "create") == 1


@pytest.mark.fault("N17")
@pytest.mark.parametrize(
    "cancel",
    [
        {"kind": "patch", "json_body": {"status": "cancelled", "error": None}},
        {
            "kind": "patch",
            "json_body": {"status": "cancelled", "error": {"code": None, "message": None}},
        },
    ],
    ids=["without-error", "null-code-and-message"],
)
async def test_a_cancelled_task_is_final_with_a_readable_message_and_not_sent_again(
    tmp_path: Path, cancel: dict[str, Any]
) -> None:
    clock = VirtualClock()
    sim = Sim(clock, *_reads("both", {**cancel, "calls": [1]}))
    async with new_run(tmp_path, 1) as run:
        await dispatch(run, clock=clock, sim=sim, **FAST)
        (job,) = jobs(run)
    assert (job.state, job.error_code) == (L.FAILED, "request_cancelled")
    assert job.error_message and "None" not in job.error_message
    assert "cancel" in job.error_message
    truth = sim.truth()
    # final: the task the simulator really completed is neither downloaded nor resubmitted
    assert "file" not in truth["requests"]
    assert requests(truth, "create") == 1


@pytest.mark.fault("N18")
async def test_a_service_error_is_resubmitted_once_then_failed_with_the_providers_reason(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    sim = Sim(clock, fail_rates={"service_error": 1.0})
    async with new_run(tmp_path, 1) as run:
        await dispatch(run, clock=clock, sim=sim, **FAST)
        (job,) = jobs(run)
    assert (job.state, job.error_code) == (L.FAILED, "service_error")
    assert job.error_message and "None" not in job.error_message
    truth = sim.truth()
    assert list(truth["creates_by_body"].values()) == [2]  # the one resubmit
    assert {t["status"] for t in truth["tasks"]} == {"failed"}


@pytest.mark.fault("N18")
async def test_a_service_error_without_budget_for_a_resubmit_stops_creates_saying_so(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    sim = Sim(clock, fail_rates={"service_error": 1.0}, refunds="never")
    async with new_run(tmp_path, 1) as run:
        (pending,) = jobs(run)
        budget = pending.est_credits * 1.5  # one task, not two
        outcome = await dispatch(run, clock=clock, sim=sim, budget=budget, **FAST)
        (job,) = jobs(run)
    assert outcome.stop_kind == "budget"
    assert outcome.stop_reason and "budget" in outcome.stop_reason
    assert job.state == L.PENDING  # waits for `runner resume --budget`, not lost
    truth = sim.truth()
    assert list(truth["creates_by_body"].values()) == [1]


@pytest.mark.fault("N19")
@pytest.mark.parametrize(
    "results",
    [[], ["http://files.example.com/v.mp4"], ["javascript:alert(document.cookie)"]],
    ids=["no-results", "not-https", "javascript"],
)
async def test_a_completed_task_without_a_usable_link_is_a_result_error_and_nothing_fetched(
    tmp_path: Path, results: list[str]
) -> None:
    clock = VirtualClock()
    sim = Sim(clock, *_reads("both", {"kind": "patch", "json_body": {"results": results}}))
    watch = Watch(sim.transport, clock)
    sim.transport = watch
    async with new_run(tmp_path, 1) as run:
        outcome = await dispatch(run, clock=clock, sim=sim, **FAST)
        (job,) = jobs(run)
        assert runs.finish_state(run.ledger, run.run_id, outcome) == 1
    assert job.state == L.RESULT_ERROR
    assert job.error_message and "None" not in job.error_message
    truth = sim.truth()
    assert "file" not in truth["requests"]  # nothing fetched
    assert {s.host for s in watch.seen} == {"sim.test"}  # not even tried elsewhere
    assert requests(truth, "create") == 1  # and nothing paid again
