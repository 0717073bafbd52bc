"""EvoLink as a provider, in process against the simulator's ASGI app: what each answer of the
gateway becomes (docs/evolink.md §7.3, §15, §17-§22), checked against the simulator's ground
truth (tasks made, requests per endpoint)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

import runner
from runner.models import Request
from runner.providers.base import (
    AccessLost,
    Created,
    Funds,
    NotSent,
    Rejected,
    Stop,
    TaskGone,
    TaskView,
    Transient,
    Unknown,
)
from runner.providers.evolink import EvoLink, valid_task_id
from runner.simulator.app import SimApp, SimConfig, create_app
from runner.simulator.config import DEFAULT_KEY
from runner.simulator.faults import parse_plan
from runner.simulator.testing import ManualClock

pytestmark = pytest.mark.anyio
REQUEST = Request("text", "A lamp on a desk", 4, "720p", "16:9", False, False)
FAST = "seedance-2.0-fast-text-to-video"
KEY = "idempotency-key-0001"
SECRET = "sk-TOPSECRET-0123456789abcdef"  # an API key that must never show in a message
SIM_DATE = datetime(2026, 3, 1, 10, 30, 0, tzinfo=UTC)  # what the provider's clock says


class Spy(httpx.AsyncBaseTransport):
    """The simulator's ASGI transport, noting each request as sent (for what the simulator's
    ground truth does not record: the raw path)."""

    def __init__(self, app: SimApp) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


def _provider(
    *faults: dict[str, Any], key: str = DEFAULT_KEY, **config: Any
) -> tuple[EvoLink, SimApp, Spy]:
    config.setdefault("speed", 10.0)
    app = create_app(SimConfig(**config), clock=ManualClock())
    if faults:
        app.sim.set_faults(parse_plan(list(faults)))
    spy = Spy(app)
    http = httpx.AsyncClient(transport=spy, base_url="http://sim.test")
    return EvoLink(http, key), app, spy


def _requests(app: SimApp, endpoint: str) -> int:
    """How many requests the simulator saw on ``endpoint`` (ground truth)."""
    counts: dict[str, int] = app.sim.snapshot()["requests"].get(endpoint, {})
    return sum(counts.values())


async def _create(provider: EvoLink, key: str = KEY) -> Any:
    return await provider.create(provider.body_for(REQUEST, "fast"), key)


def _error(code: str, message: str = "refused", **fields: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "type": "evo_api_error", **fields}}


def _respond(status: int, body: Any = None, **extra: Any) -> dict[str, Any]:
    fault: dict[str, Any] = {"endpoint": "create", "kind": "respond", "status": status}
    if body is not None:
        fault["json_body"] = body
    return fault | extra


# ---------------------------------------------------------------------- creates


async def test_a_create_then_reads_keyed_by_id_with_gone_per_id() -> None:
    provider, app, _ = _provider()
    body = provider.body_for(REQUEST, "fast")
    assert body["model"] == FAST
    created = await provider.create(body, KEY)
    assert isinstance(created, Created) and not created.replayed
    reads = await provider.read_tasks([created.task_id, "task-unified-nope"])
    assert isinstance(reads[created.task_id], TaskView)
    assert isinstance(reads["task-unified-nope"], TaskGone)
    assert len(app.sim.snapshot()["tasks"]) == 1
    assert provider.time_scale() == 10.0
    assert provider.key_env == "EVOLINK_API_KEY"
    await provider.http.aclose()


async def test_the_same_key_again_is_a_replay_of_the_same_task_not_a_new_one() -> None:
    provider, app, _ = _provider()
    first = await _create(provider)
    again = await _create(provider)
    assert isinstance(first, Created) and isinstance(again, Created)
    assert (again.task_id, again.replayed) == (first.task_id, True)
    truth = app.sim.snapshot()
    assert len(truth["tasks"]) == 1
    assert truth["creates_by_idempotency_key"] == {KEY: 1}
    assert truth["replays_by_idempotency_key"] == {KEY: 1}


@pytest.mark.parametrize(
    "task_id", [None, "", "../v1/credits", "task..unified", "-leading-dash", "a" * 129, "a b"]
)
async def test_a_2xx_create_without_a_valid_task_id_is_unknown(task_id: str | None) -> None:
    provider, app, _ = _provider(
        {"endpoint": "create", "kind": "patch", "json_body": {"id": task_id}}
    )
    result = await _create(provider)
    assert isinstance(result, Unknown) and result.replayable
    assert len(app.sim.snapshot()["tasks"]) == 1  # the task exists: it must not be re-created


@pytest.mark.parametrize(
    "task_id",
    ["task-unified-1774857405-abc12345", "a", "A1._:-z", "x" * 128, "1:2:3"],
)
def test_valid_task_ids(task_id: str) -> None:
    assert valid_task_id(task_id)


@pytest.mark.parametrize(
    "task_id", ["", ".hidden", "a..b", "a/b", "a%2Fb", "a?b", "é", "x" * 129, "a\nb", None, 7]
)
def test_invalid_task_ids(task_id: object) -> None:
    assert not valid_task_id(task_id)


@pytest.mark.parametrize(
    ("fault", "outcome", "tasks"),
    [
        (_respond(408), NotSent, 0),
        (_respond(429), NotSent, 0),
        (_respond(400), Rejected, 0),
        (_respond(413), Rejected, 0),
        (_respond(415, _error("invalid_request", "unsupported media type")), Rejected, 0),
        (_respond(422), Rejected, 0),
        (_respond(418, _error("teapot")), Rejected, 0),
        (_respond(400, _error("content_policy_violation", "blocked")), Rejected, 0),
        (_respond(500, processed=True), Unknown, 1),
        (_respond(502), Unknown, 0),
        (_respond(503, _error("service_unavailable")), Unknown, 0),
        (_respond(504, processed=True), Unknown, 1),
        (_respond(409), Unknown, 0),
        (_respond(302, {"moved": True}), Unknown, 0),
        ({"endpoint": "create", "kind": "reset", "processed": True}, Unknown, 1),
        ({"endpoint": "create", "kind": "drop", "processed": True}, Unknown, 1),
    ],
    ids=lambda v: str(v.get("status", v.get("kind"))) if isinstance(v, dict) else None,
)
async def test_create_outcomes_match_what_the_simulator_did(
    fault: dict[str, Any], outcome: type, tasks: int
) -> None:
    provider, app, _ = _provider(fault | {"calls": [1]})
    result = await _create(provider)
    assert isinstance(result, outcome), result
    assert len(app.sim.snapshot()["tasks"]) == tasks
    await provider.http.aclose()


async def test_a_rejection_carries_the_providers_code_and_message() -> None:
    body = _error("invalid_request", "duration must be between 4 and 15", param="duration")
    provider, _, _ = _provider(_respond(400, body))
    result = await _create(provider)
    assert isinstance(result, Rejected)
    assert (result.code, result.http_status) == ("invalid_request", 400)
    assert "duration must be between 4 and 15" in result.message
    assert "(field: duration)" in result.message


async def test_a_429_is_not_sent_with_its_retry_after() -> None:
    provider, app, _ = _provider({"endpoint": "create", "kind": "rate_limit", "retry_after": 7})
    result = await _create(provider)
    assert isinstance(result, NotSent)
    assert (result.http_status, result.retry_after, result.rate_limited) == (429, 7.0, True)
    assert app.sim.snapshot()["tasks"] == []


@pytest.mark.parametrize(
    ("status", "code", "replayable"),
    [
        (409, "idempotency_conflict", False),
        (422, "idempotency_conflict", False),
        (409, "paid_outcome_unknown", True),
        (503, "paid_outcome_unknown", True),
        (202, "paid_outcome_unknown", True),
    ],
)
async def test_replay_and_conflict_codes_are_unknown_whatever_the_status(
    status: int, code: str, replayable: bool
) -> None:
    provider, app, _ = _provider(_respond(status, _error(code, "see the docs")))
    result = await _create(provider)
    assert isinstance(result, Unknown)
    assert (result.code, result.replayable, result.http_status) == (code, replayable, status)
    assert app.sim.snapshot()["tasks"] == []


async def test_401_stops_for_the_key() -> None:
    provider, _, _ = _provider(_respond(401))
    result = await _create(provider)
    assert isinstance(result, Stop) and result.kind == "auth"
    assert "EVOLINK_API_KEY" in result.message and "runner resume" in result.message


@pytest.mark.parametrize(
    ("status", "kind"), [(403, "access"), (404, "endpoint"), (405, "endpoint")]
)
async def test_403_404_405_stop(status: int, kind: str) -> None:
    provider, app, _ = _provider(_respond(status))
    result = await _create(provider)
    assert isinstance(result, Stop) and result.kind == kind
    assert result.http_status == status
    assert app.sim.snapshot()["tasks"] == []


async def test_a_model_the_key_may_not_use_stops_naming_it_and_the_allowed_ones() -> None:
    allowed = ["seedance-2.0-mini-text-to-video", "seedance-2.0-mini-image-to-video"]
    provider, app, _ = _provider(
        _respond(402, _error("key_model_not_allowed", allowed_models=allowed))
    )
    result = await _create(provider)
    assert isinstance(result, Stop)
    assert (result.kind, result.code, result.allowed) == (
        "model",
        "key_model_not_allowed",
        (*allowed,),
    )
    assert FAST in result.message
    assert all(m in result.message for m in allowed)
    assert app.sim.snapshot()["tasks"] == []


async def test_the_simulators_own_model_refusal_stops() -> None:
    # a key limited to the mini models, asked for fast: the simulator refuses by itself
    from runner.simulator.config import KeyConfig

    keys = {DEFAULT_KEY: KeyConfig(models=frozenset({"seedance-2.0-mini-text-to-video"}))}
    provider, app, _ = _provider(keys=keys)
    result = await _create(provider)
    assert isinstance(result, Stop)
    assert (result.kind, result.allowed) == ("model", ("seedance-2.0-mini-text-to-video",))
    assert FAST in result.message
    assert app.sim.snapshot()["tasks"] == []


async def test_the_simulators_own_daily_limit_stops_until_its_midnight() -> None:
    from runner.simulator.config import KeyConfig

    key = KeyConfig(daily_limit=20.0, reset_timezone="Asia/Shanghai")
    # simulated time 10:30 UTC = 18:30 in Shanghai: its midnight is 5.5 h away, whatever
    # this machine's clock says (the simulator's Date header is simulated time)
    provider, app, _ = _provider(keys={DEFAULT_KEY: key}, start_time=SIM_DATE.timestamp())
    result = await _create(provider)
    assert isinstance(result, Stop)
    assert (result.kind, result.code) == ("daily", "key_daily_quota_exhausted")
    assert result.reset_in == pytest.approx(5.5 * 3600, abs=1.0)
    assert app.sim.snapshot()["tasks"] == []


async def test_the_simulators_own_key_quota_is_a_balance_stop_naming_the_key() -> None:
    from runner.simulator.config import KeyConfig

    provider, app, _ = _provider(keys={DEFAULT_KEY: KeyConfig(total_limit=10.0)})
    result = await _create(provider)
    assert isinstance(result, Stop) and result.kind == "balance"
    assert "this API key has used up its own credit limit" in result.message
    assert "10.00 credits left of 10.00" in result.message
    assert app.sim.snapshot()["tasks"] == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # reset_at wins, measured against the provider's Date (not this machine's clock)
        ({"reset_at": "2026-03-01T12:00:00Z", "reset_timezone": "Asia/Shanghai"}, 5400.0),
        ({"reset_at": "2026-03-01T19:00:00+08:00"}, 1800.0),
        # else the next midnight in reset_timezone: 10:30 UTC is 18:30 in Shanghai
        ({"reset_timezone": "Asia/Shanghai"}, 5.5 * 3600),
        ({"reset_timezone": "UTC"}, 13.5 * 3600),
        ({"reset_timezone": "America/New_York"}, 18.5 * 3600),  # 05:30 there
        ({"reset_timezone": "Not/AZone"}, None),
        ({}, None),
    ],
)
@pytest.mark.parametrize("code", ["token_daily_quota_exceeded", "key_daily_quota_exhausted"])
async def test_a_daily_limit_stops_until_the_reset(
    code: str, fields: dict[str, Any], expected: float | None
) -> None:
    figures = {"daily_limit_credits": 100.0, "daily_used_credits": 99.5}
    provider, app, _ = _provider(
        _respond(
            402,
            _error(code, **figures, **fields),
            headers={"Date": format_datetime(SIM_DATE, True)},
        )
    )
    result = await _create(provider)
    assert isinstance(result, Stop)
    assert (result.kind, result.code) == ("daily", code)
    assert result.reset_in == (pytest.approx(expected) if expected is not None else None)
    assert "daily credit limit" in result.message and "runner resume" in result.message
    assert "99.50 credits of 100.00 credits" in result.message
    assert app.sim.snapshot()["tasks"] == []


async def test_a_daily_reset_without_a_date_header_counts_from_local_time() -> None:
    from runner.providers.evolink_create import classify_create

    now = SIM_DATE.timestamp()
    response = httpx.Response(
        402,
        json=_error("key_daily_quota_exhausted", reset_timezone="Europe/Berlin"),
        request=httpx.Request("POST", "http://sim.test/v1/videos/generations"),
    )
    result = classify_create(response, now=now)
    assert isinstance(result, Stop) and result.reset_in == pytest.approx(12.5 * 3600)


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (
            _error("insufficient_quota", account_balance_credits=3.25, estimated_credits=15.25),
            ["the EvoLink account is out of credits", "3.25 credits left", "about 15.25"],
        ),
        (_error("account_balance_insufficient"), ["the EvoLink account is out of credits"]),
        (
            _error(
                "key_quota_exhausted",
                remaining_credits=1.5,
                total_limit_credits=500.0,
                estimated_credits=15.25,
            ),
            ["this API key has used up its own credit limit", "1.50 credits left of 500.00"],
        ),
        (_error("insufficient_token_quota"), ["this API key has used up its own credit limit"]),
        (
            _error("brand_new_quota_code", limit_scope="token", remaining_credits=0.0),
            ["this API key has used up its own credit limit"],
        ),
        (
            {"error": {"code": "brand_new", "details": {"account_balance_credits": 2.0}}},
            ["the EvoLink account is out of credits", "2.00 credits left"],
        ),
        (_error("brand_new_quota_code"), ["EvoLink refused for lack of credits (HTTP 402"]),
        (None, ["the EvoLink account is out of credits"]),  # the simulator's insufficient_quota
    ],
)
async def test_a_402_stops_for_money_saying_which_limit(
    error: dict[str, Any] | None, words: list[str]
) -> None:
    provider, app, _ = _provider(_respond(402, error))
    result = await _create(provider)
    assert isinstance(result, Stop) and result.kind == "balance", result
    for w in words:
        assert w in result.message
    assert "runner resume" in result.message
    assert app.sim.snapshot()["tasks"] == []


async def test_the_simulators_own_balance_refusal_is_a_balance_stop() -> None:
    from runner.simulator.config import KeyConfig

    provider, app, _ = _provider(keys={DEFAULT_KEY: KeyConfig(balance=1.0)})
    result = await _create(provider)
    assert isinstance(result, Stop) and result.kind == "balance"
    assert app.sim.snapshot()["tasks"] == []


@pytest.mark.parametrize(
    ("status", "code", "kind", "words"),
    [
        (402, "key_disabled", "auth", "this API key is disabled"),
        (403, "key_disabled", "auth", "this API key is disabled"),
        (401, "key_expired", "auth", "this API key has expired (on 2026-01-01)"),
        (402, "user_disabled", "access", "the EvoLink account is disabled"),
        (403, "user_disabled", "access", "the EvoLink account is disabled"),
    ],
)
async def test_key_and_account_state_codes_stop_in_plain_words(
    status: int, code: str, kind: str, words: str
) -> None:
    provider, _, _ = _provider(_respond(status, _error(code, expired_at="2026-01-01")))
    result = await _create(provider)
    assert isinstance(result, Stop)
    assert (result.kind, result.code, result.http_status) == (kind, code, status)
    assert words in result.message
    assert "Traceback" not in result.message and "{" not in result.message


@pytest.mark.parametrize("status", [400, 401, 402, 403, 409, 422, 500, 503])
async def test_the_key_is_in_no_create_outcome(status: int) -> None:
    echoed = _error("whatever", f"the key {SECRET} was seen with Bearer {SECRET}")
    provider, _, _ = _provider(_respond(status, echoed), key=SECRET, accept_any_key=True)
    result = await _create(provider)
    assert SECRET not in repr(result) and SECRET[-12:] not in repr(result)
    assert "***" in repr(result) or status == 401  # the provider's words, the key masked


async def test_creates_carry_the_key_as_idempotency_key_and_x_evo_run_id_and_runners_ua() -> None:
    provider, app, _ = _provider()
    await _create(provider)
    truth = app.sim.snapshot()
    assert truth["creates_by_idempotency_key"] == {KEY: 1}
    assert [t["run_id"] for t in truth["tasks"]] == [KEY]  # X-Evo-Run-Id, as the simulator saw
    assert truth["user_agents"] == {"create": [f"runner/{runner.__version__}"]}


async def test_every_api_request_says_runners_user_agent() -> None:
    provider, app, _ = _provider()
    created = await _create(provider)
    assert isinstance(created, Created)
    await provider.read_tasks([created.task_id])
    await provider.read_tasks([created.task_id, "task-unified-1-missing"])
    await provider.balance()
    await provider.models()
    agents = app.sim.snapshot()["user_agents"]
    assert set(agents) == {"create", "task", "batch", "credits", "models"}
    assert all(a == [runner.USER_AGENT] for a in agents.values())


# ---------------------------------------------------------------------- task reads


async def test_an_invalid_task_id_is_gone_without_any_request() -> None:
    provider, app, spy = _provider()
    ids = ["../credits", "a/b", "", "x" * 200, "a..b"]
    reads = await provider.read_tasks(ids)
    assert set(reads) == set(ids)
    assert all(isinstance(v, TaskGone) for v in reads.values())
    assert spy.requests == []
    assert app.sim.snapshot()["requests"] == {}


async def test_task_ids_are_percent_encoded_in_the_path() -> None:
    provider, _, spy = _provider()
    reads = await provider.read_tasks(["task-unified-1:a.b"])
    assert isinstance(reads["task-unified-1:a.b"], TaskGone)  # the simulator does not know it
    assert spy.requests[-1].url.raw_path == b"/v1/tasks/task-unified-1%3Aa.b"


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AccessLost), (403, AccessLost), (500, Transient), (503, Transient), (429, Transient)],
)
async def test_a_failed_task_read_raises(status: int, error: type[Exception]) -> None:
    provider, app, _ = _provider()
    created = await _create(provider)
    assert isinstance(created, Created)
    app.sim.set_faults(parse_plan([{"endpoint": "task", "kind": "respond", "status": status}]))
    with pytest.raises(error):
        await provider.read_tasks([created.task_id])


async def _completed_view(patch: dict[str, Any]) -> TaskView:
    """A task read through a `patch` of the simulator's answer."""
    provider, app, _ = _provider()
    created = await _create(provider)
    assert isinstance(created, Created)
    app.sim.set_faults(parse_plan([{"endpoint": "task", "kind": "patch", "json_body": patch}]))
    view = (await provider.read_tasks([created.task_id]))[created.task_id]
    assert isinstance(view, TaskView)
    return view


