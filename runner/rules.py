"""The documented request rules of EvoLink's Seedance 2.0 create call, in one place.

The experiment validator uses this module, so a bad grid is refused before anything is spent.
The simulator carries its own encoding of the same rules (``docs/simulator.md`` §3);
``tests/test_sim_differential.py`` checks that the two agree on generated bodies. Sources:
EvoLink's API (``docs/evolink.md`` §2-§3; the §3.3 list is implemented by `check_body`) and
the newer gateway notes (reference-to-video needs an image or a video).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from .urls import url_issue

Tier = Literal["fast", "standard", "mini"]
Mode = Literal["text", "image", "reference"]

MODES: Final[tuple[Mode, ...]] = ("text", "image", "reference")
QUALITIES: Final = ("480p", "720p", "1080p")


@dataclass(frozen=True, slots=True)
class TierSpec:
    """One tier: its model-id prefix, the qualities it renders and the model options
    (``model_params.*``) it takes. A tier's differences are its row, nowhere else."""

    name: Tier
    model_prefix: str
    qualities: tuple[str, ...]
    options: tuple[str, ...]


# The tier table, cheapest first (the order quotes are shown in).
TIER_TABLE: Final[dict[str, TierSpec]] = {
    t.name: t
    for t in (
        TierSpec("mini", "mini-", ("480p", "720p"), options=()),
        TierSpec("fast", "fast-", ("480p", "720p"), options=("web_search",)),
        TierSpec("standard", "", QUALITIES, options=("web_search",)),
    )
}
TIERS: Final[tuple[Tier, ...]] = tuple(t.name for t in TIER_TABLE.values())
TIER_QUALITIES: Final[dict[str, tuple[str, ...]]] = {
    t.name: t.qualities for t in TIER_TABLE.values()
}
ASPECT_RATIOS: Final = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "adaptive")
DURATION_MIN: Final = 4
DURATION_MAX: Final = 15
# The API's hard limit is 10,000 tokens; a token is never shorter than one character, so a
# 10,000-character cap is always within it (we cannot count the provider's tokens offline).
PROMPT_MAX_CHARS: Final = 10_000
CALLBACK_URL_MAX: Final = 2048
MEDIA_FIELDS: Final = ("image_urls", "video_urls", "audio_urls")
_CONTROL: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f]")  # all but tab and newline
_ALLOWED_SECONDS: Final = f"allowed {DURATION_MIN}–{DURATION_MAX}"

# Output pixel sizes per aspect ratio and quality (docs/evolink.md §3.2).
PIXELS: Final[dict[str, dict[str, tuple[int, int]]]] = {
    "16:9": {"480p": (864, 496), "720p": (1280, 720), "1080p": (1920, 1080)},
    "4:3": {"480p": (752, 560), "720p": (1112, 834), "1080p": (1664, 1248)},
    "1:1": {"480p": (640, 640), "720p": (960, 960), "1080p": (1440, 1440)},
    "3:4": {"480p": (560, 752), "720p": (834, 1112), "1080p": (1248, 1664)},
    "9:16": {"480p": (496, 864), "720p": (720, 1280), "1080p": (1080, 1920)},
    "21:9": {"480p": (992, 432), "720p": (1470, 630), "1080p": (2206, 946)},
}

_MEDIA_LIMITS: Final[dict[str, dict[str, tuple[int, int]]]] = {
    # mode -> field -> (min, max); fields absent from a mode's dict are not allowed there
    "text": {},
    "image": {"image_urls": (1, 2)},
    "reference": {"image_urls": (0, 9), "video_urls": (0, 3), "audio_urls": (0, 3)},
}
_MEDIA_NOUN: Final = {"image_urls": "image", "video_urls": "video", "audio_urls": "audio"}


def model_id(tier: str, mode: str) -> str:
    """``seedance-2.0-`` + (``fast-`` | ``mini-`` | nothing for standard) + ``{mode}-to-video``."""
    return f"seedance-2.0-{TIER_TABLE[tier].model_prefix}{mode}-to-video"


def tier_allows(tier: str, option: str) -> bool:
    """Whether ``tier`` takes the model option ``option`` (e.g. ``web_search``)."""
    return option in TIER_TABLE[tier].options


