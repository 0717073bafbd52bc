"""What one answer to ``POST /v1/videos/generations`` means (docs/evolink.md §7.1, §7.3, §17, §20).

The error code decides first, then the HTTP status (as EvoLink's own CLI does, §20):

======================================  ======================================================
2xx with a valid task id                `Created` (``replayed``: ``idempotency-replayed: true``)
2xx without one                         `Unknown`
``paid_outcome_unknown`` (any status)   `Unknown` ``code="paid_outcome_unknown"``: replay it
``idempotency_conflict`` (any status)   `Unknown` ``code="idempotency_conflict"``: never replay
``key_model_not_allowed``               `Stop` ``model``, ``allowed`` = ``error.allowed_models``
daily key limits (§7.3)                 `Stop` ``daily``, ``reset_in`` until the reset
balance and key-quota codes (§7.3)      `Stop` ``balance``, saying which limit was hit
``key_disabled``, ``key_expired``       `Stop` ``auth``
``user_disabled``                       `Stop` ``access``
408, 429                                `NotSent`: provably not processed, send the same key again
401 / 402 (other codes) / 403           `Stop` ``auth`` / ``balance`` / ``access``
404, 405                                `Stop` ``endpoint``
409 (other codes), 5xx, 1xx/3xx         `Unknown`
400, 413, 415, 422, other 4xx           `Rejected` with the code and the provider's message
======================================  ======================================================

Only the §7.3 codes prove that no task was created; every other failure of a paid POST may
have created one. A `Stop` message is for the person running the batch: what happened and
what to do, in plain words, never the API key.
"""

from __future__ import annotations

import time as _time
from datetime import UTC, datetime, timedelta
from datetime import time as day_start
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from .base import Created, CreateOutcome, NotSent, Rejected, Stop, Unknown
from .evolink_wire import (
    error_code,
    error_fields,
    error_text,
    excerpt,
    json_number,
    parse_retry_after,
    valid_task_id,
)

KEYS_URL = "https://evolink.ai/dashboard/keys"
RESUME = "then run `runner resume`"

# docs/evolink.md §7.3: a paid POST refused with one of these created no task
ACCOUNT_CODES = frozenset(
    {
        "insufficient_quota",
        "insufficient_user_quota",
        "quota_not_enough",
        "account_balance_insufficient",
    }
)
KEY_QUOTA_CODES = frozenset({"insufficient_token_quota", "key_quota_exhausted"})
DAILY_CODES = frozenset({"token_daily_quota_exceeded", "key_daily_quota_exhausted"})
MODEL_CODE = "key_model_not_allowed"
STATE_CODES = frozenset({"key_disabled", "key_expired", "user_disabled"})
PRE_CHARGE_CODES = ACCOUNT_CODES | KEY_QUOTA_CODES | DAILY_CODES | STATE_CODES | {MODEL_CODE}
REPLAY_CODE = "paid_outcome_unknown"
CONFLICT_CODE = "idempotency_conflict"


def classify_create(
    response: httpx.Response,
    *,
    model: str | None = None,
    secret: str | None = None,
    now: float | None = None,
) -> CreateOutcome:
    """The outcome of one create answer (the table above). ``model`` is the body's model (named
    in a model refusal), ``secret`` the API key (kept out of every message), ``now`` the unix
    time used when the answer has no ``Date`` header (default: this machine's clock)."""
    status = response.status_code
    code = error_code(response)
    if 200 <= status < 300:
        created = _created(response, secret)
        if isinstance(created, Created) or code not in (REPLAY_CODE, CONFLICT_CODE):
            return created
    said = error_text(response, secret)
    if code == REPLAY_CODE:
        return Unknown(
            f"EvoLink is still processing an earlier send of this video (HTTP {status}): {said}",
            status,
            code=REPLAY_CODE,
        )
    if code == CONFLICT_CODE:
        return Unknown(
            f"EvoLink says this attempt's key was used for a different request (HTTP {status}): "
            f"{said}",
            status,
            code=CONFLICT_CODE,
        )
    if code in PRE_CHARGE_CODES:
        return _pre_charge_stop(response, code, model, said, now)
    if status in (408, 429):
        return NotSent(
            f"HTTP {status}", status, parse_retry_after(response), rate_limited=status == 429
        )
    if status == 401:
        return Stop(
            "auth",
            "the API key was refused (HTTP 401): check EVOLINK_API_KEY "
            f"(keys are at {KEYS_URL}), {RESUME}",
            status,
            code=code,
        )
    if status == 402:
        return _balance_stop(status, code, error_fields(response), said)
    if status == 403:
        what = f"may not use {model}" if code == "model_access_denied" and model else "was refused"
        return Stop(
            "access",
            f"this API key {what} (HTTP 403; EvoLink said: {said}): check what the key may "
            f"use at {KEYS_URL}, {RESUME}",
            status,
            code=code,
        )
    if status in (404, 405):
        return Stop(
            "endpoint",
            f"the address for creating videos is wrong (HTTP {status}): check --base-url "
            "(EvoLink's is https://api.evolink.ai)",
            status,
            code=code,
        )
    if status == 409 or status >= 500 or status < 400:
        return Unknown(f"HTTP {status}: {said}", status, code=code)
    return Rejected(code or f"http_{status}", said, status)


