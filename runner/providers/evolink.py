"""EvoLink behind the provider protocol, over an injected ``httpx.AsyncClient``; httpx errors
become the protocol's values and errors here, and nowhere else.

Creates (``POST /v1/videos/generations``) are never retried here, nor by a generic retry
wrapper: each answer is classified by whether a task may exist (`classify_create`, whose
docstring has the table; docs/evolink.md §7.3, §17, §20). Every create carries its attempt's
``Idempotency-Key`` and the identical ``X-Evo-Run-Id`` (§17), so the dispatcher may send a
`NotSent` or a replayable `Unknown` again with the same key and body.

Reads raise `Transient` for what a retry may fix (timeouts, resets, 429 with its Retry-After,
5xx, malformed JSON) and `AccessLost` for 401/403:

- `read_tasks`: ``POST /v1/tasks/batch`` with up to 50 distinct ids (§15); an id missing
  from the answer is confirmed with one ``GET /v1/tasks/{id}`` (404 → `TaskGone`), never
  taken as gone on the batch's word. A single id is read with that ``GET`` directly (one
  request either way). If the batch address answers 404/405 twice in a row, this object reads
  one task at a time from then on. An id that is not a valid task id (`valid_task_id`) is
  `TaskGone` without a request; ids are percent-encoded in paths.
- `models`: ``GET /v1/models`` (§22), None when the gateway has no such list (404/405).
- `balance`: ``GET /v1/credits`` as `Funds` (§22).
- `upload`, `delete_upload`, `upload_quota`: the file service on its own origin (§21,
  `runner.providers.evolink_files`).

Every request says ``User-Agent: runner/<version>``. The API key travels only in the
``Authorization`` header and never appears in a message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from .. import USER_AGENT
from ..models import Request
from .base import (
    AccessLost,
    CreateOutcome,
    FileQuota,
    Funds,
    NotSent,
    Stop,
    TaskGone,
    TaskReads,
    TaskView,
    Transient,
    Unknown,
    UploadOutcome,
)
from .evolink_create import classify_create
from .evolink_files import FILES_URL, Files
from .evolink_wire import (
    error_text,
    excerpt,
    parse_funds,
    parse_retry_after,
    parse_task,
    redact,
    shown_id,
    valid_task_id,
)

__all__ = ["USER_AGENT", "EvoLink", "classify_create", "parse_task", "valid_task_id"]

log = logging.getLogger(__name__)

CREATE_PATH = "/v1/videos/generations"
BATCH_PATH = "/v1/tasks/batch"
BATCH_MAX = 50  # ids per batch read (docs/evolink.md §15)
BATCH_MISSES = 2  # 404/405 in a row on the batch address before reading one task at a time

# Timeouts: a create may take a while to answer and must not be cut short (an abandoned
# create is an unknown outcome); queries are cheap and retried.
CREATE_TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=30.0, pool=30.0)
QUERY_TIMEOUT = httpx.Timeout(connect=10.0, read=30.0, write=10.0, pool=30.0)
# Few connections: httpcore scans every pooled connection for each request, so a big pool
# costs CPU on every call; creates and polls are rate-limited and need only a handful.
LIMITS = httpx.Limits(max_connections=8, max_keepalive_connections=8)

SPEED_HEADER = "x-simulator-speed"  # a simulator's time scale, on its every answer


class EvoLink:
    """EvoLink's create, task, model and credits calls, as a `runner.providers.base.Provider`."""

    key_env = "EVOLINK_API_KEY"

    def __init__(self, http: httpx.AsyncClient, api_key: str, files_url: str = FILES_URL) -> None:
        self.http = http
        self._key = api_key
        self._headers = {"Authorization": f"Bearer {api_key}", "User-Agent": USER_AGENT}
        self.last_headers = httpx.Headers()  # of the last query's answer
        self.batch_reads = True  # False once the batch address proved missing
        self._batch_misses = 0
        self.files = Files(http, files_url, self._headers, api_key)

    def __repr__(self) -> str:
        return f"EvoLink(base_url={str(self.http.base_url)!r}, batch_reads={self.batch_reads})"

    # ------------------------------------------------------------------ create

    async def create(self, body: dict[str, Any], idempotency_key: str) -> CreateOutcome:
        headers = {
            **self._headers,
            "Idempotency-Key": idempotency_key,
            "X-Evo-Run-Id": idempotency_key,
        }
        try:
            response = await self.http.post(
                CREATE_PATH,
                content=create_payload(body),
                headers={**headers, "Content-Type": "application/json"},
                timeout=CREATE_TIMEOUT,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            return NotSent(f"could not connect ({type(exc).__name__})")
        except httpx.UnsupportedProtocol as exc:
            return Stop("endpoint", f"the API address is not usable: {exc}", 0)
        except httpx.HTTPError as exc:  # read/write timeout, reset, protocol error: maybe sent
            return Unknown(
                f"the connection failed after the request was sent ({type(exc).__name__})"
            )
        model = body.get("model")
        return classify_create(
            response, model=model if isinstance(model, str) else None, secret=self._key
        )

    # ------------------------------------------------------------------ task reads

    async def read_tasks(self, task_ids: Sequence[str]) -> TaskReads:
        """Each task's view keyed by id, `TaskGone` for an unknown or invalid id; raises
        `Transient`/`AccessLost` when a batch, or a single read (a confirmation included),
        failed: the read as a whole is then retried by the caller."""
        views: dict[str, TaskView | TaskGone] = {}
        wanted: list[str] = []
        for task_id in dict.fromkeys(task_ids):
            if valid_task_id(task_id):
                wanted.append(task_id)
            else:
                views[task_id] = TaskGone(f"{shown_id(task_id)} is not a valid task id")
        for start in range(0, len(wanted), BATCH_MAX):
            chunk = wanted[start : start + BATCH_MAX]
            found = await self._read_batch(chunk) if len(chunk) > 1 and self.batch_reads else {}
            for task_id in chunk:
                view = found.get(task_id) if found is not None else None
                views[task_id] = view if view is not None else await self._read_one(task_id)
        return views

    async def task(self, task_id: str) -> TaskView:
        """One ``GET /v1/tasks/{id}``; raises `TaskGone` for 400/404 or an invalid id."""
        if not valid_task_id(task_id):
            raise TaskGone(f"{shown_id(task_id)} is not a valid task id")
        response = await self._send("GET", f"/v1/tasks/{quote(task_id, safe='')}", "task")
        self._check(response, gone=(400, 404))
        try:
            return parse_task(_json(response, self._key), task_id)
        except Transient as exc:
            raise Transient(redact(str(exc), self._key)) from None

    async def _read_one(self, task_id: str) -> TaskView | TaskGone:
        try:
            return await self.task(task_id)
        except TaskGone as exc:
            return exc

    async def _read_batch(self, task_ids: list[str]) -> dict[str, TaskView] | None:
        """The tasks the batch answer carries, by id (the missing ones are for the caller to
        confirm); None when this chunk must be read one task at a time."""
        response = await self._send("POST", BATCH_PATH, "batch", json={"task_ids": task_ids})
        status = response.status_code
        items = _task_list(response)
        if status in (404, 405) and items is None:
            self._batch_misses += 1
            if self._batch_misses >= BATCH_MISSES and self.batch_reads:
                self.batch_reads = False
                log.warning(
                    "the batch task read (%s) answered HTTP %d %d times in a row; "
                    "reading one task at a time from now on",
                    BATCH_PATH,
                    status,
                    self._batch_misses,
                )
            return None
        if status == 400:  # the gateway refused this list: each id on its own says why
            return None
        if not (200 <= status < 300 and items is not None):
            self._check(response, gone=())
            raise Transient(
                f"the batch read answer has no task list: {excerpt(response, self._key)}"
            )
        self._batch_misses = 0
        asked = set(task_ids)
        found: dict[str, TaskView] = {}
        for item in items:
            task_id = item.get("id") if isinstance(item, dict) else None
            if not isinstance(task_id, str) or task_id not in asked or task_id in found:
                continue
            try:
                found[task_id] = parse_task(item, task_id)
            except Transient:
                continue  # a malformed item: confirmed by a single read
        return found

    # ------------------------------------------------------------------ models, credits

    async def models(self) -> list[str] | None:
        """The model ids this key may use (``GET /v1/models``, docs/evolink.md §22), or None
        when the gateway cannot list them (404/405)."""
        response = await self._send("GET", "/v1/models", "models")
        if response.status_code in (404, 405):
            return None
        self._check(response, gone=())
        items = _task_list(response)
        if items is None:
            raise Transient(
                f"the model list answer has no data list: {excerpt(response, self._key)}"
            )
        return [
            item["id"]
            for item in items
            if isinstance(item, dict) and isinstance(item.get("id"), str)
        ]

    async def balance(self) -> Funds:
        """What the account and this key may still spend (``GET /v1/credits``, docs/evolink.md
        §22): free, creates nothing."""
        response = await self._send("GET", "/v1/credits", "credits")
        self._check(response, gone=())
        try:
            return parse_funds(_json(response, self._key))
        except Transient as exc:
            raise Transient(redact(str(exc), self._key)) from None

    # ------------------------------------------------------------------ input files

    def upload_service(self) -> str:
        return self.files.base_url

    async def upload(self, path: Path, name: str, mime: str, upload_id: str) -> UploadOutcome:
        return await self.files.upload(path, name, mime, upload_id)

    async def delete_upload(self, file_id: str) -> None:
        await self.files.delete(file_id)

    async def upload_quota(self) -> FileQuota | None:
        return await self.files.quota()

    # ------------------------------------------------------------------ the rest

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

    async def _send(self, method: str, path: str, what: str, json: object = None) -> httpx.Response:
        """One query; transport errors become `Transient` naming ``what`` was read."""
        try:
            response = await self.http.request(
                method, path, json=json, headers=self._headers, timeout=QUERY_TIMEOUT
            )
        except httpx.HTTPError as exc:
            raise Transient(f"{type(exc).__name__} on the {what} read") from None
        self.last_headers = response.headers
        return response

    def _check(self, response: httpx.Response, *, gone: tuple[int, ...]) -> None:
        """Raise for a failed read: 429 and others `Transient`, 401/403 `AccessLost`, a
        ``gone`` status `TaskGone`."""
        status = response.status_code
        if 200 <= status < 300:
            return
        said = error_text(response, self._key)
        if status == 429:
            raise Transient(f"rate limited (HTTP 429): {said}", parse_retry_after(response))
        if status in (401, 403):
            raise AccessLost(f"HTTP {status}: {said}")
        if status in gone:
            raise TaskGone(f"HTTP {status}: {said}")
        raise Transient(f"HTTP {status}: {said}")


def create_payload(body: dict[str, Any]) -> bytes:
    """The bytes of a create body: compact JSON in the body's own key order, UTF-8 as is. The
    same body always gives the same bytes, so a replay resends exactly what was sent."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _json(response: httpx.Response, secret: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise Transient(f"malformed JSON in the answer: {excerpt(response, secret)}") from None


def _task_list(response: httpx.Response) -> list[Any] | None:
    """The ``data`` list of an answer (a batch read, the model list), or None."""
    try:
        data = response.json()
    except ValueError:
        return None
    items = data.get("data") if isinstance(data, dict) else None
    return items if isinstance(items, list) else None
