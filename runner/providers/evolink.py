"""EvoLink behind the provider protocol, over an injected ``httpx.AsyncClient``; httpx errors
become the protocol's values and errors here, and nowhere else.

A create is never retried here, and never by a generic retry wrapper: its outcome is
classified by whether the request could have been processed (docs/design.md §6,
docs/reliability.md §4.5):

- `Created`: 2xx with a valid ``task-unified-`` id.
- `NotSent`: connect error, connect/pool timeout, 408, 429: provably not processed; retry.
- `Rejected`: 400/413/422 and other 4xx: processed and refused; final, shown with the row.
- `Stop`: 401, 402, 403, 404/405 on the endpoint: no new creates until a person acts.
- `Unknown`: read/write timeout, reset after sending, 409, 5xx, a 2xx without a valid task id:
  the task may exist. Held, never re-created automatically.

Reads (`read_tasks`, `balance`; today one ``GET /v1/tasks/{id}`` per id) raise `Transient`
for what a retry may fix (timeouts, resets, 429 with its Retry-After, 5xx, malformed JSON),
`TaskGone` for 400/404 (per id from `read_tasks`), `AccessLost` for 401/403. The API key
travels only in the ``Authorization`` header and never appears in an error message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ..models import Request
from .base import (
    AccessLost,
    Created,
    CreateOutcome,
    NotSent,
    Rejected,
    Stop,
    TaskGone,
    TaskReads,
    TaskView,
    Transient,
    Unknown,
)

CREATE_PATH = "/v1/videos/generations"
TASK_PREFIX = "task-unified-"
_EXCERPT = 500

# Timeouts: a create may take a while to answer and must not be cut short (an abandoned
# create is an unknown outcome); queries are cheap and retried.
CREATE_TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=30.0, pool=30.0)
QUERY_TIMEOUT = httpx.Timeout(connect=10.0, read=30.0, write=10.0, pool=30.0)
# Few connections: httpcore scans every pooled connection for each request, so a big pool
# costs CPU on every call; creates and polls are rate-limited and need only a handful.
LIMITS = httpx.Limits(max_connections=8, max_keepalive_connections=8)


_STOP_ADVICE = {
    401: (
        "auth",
        "the API key was refused (HTTP 401): check EVOLINK_API_KEY "
        "(keys are at https://evolink.ai/dashboard/keys)",
    ),
    402: (
        "balance",
        "the account is out of credits (HTTP 402): top up at evolink.ai, then run `runner resume`",
    ),
    403: (
        "access",
        "this API key may not use the model (HTTP 403): enable the model for "
        "the key, or use another tier",
    ),
    404: ("endpoint", "the create endpoint was not found (HTTP 404): check --base-url"),
    405: ("endpoint", "the create endpoint refused the method (HTTP 405): check --base-url"),
}


SPEED_HEADER = "x-simulator-speed"  # a simulator's time scale, on its every answer


class EvoLink:
    """EvoLink's create, task and credits calls, as a `runner.providers.base.Provider`."""

    key_env = "EVOLINK_API_KEY"

    def __init__(self, http: httpx.AsyncClient, api_key: str) -> None:
        self.http = http
        self._auth = {"Authorization": f"Bearer {api_key}"}
        self.last_headers = httpx.Headers()  # of the last query's answer

    def __repr__(self) -> str:
        return f"EvoLink(base_url={str(self.http.base_url)!r})"

    async def create(self, body: dict[str, Any], idempotency_key: str) -> CreateOutcome:
        headers = {**self._auth, "Idempotency-Key": idempotency_key}
        try:
            response = await self.http.post(
                CREATE_PATH, json=body, headers=headers, timeout=CREATE_TIMEOUT
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            return NotSent(f"could not connect ({type(exc).__name__})")
        except httpx.UnsupportedProtocol as exc:
            return Stop("endpoint", f"the API address is not usable: {exc}", 0)
        except httpx.HTTPError as exc:  # read/write timeout, reset, protocol error: maybe sent
            return Unknown(
                f"the connection failed after the request was sent ({type(exc).__name__})"
            )
        return classify_create(response)

    async def read_tasks(self, task_ids: Sequence[str]) -> TaskReads:
        """One ``GET /v1/tasks/{id}`` per id (EvoLink has no batch read yet)."""
        views: dict[str, TaskView | TaskGone] = {}
        for task_id in task_ids:
            try:
                views[task_id] = await self.task(task_id)
            except TaskGone as exc:
                views[task_id] = exc
        return views

    async def task(self, task_id: str) -> TaskView:
        data = await self._get_json(f"/v1/tasks/{task_id}")
        return parse_task(data, task_id)

    async def models(self) -> list[str] | None:
        """EvoLink does not list the models a key may use."""
        return None

    def body_for(self, request: Request, tier: str) -> dict[str, Any]:
        return request.body(tier)

    def time_scale(self) -> float | None:
        """A simulator's speed from the last answer's ``x-simulator-speed``; None from
        EvoLink itself (which sends no such header)."""
        value = self.last_headers.get(SPEED_HEADER)
        try:
            return float(value) if value else None
        except ValueError:
            return None

    async def balance(self) -> dict[str, Any]:
        return await self.credits()

    async def credits(self) -> dict[str, Any]:
        """The account balance (``GET /v1/credits``): free, creates nothing."""
        data = await self._get_json("/v1/credits")
        if not isinstance(data, dict):
            raise Transient("the credits answer was not a JSON object")
        return data

    async def _get_json(self, path: str) -> Any:
        try:
            response = await self.http.get(path, headers=self._auth, timeout=QUERY_TIMEOUT)
        except httpx.HTTPError as exc:
            raise Transient(f"{type(exc).__name__} on {path.split('/')[2]}") from None
        self.last_headers = response.headers
        status = response.status_code
        if status == 429:
            raise Transient("rate limited (HTTP 429)", parse_retry_after(response))
        if status in (401, 403):
            raise AccessLost(f"HTTP {status}: {error_text(response)}")
        if status in (400, 404):
            raise TaskGone(f"HTTP {status}: {error_text(response)}")
        if status >= 300:
            raise Transient(f"HTTP {status}: {error_text(response)}")
        try:
            return response.json()
        except ValueError:
            raise Transient(f"malformed JSON in the answer: {excerpt(response)}") from None


def classify_create(response: httpx.Response) -> CreateOutcome:
    status = response.status_code
    if 200 <= status < 300:
        try:
            data = response.json()
        except ValueError:
            return Unknown(
                f"HTTP {status} but the answer was not JSON: {excerpt(response)}", status
            )
        task_id = data.get("id") if isinstance(data, dict) else None
        if not isinstance(task_id, str) or not task_id.startswith(TASK_PREFIX):
            return Unknown(f"HTTP {status} without a valid task id: {excerpt(response)}", status)
        usage = data.get("usage") or {}
        info = data.get("task_info") or {}
        return Created(
            task_id=task_id,
            credits_reserved=json_number(usage.get("credits_reserved")),
            estimated_time=json_number(info.get("estimated_time")),
            replayed=response.headers.get("idempotency-replayed", "").lower() == "true",
            http_status=status,
        )
    if status in (408, 429):
        return NotSent(
            f"HTTP {status}", status, parse_retry_after(response), rate_limited=status == 429
        )
    if status in _STOP_ADVICE:
        kind, advice = _STOP_ADVICE[status]
        return Stop(kind, f"{advice}. The provider said: {error_text(response)}", status)
    if status == 409 or status >= 500:
        return Unknown(f"HTTP {status}: {error_text(response)}", status)
    code = error_code(response) or f"http_{status}"
    return Rejected(code, error_text(response), status)


def parse_task(data: Any, task_id: str) -> TaskView:
    if not isinstance(data, dict) or not isinstance(data.get("status"), str):
        raise Transient(f"task answer without a status: {json.dumps(data)[:_EXCERPT]}")
    results = data.get("results") or []
    error = data.get("error") or {}
    info = data.get("task_info") or {}
    progress = data.get("progress")
    return TaskView(
        task_id=task_id,
        status=data["status"],
        progress=progress if isinstance(progress, int) else None,
        result_url=results[0] if results and isinstance(results[0], str) else None,
        error_code=str(error["code"]) if isinstance(error, dict) and "code" in error else None,
        error_message=str(error.get("message")) if isinstance(error, dict) else None,
        estimated_time=json_number(info.get("estimated_time") if isinstance(info, dict) else None),
    )


def parse_retry_after(response: httpx.Response, now: float | None = None) -> float | None:
    """Retry-After as seconds: a number of seconds or an HTTP date (RFC 9110 §10.2.3)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def error_code(response: httpx.Response) -> str | None:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    if isinstance(error, dict) and error.get("code") is not None:
        return str(error["code"])
    return None


def error_text(response: httpx.Response) -> str:
    """The provider's message (code, message, param), or a short excerpt of the body."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        parts = [str(error.get("message") or "").strip()]
        if error.get("param"):
            parts.append(f"(field: {error['param']})")
        if error.get("code") is not None:
            parts.append(f"[{error['code']}]")
        text = " ".join(p for p in parts if p)
        if text:
            return text[:2048]
    return excerpt(response) or f"HTTP {response.status_code}"


def excerpt(response: httpx.Response) -> str:
    try:
        text = response.text
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        return ""
    text = " ".join(text.split())
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "…"


def json_number(value: object) -> float | None:
    """A JSON number as a float (never a string or a bool): what the wire may carry."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