BILLING = {
    "refund_scope": "account_balance",
    "refund_status": "completed",
    "charge_status": "released",
    "refunded_at": "2026-03-01T10:00:00Z",
    "reserved_credits": 15.2544,
    "refunded_credits": 15.2544,
}


async def test_a_refund_is_counted_only_with_the_whole_billing_proof() -> None:
    view = await _completed_view({"status": "failed", "billing": BILLING})
    assert view.refunded == pytest.approx(15.2544)


@pytest.mark.parametrize(
    "change",
    [
        {"refund_scope": None},
        {"refund_scope": "key_quota"},
        {"refund_status": None},
        {"refund_status": "pending"},
        {"charge_status": None},
        {"charge_status": "charged"},
        {"refunded_at": None},
        {"refunded_at": ""},
        {"refunded_credits": None},
        {"refunded_credits": 10.0},
        {"refunded_credits": "15.2544"},
        {"reserved_credits": None},
        {"refunded_credits": 0, "reserved_credits": 0},
    ],
)
async def test_a_refund_missing_any_proof_is_not_a_refund(change: dict[str, Any]) -> None:
    billing = {k: v for k, v in (BILLING | change).items() if v is not None}
    view = await _completed_view({"status": "failed", "billing": billing})
    assert view.refunded is None


