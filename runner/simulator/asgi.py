"""`SimApp`: the outermost ASGI layer of the simulator, where origins are told apart and
faults happen.

It sits *outside* Starlette (whose error middleware would turn a dropped connection into a
500): it classifies each request by origin and endpoint, counts it, adds ``x-request-id``,
``x-simulator-speed`` and a ``Date`` in simulated time to every response (unless the response
already has them), buffers the request body, and either passes the call to the Starlette routes
or plays the fault the plan picked for it (see `runner.simulator.faults`).

Two origins, one app (``docs/simulator.md`` §21): with ``SimConfig.file_origin`` set, a request
whose ``Host`` (and scheme) is that origin's reaches the file host (``/files/…`` only, endpoint
``file``) and every other request the API, which then has no ``/files/``. The file service for
input media (§24, ``/api/v1/files/…`` and ``/uploads/…``) is a third origin the same way, with
``SimConfig.upload_origin`` (else it is served on the API's origin). ``SimApp.files`` is the
file host alone, to serve on a port of its own (`testing.serve`). With ``strict_file_host`` the
file host answers 403 ``error code: 1010`` (text/plain) before anything else to a request
without a User-Agent, with a library's default one (`LIBRARY_AGENTS`) or with an
``Authorization`` header [INF: a Cloudflare-style browser-signature block, §21].

A create with an ``Idempotency-Key`` claims the key from its arrival until its answer has gone
(faults and their delays included); a create with the same key meanwhile is answered 409
``paid_outcome_unknown`` and creates nothing (`Simulator.claim_idempotency_key`, §17).

Dropping a connection without a response needs the server's transport. Under uvicorn the raw
ASGI ``send`` is a bound method of its request cycle, whose ``transport`` we close (``drop``:
FIN) or abort after setting ``SO_LINGER`` to 0 (``reset``: RST). Run in process behind
``httpx.ASGITransport`` there is no socket, so the app raises the exception httpx itself
raises for such a connection (`httpx.RemoteProtocolError` / `httpx.ReadError`), which the
transport hands to the client unchanged. Note that httpx applies no timeouts to an
``ASGITransport``: in process, a ``hang`` (or a long ``delay``) lasts until the caller cancels
(``anyio.fail_after``) or ``max_hang_seconds`` pass; use `testing.serve` for real timeouts.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, Final, Literal

import anyio
import anyio.lowlevel
import httpx
from starlette.datastructures import State
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import origin_parts
from .faults import Fault
from .state import Simulator
from .uploads import FileError
from .wire import (
    BLOCKED_BODY,
    EXPIRED_LINK_BODY,
    NO_SUCH_KEY_BODY,
    UPLOAD_ENDPOINTS,
    Endpoint,
    code_for_status,
    error_body,
)

MAX_BODY_BYTES: Final = 64 * 1024 * 1024  # the documented request size limit (§1)
_CHUNK: Final = 64 * 1024
SPEED_HEADER: Final = b"x-simulator-speed"  # simulated seconds per wall second; EvoLink: none
_FAKE_MP4_HEAD: Final = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
# User-Agents the strict file host refuses: libraries' defaults [INF]
LIBRARY_AGENTS: Final = (
    "python-httpx",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "curl",
    "wget",
)
Origin = Literal["api", "files", "uploads"]
_FILES_API: Final = "/api/v1/files/"


def classify(
    method: str,
    path: str,
    origin: Origin = "api",
    *,
    files_here: bool = True,
    uploads_here: bool = True,
) -> tuple[Endpoint | None, str | None]:
    """The EvoLink endpoint a request targets (None: not one) and the task (or uploaded
    file) id in its path.

    On the file origin only ``/files/`` is one; on the API origin ``/files/`` is one while
    ``files_here`` (no separate file origin), and the file service's paths while
    ``uploads_here`` (no separate upload origin); on the upload origin only those."""
    if origin == "uploads" or (origin == "api" and uploads_here):
        found = _classify_upload(method, path)
        if found[0] is not None or origin == "uploads":
            return found
    if path.startswith("/files/") and method in ("GET", "HEAD"):
        if origin == "files" or files_here:
            return "file", path.removeprefix("/files/").removesuffix(".mp4")
        return None, None
    if origin == "files":
        return None, None
    if path == "/v1/videos/generations" and method == "POST":
        return "create", None
    if path == "/v1/tasks/batch" and method == "POST":
        return "batch", None
    if path == "/v1/tasks" and method in ("GET", "HEAD"):
        return "list", None
    if path.startswith("/v1/tasks/") and method in ("GET", "HEAD"):
        return "task", path.removeprefix("/v1/tasks/")
    if path == "/v1/credits" and method in ("GET", "HEAD"):
        return "credits", None
    if path == "/v1/models" and method in ("GET", "HEAD"):
        return "models", None
    if path == "/v1/catalog/pricing-rules" and method in ("GET", "HEAD"):
        return "pricing", None
    return None, None


def _classify_upload(method: str, path: str) -> tuple[Endpoint | None, str | None]:
    """The file service's endpoints (§24) and the file id in the path."""
    if path.startswith("/uploads/") and method in ("GET", "HEAD"):
        return "upload_file", path.removeprefix("/uploads/").partition("/")[0]
    if not path.startswith(_FILES_API):
        return None, None
    rest = path.removeprefix(_FILES_API)
    if rest == "upload/stream" and method == "POST":
        return "upload", None
    if rest == "quota" and method in ("GET", "HEAD"):
        return "upload_quota", None
    if rest == "list" and method in ("GET", "HEAD"):
        return "upload_list", None
    if rest.startswith("upload-receipts/") and method in ("GET", "HEAD"):
        return "upload_receipt", rest.removeprefix("upload-receipts/")
    if rest.startswith("download/") and method in ("GET", "HEAD"):
        return "upload_file", rest.removeprefix("download/")
    if "/" not in rest and rest and method == "DELETE":
        return "upload_delete", rest
    return None, None