MODELS: Final[dict[str, tuple[Tier, Mode]]] = {model_id(t, m): (t, m) for t in TIERS for m in MODES}


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: the request field and a message in plain words."""

    field: str
    message: str


def check_body(body: Mapping[str, object]) -> list[Violation]:
    """Every documented rule of a create request body (docs/evolink.md §3.3), all at once."""
    out: list[Violation] = []
    model = body.get("model")
    tier_mode = MODELS.get(model) if isinstance(model, str) else None
    if tier_mode is None:
        out.append(Violation("model", f"{model!r} is not a Seedance 2.0 model"))
    tier, mode = tier_mode if tier_mode else (None, None)

    out.extend(Violation("prompt", m) for m in prompt_problems(body.get("prompt")))

    if "duration" in body:
        msg = duration_problem(body["duration"])
        if msg:
            out.append(Violation("duration", msg))
    if "quality" in body:
        msg = quality_problem(body["quality"], tier)
        if msg:
            out.append(Violation("quality", msg))
    if "aspect_ratio" in body:
        msg = choice_problem(body["aspect_ratio"], ASPECT_RATIOS)
        if msg:
            out.append(Violation("aspect_ratio", msg))
    for flag in ("generate_audio", "content_filter"):
        if flag in body and not isinstance(body[flag], bool):
            out.append(Violation(flag, f"{body[flag]!r} is not true or false"))

    if mode is not None:
        out.extend(_media_violations(body, mode))
    if "model_params" in body:
        out.extend(_model_params_violations(body["model_params"], tier, mode))
    if "callback_url" in body:
        msg = callback_url_problem(body["callback_url"])
        if msg:
            out.append(Violation("callback_url", msg))
    return out


def prompt_problems(prompt: object) -> list[str]:
    if not isinstance(prompt, str):
        return ["the prompt is missing" if prompt is None else "the prompt must be text"]
    out: list[str] = []
    if not prompt.strip():
        out.append("the prompt is empty")
    if len(prompt) > PROMPT_MAX_CHARS:
        out.append(
            f"the prompt is {len(prompt):,} characters long; the limit is "
            f"{PROMPT_MAX_CHARS:,} (shorten it)"
        )
    bad = sorted(set(_CONTROL.findall(prompt)))
    if bad:
        codes = ", ".join(f"U+{ord(c):04X}" for c in bad)
        out.append(f"the prompt contains invisible control characters ({codes}); delete them")
    return out


def duration_problem(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{value!r} is not a whole number of seconds ({_ALLOWED_SECONDS})"
    if value < DURATION_MIN:
        return f"{value} is below the minimum {DURATION_MIN} ({_ALLOWED_SECONDS})"
    if value > DURATION_MAX:
        return f"{value} is above the maximum {DURATION_MAX} ({_ALLOWED_SECONDS})"
    return None


def quality_problem(value: object, tier: str | None) -> str | None:
    msg = choice_problem(value, QUALITIES)
    if msg or tier is None:
        return msg
    allowed = TIER_QUALITIES[tier]
    if value not in allowed:
        allowed_text = ", ".join(allowed)
        offered = " or ".join(t.name for t in TIER_TABLE.values() if value in t.qualities)
        return f"{value} is only available on the {offered} tier ({tier} allows {allowed_text})"
    return None


def choice_problem(value: object, allowed: tuple[str, ...]) -> str | None:
    if value in allowed:
        return None
    return f"{value!r} is not allowed (allowed: {', '.join(allowed)})"


def _media_violations(body: Mapping[str, object], mode: str) -> list[Violation]:
    out: list[Violation] = []
    limits = _MEDIA_LIMITS[mode]
    counts: dict[str, int] = {}
    for field in MEDIA_FIELDS:
        if field not in body:
            continue
        value = body[field]
        if field not in limits:  # "must be absent" (docs/evolink.md §3.1), even as an empty list
            out.append(Violation(field, f"{_MEDIA_NOUN[field]}s are not used in {mode} mode"))
            continue
        if not isinstance(value, list) or not all(_is_web_url(u) for u in value):
            out.append(Violation(field, "must be a list of http(s) URLs"))
            continue
        counts[field] = len(value)
        lo, hi = limits[field]
        if not lo <= len(value) <= hi:
            noun = _MEDIA_NOUN[field]
            hint = (
                "; 3 or more images need reference mode"
                if mode == "image" and len(value) > hi
                else ""
            )
            out.append(
                Violation(field, f"{mode} mode takes {lo}–{hi} {noun}s, got {len(value)}{hint}")
            )
    if mode == "image" and "image_urls" not in body:
        out.append(Violation("image_urls", "image mode needs 1 or 2 images"))
    if mode == "reference":
        images, videos = counts.get("image_urls", 0), counts.get("video_urls", 0)
        if counts.get("audio_urls", 0) and not (images or videos):
            out.append(
                Violation("audio_urls", "reference audio needs at least one image or video too")
            )
        elif not (images or videos) and not any(v.field == "image_urls" for v in out):
            # the gateway refuses a reference request without images or videos
            out.append(Violation("image_urls", "reference mode needs at least one image or video"))
    return out


def _is_web_url(value: object) -> bool:
    """An http(s) URL with a host: inputs are public URLs, never base64 (docs/evolink.md §1,
    §3.1)."""
    return isinstance(value, str) and url_issue(value, ("http", "https")) in (None, "private")


def _model_params_violations(params: object, tier: str | None, mode: str | None) -> list[Violation]:
    if not isinstance(params, Mapping):
        return [Violation("model_params", 'must be an object like {"web_search": true}')]
    out: list[Violation] = []
    for key in params:
        if key != "web_search":
            out.append(Violation(f"model_params.{key}", "is not a known model parameter"))
    if "web_search" in params:
        if not isinstance(params["web_search"], bool):
            out.append(Violation("model_params.web_search", "must be true or false"))
        elif mode is not None and mode != "text":
            out.append(Violation("model_params.web_search", "web search works in text mode only"))
        elif tier is not None and not tier_allows(tier, "web_search"):
            out.append(
                Violation(
                    "model_params.web_search", f"web search is not available on the {tier} tier"
                )
            )
    return out


def callback_url_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return "must be a URL"
    issue = url_issue(value, ("https",), CALLBACK_URL_MAX)
    if issue == "too_long":
        return f"is longer than {CALLBACK_URL_MAX} characters"
    if issue == "invalid":
        return "is not a valid URL"
    if issue == "private":
        return "must not point to a private or loopback address"
    return None if issue is None else "must be an https:// URL"


def infer_mode(images: int, videos: int, audios: int) -> Mode:
    """``image`` with 1-2 images only; ``reference`` with videos, audios or >2 images."""
    if videos or audios or images > 2:
        return "reference"
    if images:
        return "image"
    return "text"
