"""The fault matrix's create rows (docs/reliability.md §7.1, N1–N14) at runner level: the
dispatcher against the in-process simulator on a virtual clock, each test judged by the
simulator's ground truth (creates, tasks per body, requests per endpoint) and the ledger's
final states."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from runner.run import runs
from runner.run.clock import VirtualClock
from runner.simulator.config import DEFAULT_KEY, KeyConfig

from .dispatchhelp import Sim, dispatch, new_run
from .faulthelp import (
    CREATE,
    FAST,
    ReadTimeout,
    Refuse,
    Until,
    Watch,
    arrivals,
    attempt_details,
    gaps,
    jobs,
    ledger_text,
    requests,
)

pytestmark = pytest.mark.anyio


@pytest.mark.fault("N1")
async def test_a_retry_after_of_7_s_holds_every_create_for_7_s_and_each_job_is_created_once(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    sim = Sim(clock, {"endpoint": "create", "kind": "rate_limit", "retry_after": 7, "calls": [2]})
    async with new_run(tmp_path, 4) as run:
        outcome = await dispatch(run, clock=clock, sim=sim, **FAST)
        assert run.counts() == {"done": 4}
    truth = sim.truth()
    seen = arrivals(truth)
    assert [s for _, s in seen] == ["200", "429", "200", "200", "200"]
    throttled_at = seen[1][0]
    assert all(t >= throttled_at + 7 for t, _ in seen[2:])  # no worker sent during the pause
    assert sorted(truth["creates_by_body"].values()) == [1, 1, 1, 1]
    assert outcome.stop_kind is None


def _throttled(retry_after: str) -> dict[str, Any]:
    """A 429 on the first three creates whose Retry-After says ``retry_after``."""
    return {
        "endpoint": "create",
        "kind": "respond",
        "status": 429,
        "headers": {"Retry-After": retry_after},
        "calls": [1, 2, 3],
    }


@pytest.mark.fault("N2")
async def test_a_retry_after_date_is_honoured(tmp_path: Path) -> None:
    clock = VirtualClock()
    sim = Sim(
        clock,
        {
            "endpoint": "create",
            "kind": "rate_limit",
            "retry_after": 30,
            "retry_after_format": "date",
            "calls": [1],
        },
    )
    async with new_run(tmp_path, 2) as run:
        await dispatch(run, clock=clock, sim=sim, **FAST)
        assert run.counts() == {"done": 2}
    truth = sim.truth()
    seen = arrivals(truth)
    assert [s for _, s in seen] == ["429", "200", "200"]
    # the date is to the second: 29-30 s from the answer, then creates go again at once
    assert 29 <= seen[1][0] - seen[0][0] <= 31
    assert sorted(truth["creates_by_body"].values()) == [1, 1]


@pytest.mark.fault("N2")
@pytest.mark.parametrize("retry_after", ["soon", "-5", "1e999"], ids=["garbage", "negative", "inf"])
async def test_a_garbage_or_negative_retry_after_backs_off_never_retrying_at_once(
    tmp_path: Path, retry_after: str
) -> None:
    clock = VirtualClock()
    sim = Sim(clock, _throttled(retry_after))
    async with new_run(tmp_path, 1) as run:
        await dispatch(run, clock=clock, sim=sim, **FAST)
        assert run.counts() == {"done": 1}
    truth = sim.truth()
    seen = arrivals(truth)
    assert [s for _, s in seen] == ["429", "429", "429", "200"]
    waits = gaps([t for t, _ in seen])
    # the normal backoff (2 s base, doubling, full jitter at 0.5 here), not "retry now"
    assert waits[0] >= 0.5
    assert waits[0] < waits[1] < waits[2]
    assert list(truth["creates_by_body"].values()) == [1]


@pytest.mark.fault("N2")
async def test_a_retry_after_of_a_day_stops_creates_naming_the_date_and_finishes_paid_work(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    sim = Sim(
        clock, {"endpoint": "create", "kind": "rate_limit", "retry_after": 86_400, "calls": [2]}
    )
    async with new_run(tmp_path, 3) as run:
        outcome = await dispatch(run, clock=clock, sim=sim, **FAST)
        assert run.counts() == {"done": 1, "pending": 2}  # nothing lost: the rest wait
    assert outcome.stop_kind == "paused"
    assert outcome.stop_reason is not None
    assert re.search(r"continue after 20\d\d-\d\d-\d\d \d\d:\d\d", outcome.stop_reason)
    truth = sim.truth()
    assert [s for _, s in arrivals(truth)] == ["200", "429"]  # none after the 429
    assert list(truth["creates_by_body"].values()) == [1]


@pytest.mark.fault("N3")
async def test_ten_minutes_of_429_without_retry_after_back_off_to_the_cap_open_the_breaker(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    sim = Sim(clock, {"endpoint": "create", "kind": "respond", "status": 429})
    watch = Watch(sim.transport, clock)
    until = Until(watch, sim, clock, clock.now + 600)  # the 429s end after 10 minutes
    sim.transport = until
    async with new_run(tmp_path, 2) as run:
        # a very high ceiling: each 429 halves the (real-time) create rate
        outcome = await dispatch(run, clock=clock, sim=sim, **{**FAST, "rate": 1e6})
        assert run.counts() == {"done": 2}
    assert outcome.stop_kind is None
    truth = sim.truth()
    seen = arrivals(truth)
    throttled = [t for t, s in seen if s == "429"]
    assert [s for _, s in seen] == ["429"] * len(throttled) + ["200", "200"]
    waits = gaps(throttled)
    assert waits[:5] == sorted(waits[:5]) and waits[4] >= 8 * waits[0]  # it grows...
    assert max(waits) <= 120 + 10  # ...to the cap (plus the breaker's first cooldown)
    assert len(throttled) <= 20  # never a tight loop
    # the soft breaker: probes are free credit checks, each after a quiet cooldown
    probes = [s.sent for s in watch.on("/v1/credits")]
    assert probes
    assert all(not (p - 10 < t <= p) for p in probes for t, _ in seen)
    assert until.ended_at is not None
    assert {s.path for s in watch.seen if s.sent < until.ended_at} == {CREATE, "/v1/credits"}
    # creates resume once the provider does, and nothing was created twice
    assert until.ended_at <= seen[-2][0] <= until.ended_at + 120 + 10
    assert sorted(truth["creates_by_body"].values()) == [1, 1]


@pytest.mark.fault("N4")
async def test_refused_connections_are_sent_again_and_each_job_is_created_once_when_back(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    sim = Sim(clock)
    sim.transport = Refuse(sim.transport, creates=6)  # each job's first two sends
    async with new_run(tmp_path, 3) as run:
        await dispatch(run, clock=clock, sim=sim, **FAST)
        assert run.counts() == {"done": 3}
    truth = sim.truth()
    assert truth["requests"]["create"] == {"200": 3}  # one create each, once it could connect
    assert sorted(truth["creates_by_body"].values()) == [1, 1, 1]


@pytest.mark.fault("N5", "N6", "N7")
@pytest.mark.parametrize(
    ("fault", "processed"),
    [
        ({"kind": "hang", "processed": True}, True),  # N5: the answer comes after the timeout
        ({"kind": "reset", "processed": True}, True),  # N6: reset after the task was made
        ({"kind": "reset"}, False),  # N7: reset before it was processed
    ],
    ids=["N5-answer-after-the-read-timeout", "N6-reset-after-accepted", "N7-reset-before"],
)
async def test_a_lost_create_answer_is_replayed_once_with_its_key_and_one_task_exists(
    tmp_path: Path, fault: dict[str, Any], processed: bool
) -> None:
    clock = VirtualClock()
    sim = Sim(clock, {"endpoint": "create", "calls": [1], **fault})
    watch = Watch(ReadTimeout(sim.transport, (CREATE,), times=1), clock)
    sim.transport = watch
    async with new_run(tmp_path, 1) as run:
        await dispatch(run, clock=clock, sim=sim, **FAST)
        assert run.counts() == {"done": 1}
    truth = sim.truth()
    assert len(truth["tasks"]) == 1
    assert list(truth["creates_by_body"].values()) == [1]
    keys = [s.headers["idempotency-key"] for s in watch.on(CREATE)]
    assert len(keys) == 2 and keys[0] == keys[1]  # the one replay, with the same key
    assert truth["creates_by_idempotency_key"] == {keys[0]: 1}
    # a task made by the lost send comes back from the replay; otherwise the replay made it
    assert truth["replays_by_idempotency_key"] == ({keys[0]: 1} if processed else {})


@pytest.mark.fault("N8")
@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_a_5xx_on_create_made_or_not_is_replayed_with_its_key_never_making_two_tasks(
    tmp_path: Path, status: int
) -> None:
    clock = VirtualClock()
    sim = Sim(
        clock,
        {"endpoint": "create", "status": status, "processed": True, "calls": [1]},
        {"endpoint": "create", "status": status, "calls": [2]},
    )
    watch = Watch(sim.transport, clock)
    sim.transport = watch
    async with new_run(tmp_path, 2) as run:
        await dispatch(run, clock=clock, sim=sim, **FAST)
        assert run.counts() == {"done": 2}
    truth = sim.truth()
    assert sorted(truth["creates_by_body"].values()) == [1, 1]
    keys = [s.headers["idempotency-key"] for s in watch.on(CREATE)]
    made, not_made = keys[:2]
    assert Counter(keys) == {made: 2, not_made: 2}  # each sent twice, with its own key
    assert truth["creates_by_idempotency_key"] == {made: 1, not_made: 1}
    assert truth["replays_by_idempotency_key"] == {made: 1}


@pytest.mark.fault("N8")
async def test_three_creates_held_after_their_replay_failed_open_the_breaker_probed_free(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    sim = Sim(clock, {"endpoint": "create", "status": 500, "processed": True, "call_to": 6})
    async with new_run(tmp_path, 3) as run:
        outcome = await dispatch(run, clock=clock, sim=sim, **FAST)
        assert run.counts() == {"unknown": 3}  # held for `runner resolve`
    truth = sim.truth()
    assert requests(truth, "create") == 6  # each job sent and replayed, never a third time
    assert sorted(truth["creates_by_body"].values()) == [1, 1, 1]  # never two tasks
    assert sorted(truth["replays_by_idempotency_key"].values()) == [1, 1, 1]
    assert requests(truth, "credits") >= 1  # the breaker's probe, a free credit check
    assert outcome.stop_kind is None  # the probe answered: creates may go on


def _garbage(**fault: Any) -> dict[str, Any]:
    return {"endpoint": "create", "calls": [1], "processed": True, **fault}


HTML = f"<html><body>Bad gateway (Authorization: Bearer {DEFAULT_KEY})</body>" + "x" * 5000


@pytest.mark.fault("N9")
@pytest.mark.parametrize(
    "fault",
    [
        _garbage(status=200, body=HTML, content_type="text/html"),
        _garbage(status=200, body='{"id": "task-unified-17748', content_type="application/json"),
        _garbage(kind="patch", json_body={"id": None, "echo": f"key {DEFAULT_KEY}"}),
        _garbage(kind="patch", json_body={"id": ""}),
        _garbage(kind="patch", json_body={"id": 1774857405}),
        _garbage(kind="patch", json_body={"id": "../v1/credits"}),
    ],
    ids=["html", "truncated-json", "no-id", "empty-id", "number-id", "id-outside-the-pattern"],
)
async def test_a_2xx_create_without_a_usable_task_id_is_unknown_kept_short_and_replayed(
    tmp_path: Path, fault: dict[str, Any]
) -> None:
    clock = VirtualClock()
    sim = Sim(clock, fault)
    async with new_run(tmp_path, 1) as run:
        await dispatch(run, clock=clock, sim=sim, **FAST)
        assert run.counts() == {"done": 1}  # the replay found the task the 2xx had made
        (detail,) = attempt_details(run)
        stored = ledger_text(run)
    assert 0 < len(detail) <= 2048  # the excerpt of the odd answer, short
    assert DEFAULT_KEY not in stored  # and redacted
    truth = sim.truth()
    assert list(truth["creates_by_body"].values()) == [1]
    assert list(truth["replays_by_idempotency_key"].values()) == [1]


@pytest.mark.fault("N10")
async def test_extra_fields_and_integer_error_codes_are_read_tolerantly(tmp_path: Path) -> None:
    clock = VirtualClock()
    extra = {"surprise": {"nested": [1, 2]}, "object": 7}
    sim = Sim(
        clock,
        {"endpoint": "create", "status": 400, "calls": [1]},  # error.code 400, an integer
        {"endpoint": "create", "kind": "rate_limit", "retry_after": 1, "calls": [2]},
        {"endpoint": "create", "kind": "patch", "json_body": extra, "call_from": 3},
        {"endpoint": "batch", "kind": "patch", "json_body": extra},
        {"endpoint": "task", "kind": "patch", "json_body": extra},
        int_error_codes=True,
    )
    async with new_run(tmp_path, 3) as run:
        await dispatch(run, clock=clock, sim=sim, **FAST)
        assert run.counts() == {"rejected": 1, "done": 2}
        (rejected,) = [j for j in jobs(run) if j.state == "rejected"]
    assert rejected.error_code == "400"
    assert rejected.error_message and "None" not in rejected.error_message
    truth = sim.truth()
    assert truth["requests"]["create"] == {"400": 1, "429": 1, "200": 2}
    assert sorted(truth["creates_by_body"].values()) == [1, 1]


POLICY = {
    "error": {
        "code": "content_policy_violation",
        "message": "The prompt was refused by the content policy",
        "type": "invalid_request_error",
    }
}


@pytest.mark.fault("N11")
async def test_refused_rows_are_rejected_once_without_a_breaker_and_the_others_go_on(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    sim = Sim(
        clock,
        {"endpoint": "create", "status": 400, "calls": [1]},
        {"endpoint": "create", "status": 400, "json_body": POLICY, "calls": [2, 3]},
    )
    async with new_run(tmp_path, 5) as run:
        outcome = await dispatch(run, clock=clock, sim=sim, **FAST)
        assert run.counts() == {"rejected": 3, "done": 2}
        rejected = [j for j in jobs(run) if j.state == "rejected"]
    assert outcome.stop_kind is None
    assert [j.error_code for j in rejected] == [
        "invalid_request",
        "content_policy_violation",
        "content_policy_violation",
    ]
    assert all(j.row >= 2 and j.source for j in rejected)  # shown with its row
    assert "refused by the content policy" in (rejected[1].error_message or "")
    truth = sim.truth()
    assert requests(truth, "create") == 5  # no refused row was sent again
    assert requests(truth, "credits") == 0  # three refusals in a row opened no breaker
    assert sorted(truth["creates_by_body"].values()) == [1, 1]


@pytest.mark.fault("N12")
async def test_a_401_mid_run_stops_creates_naming_the_variable_while_paid_work_finishes(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    sim = Sim(clock, {"endpoint": "create", "status": 401, "calls": [3]})
    watch = Watch(sim.transport, clock)
    sim.transport = watch
    async with new_run(tmp_path, 5) as run:
        outcome = await dispatch(run, clock=clock, sim=sim, **FAST)
        truth = sim.truth()
        made = truth["requests"]["create"].get("200", 0)
        assert made >= 2
        assert run.counts() == {"done": made, "pending": 5 - made}  # paid ones downloaded
        assert runs.finish_state(run.ledger, run.run_id, outcome) == 3
        stored = ledger_text(run)
    assert outcome.stop_kind == "auth"
    assert outcome.stop_reason and "EVOLINK_API_KEY" in outcome.stop_reason
    assert DEFAULT_KEY not in outcome.stop_reason + stored
    (refused,) = [s for s in watch.on(CREATE) if s.status == 401]
    assert all(s.sent <= refused.answered for s in watch.on(CREATE))  # none sent after it
    assert len(truth["tasks"]) == made


@pytest.mark.fault("N13")
async def test_a_402_mid_run_says_top_up_and_the_next_run_creates_the_rest_once(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    sim = Sim(clock, {"endpoint": "create", "status": 402, "calls": [3]})
    watch = Watch(sim.transport, clock)
    sim.transport = watch
    async with new_run(tmp_path, 5) as run:
        outcome = await dispatch(run, clock=clock, sim=sim, **FAST)
        made = sim.truth()["requests"]["create"].get("200", 0)
        assert run.counts() == {"done": made, "pending": 5 - made}
        assert runs.finish_state(run.ledger, run.run_id, outcome) == 3
        assert outcome.stop_kind == "balance"
        assert outcome.stop_reason and "top up" in outcome.stop_reason.lower()
        (refused,) = [s for s in watch.on(CREATE) if s.status == 402]
        assert all(s.sent <= refused.answered for s in watch.on(CREATE))
        # topped up: the next run (resume) sends the pending jobs, each once
        again = await dispatch(run, clock=clock, sim=sim, **FAST)
        assert run.counts() == {"done": 5}
        assert runs.finish_state(run.ledger, run.run_id, again) == 0
    truth = sim.truth()
    assert sorted(truth["creates_by_body"].values()) == [1] * 5


@pytest.mark.fault("N14")
@pytest.mark.parametrize(
    ("denial", "kind"), [("key_model_not_allowed", "model"), ("model_access_denied", "access")]
)
async def test_a_model_the_key_may_not_use_stops_creates_naming_it(
    tmp_path: Path, denial: str, kind: str
) -> None:
    clock = VirtualClock()
    allowed = "seedance-2.0-mini-text-to-video"
    sim = Sim(
        clock,
        keys={DEFAULT_KEY: KeyConfig(models=frozenset({allowed}))},
        model_denial=denial,
    )
    async with new_run(tmp_path, 3) as run:
        outcome = await dispatch(run, clock=clock, sim=sim, **FAST)
        assert run.counts() == {"pending": 3}
    assert outcome.stop_kind == kind
    assert outcome.stop_reason and "seedance-2.0-fast-text-to-video" in outcome.stop_reason
    if denial == "key_model_not_allowed":  # the gateway lists what the key may use
        assert allowed in outcome.stop_reason
    truth = sim.truth()
    assert truth["tasks"] == []
    assert requests(truth, "create") == 1  # the refusal stopped creates at once