async def test_failed_status_alone_is_no_refund() -> None:
    view = await _completed_view({"status": "failed", "error": {"code": "service_error"}})
    assert view.refunded is None and view.error_code == "service_error"


@pytest.mark.parametrize(
    ("patch", "used", "reserved"),
    [
        (
            {"status": "completed", "usage": {"credits_used": 12.5, "credits_reserved": 15.0}},
            12.5,
            15.0,
        ),
        ({"status": "completed", "usage": {"cost": {"credits": 9.75, "usd": 0.14}}}, 9.75, None),
        (
            {"status": "completed", "usage": {"credits_used": 3.0, "cost": {"credits": 9.0}}},
            3.0,
            None,
        ),
        (
            {"status": "processing", "usage": {"credits_used": 12.5, "credits_reserved": 15.0}},
            None,
            15.0,
        ),
        ({"status": "failed", "usage": {"cost": {"credits": 9.75}}}, None, None),
        ({"status": "completed", "usage": {"credits_used": "12.5"}}, None, None),
    ],
)
async def test_the_final_charge_is_read_only_once_completed(
    patch: dict[str, Any], used: float | None, reserved: float | None
) -> None:
    view = await _completed_view(patch)
    assert (view.credits_used, view.credits_reserved) == (used, reserved)


@pytest.mark.parametrize(
    ("patch", "code", "message"),
    [
        ({"status": "cancelled", "error": None}, "request_cancelled", None),
        ({"status": "cancelled", "error": {"code": "user_cancel"}}, "user_cancel", None),
        (
            {"status": "failed", "error": {"code": "unknown_error", "message": None}},
            "unknown_error",
            None,
        ),
        (
            {"status": "failed", "error": {"code": 500, "message": "line 1\nline 2"}},
            "500",
            "line 1\nline 2",
        ),
        ({"status": "failed", "error": "a string, not an object"}, None, None),
    ],
)
async def test_task_errors_read_without_inventing_text(
    patch: dict[str, Any], code: str | None, message: str | None
) -> None:
    view = await _completed_view(patch)
    assert (view.status, view.error_code, view.error_message) == (patch["status"], code, message)
    assert view.error_message != "None"


