"""Money per attempt in the ledger (docs in runner/run/ledger.py): each figure the issue found
wrong, on a real ledger file. The dispatcher's own tests check the same against the
simulator's books (test_money_truth.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runner.run import ledger as L

from .dispatchhelp import new_run

pytestmark = pytest.mark.anyio


Books = tuple[L.Ledger, str, list[L.JobRecord]]


@pytest.fixture
async def run(tmp_path: Path) -> AsyncIterator[Books]:
    async with new_run(tmp_path, 3) as r:
        yield r.ledger, r.run_id, r.ledger.jobs(r.run_id)


def _fresh(ledger: L.Ledger, run_id: str) -> float:
    """The spent figure as a reader process computes it (no cache)."""
    return L.spent(ledger.conn, run_id)


async def test_a_resubmitted_task_is_a_second_charge_counted_once_each(run: Books) -> None:
    ledger, run_id, (job, *_) = run
    a = ledger.begin_attempt(run_id, job.job_id, job.job_key, 30.0, None)
    ledger.created(run_id, a, "task-1", 32.8, 100.0, False, 200)
    ledger.task_ended(run_id, job.job_id, "failed")  # service_error, refund not proven
    ledger.resubmit(run_id, job.job_id, "service_error")
    b = ledger.begin_attempt(run_id, job.job_id, job.job_key, 30.0, None)
    ledger.created(run_id, b, "task-2", 32.8, 100.0, False, 200)
    ledger.completed(job.job_id, "https://x/y.mp4", 0.0, run_id, charged=32.8)
    assert b.idempotency_key != a.idempotency_key
    assert ledger.spent(run_id) == pytest.approx(65.6) == pytest.approx(_fresh(ledger, run_id))
    assert ledger.job(job.job_id).credits == pytest.approx(65.6)
    assert ledger.unrefunded_tasks(run_id) == ["task-1"]
    assert ledger.refund(run_id, "task-1", 32.8) is True
    assert ledger.refund(run_id, "task-1", 32.8) is False  # never counted twice
    money = ledger.money(run_id)
    assert (money.charged, money.refunded, money.held) == pytest.approx((65.6, 32.8, 0.0))
    assert ledger.spent(run_id) == pytest.approx(32.8) == pytest.approx(_fresh(ledger, run_id))
    assert ledger.unrefunded_tasks(run_id) == []


async def test_a_held_create_resubmitted_by_an_operator_releases_its_estimate(run: Books) -> None:
    ledger, run_id, (job, *_) = run
    a = ledger.begin_attempt(run_id, job.job_id, job.job_key, 30.0, None)
    ledger.unknown(run_id, a, "timeout after sending", None)
    assert ledger.spent(run_id) == pytest.approx(30.0)  # held: it may have been paid
    ledger.resubmit(run_id, job.job_id, "operator: not found on the dashboard")
    assert ledger.spent(run_id) == pytest.approx(0.0) == pytest.approx(_fresh(ledger, run_id))


async def test_a_held_create_marked_created_costs_its_estimate_not_nan(run: Books) -> None:
    ledger, run_id, (job, *_) = run
    a = ledger.begin_attempt(run_id, job.job_id, job.job_key, 30.0, None)
    ledger.unknown(run_id, a, "timeout after sending", None)
    ledger.mark_created(run_id, job.job_id, "task-found")
    assert ledger.job(job.job_id).credits == pytest.approx(30.0)
    assert ledger.money(run_id).charged == pytest.approx(30.0)
    ledger.completed(job.job_id, "https://x/y.mp4", 0.0, run_id, charged=32.8)
    assert ledger.job(job.job_id).credits == pytest.approx(32.8)


async def test_a_not_sent_create_is_sent_again_under_its_own_key_and_costs_nothing(
    run: Books,
) -> None:
    ledger, run_id, (job, *_) = run
    a = ledger.begin_attempt(run_id, job.job_id, job.job_key, 30.0, None)
    ledger.not_sent(run_id, a, "HTTP 429", 429)
    assert ledger.spent(run_id) == 0.0
    b = ledger.begin_attempt(run_id, job.job_id, job.job_key, 30.0, None)
    assert (b.attempt_id, b.idempotency_key) == (a.attempt_id, a.idempotency_key)
    assert ledger.spent(run_id) == pytest.approx(30.0) == pytest.approx(_fresh(ledger, run_id))
    assert ledger.job(job.job_id).attempts == 1


async def test_a_replay_reuses_the_key_once_and_the_budget_does_not_count_it_twice(
    run: Books,
) -> None:
    ledger, run_id, (job, *_) = run
    a = ledger.begin_attempt(run_id, job.job_id, job.job_key, 30.0, 30.0)
    ledger.unknown(run_id, a, "reset after sending", None)
    b = ledger.begin_attempt(run_id, job.job_id, job.job_key, 30.0, 30.0, replay=True)
    assert (b.idempotency_key, b.replays) == (a.idempotency_key, 1)
    ledger.created(run_id, b, "task-1", None, None, True, 200)
    assert ledger.spent(run_id) == pytest.approx(30.0)
    assert [x.job_id for x in ledger.held_attempts(run_id)] == []


async def test_a_proven_refund_without_a_recorded_reservation_costs_nothing(run: Books) -> None:
    ledger, run_id, (job, *_) = run
    a = ledger.begin_attempt(run_id, job.job_id, job.job_key, 10.0, None)
    ledger.unknown(run_id, a, "timeout after sending", None)
    ledger.mark_created(run_id, job.job_id, "task-found")  # no reservation known
    ledger.task_ended(run_id, job.job_id, "failed", refunded=12.5)
    assert ledger.spent(run_id) == 0.0 == _fresh(ledger, run_id)
    assert ledger.job(job.job_id).credits == 0.0


def test_an_old_ledger_is_migrated_to_money_per_attempt_even_by_a_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A workspace written before money per attempt: a held job, a job an operator marked
    created, a held job then resubmitted and done. `runner status` (a reader) works on it and
    every job's credits add up to the run's spent figure."""
    ws = tmp_path / "ws"
    ws.mkdir()
    conn = L.connect(ws / "ledger.sqlite")
    monkeypatch.setattr(L, "MIGRATIONS", L.MIGRATIONS[:3])
    L.migrate(conn)
    monkeypatch.undo()
    conn.execute(
        "INSERT INTO runs (run_id, name, experiment, tier, backend, config_json,"
        " dimensions_json, state, created_at) VALUES ('r', 'r', 'e', 'fast', 'sim', '{}',"
        " '[]', 'finished', 0)"
    )
    for job_id, state, task, credits in (
        (1, "unknown", None, None),  # held
        (2, "submitted", "task-2", None),  # held, then marked created by an operator
        (3, "done", "task-3", 30.0),  # held, resubmitted, then done
    ):
        conn.execute(
            "INSERT INTO jobs (job_id, run_id, job_key, variant_key, tier, sample, model,"
            " mode, body_json, values_json, source, row, name, est_credits, state, task_id,"
            " credits, updated_at) VALUES (?, 'r', ?, 'v', 'fast', 1, 'm', 'text', '{}',"
            " '[]', 's', 2, 'n', 10.0, ?, ?, ?, 0)",
            (job_id, f"k{job_id}", state, task, credits),
        )
    attempts = [  # (attempt id, job id, outcome, task id)
        (1, 1, "unknown", None),
        (2, 2, "unknown", None),
        (3, 3, "unknown", None),
        (4, 3, "created", "task-3"),
    ]
    for attempt_id, job_id, outcome, task in attempts:
        conn.execute(
            "INSERT INTO attempts (attempt_id, job_id, n, idempotency_key, outcome, started_at,"
            " task_id) VALUES (?, ?, 1, ?, ?, 0, ?)",
            (attempt_id, job_id, f"k{job_id}-{attempt_id}", outcome, task),
        )
        conn.execute(
            "INSERT INTO money (run_id, job_id, attempt_id, kind, credits, at)"
            " VALUES ('r', ?, ?, 'reserve', 10.0, 0)",
            (job_id, attempt_id),
        )
    conn.execute(
        "INSERT INTO money (run_id, job_id, attempt_id, kind, credits, at)"
        " VALUES ('r', 3, 4, 'release', 10.0, 0), ('r', 3, 4, 'confirm', 30.0, 0)"
    )
    conn.close()

    with L.reader(ws) as store:  # a reader first, as `runner status` would
        tally = store.tally("r")
        jobs = {j.job_id: j.credits for j in store.jobs("r")}
    # held 10 (still unknown) + marked created 10 (its estimate) + the done job's 30
    assert tally.spent == pytest.approx(50.0)
    assert jobs == {1: 10.0, 2: 10.0, 3: 30.0}
    with L.Ledger.open(ws) as ledger:
        ledger.completed(2, "https://x/2.mp4", 0.0, "r", charged=12.0)  # the marked task
        ledger.resubmit("r", 1, "operator: not found")  # the held one, released
        assert ledger.spent("r") == pytest.approx(42.0) == pytest.approx(L.spent(ledger.conn, "r"))
        assert {j.job_id: j.credits for j in ledger.jobs("r")} == {1: 0.0, 2: 12.0, 3: 30.0}
