"""The result-file stage: download a finished video safely, then look at it with a real decoder.

    download()      stream a result link to ``<media>/<job_key>.mp4`` (``.part``, fsync, rename)
    check_url()     why a link must not be fetched (scheme, private hosts), or None

(`runner.run.probe` then looks at the file with a real decoder.)

Every failure is a `DownloadError` with a ``code`` (what went wrong), ``retryable`` (whether
trying the same link again can help) and a ``message`` for the person reading the report.
httpx and OS errors are translated here, at this one boundary.

`download` never retries by itself (the caller wraps it in its retry policy, see
`is_retryable`) and never follows a redirect without checking the new address first.
Rules: ``docs/reliability.md`` §5.3.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
import httpx

from runner import USER_AGENT
from runner.errors import RunnerError
from runner.run.disk import over_budget
from runner.run.failpoints import disk_full, failpoint
from runner.urls import is_private_host

__all__ = [
    "MAX_VIDEO_BYTES",
    "DownloadCode",
    "DownloadError",
    "Downloaded",
    "check_url",
    "download",
    "is_retryable",
]

MAX_VIDEO_BYTES: Final = 512 * 1024 * 1024
"""Default size cap of one result file (a 15 s 1080p Seedance render is far smaller)."""

DownloadCode = Literal[
    "expired", "refused", "blocked_url", "not_video", "too_large", "http_error", "network", "disk"
]

VIDEO_TYPES: Final = frozenset(
    {"video/mp4", "application/mp4", "application/octet-stream", "binary/octet-stream"}
)
"""Content types accepted for a result file (a missing one is accepted too)."""

_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_EXPIRED: Final = frozenset({403, 404, 410})
_RETRY_STATUSES: Final = frozenset({408, 425, 429})  # plus every 5xx
_WRITE_BLOCK: Final = 1024 * 1024  # bytes gathered before one write in a worker thread
_PLAIN_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_HEAD_BYTES: Final = 64  # bytes looked at before anything is written: the MP4 signature, or HTML
_BLOCK_CODE: Final = b"1010"  # a CDN's block of a client by its signature (docs/evolink.md §21)
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


class DownloadError(RunnerError):
    """A result file could not be downloaded, stored or read as a video.

    ``code`` says what went wrong: ``expired`` (403/404/410 from the file host),
    ``refused`` (the file host blocked this client: a 403 whose body says ``1010``, or a web
    page instead of the video; a fresh link from a re-read of the task may work,
    docs/evolink.md §21), ``blocked_url`` (scheme or host not allowed, on any redirect hop),
    ``not_video`` (JSON or other non-video content, no MP4 signature, undecodable),
    ``too_large``, ``http_error`` (any other
    status), ``network`` (timeouts, resets, a body shorter than announced) or ``disk``
    (writing failed, e.g. the disk is full). ``retryable`` is True when fetching the same
    link again can help (network errors, 5xx/408/429); whether an ``expired`` link is really
    past its time is for the caller to decide. ``status`` is the HTTP status, when there was
    one.
    """

    def __init__(
        self,
        code: DownloadCode,
        message: str,
        *,
        retryable: bool = False,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code: DownloadCode = code
        self.message = message
        self.retryable = retryable
        self.status = status

    def __repr__(self) -> str:
        status = f" status={self.status}" if self.status is not None else ""
        return f"<DownloadError {self.code}{status} retryable={self.retryable}: {self.message!r}>"


def is_retryable(exc: BaseException) -> bool:
    """The retry predicate for the caller's policy (e.g. ``stamina.retry(on=is_retryable)``)."""
    return isinstance(exc, DownloadError) and exc.retryable


# --- which links may be fetched ---------------------------------------------------------------