async def _tasks(provider: EvoLink, n: int) -> list[str]:
    """``n`` real tasks (one create each, keys of their own)."""
    ids = []
    for i in range(n):
        created = await _create(provider, f"idempotency-key-{i:04d}")
        assert isinstance(created, Created)
        ids.append(created.task_id)
    return ids


async def test_batch_reads_go_in_chunks_of_fifty_distinct_ids() -> None:
    provider, app, _ = _provider()
    ids = await _tasks(provider, 120)
    reads = await provider.read_tasks(ids + ids[:30])  # duplicates are read once
    assert list(reads) == ids
    assert all(isinstance(v, TaskView) and v.task_id == k for k, v in reads.items())
    assert _requests(app, "batch") == 3  # 50 + 50 + 20
    assert _requests(app, "task") == 0


async def test_a_single_id_is_one_task_read_not_a_batch() -> None:
    provider, app, _ = _provider()
    (task_id,) = await _tasks(provider, 1)
    reads = await provider.read_tasks([task_id, task_id])
    assert isinstance(reads[task_id], TaskView)
    assert (_requests(app, "batch"), _requests(app, "task")) == (0, 1)


async def test_an_id_missing_from_a_batch_is_confirmed_with_one_single_read() -> None:
    provider, app, _ = _provider()
    ids = await _tasks(provider, 3)
    missing = "task-unified-1700000000-missing1"
    reads = await provider.read_tasks([*ids, missing])
    assert all(isinstance(reads[i], TaskView) for i in ids)
    assert isinstance(reads[missing], TaskGone)
    assert app.sim.snapshot()["requests"]["batch"] == {"200": 1}
    assert app.sim.snapshot()["requests"]["task"] == {"404": 1}  # one confirmation, its 404


