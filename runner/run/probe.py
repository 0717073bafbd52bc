"""Looking at a downloaded video with a real decoder (PyAV), and what it means.

    probe()         duration, size, frame rate, audio and codec
    make_poster()   a JPEG of the first good frame
    make_strip()    a JPEG of frames equally spaced in time, side by side
    mismatches()    what came back versus what was asked, in plain words
    media_info()    all of the above for one job, as the ledger records it

These block and hold the GIL for much of their work: the dispatcher runs `media_info` in a
worker *process* (``anyio.to_process``), so decoding never slows its event loop. A file that
does not decode raises `DownloadError` ``not_video``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import av
import av.container
import av.error
import av.video.frame
import av.video.stream
import numpy as np
from PIL import Image

from .media import DownloadError, disk_errors

# A poster frame is "good" when it is neither near-black nor flat (fades, blank slates).
_GOOD_MEAN: Final = 24.0  # mean luma, 0-255
_GOOD_STD: Final = 6.0  # luma standard deviation, 0-255
_POSTER_SCAN_SECONDS: Final = 3.0  # look for a good frame this far into the video
_JPEG_QUALITY: Final = 85


def media_info(path: str, duration: int, aspect_ratio: str, generate_audio: bool) -> dict[str, Any]:
    """Probe ``path``, write its poster (``<stem>.jpg``) and frame strip
    (``<stem>.strip.jpg``) beside it, and compare it with the request."""
    video = Path(path)
    info = probe(video)
    poster = video.with_suffix(".jpg")
    strip = video.with_name(video.stem + ".strip.jpg")
    make_poster(video, poster)
    make_strip(video, strip)
    return {
        "duration": info.duration,
        "width": info.width,
        "height": info.height,
        "fps": info.fps,
        "has_audio": info.has_audio,
        "codec": info.video_codec,
        "poster": poster.name,
        "strip": strip.name,
        "mismatches": mismatches(
            info, duration=duration, aspect_ratio=aspect_ratio, generate_audio=generate_audio
        ),
    }


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


def _duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


def _frame_at(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, seconds: float
) -> av.video.frame.VideoFrame:
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


def _first_good_frame(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> av.video.frame.VideoFrame | None:
    start = stream.start_time or 0
    container.seek(start, stream=stream, backward=True)
    until = float(start * (stream.time_base or 0)) + _POSTER_SCAN_SECONDS
    for frame in _decode(container, stream):
        if frame.time is not None and frame.time > until:
            break
        small = frame.reformat(
            width=64, height=max(2, round(64 * frame.height / frame.width)), format="gray"
        )
        luma = small.to_ndarray().astype(np.float32)
        if float(luma.mean()) >= _GOOD_MEAN and float(luma.std()) >= _GOOD_STD:
            return frame
    return None


def _decode(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
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
        with disk_errors(out):
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
