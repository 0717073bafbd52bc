"""Variant and job keys are pinned: a refactor or a new parameter never changes the key of a
request that existed before (a changed key would re-pay for videos already in the workspace).

The keys below were computed on 2026-12 before the parameter table existed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.grid.plan import make_plan
from runner.models import Request, content_hash, job_key

A = ("https://example.com/a.png",)
B = ("https://example.com/a.png", "https://example.com/b.jpg")
V = ("https://example.com/v.mp4",)
S = ("https://example.com/s.mp3",)
UNICODE = 'Un café ☕ à Paris — 東京の夜 "quoted" | pipe\nnewline'


def _req(
    mode: str,
    prompt: str,
    duration: int = 5,
    quality: str = "720p",
    aspect_ratio: str = "16:9",
    generate_audio: bool = True,
    content_filter: bool = True,
    web_search: bool = False,
    image_urls: tuple[str, ...] = (),
    video_urls: tuple[str, ...] = (),
    audio_urls: tuple[str, ...] = (),
) -> Request:
    return Request(
        mode=mode,
        prompt=prompt,
        duration=duration,
        quality=quality,  # type: ignore[arg-type]
        aspect_ratio=aspect_ratio,
        generate_audio=generate_audio,
        content_filter=content_filter,
        web_search=web_search,
        image_urls=image_urls,
        video_urls=video_urls,
        audio_urls=audio_urls,
    )


REQUESTS = {
    "text_default": _req("text", "A red fox at dawn"),
    "text_480_9x16": _req("text", "A red fox at dawn", 4, "480p", "9:16"),
    "text_1080_21x9": _req("text", "City timelapse", 15, "1080p", "21:9"),
    "text_audio_off": _req("text", "Quiet forest", 8, "720p", "1:1", generate_audio=False),
    "text_filter_off": _req("text", "Boxing match", 6, "720p", "4:3", content_filter=False),
    "text_web_search": _req("text", "Today's weather in Paris", web_search=True),
    "image_one": _req("image", "Make it move", aspect_ratio="adaptive", image_urls=A),
    "image_two": _req(
        "image", "From first to last frame", 10, "480p", "3:4", generate_audio=False, image_urls=B
    ),
    "reference_images": _req(
        "reference", "Product ad", image_urls=(*B, "https://example.com/c.webp")
    ),
    "reference_video_audio": _req(
        "reference",
        "Dance to this",
        12,
        "1080p",
        "9:16",
        content_filter=False,
        image_urls=A,
        video_urls=V,
        audio_urls=S,
    ),
    "reference_video_only": _req(
        "reference", "Same motion, new style", 7, generate_audio=False, video_urls=V
    ),
    "unicode_prompt": _req("text", UNICODE),
}

# name -> (variant_key, job_key on fast sample 2, hash of the fast body, hash of the mini body)
PINNED = {
    "text_default": (
        "eb8fc7e0f4671ea3",
        "eb8fc7e0f4671ea3-fast-2",
        "45042a3efb2f273b",
        "8338b64bb5c30b1e",
    ),
    "text_480_9x16": (
        "9130e03e3cb9867d",
        "9130e03e3cb9867d-fast-2",
        "c508ae2f98b565b1",
        "07dfb63a81f63873",
    ),
    "text_1080_21x9": (
        "9f49030d8ff6c8c5",
        "9f49030d8ff6c8c5-fast-2",
        "ed4cc18f69e6d30a",
        "08f67c35fdc652c8",
    ),
    "text_audio_off": (
        "1c26c9761a99835c",
        "1c26c9761a99835c-fast-2",
        "cdd72778ae27677f",
        "6686f95ddeb76742",
    ),
    "text_filter_off": (
        "28b14e9ca5d83a03",
        "28b14e9ca5d83a03-fast-2",
        "7b00e4c1e4dff382",
        "7f1c583b40d27081",
    ),
    "text_web_search": (
        "ae77c0637c818231",
        "ae77c0637c818231-fast-2",
        "a865e30ba2330fbd",
        "e6c277b9654430d9",
    ),
    "image_one": (
        "ac789b7089a45aa9",
        "ac789b7089a45aa9-fast-2",
        "fdcbbb4ed5eda5d3",
        "5b606c9658fe9f26",
    ),
    "image_two": (
        "4331b0ab852f2ec6",
        "4331b0ab852f2ec6-fast-2",
        "9bbb055a1e9a4fa4",
        "677fe3483ac8c27a",
    ),
    "reference_images": (
        "cc1350bc7a4114c4",
        "cc1350bc7a4114c4-fast-2",
        "3aa52762b8015ac3",
        "c138459a1917a534",
    ),
    "reference_video_audio": (
        "f58b88ceab63beb6",
        "f58b88ceab63beb6-fast-2",
        "ac8f1e6aa1b8a528",
        "28f3dcfa04bfc2b6",
    ),
    "reference_video_only": (
        "0378e564686a96e4",
        "0378e564686a96e4-fast-2",
        "b0a644d3fe808ca4",
        "3cf0edf266870f11",
    ),
    "unicode_prompt": (
        "d82c644dc3cf40af",
        "d82c644dc3cf40af-fast-2",
        "0e202e8300e94ef6",
        "44e7fe3c5656fb52",
    ),
}

# The same ideas written as a grid: the expansion's keys (its own fast path) are the same.
GRID = """name,prompt,mode,duration,quality,aspect_ratio,generate_audio,content_filter,\
web_search,image_urls,video_urls,audio_urls
a,A red fox at dawn,,5,,,,,,,,
b,A red fox at dawn,,4,480p,9:16,,,,,,
c,City timelapse,text,15,1080p,21:9,yes,,,,,
d,Quiet forest,,8,,1:1,false,,,,,
e,Boxing match,,6,720,4:3,,0,,,,
f,Today's weather in Paris,,,,,,,true,,,
g,Make it move,,,,adaptive,,,,https://example.com/a.png,,
h,Dance to this,reference,12,1080p,9:16,,no,,https://example.com/a.png,\
https://example.com/v.mp4,https://example.com/s.mp3
i,"Un café ☕ à Paris — 東京の夜 ""quoted"" | pipe",,,,,,,,,,
"""
GRID_KEYS = {
    "a": "eb8fc7e0f4671ea3",
    "b": "9130e03e3cb9867d",
    "c": "9f49030d8ff6c8c5",
    "d": "1c26c9761a99835c",
    "e": "28b14e9ca5d83a03",
    "f": "ae77c0637c818231",
    "g": "ac789b7089a45aa9",
    "h": "f58b88ceab63beb6",
    "i": "26dc7f814e063ce1",
}


@pytest.mark.parametrize("name", list(REQUESTS))
def test_request_keys_and_bodies_are_pinned(name: str) -> None:
    request = REQUESTS[name]
    variant_key, fast_job_key, fast_body, mini_body = PINNED[name]
    assert request.variant_key == variant_key
    assert job_key(request.variant_key, "fast", 2) == fast_job_key
    assert content_hash(request.body("fast")) == fast_body
    assert content_hash(request.body("mini")) == mini_body


def test_grid_expansion_yields_the_pinned_keys(tmp_path: Path) -> None:
    path = tmp_path / "pins.csv"
    path.write_text(GRID, encoding="utf-8")
    variants = make_plan(path, "standard").expansion.variants
    assert {v.name: v.variant_key for v in variants} == GRID_KEYS
    for v in variants:  # the expansion's fast path agrees with the request's own hash
        assert v.request.variant_key == v.variant_key
