"""EvoLink's wire values read into the provider seam's types: task ids, task reads, the credits
answer, error bodies and Retry-After. Pure functions of JSON and headers; no I/O.

Sources, in the repo's own words (``docs/evolink.md``):

- task ids: §17 (the CLI's check of a create's ``id``), plus no ``..`` so an id is always one
  path segment;
- a task read: §5.1, §5.3, §5.4 (``cancelled`` counts as ``request_cancelled``), §19 (the final
  charge only once completed), §18 (a refund only with the ``billing`` proof);
- the credits answer: §22 (a daily limit of 0 or less, or none, is no daily limit);
- error bodies: §7.1 (``code`` may be a string or an integer), §7.3 (the limit figures are
  flat ``error.*`` fields; older answers nested them under ``error.details``).
"""

from __future__ import annotations

import json
import math
import re
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from .base import Funds, TaskView, Transient

TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
EXCERPT = 500
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def valid_task_id(task_id: object) -> bool:
    """Whether ``task_id`` may be an EvoLink task id: ``^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$``
    without ``..`` (docs/evolink.md §17). Anything else is never sent in a path."""
    return (
        isinstance(task_id, str) and TASK_ID.fullmatch(task_id) is not None and ".." not in task_id
    )


def shown_id(task_id: object) -> str:
    """A task id fit for a message, even when it is not one (clipped, control characters out)."""
    text = "".join(c if c.isprintable() else "?" for c in str(task_id))
    return repr(text[:60] + ("…" if len(text) > 60 else ""))


# ---------------------------------------------------------------------- tasks


def parse_task(data: Any, task_id: str) -> TaskView:
    """One task as `TaskView` (docs/evolink.md §5.1, §5.3, §5.4, §18, §19); raises `Transient`
    when it has no status (a malformed answer: reading it again may help)."""
    if not isinstance(data, dict) or not isinstance(data.get("status"), str):
        raise Transient(f"task answer without a status: {json.dumps(data)[:EXCERPT]}")
    status: str = data["status"]
    results = data.get("results")
    error = _dict(data.get("error"))
    info = _dict(data.get("task_info"))
    usage = _dict(data.get("usage"))
    progress = data.get("progress")
    code = _text(error.get("code"))
    if code is None and status == "cancelled":
        code = "request_cancelled"  # §5.4: a cancelled task without a code
    used = None
    if status == "completed":  # §19: the final charge is read only once completed
        used = json_number(usage.get("credits_used"))
        if used is None:
            used = json_number(_dict(usage.get("cost")).get("credits"))
    return TaskView(
        task_id=task_id,
        status=status,
        progress=progress if isinstance(progress, int) and not isinstance(progress, bool) else None,
        result_url=results[0]
        if isinstance(results, list) and results and isinstance(results[0], str)
        else None,
        error_code=code,
        error_message=_text(error.get("message")),
        estimated_time=json_number(info.get("estimated_time")),
        credits_used=used,
        credits_reserved=json_number(usage.get("credits_reserved")),
        refunded=proven_refund(data.get("billing")),
    )


def proven_refund(billing: object) -> float | None:
    """The credits refunded, only when ``billing`` proves it (docs/evolink.md §18): refund scope
    ``account_balance``, refund ``completed``, charge ``released``, a refund time, and
    ``refunded_credits`` equal to ``reserved_credits`` (and above 0). A failed or cancelled
    status alone is no proof; None when any part is missing."""
    if not isinstance(billing, dict):
        return None
    refunded = json_number(billing.get("refunded_credits"))
    reserved = json_number(billing.get("reserved_credits"))
    refunded_at = billing.get("refunded_at")
    if (
        billing.get("refund_scope") == "account_balance"
        and billing.get("refund_status") == "completed"
        and billing.get("charge_status") == "released"
        and _text(refunded_at) is not None
        and refunded is not None
        and reserved is not None
        and refunded > 0
        and abs(refunded - reserved) <= 1e-9
    ):
        return refunded
    return None


# ---------------------------------------------------------------------- credits


def parse_funds(data: Any) -> Funds:
    """``GET /v1/credits`` as `Funds` (docs/evolink.md §22): ``data.user.remaining_credits``;
    ``data.token.remaining_credits`` unless ``unlimited_credits``; the daily limit when above 0.
    Raises `Transient` when the answer has no ``data`` object."""
    inner = data.get("data") if isinstance(data, dict) else None
    if not isinstance(inner, dict):
        raise Transient(f"the credits answer has no data: {json.dumps(data)[:EXCERPT]}")
    user = _dict(inner.get("user"))
    token = _dict(inner.get("token"))
    daily_limit = json_number(token.get("daily_limit_credits"))
    zone = token.get("reset_timezone")
    return Funds(
        account=json_number(user.get("remaining_credits")),
        key=None
        if token.get("unlimited_credits") is True
        else json_number(token.get("remaining_credits")),
        daily_limit=daily_limit if daily_limit is not None and daily_limit > 0 else None,
        daily_used=json_number(token.get("daily_used_credits")),
        reset_timezone=zone.strip() if isinstance(zone, str) and zone.strip() else None,
    )


# ---------------------------------------------------------------------- errors


def error_fields(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of an answer with its figures flat (``error.details`` merged under
    the flat fields, docs/evolink.md §7.3); empty when there is none."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return {}
    if not isinstance(error, dict):
        return {}
    return {**_dict(error.get("details")), **error}


def error_code(response: httpx.Response) -> str | None:
    """``error.code`` as text (an integer code, §7.1's other shape, becomes its digits)."""
    return _text(error_fields(response).get("code"))


def error_text(response: httpx.Response, secret: str | None = None) -> str:
    """The provider's message (code, message, param), or a short excerpt of the body; the key
    ``secret`` and any Bearer token are replaced by ``***``."""
    error = error_fields(response)
    parts = [str(error.get("message") or "").strip()]
    if error.get("param"):
        parts.append(f"(field: {error['param']})")
    if error.get("code") is not None:
        parts.append(f"[{error['code']}]")
    text = " ".join(p for p in parts if p)[:2048]
    return redact(_utf8(text) or excerpt(response) or f"HTTP {response.status_code}", secret)


def excerpt(response: httpx.Response, secret: str | None = None) -> str:
    """The start of an answer's body on one line, without the key ``secret`` or a Bearer
    token (an answer may echo the request's headers)."""
    try:
        text = response.text
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        return ""
    text = " ".join(text.split())
    return redact(text if len(text) <= EXCERPT else text[:EXCERPT] + "…", secret)


def redact(text: str, secret: str | None) -> str:
    """``text`` without the key ``secret`` and without any ``Bearer <token>``."""
    if secret:
        text = text.replace(secret, "***")
    return _BEARER.sub(r"\1***", text)


def parse_retry_after(response: httpx.Response, now: float | None = None) -> float | None:
    """Retry-After as seconds: a number of seconds or an HTTP date (RFC 9110 §10.2.3); None
    when it is neither (garbage, a negative or endless number): the caller backs off as it
    would without one, never retrying at once."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


# ---------------------------------------------------------------------- values


def json_number(value: object) -> float | None:
    """A JSON number as a float (never a string, a bool, NaN or infinity)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _text(value: object) -> str | None:
    """A JSON string or number as text; None for null, an empty string, or anything else."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = _utf8(str(value).strip())
    return text or None


def _utf8(text: str) -> str:
    """``text`` as valid UTF-8: a lone surrogate (a JSON ``\\ud800`` escape, which no
    terminal, file or database takes) becomes "?"."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