def check_url(url: str, trusted_origins: Sequence[str] | str | None = ()) -> str | None:
    """Why the runner must not fetch ``url``, in plain words; None when it may.

    Allowed: ``https`` links whose host is a name other than ``localhost`` or a public IP
    address; or any ``http``/``https`` link on one of ``trusted_origins`` (scheme, host and
    port: the in-process simulator's API and file hosts, or a local simulator's). A trusted
    origin written with port ``*`` (``http://127.0.0.1:*``) matches that scheme and host on any
    port. Host *names* are not resolved here: a public name that resolves to a private address
    is the file host's DNS, which the runner trusts as much as the API itself.
    """
    origin = _origin(url)
    if origin is None:
        return "it is not a valid web address"
    scheme, host, _ = origin
    if (
        host
        and scheme in _DEFAULT_PORTS
        and any(_matches(origin, t) for t in _listed(trusted_origins))
    ):
        return None
    if scheme != "https":
        shown = f"{scheme}:" if scheme else "without a scheme"
        return f"only https links are downloaded, and this one is {shown}"
    if not host:
        return "the link has no host"
    if is_private_host(host, legacy_ipv4=True):
        return f"it points to a private, loopback or link-local address ({host})"
    return None


def _listed(trusted: Sequence[str] | str | None) -> Sequence[str]:
    if trusted is None:
        return ()
    return (trusted,) if isinstance(trusted, str) else trusted


def _matches(origin: tuple[str, str, int | None], trusted: str) -> bool:
    any_port = trusted.endswith(":*")
    pattern = _origin(trusted.removesuffix(":*") if any_port else trusted)
    if pattern is None:
        return False
    if any_port:
        return origin[:2] == pattern[:2]
    return origin == pattern


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    return scheme, host, port if port is not None else _DEFAULT_PORTS.get(scheme)


# --- download ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Downloaded:
    """A result file safely on disk: where, how many bytes, and their SHA-256 (hex)."""

    path: Path
    size: int
    sha256: str


async def download(
    http: httpx.AsyncClient,
    url: str,
    dest: Path,
    *,
    trusted_origins: Sequence[str] = (),
    max_bytes: int = MAX_VIDEO_BYTES,
    max_redirects: int = 5,
) -> Downloaded:
    """Stream ``url`` to ``dest`` through ``dest.part``; raises `DownloadError`.

    ``dest`` is a file name the runner chose (``<media>/<job_key>.mp4``); a name that is not
    plain, a ``..`` step after a folder name, or a ``dest`` that resolves outside its folder
    is a bug of the caller and raises ValueError before anything is fetched. Redirects are
    followed here (never by httpx), each hop checked with `check_url`. The client's
    ``Authorization`` and ``Cookie`` headers are never sent: a result link is a bare CDN
    link, and the API key must not travel to a file host; ``User-Agent`` is runner's own
    (`runner.USER_AGENT`), as file hosts may refuse a library's default (docs/evolink.md
    §21). The size cap applies to the announced length and to the bytes really received;
    the content type and the MP4 signature are checked before anything is written. The file
    appears at ``dest`` only when complete and fsynced; on any failure (cancellation
    included) the ``.part`` is removed. The client's timeouts apply to every read; an
    overall deadline is the caller's (``anyio.fail_after``).
    """
    _check_destination(dest)
    current = url
    for hop in range(max_redirects + 1):
        reason = check_url(current, trusted_origins)
        if reason is not None:
            raise DownloadError(
                "blocked_url",
                f"the result link redirected to an address that was refused: {reason}"
                if hop
                else f"the result link was refused: {reason}",
            )
        try:
            request = http.build_request(
                "GET", current, headers={"Accept-Encoding": "identity", "User-Agent": USER_AGENT}
            )
        except httpx.InvalidURL as exc:
            raise DownloadError("blocked_url", f"the result link is not valid: {exc}") from None
        for name in ("Authorization", "Cookie"):
            request.headers.pop(name, None)
        try:
            response = await http.send(request, stream=True, follow_redirects=False)
            try:
                if response.status_code in _REDIRECTS:
                    current = _next_hop(response)
                    continue
                await _check_response(response, max_bytes)
                return await _save(response, dest, max_bytes)
            finally:
                await response.aclose()
        except httpx.RequestError as exc:
            raise _network_error(exc) from exc
    raise DownloadError(
        "http_error",
        f"the result link redirected more than {max_redirects} times; "
        "the file host is misbehaving, try again later",
    )


