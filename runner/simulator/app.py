"""The local EvoLink simulator as an ASGI app: `create_app(config) -> SimApp`.

EvoLink's surface (``docs/simulator.md``, whose sections the § numbers cite; every request needs
``Authorization: Bearer <key>``, `DEFAULT_KEY` in the default configuration):

- ``POST /v1/videos/generations`` [DOC §3-§4, §7.1]: validated by the simulator's own
  `rules.problems` (400 ``invalid_request`` naming the field in ``param`` and the message), 401,
  the 402s with flat figures [EVO §7.3] ``key_model_not_allowed`` (or the documented 403
  ``model_access_denied``, ``model_denial``), ``key_quota_exhausted``,
  ``key_daily_quota_exhausted``, ``insufficient_quota``; 429 ``rate_limit_exceeded`` with
  ``Retry-After``; [EVO §17] ``Idempotency-Key`` replay within ``idempotency_ttl``
  (``idempotency-replayed: true``), 409 ``idempotency_conflict`` and 409
  ``paid_outcome_unknown`` [INF statuses]; 200 with the §4 body and an ``x-request-id``.
- ``GET /v1/tasks/{id}`` [DOC §5.1, §5.5]: the task as it stands in simulated time, with
  ``usage`` and, failed or cancelled, ``billing`` [EVO §19]; 400 ``invalid_task_id``, 401, 403
  ``permission_denied``, 404 ``task_not_found``, 429.
- ``POST /v1/tasks/batch`` ``{"task_ids": [1-50 ids]}`` [EVO §15] → ``{"data": [task, ...]}``,
  unknown and foreign ids absent; 400 ``invalid_request`` (``param: "task_ids"``), 401, 429.
- ``GET /v1/tasks?status=&type=&model=&page=&page_size=`` [EVO §16] → ``{"data": [item, ...],
  "total", "page", "page_size"}``, the key's tasks newest first; 400 naming the parameter.
- ``GET /v1/models`` [EVO §18] → ``{"object": "list", "data": [{"id"}, ...]}``, the key's models.
- ``GET /v1/catalog/pricing-rules?product_id=&operation=&modality=&lifecycle=&view=`` [EVO
  §23], anonymous (any Authorization is ignored): ``{"meta", "models"}``, the simulator's own
  prices (`SimConfig.prices`) as EvoLink's public price rules (`pricing_rules`); ``ETag`` and
  ``If-None-Match`` → 304; 400 naming ``view`` when it is not ``full`` or ``summary``.
- ``GET /v1/credits`` [DOC get-credits, EVO §18]: ``{"data": {"token": {"remaining_credits",
  "unlimited_credits", "used_credits", "daily_limit_credits", "daily_used_credits",
  "reset_timezone"}, "user": {"remaining_credits", "used_credits"}}, "message": "",
  "success": true}``; the key is the whole account [INF]; ``token`` figures are null where the
  key has no such limit.
- ``GET /files/{task_id}.mp4`` [DOC §5.2, INF details]: the result (``video/mp4``, single
  byte ranges → 206, unsatisfiable → 416), no auth like a CDN link; 403 with an XML
  ``AccessDenied`` body once 24 h of simulated time have passed since completion [INF body].
  Result URLs are absolute: ``{file_origin}/files/…`` when the files have an origin of their
  own (§21: routed by Host, ``SimApp.files`` for a port of its own, ``strict_file_host``'s 403
  ``error code: 1010``), else built from the request's base URL (or ``public_base_url``).

- The file service for input media [DOC §24, `runner.simulator.uploads`]: ``POST
  /api/v1/files/upload/stream`` (multipart), ``GET /api/v1/files/quota``, ``GET
  /api/v1/files/list``, ``DELETE /api/v1/files/{file_id}``, ``GET
  /api/v1/files/upload-receipts/{X-Evo-Upload-Id}``, and the files themselves at their
  ``file_url`` and ``download_url``; errors 40001 too large, 40002 wrong type, 40003 quota.
  On ``upload_origin`` when set (routed by Host like the result files; ``SimApp.uploads`` for a
  port of its own), else on the API's origin. A create citing an uploaded image renders a
  video showing the image's mean colour top right.

Ground truth, outside EvoLink's surface and without auth:

- ``GET /_sim/state``: `Simulator.snapshot` (tasks with body/status/fate/money/run id, creates
  per body hash and per Idempotency-Key, replays and ``paid_outcome_unknown`` answers per key,
  money per key label (charged gross, refunded, held, reserved, daily use), requests per
  endpoint and outcome, User-Agents per endpoint, file requests with Authorization, peak
  concurrent generating tasks, create arrival times (simulated and wall), faults fired, and
  ``files``: the uploaded files stored, uploads per key, refusals per code, deletions).
- ``GET /_sim/faults`` / ``POST /_sim/faults`` (``[fault, ...]`` or ``{"faults": [...],
  "append": false}``) → ``{"installed": n, "faults": [...]}``.
- ``POST /_sim/advance`` ``{"seconds": N}`` → ``{"sim_time": t}``.
- ``POST /_sim/reset`` → ``{"ok": true}`` (a journal starts afresh too).
- ``POST /_sim/cancel/{task_id}`` → the task, now ``cancelled`` (``request_cancelled``),
  refunded as ``refunds`` says.
- ``POST /_sim/keys`` ``{"<key>": {"balance": credits, "models": [ids] | null, "total_limit":
  credits | null, "daily_limit": credits | null, "reset_timezone": zone}}`` (each part
  optional) → accounts.

Every answer (errors and faults included) carries ``x-request-id``, a ``Date`` in simulated
time (§22) and, outside EvoLink's surface, ``x-simulator-speed: <simulated seconds per wall
second>`` (e.g. ``100``): the runner converts ``estimated_time`` and the 24 h result lifetime
into wall seconds with it (EvoLink sends no such header: speed 1).

With ``SimConfig(journal=path)`` the simulator survives its process: each task, cancel,
advance, key change, upload and file deletion is appended to the file and fsync-ed before the
answer (refunds, daily use and idempotency memory follow from them on replay), and a
simulator started on the same file (in any process) replays it and continues, its simulated
time having run on meanwhile (`runner.simulator.journal`).

In process the same state is ``app.state.sim`` (a `Simulator`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Literal

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import pricing_rules
from .asgi import SimApp
from .config import DEFAULT_KEY, KEY_FIELDS, KeyConfig, SimConfig
from .faults import Fault, parse_plan
from .pricing_rules import VIEWS
from .state import ApiError, Simulator
from .tasks import key_label
from .uploads import FileError
from .wire import EXPIRED_LINK_BODY, NO_SUCH_KEY_BODY, Endpoint, error_body, status_of

__all__ = ["DEFAULT_KEY", "Fault", "KeyConfig", "SimApp", "SimConfig", "Simulator", "create_app"]

_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")


def create_app(
    config: SimConfig | None = None,
    *,
    clock: Callable[[], float] | None = None,
    wall: Callable[[], float] | None = None,
) -> SimApp:
    """A simulator: fresh, or where its ``config.journal`` left off (see `Simulator`).

    ``clock`` is the monotonic clock that moves simulated time (default `time.monotonic`);
    ``wall`` the unix clock that anchors it in a journal (default `time.time`).
    """
    sim = Simulator(config, clock=clock, wall=wall)
    api = _Api(sim)
    files = Starlette(
        routes=[Route("/files/{name}", api.file, methods=["GET"])],
        exception_handlers={HTTPException: _http_error},
    )
    service = _FileService(sim)
    uploads = Starlette(
        routes=[
            Route("/api/v1/files/upload/stream", service.upload, methods=["POST"]),
            Route("/api/v1/files/quota", service.quota, methods=["GET"]),
            Route("/api/v1/files/list", service.list, methods=["GET"]),
            Route("/api/v1/files/upload-receipts/{upload_id}", service.receipt, methods=["GET"]),
            Route("/api/v1/files/download/{file_id}", service.content, methods=["GET"]),
            Route("/api/v1/files/{file_id}", service.delete, methods=["DELETE"]),
            Route("/uploads/{file_id}/{name:path}", service.content, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error},
    )
    return SimApp(sim, _starlette(api, files_here=sim.config.file_origin is None), files, uploads)


def _starlette(api: _Api, *, files_here: bool) -> Starlette:
    routes = [
        Route("/v1/videos/generations", api.create, methods=["POST"]),
        Route("/v1/tasks/batch", api.batch, methods=["POST"]),
        Route("/v1/tasks", api.tasks, methods=["GET"]),
        Route("/v1/tasks/{task_id}", api.task, methods=["GET"]),
        Route("/v1/credits", api.credits, methods=["GET"]),
        Route("/v1/models", api.models, methods=["GET"]),
        Route("/v1/catalog/pricing-rules", api.pricing_rules, methods=["GET"]),
        *([Route("/files/{name}", api.file, methods=["GET"])] if files_here else []),
        Route("/_sim/state", api.state, methods=["GET"]),
        Route("/_sim/faults", api.faults, methods=["GET", "POST"]),
        Route("/_sim/advance", api.advance, methods=["POST"]),
        Route("/_sim/reset", api.reset, methods=["POST"]),
        Route("/_sim/cancel/{task_id}", api.cancel, methods=["POST"]),
        Route("/_sim/keys", api.keys, methods=["POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    code = "not_found" if status == 404 else "invalid_request"
    return JSONResponse(
        error_body(code, message=str(getattr(exc, "detail", "")) or None, status=status),
        status_code=status,
    )


class _Api:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def _error(self, exc: ApiError, endpoint: Endpoint) -> JSONResponse:
        body = error_body(
            exc.code,
            endpoint,
            message=exc.message,
            param=exc.param,
            int_code=self.sim.config.int_error_codes,
            fields=exc.fields,
        )
        return JSONResponse(body, status_code=status_of(exc.code), headers=exc.headers)

    # --- EvoLink ----------------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        try:
            key = self.sim.authenticate(request.headers.get("authorization"))
            raw = await request.body()
            idempotency_key = request.headers.get("idempotency-key")
            run_id = request.headers.get("x-evo-run-id")
            if self.sim.journaled:  # the answer waits for the journal's fsync: not on the loop
                response, replayed = await anyio.to_thread.run_sync(
                    self.sim.create, key, raw, idempotency_key, run_id
                )
            else:
                response, replayed = self.sim.create(key, raw, idempotency_key, run_id)
        except ApiError as exc:
            return self._error(exc, "create")
        headers = {"idempotency-replayed": "true"} if replayed else None
        return JSONResponse(response, headers=headers)

    async def task(self, request: Request) -> Response:
        try:
            key = self.sim.authenticate(request.headers.get("authorization"))
            view = self.sim.task_view(key, request.path_params["task_id"], str(request.base_url))
        except ApiError as exc:
            return self._error(exc, "task")
        return JSONResponse(view)

    async def batch(self, request: Request) -> Response:
        try:
            key = self.sim.authenticate(request.headers.get("authorization"))
            try:
                body = json.loads(await request.body())
            except (UnicodeDecodeError, json.JSONDecodeError):
                body = None  # refused below, naming task_ids
            view = self.sim.batch_view(key, body, str(request.base_url))
        except ApiError as exc:
            return self._error(exc, "batch")
        return JSONResponse(view)

    async def tasks(self, request: Request) -> Response:
        try:
            key = self.sim.authenticate(request.headers.get("authorization"))
            view = self.sim.list_view(key, request.query_params)
        except ApiError as exc:
            return self._error(exc, "list")
        return JSONResponse(view)

    async def models(self, request: Request) -> Response:
        try:
            key = self.sim.authenticate(request.headers.get("authorization"))
        except ApiError as exc:
            return self._error(exc, "models")
        return JSONResponse(self.sim.models_view(key))

    async def pricing_rules(self, request: Request) -> Response:
        """Anonymous: no key is asked for, and one sent is not looked at."""
        query = request.query_params
        view = query.get("view", "full")
        if view not in VIEWS:
            error = ApiError("invalid_request", "view must be full or summary", param="view")
            return self._error(error, "pricing")
        tag = f'"{pricing_rules.version(self.sim.prices)}"'
        if tag in (request.headers.get("if-none-match") or ""):
            return Response(status_code=304, headers={"ETag": tag})
        answer = pricing_rules.rules_answer(self.sim.prices, self.sim.now(), query)
        return JSONResponse(answer, headers={"ETag": tag})

    async def credits(self, request: Request) -> Response:
        try:
            key = self.sim.authenticate(request.headers.get("authorization"))
        except ApiError as exc:
            return self._error(exc, "credits")
        return JSONResponse(self.sim.credits_view(key))

    async def file(self, request: Request) -> Response:
        name: str = request.path_params["name"]
        try:
            if not name.endswith(".mp4"):
                raise KeyError(name)
            task, expired = self.sim.result_task(name.removesuffix(".mp4"))
        except KeyError:
            return Response(NO_SUCH_KEY_BODY, status_code=404, media_type="application/xml")
        if expired:
            return Response(EXPIRED_LINK_BODY, status_code=403, media_type="application/xml")
        try:
            data = await anyio.to_thread.run_sync(self.sim.video_bytes, task)
        except ImportError as exc:  # the renderer is not installed
            return Response(f"video renderer unavailable: {exc}", status_code=500)
        return _ranged(data, request.headers.get("range"))

    # --- ground truth -----------------------------------------------------------------------

    async def state(self, request: Request) -> Response:
        return JSONResponse(self.sim.snapshot())

    async def faults(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                data = await _json(request)
                faults = parse_plan(data)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            append = isinstance(data, dict) and data.get("append") is True
            self.sim.set_faults(faults, append=append)
        described = self.sim.plan.describe()
        return JSONResponse({"installed": len(described), "faults": described})

    async def advance(self, request: Request) -> Response:
        try:
            data = await _json(request)
            seconds = data.get("seconds") if isinstance(data, dict) else None
            if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                raise ValueError('send {"seconds": N}')
            now = self.sim.advance(float(seconds))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"sim_time": now})

    async def reset(self, request: Request) -> Response:
        self.sim.reset()
        return JSONResponse({"ok": True})

    async def cancel(self, request: Request) -> Response:
        try:
            view = self.sim.cancel(request.path_params["task_id"])
        except ApiError as exc:
            status = 404 if exc.code == "task_not_found" else 409
            return JSONResponse({"error": str(exc)}, status_code=status)
        return JSONResponse(view)

    async def keys(self, request: Request) -> Response:
        try:
            data = await _json(request)
            if not isinstance(data, dict):
                raise ValueError(
                    'send {"<key>": {"balance": credits, "models": [...] | null, '
                    '"total_limit": credits | null, "daily_limit": credits | null, '
                    '"reset_timezone": "Asia/Shanghai"}} (each part optional)'
                )
            for key, spec in data.items():
                label = key_label(key)
                if not isinstance(spec, dict) or not set(spec) <= set(KEY_FIELDS):
                    raise ValueError(f"{label}: give some of {', '.join(KEY_FIELDS)}")
                checked = {k: v for k, v in spec.items() if k != "models" and v is not None}
                KeyConfig.from_json(label, checked)  # ValueError naming what is wrong
                balance, models = spec.get("balance"), spec.get("models", "keep")
                if models not in (None, "keep") and not isinstance(models, list):
                    raise ValueError(f"{label}: models must be a list or null")
                self.sim.set_key(
                    key,
                    balance=None if balance is None else float(balance),
                    models="keep"
                    if models == "keep"
                    else None
                    if models is None
                    else frozenset(map(str, models)),
                    total_limit=_limit(spec, "total_limit"),
                    daily_limit=_limit(spec, "daily_limit"),
                    reset_timezone=str(spec.get("reset_timezone", "keep")),
                )
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"accounts": self.sim.snapshot()["accounts"]})


class _FileService:
    """The file service's routes (§24): answers in its own envelope, errors as `FileError`."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def _key(self, request: Request) -> str:
        try:
            return self.sim.authenticate(request.headers.get("authorization"))
        except ApiError:
            raise FileError(401, "Unauthorized: send Authorization: Bearer <API key>") from None

    async def upload(self, request: Request) -> Response:
        try:
            key = self._key(request)
            raw = await request.body()
            args = (
                key,
                request.headers.get("content-type"),
                raw,
                str(request.base_url),
                request.headers.get("x-evo-upload-id"),
            )
            if self.sim.journaled:  # the answer waits for the journal's fsync
                answer = await anyio.to_thread.run_sync(self.sim.upload, *args)
            else:
                answer = self.sim.upload(*args)
        except FileError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        return JSONResponse(answer)

    async def quota(self, request: Request) -> Response:
        return self._answer(lambda: self.sim.files_quota(self._key(request)))

    async def list(self, request: Request) -> Response:
        return self._answer(lambda: self.sim.files_list(self._key(request), request.query_params))

    async def receipt(self, request: Request) -> Response:
        upload_id = request.path_params["upload_id"]
        return self._answer(lambda: self.sim.upload_receipt(self._key(request), upload_id))

    async def delete(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        return self._answer(lambda: self.sim.delete_file(self._key(request), file_id))

    async def content(self, request: Request) -> Response:
        found = self.sim.uploaded_content(request.path_params["file_id"])
        if found is None:
            return JSONResponse(FileError(404, "File not found").body(), status_code=404)
        stored, data = found
        return Response(data, media_type=stored.mime)

    def _answer(self, call: Callable[[], dict[str, Any]]) -> Response:
        try:
            return JSONResponse(call())
        except FileError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)


def _limit(spec: dict[str, Any], name: str) -> float | Literal["keep"] | None:
    if name not in spec:
        return "keep"
    value = spec[name]
    return None if value is None else float(value)


async def _json(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return await request.json()
    except ValueError as exc:
        raise ValueError(f"the body is not valid JSON ({exc})") from None


def _ranged(data: bytes, header: str | None) -> Response:
    """The file, or the single byte range asked for (RFC 9110 §14)."""
    size = len(data)
    headers = {"Accept-Ranges": "bytes"}
    match = _RANGE_RE.fullmatch(header.strip()) if header else None
    if match is None or not (match[1] or match[2]):
        return Response(data, media_type="video/mp4", headers=headers)
    if match[1]:
        start = int(match[1])
        end = min(int(match[2]), size - 1) if match[2] else size - 1
    else:
        start, end = max(0, size - int(match[2])), size - 1
        if int(match[2]) == 0:
            start = size
    if start >= size or start > end:
        headers["Content-Range"] = f"bytes */{size}"
        return Response(b"", status_code=416, headers=headers)
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return Response(data[start : end + 1], status_code=206, media_type="video/mp4", headers=headers)