async def test_a_malformed_batch_item_is_confirmed_by_a_single_read() -> None:
    provider, app, _ = _provider()
    ids = await _tasks(provider, 2)
    app.sim.set_faults(
        parse_plan(
            [{"endpoint": "batch", "kind": "patch", "json_body": {"data": [{"id": ids[0]}]}}]
        )
    )
    reads = await provider.read_tasks(ids)
    assert all(isinstance(reads[i], TaskView) for i in ids)
    assert (_requests(app, "batch"), _requests(app, "task")) == (1, 2)


@pytest.mark.parametrize("status", [404, 405])
async def test_two_batch_misses_in_a_row_switch_to_single_reads_for_good(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    provider, app, _ = _provider({"endpoint": "batch", "kind": "respond", "status": status})
    ids = await _tasks(provider, 2)
    for _ in range(3):
        reads = await provider.read_tasks(ids)
        assert all(isinstance(reads[i], TaskView) for i in ids)
    assert provider.batch_reads is False
    said = [r for r in caplog.records if "one task at a time" in r.getMessage()]
    assert len(said) == 1  # logged once
    assert _requests(app, "batch") == 2  # the third read did not try the batch address
    assert _requests(app, "task") == 6  # every read still answered, one task at a time


async def test_one_batch_miss_then_an_answer_keeps_batch_reads() -> None:
    miss = {"endpoint": "batch", "kind": "respond", "status": 404}
    provider, app, _ = _provider({**miss, "calls": [1]}, {**miss, "calls": [3]})
    ids = await _tasks(provider, 2)
    for _ in range(4):
        await provider.read_tasks(ids)
    assert provider.batch_reads is True
    assert _requests(app, "batch") == 4
    assert _requests(app, "task") == 4  # the two misses, read singly


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"kind": "rate_limit", "retry_after": 5}, Transient),
        ({"status": 401}, AccessLost),
        ({"status": 403}, AccessLost),
        ({"status": 500}, Transient),
        ({"status": 503}, Transient),
        ({"status": 200, "body": "not json"}, Transient),
        ({"kind": "reset"}, Transient),
    ],
)
async def test_a_failed_batch_read_raises(fault: dict[str, Any], error: type[Exception]) -> None:
    provider, app, _ = _provider({"endpoint": "batch", "kind": "respond", **fault})
    ids = await _tasks(provider, 2)
    with pytest.raises(error) as caught:
        await provider.read_tasks(ids)
    if fault.get("kind") == "rate_limit":
        assert caught.value.retry_after == 5.0  # type: ignore[attr-defined]
    assert _requests(app, "task") == 0  # nothing read singly: the read as a whole failed


