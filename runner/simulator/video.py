"""The simulator's tiny video renderer: real, small MP4 files whose look depends on the request.

A render is an H.264 (yuv420p) MP4 of exactly ``duration`` seconds, with an AAC tone when audio
is asked for and no audio stream otherwise. What it shows comes from a hash of the prompt and
the seed: a palette, a scrolling gradient, a few bouncing shapes (their count, kind and speed)
and the prompt's own words, so two prompts are told apart at a glance. The aspect ratio follows
the output frame sizes of `rules.FRAME_SIZES` ("adaptive" renders as 16:9) and the tier sets
size, frame rate and quality, so a promoted winner visibly sharpens (see `TIER_LOOKS`).

A video made from an uploaded image shows that image's ``mark`` (its mean colour,
`runner.simulator.uploads`) as a square in the top-right corner, framed in white.

Renders are deterministic: x264 runs on one thread, so the same inputs give the same bytes on
the same FFmpeg/Pillow build. `VideoCache` keeps them, in memory (LRU) or on disk.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import math
import os
import random
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import av
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from .rules import FRAME_SIZES

__all__ = ["TIER_LOOKS", "TierLook", "VideoCache", "frame_size", "render_video", "video_key"]

RENDERER_VERSION: Final = 1  # part of every cache key: bump it when the picture changes
SAMPLE_RATE: Final = 16_000
_AUDIO_BIT_RATE: Final = 32_000
_REFERENCE_QUALITY: Final = "720p"  # truest ratios (21:9 = 1470x630)

RGB = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True, slots=True)
class TierLook:
    """How one tier renders: output long side, frame rate, x264 quality and pixel coarseness.

    ``block`` > 1 draws the picture at 1/block size and scales it up nearest-neighbour.
    """

    long_side: int
    fps: int
    crf: int
    preset: str
    block: int


TIER_LOOKS: Final[dict[str, TierLook]] = {
    "standard": TierLook(long_side=192, fps=12, crf=21, preset="veryfast", block=1),
    "fast": TierLook(long_side=160, fps=8, crf=29, preset="veryfast", block=2),
    "mini": TierLook(long_side=112, fps=6, crf=38, preset="ultrafast", block=4),
}


def frame_size(aspect_ratio: str, tier: str) -> tuple[int, int]:
    """Output (width, height) for an aspect ratio and tier: even, multiples of the tier's block."""
    look = _look(tier)
    ref_w, ref_h = _reference_pixels(aspect_ratio)
    w, h = _low_size(ref_w, ref_h, look)
    return w * look.block, h * look.block