class SimApp:
    """The simulator's ASGI application; ``app.state.sim`` (and ``app.sim``) is its state.

    ``inner`` serves the API origin, ``files_inner`` the file origin; `files` is an ASGI app of
    the file origin alone."""

    def __init__(
        self, sim: Simulator, inner: ASGIApp, files_inner: ASGIApp, uploads_inner: ASGIApp
    ) -> None:
        self.sim = sim
        self.inner = inner
        self.files_inner = files_inner
        self.uploads_inner = uploads_inner
        self.state = State()
        self.state.sim = sim
        self.speed_header = speed_text(sim.config.speed).encode()
        origin = sim.config.file_origin
        self.file_origin = None if origin is None else origin_parts(origin)
        upload = sim.config.upload_origin
        self.upload_origin = None if upload is None else origin_parts(upload)
        self.files = FileHost(self)
        self.uploads = FileHost(self, "uploads")

    def __repr__(self) -> str:
        return f"<SimApp speed={self.sim.config.speed} tasks={len(self.sim.tasks)}>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin: Origin = "api"
        if scope["type"] == "http" and (self.file_origin or self.upload_origin):
            seen = _origin_of(scope)
            if seen == self.file_origin:
                origin = "files"
            elif seen == self.upload_origin:
                origin = "uploads"
        await self.serve(scope, receive, send, origin)

    async def serve(self, scope: Scope, receive: Receive, send: Send, origin: Origin) -> None:
        """Answer one request as ``origin`` does."""
        inner = {"files": self.files_inner, "uploads": self.uploads_inner}.get(origin, self.inner)
        if scope["type"] != "http":
            await inner(scope, receive, send)
            return
        endpoint, task_id = classify(
            scope["method"],
            scope["path"],
            origin,
            files_here=self.file_origin is None,
            uploads_here=self.upload_origin is None,
        )
        tagged = _tagged(send, self.speed_header, self.sim.now)
        if endpoint is None:
            if origin == "files":  # what a CDN says for anything else
                await Response(NO_SUCH_KEY_BODY, 404, media_type="application/xml")(
                    scope, receive, tagged
                )
            elif origin == "uploads":
                body = FileError(404, "Not found").body()
                await JSONResponse(body, 404)(scope, receive, tagged)
            else:
                await inner(scope, receive, tagged)
            return
        if endpoint in UPLOAD_ENDPOINTS and inner is self.inner:
            inner = self.uploads_inner  # the file service on the API's origin
        agent = _header(scope, b"user-agent")
        authorized = _header(scope, b"authorization") is not None
        if endpoint == "file" and self.sim.config.strict_file_host and _blocked(agent, authorized):
            self.sim.seen(endpoint, agent, authorized)
            await Response(BLOCKED_BODY, 403, media_type="text/plain")(scope, receive, tagged)
            self.sim.end_call(endpoint, 0, "403-1010")
            return
        seq, fault = self.sim.begin_call(
            endpoint, task_id, user_agent=agent, authorization=authorized
        )
        call = _Call(self, endpoint, scope, receive, send, tagged, inner)
        try:
            await call.run(fault)
        finally:
            self.sim.end_call(endpoint, seq, call.outcome)