# ---------------------------------------------------------------------- credits, models


def _credits(token: dict[str, Any], user: dict[str, Any] | None = None) -> dict[str, Any]:
    data = {"token": token, "user": user or {"remaining_credits": 500.0, "used_credits": 3.0}}
    return {"endpoint": "credits", "kind": "patch", "json_body": {"data": data}}


@pytest.mark.parametrize(
    ("token", "funds"),
    [
        (
            {
                "remaining_credits": 80.0,
                "unlimited_credits": False,
                "daily_limit_credits": 100.0,
                "daily_used_credits": 70.0,
                "reset_timezone": "Asia/Shanghai",
            },
            Funds(500.0, 80.0, 100.0, 70.0, "Asia/Shanghai"),
        ),
        (
            {"remaining_credits": 0.0, "unlimited_credits": True},
            Funds(500.0, None, None, None, None),
        ),
        (
            {"remaining_credits": 80.0, "daily_limit_credits": 0, "daily_used_credits": 5.0},
            Funds(500.0, 80.0, None, 5.0, None),
        ),
        ({}, Funds(500.0, None, None, None, None)),
    ],
)
async def test_funds_from_the_credits_answer(token: dict[str, Any], funds: Funds) -> None:
    provider, app, _ = _provider(_credits(token))
    assert await provider.balance() == funds
    assert app.sim.snapshot()["tasks"] == []