def video_key(
    *,
    prompt: str,
    duration: int,
    aspect_ratio: str,
    tier: str,
    generate_audio: bool,
    seed: int = 0,
    mark: RGB | None = None,
) -> str:
    """The content address of a render: SHA-256 of its canonical inputs and the renderer version."""
    canonical = json.dumps(
        {
            "v": RENDERER_VERSION,
            "prompt": prompt,
            "duration": duration,
            "aspect_ratio": aspect_ratio,
            "tier": tier,
            "generate_audio": generate_audio,
            "seed": seed,
            **({"mark": list(mark)} if mark is not None else {}),
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def render_video(
    *,
    prompt: str,
    duration: int,
    aspect_ratio: str,
    tier: str,
    generate_audio: bool,
    seed: int = 0,
    mark: RGB | None = None,
) -> bytes:
    """A real MP4 (H.264 yuv420p video, AAC audio when generate_audio) of exactly `duration` s;
    ``mark``: the colour of the uploaded image it was made from, shown top right."""
    if duration < 1:
        raise ValueError(f"duration must be a whole number of seconds >= 1, got {duration}")
    look = _look(tier)
    ref_w, ref_h = _reference_pixels(aspect_ratio)
    low_w, low_h = _low_size(ref_w, ref_h, look)
    width, height = low_w * look.block, low_h * look.block
    rng = random.Random(int.from_bytes(_prompt_digest(prompt, seed)[:16], "big"))
    scene = _Scene.make(rng, low_w, low_h)
    overlay = _overlay(prompt, tier, width, height, mark)
    track = _tone(_chord(rng), duration * SAMPLE_RATE) if generate_audio else None

    fd, tmp_name = tempfile.mkstemp(prefix="sim-video-", suffix=".mp4")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        # movflags=faststart needs a second pass over a real file, so the muxer writes to disk.
        with av.open(tmp_name, "w", format="mp4", options={"movflags": "faststart"}) as container:
            container.metadata["comment"] = "simulated by runner (not a Seedance render)"
            video = container.add_stream(
                "libx264",
                rate=look.fps,
                options={"crf": str(look.crf), "preset": look.preset, "g": str(2 * look.fps)},
            )
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            video.codec_context.thread_count = 1  # deterministic bytes, whatever the machine
            audio = None
            if track is not None:
                audio = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
                audio.bit_rate = _AUDIO_BIT_RATE
            frames = duration * look.fps
            for index in range(frames):
                if audio is not None and track is not None and index % look.fps == 0:
                    # one second of sound per second of pictures keeps the two interleaved
                    second = index // look.fps
                    sound = av.AudioFrame.from_ndarray(
                        np.ascontiguousarray(
                            track[:, second * SAMPLE_RATE : (second + 1) * SAMPLE_RATE]
                        ),
                        format="fltp",
                        layout="mono",
                    )
                    sound.sample_rate = SAMPLE_RATE
                    sound.pts = second * SAMPLE_RATE
                    container.mux(audio.encode(sound))
                picture = scene.draw(index / look.fps, look.block, overlay)
                _progress_bar(picture, (index + 1) / frames)
                frame = av.VideoFrame.from_ndarray(np.asarray(picture), format="rgb24")
                frame.pts = index
                container.mux(video.encode(frame))
            container.mux(video.encode(None))
            if audio is not None:
                container.mux(audio.encode(None))
        return tmp.read_bytes()
    finally:
        tmp.unlink(missing_ok=True)


class VideoCache:
    """Renders once per distinct request; thread-safe, with bounded memory.

    With a ``directory``, videos live there as ``<video_key>.mp4`` (written atomically) and
    nothing is held in memory; without one, the last ``max_items`` videos are kept in an LRU.
    Concurrent requests for the same video wait for a single render. ``renders`` counts them.
    """

    def __init__(self, directory: Path | None = None, max_items: int = 256) -> None:
        if max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items}")
        self.directory = directory
        self.max_items = max_items
        self.renders = 0
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._in_flight: dict[str, threading.Lock] = {}
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        where = str(self.directory) if self.directory is not None else f"memory<={self.max_items}"
        return f"<VideoCache {where} renders={self.renders}>"

    def get(
        self,
        *,
        prompt: str,
        duration: int,
        aspect_ratio: str,
        tier: str,
        generate_audio: bool,
        seed: int = 0,
        mark: RGB | None = None,
    ) -> bytes:
        """The MP4 for these inputs, rendered on the first request only."""
        key = video_key(
            prompt=prompt,
            duration=duration,
            aspect_ratio=aspect_ratio,
            tier=tier,
            generate_audio=generate_audio,
            seed=seed,
            mark=mark,
        )
        with self._lock:
            found = self._lookup(key)
            if found is not None:
                return found
            key_lock = self._in_flight.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                found = self._lookup(key)
            if found is not None:
                return found
            try:
                data = render_video(
                    prompt=prompt,
                    duration=duration,
                    aspect_ratio=aspect_ratio,
                    tier=tier,
                    generate_audio=generate_audio,
                    seed=seed,
                    mark=mark,
                )
                with self._lock:
                    self._store(key, data)
                    self.renders += 1
            finally:
                with self._lock:
                    self._in_flight.pop(key, None)
            return data

    def _lookup(self, key: str) -> bytes | None:
        if self.directory is None:
            data = self._memory.get(key)
            if data is not None:
                self._memory.move_to_end(key)
            return data
        path = self.directory / f"{key}.mp4"
        return path.read_bytes() if path.is_file() else None

    def _store(self, key: str, data: bytes) -> None:
        if self.directory is None:
            self._memory[key] = data
            while len(self._memory) > self.max_items:
                self._memory.popitem(last=False)
            return
        fd, tmp_name = tempfile.mkstemp(dir=self.directory, prefix=f".{key}.", suffix=".part")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp_name, self.directory / f"{key}.mp4")


# --- picture ---------------------------------------------------------------------------------


def _look(tier: str) -> TierLook:
    try:
        return TIER_LOOKS[tier]
    except KeyError:
        raise ValueError(f"tier must be one of {sorted(TIER_LOOKS)}, got {tier!r}") from None


def _reference_pixels(aspect_ratio: str) -> tuple[int, int]:
    ratio = "16:9" if aspect_ratio == "adaptive" else aspect_ratio
    if ratio not in FRAME_SIZES:
        known = [*FRAME_SIZES, "adaptive"]
        raise ValueError(f"aspect_ratio must be one of {known}, got {aspect_ratio!r}")
    return FRAME_SIZES[ratio][_REFERENCE_QUALITY]


