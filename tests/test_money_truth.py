"""Money that matches the provider: a night of 500 jobs with task failures and lost create
answers, checked against the simulator's own books (charged and refunded per account)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from runner.review.results import result_rows
from runner.run.clock import VirtualClock
from runner.simulator.video import render_video

from .dispatchhelp import Sim, dispatch, new_run

pytestmark = pytest.mark.anyio


@functools.cache
def _video() -> bytes:
    return render_video(
        prompt="money", duration=4, aspect_ratio="16:9", tier="fast", generate_audio=True
    )


def _books(sim: Sim) -> tuple[float, float]:
    accounts = sim.truth()["accounts"].values()
    return sum(a["charged"] for a in accounts), sum(a["refunded"] for a in accounts)


@pytest.mark.slow
async def test_a_night_of_500_jobs_costs_what_the_provider_charged(tmp_path: Path) -> None:
    clock = VirtualClock()
    sim = Sim(
        clock,
        # 3 % of creates (every 33rd): the gateway admits and charges them, then their answer
        # is lost (a replay may land on such a call too: then the job is held, so the calls
        # are fixed rather than drawn, to keep this test about the first loss)
        {
            "endpoint": "create",
            "kind": "respond",
            "status": 504,
            "processed": True,
            "calls": list(range(5, 520, 33)),
        },
        fail_rates={"service_error": 0.05, "content_policy_violation": 0.02},
        video_source=lambda **_: _video(),
        seed=7,
    )
    async with new_run(tmp_path, 500) as run:
        await dispatch(run, clock=clock, sim=sim, concurrency=50, give_up_after=300)
        counts = run.counts()
        tally = run.ledger.tally(run.run_id)
        exported = sum(r["credits"] or 0.0 for r in result_rows(run.ledger, run.run_id))
    truth = sim.truth()
    charged, refunded = _books(sim)
    assert "unknown" not in counts, counts  # the one replay settled every lost answer
    assert counts.get("done", 0) >= 480 and sum(counts.values()) == 500, counts
    assert any(f["kind"] == "respond" for f in truth["faults_fired"])  # answers were lost
    assert refunded > 0
    per_job = 0.01 * 500
    assert abs(tally.charged - charged) <= per_job, (tally.charged, charged)
    assert abs(tally.refunded - refunded) <= per_job, (tally.refunded, refunded)
    assert abs(tally.spent - (charged - refunded)) <= per_job
    assert exported == pytest.approx(tally.spent)  # `runner export`: the same figure per job
    # no body paid twice, beyond a failed task and its one allowed resubmit
    failed_bodies: dict[str, int] = {}
    for task in truth["tasks"]:
        if task["status"] != "completed":
            failed_bodies[task["body_hash"]] = failed_bodies.get(task["body_hash"], 0) + 1
    for body, n in truth["creates_by_body"].items():
        assert n - failed_bodies.get(body, 0) <= 1, (body, n)