def _created(response: httpx.Response, secret: str | None) -> CreateOutcome:
    status = response.status_code
    said = excerpt(response, secret)
    try:
        data = response.json()
    except ValueError:
        return Unknown(f"HTTP {status} but the answer was not JSON: {said}", status)
    task_id = data.get("id") if isinstance(data, dict) else None
    if not valid_task_id(task_id):
        return Unknown(f"HTTP {status} without a valid task id: {said}", status)
    assert isinstance(task_id, str)
    usage = data.get("usage")
    info = data.get("task_info")
    return Created(
        task_id=task_id,
        credits_reserved=json_number(usage.get("credits_reserved"))
        if isinstance(usage, dict)
        else None,
        estimated_time=json_number(info.get("estimated_time")) if isinstance(info, dict) else None,
        replayed=response.headers.get("idempotency-replayed", "").strip().lower() == "true",
        http_status=status,
    )


# ---------------------------------------------------------------------- stops


def _pre_charge_stop(
    response: httpx.Response, code: str, model: str | None, said: str, now: float | None
) -> Stop:
    status = response.status_code
    fields = error_fields(response)
    if code == MODEL_CODE:
        return _model_stop(status, fields, model)
    if code in DAILY_CODES:
        return _daily_stop(status, code, fields, response.headers.get("date"), now)
    if code == "key_disabled":
        return Stop(
            "auth",
            f"this API key is disabled: enable it or create a new key at {KEYS_URL}, "
            f"set EVOLINK_API_KEY, {RESUME}",
            status,
            code=code,
        )
    if code == "key_expired":
        when = _text(fields.get("expired_at"))
        return Stop(
            "auth",
            f"this API key has expired{f' (on {when})' if when else ''}: create a new key at "
            f"{KEYS_URL}, set EVOLINK_API_KEY, {RESUME}",
            status,
            code=code,
        )
    if code == "user_disabled":
        where = _text(fields.get("action_url"))
        return Stop(
            "access",
            "the EvoLink account is disabled: nothing more can be created until EvoLink "
            f"enables it again (contact EvoLink support{f', see {where}' if where else ''}); "
            f"{RESUME}",
            status,
            code=code,
        )
    return _balance_stop(status, code, fields, said)


def _model_stop(status: int, fields: dict[str, Any], model: str | None) -> Stop:
    raw = fields.get("allowed_models")
    allowed = tuple(str(m) for m in raw if isinstance(m, str)) if isinstance(raw, list) else ()
    which = model or "this model"
    may = f"; it may use: {', '.join(allowed)}" if allowed else ""
    return Stop(
        "model",
        f"this API key may not use {which}{may}. Choose a tier whose model the key allows, "
        f"or allow {which} for the key at {KEYS_URL}, {RESUME}",
        status,
        code=MODEL_CODE,
        allowed=allowed,
    )


def _daily_stop(
    status: int, code: str, fields: dict[str, Any], date: str | None, now: float | None
) -> Stop:
    seconds = reset_in(fields, date, now)
    used = json_number(fields.get("daily_used_credits"))
    limit = json_number(fields.get("daily_limit_credits"))
    zone = _text(fields.get("reset_timezone"))
    spent = f" ({_credits(used)} of {_credits(limit)} today)" if used is not None and limit else ""
    if seconds is not None:
        when = f"it resets in about {_duration(seconds)}"
    else:
        when = f"it resets at midnight{f' ({zone})' if zone else ''}"
    return Stop(
        "daily",
        f"this API key has used up its daily credit limit{spent}; {when}. "
        f"`runner resume` continues after the reset (or raise the key's daily limit at "
        f"{KEYS_URL})",
        status,
        code=code,
        reset_in=seconds,
    )


