"""Which API a run talks to, built as a provider (`runner.providers.base.Provider`): EvoLink
itself, or the simulator in process (through ``httpx.ASGITransport``) or on loopback.

With no ``EVOLINK_API_KEY`` the default is the in-process simulator: nothing is paid and the
videos are simulated. The key is read from the environment only, stripped of spaces, sent only
in the Authorization header and never stored (its ``repr`` is masked).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from .. import USER_AGENT
from ..errors import InputError
from ..providers.base import Provider
from ..providers.evolink import CREATE_PATH, LIMITS, EvoLink
from ..providers.evolink_files import FILES_URL
from .failpoints import armed, failpoint

EVOLINK_URL = "https://api.evolink.ai"
SIM_ORIGIN = "http://simulator.local"
SIM_FILE_ORIGIN = "http://files.simulator.local"  # its result files: another host, like EvoLink's
SIM_UPLOAD_ORIGIN = "http://files-api.simulator.local"  # its file service, like EvoLink's
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
SIM_SPEED = 100.0  # the in-process simulator: a 2-minute generation takes 1.2 s
FILE_LIMITS = httpx.Limits(max_connections=8, max_keepalive_connections=4)
FILE_TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=10.0, pool=60.0)


@dataclass(frozen=True)
class Secret:
    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('***')"


@dataclass(frozen=True)
class Backend:
    name: str  # "sim" or "evolink"
    base_url: str
    key: Secret = field(repr=False)
    in_process: bool = False
    sim_state: Path | None = None  # the in-process simulator's journal (resume across processes)

    @property
    def simulated(self) -> bool:
        return self.name == "sim"

    @property
    def trusted_origins(self) -> tuple[str, ...]:
        """Where result files may come from over plain http (`runner.run.media.check_url`):
        the in-process simulator's API and file hosts; for a simulator on loopback, any
        loopback origin (its file host may listen on another port). Nothing for any other
        base URL: EvoLink's result links are https on public hosts (docs/design.md §6)."""
        if self.in_process:
            return (SIM_ORIGIN, SIM_FILE_ORIGIN)
        if urlsplit(self.base_url).hostname in LOOPBACK_HOSTS:
            return tuple(
                f"{scheme}://{host}:*"
                for scheme in ("http", "https")
                for host in ("127.0.0.1", "localhost", "[::1]")
            )
        return ()

    @property
    def files_url(self) -> str:
        """The file service local media are uploaded to (docs/evolink.md §21): EvoLink's own;
        the in-process simulator's; for a simulator on loopback, its own address."""
        if self.in_process:
            return SIM_UPLOAD_ORIGIN
        if urlsplit(self.base_url).hostname in LOOPBACK_HOSTS:
            return self.base_url
        return FILES_URL

    def announce(self) -> str:
        if self.in_process:
            return (
                "Backend: built-in simulator (EVOLINK_API_KEY is not set): nothing is paid, "
                "videos are simulated."
            )
        if self.simulated:
            return f"Backend: simulator at {self.base_url}: nothing is paid, videos are simulated."
        return f"Backend: EvoLink at {self.base_url} (credits will be spent)."


def api_key_from_env() -> str | None:
    key = os.environ.get(EvoLink.key_env, "").strip()
    return key or None


def choose(backend: str | None, base_url: str | None, workspace: Path) -> Backend:
    key = api_key_from_env()
    name = backend or ("evolink" if key else "sim")
    if name == "evolink":
        if key is None:
            raise InputError(
                "the evolink backend needs an API key: set EVOLINK_API_KEY "
                "(keys are at https://evolink.ai/dashboard/keys), or use "
                "--backend sim to try runner without spending"
            )
        return Backend("evolink", (base_url or EVOLINK_URL).rstrip("/"), Secret(key))
    from ..simulator.config import DEFAULT_KEY

    if base_url:
        return Backend("sim", base_url.rstrip("/"), Secret(key or DEFAULT_KEY))
    return Backend(
        "sim", SIM_ORIGIN, Secret(DEFAULT_KEY), in_process=True, sim_state=workspace / "simulator"
    )


@contextlib.asynccontextmanager
async def connect(backend: Backend) -> AsyncIterator[tuple[Provider, httpx.AsyncClient]]:
    """The provider, and a separate client for result files (redirects followed by hand,
    no API key): a slow file host never takes the API's connections."""
    transport: httpx.AsyncBaseTransport | None = None
    if backend.in_process:
        from ..simulator.app import SimConfig, create_app

        state = backend.sim_state
        app = create_app(
            SimConfig(
                speed=SIM_SPEED,
                file_origin=SIM_FILE_ORIGIN,  # result files on a host of their own, like EvoLink's
                upload_origin=SIM_UPLOAD_ORIGIN,  # and the file service on a third
                # its tasks outlive this process, so `runner resume` in another one finds them
                journal=state / "journal.jsonl" if state else None,
                video_cache_dir=state / "videos" if state else None,
            )
        )
        transport = httpx.ASGITransport(app=app)
    api_transport = transport
    if armed("after_post_sent_before_response"):  # a durability test's crash point
        api_transport = _CreateSent(transport or httpx.AsyncHTTPTransport(limits=LIMITS))
    headers = {"User-Agent": USER_AGENT}
    async with (
        httpx.AsyncClient(
            base_url=backend.base_url,
            transport=api_transport,
            limits=LIMITS,
            follow_redirects=False,
            headers=headers,
        ) as http,
        httpx.AsyncClient(
            transport=transport,
            limits=FILE_LIMITS,
            follow_redirects=False,
            timeout=FILE_TIMEOUT,
            headers=headers,
        ) as files,
    ):
        yield EvoLink(http, backend.key.value, backend.files_url), files


class _CreateSent(httpx.AsyncBaseTransport):
    """Passes every request to ``inner``; a create's body is watched so that the
    ``after_post_sent_before_response`` failpoint fires once its last byte has been handed
    to the connection and before its answer is read (installed only when that failpoint is
    armed)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith(CREATE_PATH):
            request.stream = _ThenFailpoint(request.stream)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class _ThenFailpoint(httpx.AsyncByteStream):
    """A request body that reaches the failpoint when the transport asks for more after its
    last chunk, i.e. once that chunk has been written."""

    def __init__(self, stream: httpx.SyncByteStream | httpx.AsyncByteStream) -> None:
        self.stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        assert isinstance(self.stream, httpx.AsyncByteStream)  # an async client's body
        async for chunk in self.stream:
            yield chunk
        failpoint("after_post_sent_before_response")