def _check_destination(dest: Path) -> None:
    """Refuse a destination that is not ``<folder>/<plain name>`` (a bug of the caller)."""
    name = dest.name
    if not _PLAIN_NAME.fullmatch(name) or name.endswith(".part"):
        raise ValueError(
            f"refusing to write {str(dest)!r}: result files get plain names "
            "chosen by the runner (<media folder>/<job_key>.mp4)"
        )
    seen_folder = False
    for part in dest.parts:
        if part == ".." and seen_folder:
            raise ValueError(
                f"refusing to write {str(dest)!r}: the path steps back out of a "
                "folder ('..'); result files are written only as "
                "<media folder>/<job_key>.mp4"
            )
        seen_folder = seen_folder or part not in ("..", ".", dest.anchor)
    folder = dest.parent.resolve()
    if dest.resolve().parent != folder:
        raise ValueError(
            f"refusing to write {str(dest)!r}: it resolves outside {str(folder)!r} "
            "(a symbolic link?)"
        )


def _next_hop(response: httpx.Response) -> str:
    location = response.headers.get("location")
    if not location:
        raise DownloadError(
            "http_error",
            f"the file host answered a redirect (HTTP {response.status_code}) "
            "without saying where to",
            status=response.status_code,
        )
    try:
        return str(response.url.join(location))
    except httpx.InvalidURL as exc:
        raise DownloadError(
            "blocked_url", f"the result link redirected to an invalid address: {exc}"
        ) from None


async def _check_response(response: httpx.Response, max_bytes: int) -> None:
    status = response.status_code
    if status == 403 and _BLOCK_CODE in await _peek(response):
        raise DownloadError(
            "refused",
            "the file host refused the download (HTTP 403, error 1010: it blocks this "
            "kind of client)",
            status=status,
        )
    if status in _EXPIRED:
        raise DownloadError(
            "expired",
            f"the result link has expired (HTTP {status}); the video can no longer be downloaded",
            status=status,
        )
    if status != 200:
        retryable = status >= 500 or status in _RETRY_STATUSES
        advice = "; it may work again later" if retryable else ""
        raise DownloadError(
            "http_error",
            f"the file host answered HTTP {status} instead of the video{advice}",
            retryable=retryable,
            status=status,
        )
    kind = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind == "text/html":
        raise _web_page(status)
    if kind and kind not in VIDEO_TYPES:
        raise DownloadError(
            "not_video",
            f"the result link returned {kind} instead of a video",
            status=status,
        )
    declared = _content_length(response)
    if declared is not None and declared > max_bytes:
        raise DownloadError(
            "too_large",
            f"the result file is {_mb(declared)}, above the "
            f"{_mb(max_bytes)} limit; it was not downloaded",
            status=status,
        )


async def _peek(response: httpx.Response, limit: int = 4096) -> bytes:
    """The first ``limit`` bytes of an error answer's body (it is closed by the caller)."""
    seen = b""
    with suppress(httpx.HTTPError):
        async for chunk in response.aiter_bytes():
            seen += chunk
            if len(seen) >= limit:
                break
    return seen[:limit]


def _web_page(status: int | None = None) -> DownloadError:
    return DownloadError(
        "refused",
        "the file host answered a web page instead of the video (an error or block page)",
        status=status,
    )


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "").strip()
    return int(value) if value.isdigit() else None