def _balance_stop(status: int, code: str | None, fields: dict[str, Any], said: str) -> Stop:
    need = json_number(fields.get("estimated_credits"))
    needs = f"; the next video needs about {_credits(need)}" if need is not None else ""
    where = _text(fields.get("action_url"))
    see = f" (see {where})" if where else ""
    scope = _scope(code, fields)
    if scope == "key":
        left = json_number(fields.get("remaining_credits"))
        total = json_number(fields.get("total_limit_credits"))
        figures = (
            f" ({_credits(left)} left of {_credits(total)})"
            if left is not None and total is not None
            else f" ({_credits(left)} left)"
            if left is not None
            else ""
        )
        return Stop(
            "balance",
            f"this API key has used up its own credit limit{figures}{needs}; the account "
            f"balance is not the problem. Raise the key's limit at {KEYS_URL}{see}, {RESUME}",
            status,
            code=code,
        )
    if scope == "account":
        balance = json_number(fields.get("account_balance_credits"))
        has = f" ({_credits(balance)} left)" if balance is not None else ""
        return Stop(
            "balance",
            f"the EvoLink account is out of credits{has}{needs}. Top up at evolink.ai{see}, "
            f"{RESUME}",
            status,
            code=code,
        )
    return Stop(
        "balance",
        f"EvoLink refused for lack of credits (HTTP {status}; EvoLink said: {said}){needs}. "
        f"Check the account balance at evolink.ai and this key's limit at {KEYS_URL}, {RESUME}",
        status,
        code=code,
    )


def _scope(code: str | None, fields: dict[str, Any]) -> str | None:
    """Which limit a 402 names: "account" (the balance), "key" (this key's own quota), or
    None when the answer does not tell."""
    if code in ACCOUNT_CODES:
        return "account"
    if code in KEY_QUOTA_CODES:
        return "key"
    scope = (_text(fields.get("limit_scope")) or "").lower()
    if scope in ("token", "key", "api_key"):
        return "key"
    if scope in ("user", "account", "account_balance"):
        return "account"
    if "total_limit_credits" in fields or "remaining_credits" in fields:
        return "key"
    if "account_balance_credits" in fields:
        return "account"
    return None


# ---------------------------------------------------------------------- daily reset


def reset_in(fields: dict[str, Any], date: str | None, now: float | None = None) -> float | None:
    """Provider seconds until a daily limit resets: until ``reset_at`` (ISO 8601) when given,
    else until the next midnight in ``reset_timezone``; measured from the answer's ``Date``
    (the provider's clock: a simulator sends its simulated time) or, without one, from ``now``
    (default: this machine's clock). None when neither time is known (docs/evolink.md §7.3)."""
    current = _provider_now(date, now)
    zone = _zone(fields.get("reset_timezone"))
    at = _instant(fields.get("reset_at"), zone)
    if at is not None:
        return max(0.0, (at - current).total_seconds())
    if zone is None:
        return None
    local = current.astimezone(zone)
    midnight = datetime.combine(local.date() + timedelta(days=1), day_start(), tzinfo=zone)
    return max(0.0, (midnight.astimezone(UTC) - current).total_seconds())


def _provider_now(date: str | None, now: float | None) -> datetime:
    if date:
        try:
            parsed = parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError):
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.fromtimestamp(_time.time() if now is None else now, UTC)


def _zone(value: object) -> ZoneInfo | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _instant(value: object, zone: ZoneInfo | None) -> datetime | None:
    """``reset_at`` as an aware time: an ISO 8601 text (a naive one is read in ``zone``, else
    UTC) or unix seconds."""
    number = json_number(value)
    if number is not None:
        try:
            return datetime.fromtimestamp(number, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone or UTC)


# ---------------------------------------------------------------------- words


def _credits(value: float | None) -> str:
    return "an unknown number of credits" if value is None else f"{value:,.2f} credits"


def _duration(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"


def _text(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return str(value).strip() or None