class FileHost:
    """One origin of a `SimApp` alone, whatever the request's Host (to serve on a port of its
    own): the result files (``files``) or the file service (``uploads``)."""

    def __init__(self, app: SimApp, origin: Origin = "files") -> None:
        self.app = app
        self.origin: Origin = origin
        self.state = app.state

    def __repr__(self) -> str:
        return f"<FileHost {self.origin} of {self.app!r}>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app.serve(scope, receive, send, self.origin)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _origin_of(scope: Scope) -> tuple[str, str, int]:
    """``(scheme, host, port)`` a request was addressed to (its Host header, else the server)."""
    scheme = str(scope.get("scheme", "http"))
    default = 443 if scheme == "https" else 80
    host = (_header(scope, b"host") or "").strip().lower()
    if host:
        if host.startswith("["):  # an IPv6 literal
            name, _, rest = host[1:].partition("]")
            port = rest.removeprefix(":")
        else:
            name, _, port = host.partition(":")
        return scheme, name, int(port) if port.isdigit() else default
    server = scope.get("server") or ("", default)
    return scheme, str(server[0]).lower(), int(server[1] or default)


def _blocked(agent: str | None, authorized: bool) -> bool:
    """Whether the strict file host refuses this client (see the module docstring)."""
    if authorized or not agent or not agent.strip():
        return True
    return agent.strip().lower().startswith(LIBRARY_AGENTS)


def speed_text(speed: float) -> str:
    """The ``x-simulator-speed`` value: ``100`` for 100.0, ``0.5`` for 0.5 (`float` reads it)."""
    return str(int(speed)) if float(speed).is_integer() else repr(float(speed))


