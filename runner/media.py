"""The result-file stage: download a finished video safely, then look at it with a real decoder.

    download()      stream a result link to ``<media>/<job_key>.mp4`` (``.part``, fsync, rename)
    check_url()     why a link must not be fetched (scheme, private hosts), or None
    probe()         duration, size, frame rate, audio and codec, measured with PyAV
    make_poster()   a JPEG of the first good frame
    make_strip()    a JPEG of frames equally spaced in time, side by side
    mismatches()    what came back versus what was asked, in plain words

Every failure is a `DownloadError` with a ``code`` (what went wrong), ``retryable`` (whether
trying the same link again can help) and a ``message`` for the person reading the report.
httpx and OS errors are translated here, at this one boundary.

`download` never retries by itself (the caller wraps it in its retry policy, see
`is_retryable`) and never follows a redirect without checking the new address first.
`probe`, `make_poster` and `make_strip` block: call them from a worker thread
(``anyio.to_thread.run_sync``). Each opens its own decoder, so they are safe to run in
parallel threads. Rules: ``shared/reference/reliability.md`` §5.3.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
import av
import av.container
import av.error
import av.video.frame
import av.video.stream
import httpx
import numpy as np
from PIL import Image

from runner.errors import RunnerError
from runner.rules import is_private_host

__all__ = [
    "MAX_VIDEO_BYTES", "DownloadCode", "DownloadError", "Downloaded", "Probe", "check_url",
    "download", "is_retryable", "make_poster", "make_strip", "mismatches", "probe",
]

MAX_VIDEO_BYTES: Final = 512 * 1024 * 1024
"""Default size cap of one result file (a 15 s 1080p Seedance render is far smaller)."""

DownloadCode = Literal[
    "expired", "blocked_url", "not_video", "too_large", "http_error", "network", "disk"
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
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
# A poster frame is "good" when it is neither near-black nor flat (fades, blank slates).
_GOOD_MEAN: Final = 24.0  # mean luma, 0-255
_GOOD_STD: Final = 6.0  # luma standard deviation, 0-255
_POSTER_SCAN_SECONDS: Final = 3.0  # look for a good frame this far into the video
_JPEG_QUALITY: Final = 85


class DownloadError(RunnerError):
    """A result file could not be downloaded, stored or read as a video.

    ``code`` says what went wrong: ``expired`` (403/404/410 from the file host),
    ``blocked_url`` (scheme or host not allowed, on any redirect hop), ``not_video`` (a web
    page, JSON, no MP4 signature, undecodable), ``too_large``, ``http_error`` (any other
    status), ``network`` (timeouts, resets, a body shorter than announced) or ``disk``
    (writing failed, e.g. the disk is full). ``retryable`` is True when fetching the same
    link again can help (network errors, 5xx/408/429); whether an ``expired`` link is really
    past its time is for the caller to decide. ``status`` is the HTTP status, when there was
    one.
    """

    def __init__(
        self, code: DownloadCode, message: str, *, retryable: bool = False,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code: DownloadCode = code
        self.message = message
        self.retryable = retryable
        self.status = status

    def __repr__(self) -> str:
        status = f" status={self.status}" if self.status is not None else ""
        return (f"<DownloadError {self.code}{status} retryable={self.retryable}: "
                f"{self.message!r}>")


def is_retryable(exc: BaseException) -> bool:
    """The retry predicate for the caller's policy (e.g. ``stamina.retry(on=is_retryable)``)."""
    return isinstance(exc, DownloadError) and exc.retryable


# --- which links may be fetched ---------------------------------------------------------------


def check_url(url: str, trusted_origin: str | None) -> str | None:
    """Why the runner must not fetch ``url``, in plain words; None when it may.

    Allowed: ``https`` links whose host is a name other than ``localhost`` or a public IP
    address; or any ``http``/``https`` link on exactly ``trusted_origin`` (scheme, host and
    port of the API base URL: a local simulator on 127.0.0.1, or the in-process one). Host
    *names* are not resolved here: a public name that resolves to a private address is the
    file host's DNS, which the runner trusts as much as the API itself.
    """
    origin = _origin(url)
    if origin is None:
        return "it is not a valid web address"
    scheme, host, _ = origin
    if trusted_origin is not None and origin == _origin(trusted_origin) and host and (
        scheme in _DEFAULT_PORTS
    ):
        return None
    if scheme != "https":
        shown = f"{scheme}:" if scheme else "without a scheme"
        return f"only https links are downloaded, and this one is {shown}"
    if not host:
        return "the link has no host"
    if _private(host):
        return f"it points to a private, loopback or link-local address ({host})"
    return None


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    return scheme, host, port if port is not None else _DEFAULT_PORTS.get(scheme)