def test_funds_available_is_the_least_limit() -> None:
    assert Funds(500.0, 80.0, 100.0, 70.0, None).available == 30.0
    assert Funds(500.0, None, None, None, None).available == 500.0
    assert Funds(None, None, None, None, None).available is None


async def test_the_simulators_own_credits_answer_is_funds() -> None:
    from runner.simulator.config import KeyConfig

    limited = KeyConfig(balance=900.0, total_limit=500.0, daily_limit=100.0, reset_timezone="UTC")
    provider, _, _ = _provider(keys={DEFAULT_KEY: limited})
    assert await provider.balance() == Funds(900.0, 500.0, 100.0, 0.0, "UTC")
    created = await _create(provider)
    assert isinstance(created, Created) and created.credits_reserved is not None
    funds = await provider.balance()
    assert funds.daily_used == pytest.approx(created.credits_reserved)
    assert funds.available == pytest.approx(100.0 - created.credits_reserved)


async def test_the_simulators_unlimited_key_is_the_account_balance() -> None:
    provider, _, _ = _provider()
    funds = await provider.balance()
    assert (funds.account, funds.key, funds.daily_limit) == (1_000_000.0, None, None)
    assert funds.available == 1_000_000.0


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"status": 401}, AccessLost),
        ({"status": 403}, AccessLost),
        ({"status": 500}, Transient),
        ({"status": 404}, Transient),
        ({"status": 200, "body": "not json"}, Transient),
    ],
)
async def test_a_failed_credits_read_raises(fault: dict[str, Any], error: type[Exception]) -> None:
    provider, _, _ = _provider({"endpoint": "credits", "kind": "respond", **fault})
    with pytest.raises(error):
        await provider.balance()