def _tagged(send: Send, speed: bytes, now: Callable[[], float]) -> Send:
    """``send`` adding ``x-request-id``, ``x-simulator-speed`` and ``Date`` (simulated time,
    RFC 9110 IMF-fixdate) to the response head."""

    async def tagged(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            names = {name.lower() for name, _ in headers}
            if b"x-request-id" not in names:
                headers.append((b"x-request-id", f"req-{uuid.uuid4().hex[:24]}".encode()))
            if SPEED_HEADER not in names:
                headers.append((SPEED_HEADER, speed))
            if b"date" not in names:
                headers.append((b"date", formatdate(now(), usegmt=True).encode()))
            message = {**message, "headers": headers}
        await send(message)

    return tagged


@dataclass
class _Captured:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header_list(self, *drop: bytes) -> list[tuple[bytes, bytes]]:
        return [(k, v) for k, v in self.headers if k.lower() not in drop]


class _Call:
    """One request on an EvoLink endpoint, answered normally or through a fault."""

    def __init__(
        self,
        app: SimApp,
        endpoint: Endpoint,
        scope: Scope,
        receive: Receive,
        raw_send: Send,
        send: Send,
        inner: ASGIApp,
    ) -> None:
        self.app = app
        self.inner = inner
        self.sim = app.sim
        self.endpoint = endpoint
        self.scope = scope
        self.raw_receive = receive
        self.raw_send = raw_send
        self.send = send
        self.outcome = "disconnect"  # until a status is sent
        self.body = b""

    async def _send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.outcome = str(message["status"])
        await self.send(message)

    def _replay(self) -> Receive:
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": self.body, "more_body": False}
            return await self.raw_receive()

        return receive

    async def run(self, fault: Fault | None) -> None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.raw_receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if self.endpoint == "upload" and size > self.sim.config.upload_max_bytes + _CHUNK:
                self.sim.files.refused[40001] += 1
                too_big = FileError(40001, "File too large")
                await self._json(too_big.status, too_big.body())
                return
            if size > MAX_BODY_BYTES and self.endpoint != "upload":
                await self._json(413, error_body("request_too_large", self.endpoint))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        self.body = b"".join(chunks)
        claim = None
        if self.endpoint == "create" and (fault is None or fault.processes):
            authorization = _header(self.scope, b"authorization")
            idempotency_key = _header(self.scope, b"idempotency-key")
            if not self.sim.claim_idempotency_key(authorization, idempotency_key):
                body = error_body("paid_outcome_unknown", int_code=self.sim.config.int_error_codes)
                await self._json(409, body)
                return
            if idempotency_key is not None:
                claim = (authorization, idempotency_key)
        try:
            if fault is None:
                await self.inner(self.scope, self._replay(), self._send)
            else:
                await self._fault(fault)
        finally:
            if claim is not None:
                self.sim.release_idempotency_key(*claim)

    # --- faults ------------------------------------------------------------------------------

    async def _fault(self, fault: Fault) -> None:
        pause = fault.delay / (self.sim.config.speed if fault.delay_clock == "sim" else 1.0)
        captured: _Captured | None = None
        if pause and not fault.processed and not await self._pause(pause):
            return  # the client left before the request was processed
        if fault.processes:
            captured = await self._capture()
        if pause and fault.processed and not await self._pause(pause):
            return  # processed, but the client left before the answer
        handlers: dict[str, Callable[[Fault, _Captured | None], Awaitable[None]]] = {
            "respond": self._respond,
            "patch": self._patch,
            "pass": self._pass,
            "hang": self._hang,
            "reset": self._reset,
            "drop": self._drop,
            "truncate": self._truncate,
            "throttle": self._throttle,
            "endless": self._endless,
            "redirect": self._redirect,
            "rate_limit": self._rate_limit,
            "expire": self._expire,
        }
        await handlers[fault.kind](fault, captured)

    async def _capture(self) -> _Captured:
        out = _Captured(500, [], b"")
        parts: list[bytes] = []

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                out.status = message["status"]
                out.headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))

        await self.inner(self.scope, self._replay(), send)
        out.body = b"".join(parts)
        return out

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds``; False when the client went away meanwhile."""
        with anyio.move_on_after(seconds):
            await self._until_disconnect()
            self.outcome = "disconnect"
            return False
        return True

    async def _until_disconnect(self) -> None:
        while (await self.raw_receive())["type"] != "http.disconnect":
            pass

    async def _reply(
        self, status: int, headers: dict[str, str], body: bytes, media_type: str | None
    ) -> None:
        response = Response(body, status_code=status, headers=headers, media_type=media_type)
        await response(self.scope, self._replay(), self._send)

    async def _json(self, status: int, content: Any, headers: dict[str, str] | None = None) -> None:
        response = JSONResponse(content, status_code=status, headers=headers)
        await response(self.scope, self._replay(), self._send)

    def _int_code(self, fault: Fault) -> bool:
        return fault.int_code or self.sim.config.int_error_codes

    async def _respond(self, fault: Fault, _: _Captured | None) -> None:
        status = fault.status if fault.status is not None else 500
        headers = dict(fault.headers)
        if fault.body is not None:
            await self._reply(
                status,
                headers,
                fault.body.encode(),
                fault.content_type or "text/plain; charset=utf-8",
            )
        elif fault.json_body is not None:
            await self._reply(
                status,
                headers,
                json.dumps(fault.json_body).encode(),
                fault.content_type or "application/json",
            )
        elif status >= 400 and self.endpoint in UPLOAD_ENDPOINTS:
            await self._json(status, FileError(status, f"HTTP {status}").body(), headers)
        elif status >= 400 and self.endpoint != "file":
            code = code_for_status(self.endpoint, status)
            body = error_body(code, self.endpoint, status=status, int_code=self._int_code(fault))
            await self._json(status, body, headers)
        else:
            await self._reply(status, headers, b"", fault.content_type)

    async def _rate_limit(self, fault: Fault, _: _Captured | None) -> None:
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            seconds = fault.retry_after
            headers["Retry-After"] = (
                formatdate(self.sim.unix_time() + seconds, usegmt=True)
                if fault.retry_after_format == "date"
                else str(int(seconds))
                if float(seconds).is_integer()
                else str(seconds)
            )
        body = error_body("rate_limit_exceeded", self.endpoint, int_code=self._int_code(fault))
        await self._json(429, body, headers)

    async def _redirect(self, fault: Fault, _: _Captured | None) -> None:
        headers = {**fault.headers, "Location": fault.location or "/"}
        await self._reply(fault.status or 302, headers, b"", None)

    async def _expire(self, fault: Fault, _: _Captured | None) -> None:
        await self._reply(403, dict(fault.headers), EXPIRED_LINK_BODY.encode(), "application/xml")

    async def _pass(self, fault: Fault, captured: _Captured | None) -> None:
        assert captured is not None
        await self._send(
            {"type": "http.response.start", "status": captured.status, "headers": captured.headers}
        )
        await self._send({"type": "http.response.body", "body": captured.body})

    async def _patch(self, fault: Fault, captured: _Captured | None) -> None:
        assert captured is not None
        try:
            data = json.loads(captured.body)
        except ValueError:
            data = None
        if isinstance(data, dict):
            for key, value in dict(fault.json_body).items():
                if value is None:
                    data.pop(key, None)
                else:
                    data[key] = value
            await self._json(
                captured.status,
                data,
                {
                    k.decode(): v.decode()
                    for k, v in captured.header_list(b"content-length", b"content-type")
                },
            )
        else:
            await self._pass(fault, captured)

    async def _hang(self, fault: Fault, _: _Captured | None) -> None:
        self.outcome = "hang"
        with anyio.move_on_after(self.sim.config.max_hang_seconds):
            await self._until_disconnect()
            return
        await self._close(reset=False)

    async def _reset(self, fault: Fault, _: _Captured | None) -> None:
        await self._close(reset=True)

    async def _drop(self, fault: Fault, _: _Captured | None) -> None:
        await self._close(reset=False)

    async def _close(self, *, reset: bool, sent: int | None = None, expected: int = 0) -> None:
        """End the connection without (the rest of) a response."""
        if sent is None:
            self.outcome = "reset" if reset else "drop"
        transport = _transport_of(self.raw_send)
        if transport is None:  # in process: what httpx raises for a real connection
            if sent is not None:
                raise httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body "
                    f"(received {sent} bytes, expected {expected})"
                )
            if reset:
                raise httpx.ReadError("[Errno 104] Connection reset by peer")
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        if reset:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()  # flushes what was written, then FIN
        with anyio.move_on_after(2):  # let the server notice, so it does not answer 500
            await self._until_disconnect()

    async def _truncate(self, fault: Fault, captured: _Captured | None) -> None:
        assert captured is not None
        body = captured.body
        declared = fault.content_length if fault.content_length is not None else len(body)
        cut = min(
            fault.truncate_at if fault.truncate_at is not None else len(body) // 2,
            len(body),
            declared,
        )
        headers = captured.header_list(b"content-length")
        headers.append((b"content-length", str(declared).encode()))
        await self._send(
            {"type": "http.response.start", "status": captured.status, "headers": headers}
        )
        await self._send({"type": "http.response.body", "body": body[:cut], "more_body": True})
        self.outcome = f"{captured.status}-truncated"
        await self._close(reset=False, sent=cut, expected=declared)

    async def _stream(self, produce: Callable[[], Awaitable[None]]) -> None:
        """Run ``produce`` until it ends or the client disconnects."""
        done = False
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                await self._until_disconnect()
                if not done:
                    tg.cancel_scope.cancel()

            tg.start_soon(watch)
            await produce()
            done = True
            tg.cancel_scope.cancel()

    async def _throttle(self, fault: Fault, captured: _Captured | None) -> None:
        assert captured is not None and fault.bytes_per_second is not None
        rate = fault.bytes_per_second
        body = captured.body
        step = max(1, int(rate * 0.05))

        async def produce() -> None:
            await self._send(
                {
                    "type": "http.response.start",
                    "status": captured.status,
                    "headers": captured.headers,
                }
            )
            start = anyio.current_time()
            for offset in range(0, len(body), step):
                piece = body[offset : offset + step]
                await self._send({"type": "http.response.body", "body": piece, "more_body": True})
                lag = start + (offset + len(piece)) / rate - anyio.current_time()
                if lag > 0:
                    await anyio.sleep(lag)
            await self._send({"type": "http.response.body", "body": b""})

        await self._stream(produce)

    async def _endless(self, fault: Fault, _: _Captured | None) -> None:
        limit = fault.max_bytes if fault.max_bytes is not None else 64 * 1024 * 1024
        headers = [
            (b"content-type", b"video/mp4"),
            *((k.encode(), v.encode()) for k, v in fault.headers.items()),
        ]

        async def produce() -> None:
            await self._send(
                {"type": "http.response.start", "status": fault.status or 200, "headers": headers}
            )
            sent = 0
            chunk = _FAKE_MP4_HEAD + bytes(_CHUNK - len(_FAKE_MP4_HEAD))
            while sent < limit:
                piece = chunk[: limit - sent]
                await self._send({"type": "http.response.body", "body": piece, "more_body": True})
                sent += len(piece)
                chunk = bytes(_CHUNK)
                await anyio.lowlevel.checkpoint()
            await self._send({"type": "http.response.body", "body": b""})

        await self._stream(produce)


def _transport_of(send: Send) -> asyncio.Transport | None:
    """uvicorn's transport behind its raw ``send`` (a bound method of the request cycle)."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    return transport if isinstance(transport, asyncio.Transport) else None