def _private(host: str) -> bool:
    if is_private_host(host):
        return True
    # The C resolver also reads legacy IPv4 spellings (127.1, 0x7f.0.0.1, 2130706433) that
    # `ipaddress` refuses; judge them by the address the socket would really use.
    try:
        packed = socket.inet_aton(host)
    except OSError:
        return False
    return is_private_host(str(ipaddress.IPv4Address(packed)))


# --- download ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Downloaded:
    """A result file safely on disk: where, how many bytes, and their SHA-256 (hex)."""

    path: Path
    size: int
    sha256: str


async def download(
    http: httpx.AsyncClient, url: str, dest: Path, *, trusted_origin: str | None,
    max_bytes: int = MAX_VIDEO_BYTES, max_redirects: int = 5,
) -> Downloaded:
    """Stream ``url`` to ``dest`` through ``dest.part``; raises `DownloadError`.

    ``dest`` is a file name the runner chose (``<media>/<job_key>.mp4``); a name that is not
    plain, a ``..`` step after a folder name, or a ``dest`` that resolves outside its folder
    is a bug of the caller and raises ValueError before anything is fetched. Redirects are
    followed here (never by httpx), each hop checked with `check_url`. The client's
    ``Authorization`` and ``Cookie`` headers are never sent: a result link is a bare CDN
    link, and the API key must not travel to a file host. The size cap applies to the
    announced length and to the bytes really received; the content type and the MP4
    signature are checked before anything is written. The file appears at ``dest`` only
    when complete and fsynced; on any failure (cancellation included) the ``.part`` is
    removed. The client's timeouts apply to every read; an overall deadline is the
    caller's (``anyio.fail_after``).
    """
    _check_destination(dest)
    current = url
    for hop in range(max_redirects + 1):
        reason = check_url(current, trusted_origin)
        if reason is not None:
            raise DownloadError(
                "blocked_url",
                f"the result link redirected to an address that was refused: {reason}" if hop
                else f"the result link was refused: {reason}",
            )
        try:
            request = http.build_request("GET", current, headers={"Accept-Encoding": "identity"})
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
                _check_response(response, max_bytes)
                return await _save(response, dest, max_bytes)
            finally:
                await response.aclose()
        except httpx.RequestError as exc:
            raise _network_error(exc) from exc
    raise DownloadError(
        "http_error", f"the result link redirected more than {max_redirects} times; "
        "the file host is misbehaving, try again later",
    )


def _check_destination(dest: Path) -> None:
    """Refuse a destination that is not ``<folder>/<plain name>`` (a bug of the caller)."""
    name = dest.name
    if not _PLAIN_NAME.fullmatch(name) or name.endswith(".part"):
        raise ValueError(f"refusing to write {str(dest)!r}: result files get plain names "
                         "chosen by the runner (<media folder>/<job_key>.mp4)")
    seen_folder = False
    for part in dest.parts:
        if part == ".." and seen_folder:
            raise ValueError(f"refusing to write {str(dest)!r}: the path steps back out of a "
                             "folder ('..'); result files are written only as "
                             "<media folder>/<job_key>.mp4")
        seen_folder = seen_folder or part not in ("..", ".", dest.anchor)
    folder = dest.parent.resolve()
    if dest.resolve().parent != folder:
        raise ValueError(f"refusing to write {str(dest)!r}: it resolves outside {str(folder)!r} "
                         "(a symbolic link?)")


def _next_hop(response: httpx.Response) -> str:
    location = response.headers.get("location")
    if not location:
        raise DownloadError(
            "http_error", f"the file host answered a redirect (HTTP {response.status_code}) "
            "without saying where to", status=response.status_code,
        )
    try:
        return str(response.url.join(location))
    except httpx.InvalidURL as exc:
        raise DownloadError(
            "blocked_url", f"the result link redirected to an invalid address: {exc}"
        ) from None