def _low_size(ref_w: int, ref_h: int, look: TierLook) -> tuple[int, int]:
    """Drawing size (before the block upscale); odd blocks need even sides for yuv420p."""
    unit = 2 if look.block % 2 else 1
    long_side = look.long_side // look.block
    short = max(unit, unit * round(long_side * min(ref_w, ref_h) / max(ref_w, ref_h) / unit))
    return (long_side, short) if ref_w >= ref_h else (short, long_side)


def _prompt_digest(prompt: str, seed: int) -> bytes:
    return hashlib.sha256(f"{seed}\x00{prompt}".encode()).digest()


def _hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return round(r * 255), round(g * 255), round(b * 255)


def _bounce(u: float) -> float:
    """A triangle wave in [0, 1]: position moving at constant speed between two walls."""
    return 1.0 - abs(u % 2.0 - 1.0)


@dataclass(frozen=True, slots=True)
class _Shape:
    kind: str  # "ellipse" | "rect" | "triangle" | "diamond"
    color: RGB
    radius: float  # fraction of the short side
    x0: float
    y0: float
    vx: float  # wall-to-wall crossings per second
    vy: float
    spin: float  # radians per second


@dataclass(frozen=True, slots=True)
class _Scene:
    width: int
    height: int
    gradient: NDArray[np.uint8]  # (period + height, width, 3), scrolled vertically
    scroll: float  # rows per second
    shapes: tuple[_Shape, ...]

    @classmethod
    def make(cls, rng: random.Random, width: int, height: int) -> _Scene:
        hue = rng.random()
        top = np.array(_hsv(hue, 0.55, 0.42), dtype=np.float32)
        bottom = np.array(_hsv(hue + rng.uniform(0.08, 0.25), 0.75, 0.12), dtype=np.float32)
        period = 2 * height
        rows = np.arange(period + height, dtype=np.float32)
        mix = (0.5 - 0.5 * np.cos(2 * np.pi * rows / period))[:, None]
        column = (top * (1 - mix) + bottom * mix).round().astype(np.uint8)
        gradient = np.ascontiguousarray(np.broadcast_to(column[:, None, :], (len(rows), width, 3)))
        speed = rng.uniform(0.12, 0.6)
        shapes = tuple(
            _Shape(
                kind=rng.choice(("ellipse", "rect", "triangle", "diamond")),
                color=_hsv(hue + 0.5 + rng.uniform(-0.2, 0.2) + k / 3, rng.uniform(0.6, 1), 1.0),
                radius=rng.uniform(0.1, 0.24),
                x0=rng.random() * 2,
                y0=rng.random() * 2,
                vx=speed * rng.uniform(0.5, 1.5) * rng.choice((-1, 1)),
                vy=speed * rng.uniform(0.5, 1.5) * rng.choice((-1, 1)),
                spin=rng.uniform(-2.0, 2.0),
            )
            for k in range(rng.randint(2, 5))
        )
        return cls(width, height, gradient, speed * height, shapes)

    def draw(self, t: float, block: int, overlay: Image.Image) -> Image.Image:
        """The frame at time ``t``: gradient and shapes at drawing size, then the overlay."""
        offset = round(t * self.scroll) % (2 * self.height)
        picture = Image.fromarray(self.gradient[offset : offset + self.height])
        pen = ImageDraw.Draw(picture)
        short = min(self.width, self.height)
        for shape in self.shapes:
            r = max(1.0, shape.radius * short)
            cx = r + _bounce(shape.x0 + shape.vx * t) * max(0.0, self.width - 2 * r)
            cy = r + _bounce(shape.y0 + shape.vy * t) * max(0.0, self.height - 2 * r)
            if shape.kind == "ellipse":
                pen.ellipse((cx - r, cy - r * 0.8, cx + r, cy + r * 0.8), fill=shape.color)
            elif shape.kind == "rect":
                pen.rectangle((cx - r, cy - r * 0.7, cx + r, cy + r * 0.7), fill=shape.color)
            else:
                corners = 3 if shape.kind == "triangle" else 4
                angle = shape.spin * t
                pen.polygon(
                    [
                        (
                            cx + r * math.cos(angle + 2 * math.pi * i / corners),
                            cy + r * math.sin(angle + 2 * math.pi * i / corners),
                        )
                        for i in range(corners)
                    ],
                    fill=shape.color,
                )
        if block > 1:
            picture = picture.resize(overlay.size, Image.Resampling.NEAREST)
        picture.paste(overlay, (0, 0), overlay)
        return picture