async def test_models_lists_what_the_key_may_use() -> None:
    from runner.simulator.config import KeyConfig

    mine = frozenset({"seedance-2.0-mini-text-to-video", FAST})
    provider, app, _ = _provider(keys={DEFAULT_KEY: KeyConfig(models=mine)})
    assert sorted(await provider.models() or []) == sorted(mine)
    assert _requests(app, "models") == 1


async def test_models_of_an_unrestricted_key_include_every_tier() -> None:
    provider, _, _ = _provider()
    models = await provider.models() or []
    assert {FAST, "seedance-2.0-text-to-video", "seedance-2.0-mini-text-to-video"} <= set(models)


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        ({"status": 404}, None),
        ({"status": 405}, None),
        ({"status": 401}, AccessLost),
        ({"status": 403}, AccessLost),
        ({"status": 500}, Transient),
        ({"status": 429}, Transient),
        ({"status": 200, "json_body": {"data": "not a list"}}, Transient),
    ],
)
async def test_models_when_the_gateway_cannot_list_or_fails(
    fault: dict[str, Any], outcome: type[Exception] | None
) -> None:
    provider, _, _ = _provider({"endpoint": "models", "kind": "respond", **fault})
    if outcome is None:
        assert await provider.models() is None
    else:
        with pytest.raises(outcome):
            await provider.models()


# ---------------------------------------------------------------------- the simulator's money


@pytest.mark.parametrize(
    ("refunds", "advance", "refunded"),
    [
        ("immediate", 3600, True),
        ("never", 3600, False),
        ("late", 3600, False),  # failed, the refund not made yet: no proof
        ("late", 10_000, True),
    ],
)
async def test_the_simulators_own_refund_counts_only_once_proven(
    refunds: str, advance: float, refunded: bool
) -> None:
    provider, app, _ = _provider(
        fail_rates={"service_error": 1.0}, refunds=refunds, refund_delay=7200.0
    )
    created = await _create(provider)
    assert isinstance(created, Created)
    app.sim.advance(advance)
    view = (await provider.read_tasks([created.task_id]))[created.task_id]
    assert isinstance(view, TaskView) and view.status == "failed"
    (task,) = app.sim.snapshot()["tasks"]
    assert view.credits_used is None  # never a final charge for a failed task
    assert view.refunded == (pytest.approx(task["refunded"]) if refunded else None)
    assert (task["refunded"] > 0) is refunded  # the simulator did (or did not) refund


async def test_the_simulators_final_charge_is_read_once_completed() -> None:
    provider, app, _ = _provider()
    created = await _create(provider)
    assert isinstance(created, Created)
    early = (await provider.read_tasks([created.task_id]))[created.task_id]
    assert isinstance(early, TaskView) and early.credits_used is None
    assert early.credits_reserved == created.credits_reserved
    app.sim.advance(3600)
    done = (await provider.read_tasks([created.task_id]))[created.task_id]
    (task,) = app.sim.snapshot()["tasks"]
    assert isinstance(done, TaskView) and done.status == "completed"
    assert done.credits_used == pytest.approx(task["credits_used"])
    assert done.refunded is None


async def test_the_same_key_while_the_first_create_is_in_flight_is_paid_outcome_unknown() -> None:
    import anyio

    # the first create is processed, then its answer is held back 0.3 s (wall)
    slow = {"endpoint": "create", "kind": "pass", "calls": [1], "delay": 0.3, "processed": True}
    provider, app, _ = _provider(slow)
    results: list[Any] = []

    async def send() -> None:
        results.append(await _create(provider))

    async with anyio.create_task_group() as tg:
        tg.start_soon(send)
        await anyio.sleep(0.1)
        tg.start_soon(send)
    second, first = results
    assert isinstance(first, Created)
    assert isinstance(second, Unknown) and second.code == "paid_outcome_unknown"
    assert second.replayable
    assert len(app.sim.snapshot()["tasks"]) == 1