def _check_response(response: httpx.Response, max_bytes: int) -> None:
    status = response.status_code
    if status in _EXPIRED:
        raise DownloadError(
            "expired", f"the result link has expired (HTTP {status}); the video can no longer "
            "be downloaded", status=status,
        )
    if status != 200:
        retryable = status >= 500 or status in _RETRY_STATUSES
        advice = "; it may work again later" if retryable else ""
        raise DownloadError(
            "http_error", f"the file host answered HTTP {status} instead of the video{advice}",
            retryable=retryable, status=status,
        )
    kind = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind and kind not in VIDEO_TYPES:
        page = " (probably an error or expiry page)" if kind == "text/html" else ""
        raise DownloadError(
            "not_video", f"the result link returned {kind}{page} instead of a video",
            status=status,
        )
    declared = _content_length(response)
    if declared is not None and declared > max_bytes:
        raise DownloadError(
            "too_large", f"the result file is {_mb(declared)}, above the "
            f"{_mb(max_bytes)} limit; it was not downloaded", status=status,
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
    block = bytearray()
    with anyio.CancelScope(shield=True):  # a cancelled create would leave the .part behind
        handle = await anyio.to_thread.run_sync(_PartFile.create, part)
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise DownloadError(
                    "too_large", f"the result file is larger than the {_mb(max_bytes)} "
                    "limit; the download was stopped",
                )
            if len(head) < 8:
                head += chunk[: 8 - len(head)]
                if len(head) == 8:
                    _check_signature(head)
            digest.update(chunk)
            block += chunk
            if len(block) >= _WRITE_BLOCK:
                await anyio.to_thread.run_sync(handle.write, bytes(block))
                block.clear()
        if declared is not None and response.num_bytes_downloaded < declared:
            raise DownloadError(
                "network", f"the download was cut short ({response.num_bytes_downloaded} of "
                f"{declared} bytes); it may work again", retryable=True,
            )
        if len(head) < 8:
            _check_signature(head)
        await anyio.to_thread.run_sync(handle.write, bytes(block))
        with anyio.CancelScope(shield=True):  # once renamed, report it as done
            await anyio.to_thread.run_sync(handle.commit, dest)
    except BaseException:
        handle.discard()
        raise
    return Downloaded(dest, size, digest.hexdigest())


def _check_signature(head: bytes) -> None:
    if head[4:8] != b"ftyp":
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
def _disk(path: Path) -> Iterator[None]:
    """Turn an OSError while writing ``path`` into a `DownloadError` ``disk``."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            message = (f"the disk is full: could not write {path.name} in {path.parent} "
                       f"({reason}); free some space, then run `runner resume`")
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
        with _disk(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)  # left by an interrupted run
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            return cls(path, os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o644))

    def write(self, data: bytes) -> None:
        assert self.fd is not None
        with _disk(self.path):
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]

    def commit(self, dest: Path) -> None:
        """fsync, close, rename to ``dest``, fsync the folder."""
        assert self.fd is not None
        with _disk(dest):
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


# --- looking at the video (blocking; call from a worker thread) -------------------------------


@dataclass(frozen=True)
class Probe:
    """What a video file really holds, measured with a decoder."""

    duration: float  # seconds
    width: int
    height: int
    fps: float  # average frame rate; 0.0 when unknown
    has_audio: bool
    video_codec: str  # FFmpeg's name, e.g. "h264"


def probe(path: Path) -> Probe:
    """Measure ``path`` with PyAV; raises `DownloadError` ``not_video`` if it is no video."""
    with _opened(path) as (container, stream):
        _frame_at(container, stream, 0.0)  # proves that it decodes
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        return Probe(
            duration=_duration(container, stream),
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            fps=fps,
            has_audio=len(container.streams.audio) > 0,
            video_codec=stream.codec_context.name,
        )


def make_poster(path: Path, out: Path, *, max_side: int = 640) -> None:
    """Write a JPEG of the first good frame of ``path`` to ``out``.

    Good: neither near-black nor flat (mean and standard deviation of the luma above small
    thresholds), searched in the first seconds; when none is, the frame at 10 % of the
    duration. Scaled down so its longer side is at most ``max_side`` pixels.
    """
    with _opened(path) as (container, stream):
        frame = _first_good_frame(container, stream)
        if frame is None:
            frame = _frame_at(container, stream, 0.1 * _duration(container, stream))
        image = _picture(frame)
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    _save_jpeg(image, out)


def make_strip(path: Path, out: Path, frames: int = 6, *, height: int = 90) -> None:
    """Write a JPEG of ``frames`` frames equally spaced in time, side by side, each ``height``
    pixels high (at the middle of each of ``frames`` equal slices of the video)."""
    if frames < 1 or height < 1:
        raise ValueError(f"a strip needs frames >= 1 and height >= 1, got {frames}, {height}")
    with _opened(path) as (container, stream):
        duration = _duration(container, stream)
        pictures = [
            _picture(_frame_at(container, stream, duration * (i + 0.5) / frames))
            for i in range(frames)
        ]
    scaled = [
        p.resize((max(1, round(p.width * height / p.height)), height), Image.Resampling.LANCZOS)
        for p in pictures
    ]
    strip = Image.new("RGB", (sum(p.width for p in scaled), height))
    x = 0
    for picture in scaled:
        strip.paste(picture, (x, 0))
        x += picture.width
    _save_jpeg(strip, out)


@contextmanager
def _opened(
    path: Path,
) -> Iterator[tuple[av.container.InputContainer, av.video.stream.VideoStream]]:
    """The container and its first video stream; decoder errors become ``not_video``."""
    try:
        container = av.open(str(path), mode="r")
    except FileNotFoundError:
        raise  # a bug of the caller, not a bad video
    except (av.error.FFmpegError, OSError) as exc:
        raise _not_decodable(path, exc) from exc
    try:
        if not container.streams.video:
            raise DownloadError("not_video", f"{path.name} holds no video track")
        stream = container.streams.video[0]
        try:
            yield container, stream
        except av.error.FFmpegError as exc:
            raise _not_decodable(path, exc) from exc
    finally:
        container.close()


def _not_decodable(path: Path, exc: Exception) -> DownloadError:
    return DownloadError("not_video", f"{path.name} cannot be read as a video ({exc})")


def _duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream
              ) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


def _frame_at(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
              seconds: float) -> av.video.frame.VideoFrame:
    """The frame showing at ``seconds`` (the nearest one, within half a frame)."""
    time_base = stream.time_base
    if time_base is None:
        raise DownloadError("not_video", "the video track has no time base")
    rate = float(stream.average_rate or stream.guessed_rate or 25)
    start = stream.start_time or 0
    target = float(start * time_base) + seconds  # frame times count from the file's start
    container.seek(start + int(seconds / time_base), stream=stream, backward=True)
    last: av.video.frame.VideoFrame | None = None
    for frame in _decode(container, stream):
        last = frame
        if frame.time is None or frame.time + 0.5 / rate >= target:
            return frame
    if last is None:
        raise DownloadError("not_video", "the video track holds no picture that decodes")
    return last


def _first_good_frame(container: av.container.InputContainer,
                      stream: av.video.stream.VideoStream) -> av.video.frame.VideoFrame | None:
    start = stream.start_time or 0
    container.seek(start, stream=stream, backward=True)
    until = float(start * (stream.time_base or 0)) + _POSTER_SCAN_SECONDS
    for frame in _decode(container, stream):
        if frame.time is not None and frame.time > until:
            break
        small = frame.reformat(width=64, height=max(2, round(64 * frame.height / frame.width)),
                               format="gray")
        luma = small.to_ndarray().astype(np.float32)
        if float(luma.mean()) >= _GOOD_MEAN and float(luma.std()) >= _GOOD_STD:
            return frame
    return None


def _decode(container: av.container.InputContainer, stream: av.video.stream.VideoStream
            ) -> Iterator[av.video.frame.VideoFrame]:
    try:
        yield from container.decode(stream)
    except av.error.EOFError:
        return


def _picture(frame: av.video.frame.VideoFrame) -> Image.Image:
    return Image.fromarray(frame.to_ndarray(format="rgb24"))


def _save_jpeg(image: Image.Image, out: Path) -> None:
    tmp = out.with_name(out.name + ".part")
    try:
        with _disk(out):
            out.parent.mkdir(parents=True, exist_ok=True)
            image.convert("RGB").save(tmp, "JPEG", quality=_JPEG_QUALITY, optimize=True)
            os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


# --- what was asked versus what came back -----------------------------------------------------


def mismatches(p: Probe, *, duration: int, aspect_ratio: str, generate_audio: bool) -> list[str]:
    """Plain-words differences between the request and the video, e.g.
    ``duration 4.0 s, asked 5 s``; empty when they agree.

    Duration: within 0.5 s or one frame, whichever is larger. Aspect ratio: within 3 %
    (``adaptive`` matches anything). Audio: a track exactly when one was asked for.
    Raises ValueError for an aspect ratio that is not ``W:H`` or ``adaptive``.
    """
    out: list[str] = []
    tolerance = max(0.5, 1.0 / p.fps if p.fps > 0 else 0.0)
    if abs(p.duration - duration) > tolerance:
        out.append(f"duration {p.duration:.1f} s, asked {duration} s")
    if aspect_ratio != "adaptive":
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*", aspect_ratio)
        if match is None or float(match[2]) == 0:
            raise ValueError(f"aspect ratio {aspect_ratio!r} is not W:H or 'adaptive'")
        asked = float(match[1]) / float(match[2])
        actual = p.width / p.height if p.height > 0 else 0.0
        if abs(actual / asked - 1.0) > 0.03:
            out.append(f"aspect {actual:.2f} ({p.width}x{p.height}), asked {aspect_ratio}")
    if generate_audio and not p.has_audio:
        out.append("no audio track, audio was asked for")
    elif p.has_audio and not generate_audio:
        out.append("an audio track, no audio was asked for")
    return out