async def _save(response: httpx.Response, dest: Path, max_bytes: int) -> Downloaded:
    part = dest.with_name(dest.name + ".part")
    declared = _content_length(response)
    digest = hashlib.sha256()
    size = 0
    head = b""  # the first bytes, until the MP4 signature is checked
    checked = False
    written = False  # a first block is in the .part (the `mid_download` failpoint)
    block = bytearray()
    with anyio.CancelScope(shield=True):  # a cancelled create would leave the .part behind
        handle = await anyio.to_thread.run_sync(_PartFile.create, part)
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise DownloadError(
                    "too_large",
                    f"the result file is larger than the {_mb(max_bytes)} "
                    "limit; the download was stopped",
                )
            if not checked:
                head += chunk[: _HEAD_BYTES - len(head)]
                if len(head) == _HEAD_BYTES:
                    _check_signature(head)
                    checked = True
            digest.update(chunk)
            block += chunk
            if len(block) >= _WRITE_BLOCK:
                await anyio.to_thread.run_sync(handle.write, bytes(block))
                block.clear()
                if not written:
                    written = True
                    failpoint("mid_download")
        if declared is not None and response.num_bytes_downloaded < declared:
            raise DownloadError(
                "network",
                f"the download was cut short ({response.num_bytes_downloaded} of "
                f"{declared} bytes); it may work again",
                retryable=True,
            )
        if not checked:
            _check_signature(head)
        await anyio.to_thread.run_sync(handle.write, bytes(block))
        if not written:
            failpoint("mid_download")
        with anyio.CancelScope(shield=True):  # once renamed, report it as done
            await anyio.to_thread.run_sync(handle.commit, dest)
    except BaseException:
        handle.discard()
        raise
    return Downloaded(dest, size, digest.hexdigest())


def _check_signature(head: bytes) -> None:
    if head[4:8] == b"ftyp":
        return
    if head.lstrip().lower().startswith((b"<!doctype", b"<html")):
        raise _web_page()
    raise DownloadError(
        "not_video", "the result file is not an MP4 video (its first bytes are wrong)"
    )


def _network_error(exc: httpx.RequestError) -> DownloadError:
    if isinstance(exc, httpx.TimeoutException):
        what = "the file host did not answer in time"
    elif isinstance(exc, httpx.ConnectError):
        what = "could not connect to the file host"
    else:
        what = "the connection to the file host broke"
    detail = str(exc) or type(exc).__name__
    return DownloadError("network", f"{what} ({detail}); it may work again", retryable=True)


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 100_000 else f"{size:,} bytes"


# --- the blocking file operations (run in worker threads) ------------------------------------


@contextmanager
def disk_errors(path: Path) -> Iterator[None]:
    """Turn an OSError while writing ``path`` into a `DownloadError` ``disk``."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            message = (
                f"the disk is full: could not write {path.name} in {path.parent} "
                f"({reason}); free some space, then run `runner resume`"
            )
        else:
            message = f"could not write {path} ({reason})"
        raise DownloadError("disk", message) from exc


class _PartFile:
    """The ``.part`` file being written: created fresh, written, then committed or discarded."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd: int | None = fd

    @classmethod
    def create(cls, path: Path) -> _PartFile:
        with disk_errors(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)  # left by an interrupted run
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            return cls(path, os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o644))

    def write(self, data: bytes) -> None:
        assert self.fd is not None
        with disk_errors(self.path):
            if disk_full("media_write") or over_budget(self.path, len(data)):  # tests' full disks
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]

    def commit(self, dest: Path) -> None:
        """fsync, close, rename to ``dest``, fsync the folder."""
        assert self.fd is not None
        with disk_errors(dest):
            os.fsync(self.fd)
            self._close()
            os.replace(self.path, dest)
            _fsync_dir(dest.parent)

    def discard(self) -> None:
        """Close and remove the file (either may already be done)."""
        self._close()
        with suppress(OSError):
            self.path.unlink(missing_ok=True)

    def _close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            with suppress(OSError):
                os.close(fd)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # a platform without directory handles (Windows): nothing to sync
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):  # filesystems that cannot
            raise
    finally:
        os.close(fd)