def _progress_bar(picture: Image.Image, fraction: float) -> None:
    width, height = picture.size
    ImageDraw.Draw(picture).rectangle(
        (0, height - 2, max(0, round(width * fraction) - 1), height - 1), fill=(255, 255, 255)
    )


def mark_box(width: int, height: int) -> tuple[int, int, int, int]:
    """Where the mark is drawn: a square in the top-right corner, (left, top, right, bottom)
    inclusive, white frame included."""
    side = max(8, min(width, height) // 4)
    margin = 3
    return width - margin - side, margin, width - margin - 1, margin + side - 1


def _overlay(
    prompt: str, tier: str, width: int, height: int, mark: RGB | None = None
) -> Image.Image:
    """The static text layer: the prompt's words top-left, the tier name bottom-right, the
    uploaded image's mark top-right."""
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    pen = ImageDraw.Draw(layer)
    text_width = width
    if mark is not None:
        left, top, right, bottom = mark_box(width, height)
        pen.rectangle((left, top, right, bottom), fill=(*mark, 255), outline=(255, 255, 255, 255))
        text_width -= right - left + 4  # the prompt's words stay clear of it
    font = ImageFont.load_default()
    margin, pad = 3, 2
    line_h = _text_height(font) + 1
    max_lines = max(1, int(height * 0.55) // line_h)
    lines = _wrap(prompt.split(), font, text_width - 2 * (margin + pad), max_lines)
    if lines:
        box_w = max(font.getlength(line) for line in lines) + 2 * pad
        box_h = len(lines) * line_h + 2 * pad
        pen.rectangle((margin, margin, margin + box_w, margin + box_h), fill=(0, 0, 0, 150))
        for i, line in enumerate(lines):
            pen.text((margin + pad, margin + pad + i * line_h), line, font=font, fill="white")
    small = ImageFont.load_default(size=8)
    label_w = small.getlength(tier)
    label_h = _text_height(small)
    x, y = width - margin - label_w - pad, height - margin - label_h - pad - 2
    pen.rectangle((x - pad, y - pad, x + label_w + pad, y + label_h + pad), fill=(0, 0, 0, 150))
    pen.text((x, y), tier, font=small, fill=(255, 255, 160, 255))
    return layer


def _text_height(font: Font) -> int:
    return int(font.getbbox("Ag")[3])


def _wrap(words: list[str], font: Font, width: float, max_lines: int) -> list[str]:
    """Greedy word wrap to ``width`` pixels; over-long words are cut; the rest ends in "…"."""
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        while font.getlength(word) > width and len(word) > 1:
            cut = _fit(word, font, width)
            lines.append(word[:cut])
            word = word[cut:]
        current = word
        if len(lines) > max_lines:
            break
    if current and len(lines) <= max_lines:
        lines.append(current)
    if len(lines) <= max_lines:
        return lines
    last = lines[max_lines - 1]
    while last and font.getlength(last + "…") > width:
        last = last[:-1]
    return [*lines[: max_lines - 1], last.rstrip() + "…"]


def _fit(text: str, font: Font, width: float) -> int:
    """The longest prefix length of ``text`` (at least 1) that fits in ``width`` pixels."""
    lo, hi = 1, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if font.getlength(text[:mid]) <= width:
            lo = mid
        else:
            hi = mid - 1
    return lo


# --- sound -----------------------------------------------------------------------------------


def _chord(rng: random.Random) -> tuple[float, ...]:
    """Three frequencies (Hz): a major, minor or suspended triad on a prompt-chosen root."""
    root = 196.0 * 2 ** (rng.randrange(24) / 12)
    intervals = rng.choice(((0, 4, 7), (0, 3, 7), (0, 5, 7)))
    return tuple(root * 2 ** (i / 12) for i in intervals)


def _tone(chord: tuple[float, ...], samples: int) -> NDArray[np.float32]:
    """``samples`` mono samples, shape (1, n): the chord with a gentle tremolo and fades."""
    t = np.arange(samples, dtype=np.float64) / SAMPLE_RATE
    wave = np.zeros(samples, dtype=np.float64)
    for frequency in chord:
        wave += np.sin(2 * np.pi * frequency * t) / len(chord)
    tremolo = 0.8 + 0.2 * np.sin(2 * np.pi * 1.5 * t)
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.05)
    out: NDArray[np.float32] = (0.35 * wave * tremolo * fade).astype(np.float32)[None, :]
    return out
