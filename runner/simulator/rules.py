"""What EvoLink's create call accepts, in the simulator's own words (``docs/simulator.md``).

This is the simulator's encoding of the request rules, written from the public references
and kept apart from the runner's own validator on purpose: a test suite whose fake shares
the client's rules cannot catch a wrong rule. A differential test
(``tests/test_sim_differential.py``) checks that both encodings agree.

`problems` lists every broken rule of a body as ``(field, message)`` pairs, in a fixed field
order (the first one becomes the 400's ``param``). What the rules cover, and where each one
comes from, is the table in ``docs/simulator.md`` ("Request rules").
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

Problem = tuple[str, str]
"""One broken rule: the request field (e.g. ``model_params.web_search``) and a message."""

TIER_PREFIXES: Final[dict[str, str]] = {"standard": "", "fast": "fast-", "mini": "mini-"}
FAMILIES: Final = ("text", "image", "reference")


def _model_name(tier: str, family: str) -> str:
    return f"seedance-2.0-{TIER_PREFIXES[tier]}{family}-to-video"


MODEL_TABLE: Final[dict[str, tuple[str, str]]] = {
    _model_name(tier, family): (tier, family) for tier in TIER_PREFIXES for family in FAMILIES
}
"""The nine model ids -> (tier, family)."""

QUALITY_BY_TIER: Final[dict[str, frozenset[str]]] = {
    "standard": frozenset({"480p", "720p", "1080p"}),
    "fast": frozenset({"480p", "720p"}),
    "mini": frozenset({"480p", "720p"}),
}
ALL_QUALITIES: Final = frozenset({"480p", "720p", "1080p"})
ASPECTS: Final = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "adaptive")
SECONDS_RANGE: Final = range(4, 16)  # 4-15 inclusive, whole seconds
DEFAULTS: Final[dict[str, object]] = {"duration": 5, "quality": "720p", "aspect_ratio": "16:9"}
PROMPT_LIMIT: Final = 10_000  # characters; stands in for the 10,000-token cap (see the doc)
CALLBACK_LIMIT: Final = 2048
WEB_SEARCH_TIERS: Final = frozenset({"standard", "fast"})

# Output frame sizes, width x height, per aspect ratio and quality.
FRAME_SIZES: Final[dict[str, dict[str, tuple[int, int]]]] = {
    "16:9": {"480p": (864, 496), "720p": (1280, 720), "1080p": (1920, 1080)},
    "9:16": {"480p": (496, 864), "720p": (720, 1280), "1080p": (1080, 1920)},
    "1:1": {"480p": (640, 640), "720p": (960, 960), "1080p": (1440, 1440)},
    "4:3": {"480p": (752, 560), "720p": (1112, 834), "1080p": (1664, 1248)},
    "3:4": {"480p": (560, 752), "720p": (834, 1112), "1080p": (1248, 1664)},
    "21:9": {"480p": (992, 432), "720p": (1470, 630), "1080p": (2206, 946)},
}

# Per family, the media arrays it may carry and their (fewest, most) items. A family that
# does not list an array refuses it outright, even empty.
MEDIA_COUNTS: Final[dict[str, dict[str, tuple[int, int]]]] = {
    "text": {},
    "image": {"image_urls": (1, 2)},
    "reference": {"image_urls": (0, 9), "video_urls": (0, 3), "audio_urls": (0, 3)},
}
MEDIA_ARRAYS: Final = ("image_urls", "video_urls", "audio_urls")
_KIND: Final = {"image_urls": "image", "video_urls": "video", "audio_urls": "audio"}
_INVISIBLE: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f]")  # C0 controls and DEL; not \t, \n


def tier_and_family(model: object) -> tuple[str, str] | None:
    """(tier, family) of a known model id, else None."""
    return MODEL_TABLE.get(model) if isinstance(model, str) else None


def problems(body: Mapping[str, object]) -> list[Problem]:
    """Every rule the create body breaks, as (field, message); empty when it is accepted.

    Fields the references do not name are ignored (their fate on the real API is unknown).
    """
    found: list[Problem] = []
    known = tier_and_family(body.get("model"))
    if known is None:
        found.append(("model", f"{body.get('model')!r} is not one of the nine Seedance 2.0 ids"))
    tier, family = known if known else (None, None)
    found += [("prompt", text) for text in _prompt(body.get("prompt"))]
    checks = (
        ("duration", _duration),
        ("quality", lambda v: _quality(v, tier)),
        ("aspect_ratio", _aspect),
        ("generate_audio", _flag),
        ("content_filter", _flag),
    )
    for name, check in checks:
        if name in body:
            text = check(body[name])
            if text is not None:
                found.append((name, text))
    if family is not None:
        found += _media(body, family)
    if "model_params" in body:
        found += _model_params(body["model_params"], tier, family)
    if "callback_url" in body:
        text = _callback(body["callback_url"])
        if text is not None:
            found.append(("callback_url", text))
    return found


def _prompt(value: object) -> list[str]:
    if value is None:
        return ["a prompt is required"]
    if not isinstance(value, str):
        return [f"the prompt must be a string, not {type(value).__name__}"]
    out = []
    if value.strip() == "":
        out.append("the prompt is blank")
    if len(value) > PROMPT_LIMIT:
        out.append(f"the prompt has {len(value)} characters, more than {PROMPT_LIMIT}")
    if _INVISIBLE.search(value):
        out.append("the prompt holds control characters (only tab and newline are allowed)")
    return out


def _duration(value: object) -> str | None:
    if type(value) is not int:  # bool is an int subclass, floats are not whole seconds
        return f"{value!r} is not a whole number of seconds (4 to 15)"
    if value < SECONDS_RANGE.start:
        return f"{value} is below the minimum 4 seconds"
    if value not in SECONDS_RANGE:
        return f"{value} is above the maximum 15 seconds"
    return None


def _quality(value: object, tier: str | None) -> str | None:
    if not isinstance(value, str) or value not in ALL_QUALITIES:
        return f"{value!r} is not a quality (480p, 720p or 1080p)"
    if tier is not None and value not in QUALITY_BY_TIER[tier]:
        return f"{value} is a standard-tier quality; the {tier} tier offers 480p and 720p"
    return None


def _aspect(value: object) -> str | None:
    if isinstance(value, str) and value in ASPECTS:
        return None
    return f"{value!r} is not an aspect ratio ({', '.join(ASPECTS)})"


def _flag(value: object) -> str | None:
    return None if isinstance(value, bool) else f"{value!r} must be true or false"


def _media(body: Mapping[str, object], family: str) -> list[Problem]:
    allowed = MEDIA_COUNTS[family]
    out: list[Problem] = []
    counts = dict.fromkeys(MEDIA_ARRAYS, 0)
    for name in MEDIA_ARRAYS:
        if name not in body:
            continue
        value = body[name]
        if name not in allowed:
            out.append((name, f"the {family}-to-video models take no {_KIND[name]} inputs"))
            continue
        if not isinstance(value, list) or not all(_is_web_url(item) for item in value):
            out.append((name, "must be a list of http(s) URLs"))
            continue
        counts[name] = len(value)
        low, high = allowed[name]
        if not low <= len(value) <= high:
            out.append(
                (
                    name,
                    f"{len(value)} {_KIND[name]}(s) given; {family}-to-video takes {low} to {high}",
                )
            )
    if family == "image" and "image_urls" not in body:
        out.append(("image_urls", "image-to-video needs 1 or 2 images"))
    if family == "reference" and not (counts["image_urls"] or counts["video_urls"]):
        field = "audio_urls" if counts["audio_urls"] else "image_urls"
        if not any(f == field for f, _ in out):
            out.append((field, "reference-to-video needs at least one image or video"))
    return out


def _is_web_url(item: object) -> bool:
    if not isinstance(item, str):
        return False
    try:
        parts = urlsplit(item)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def _model_params(value: object, tier: str | None, family: str | None) -> list[Problem]:
    if not isinstance(value, Mapping):
        return [("model_params", 'must be an object such as {"web_search": true}')]
    out: list[Problem] = [
        (f"model_params.{key}", "is unknown (web_search is the only model parameter)")
        for key in value
        if key != "web_search"
    ]
    if "web_search" not in value:
        return out
    field = "model_params.web_search"
    if not isinstance(value["web_search"], bool):
        out.append((field, f"{value['web_search']!r} must be true or false"))
    elif family is not None and family != "text":
        out.append((field, f"is for text-to-video only, not {family}-to-video"))
    elif tier is not None and tier not in WEB_SEARCH_TIERS:
        out.append((field, f"is offered on the standard and fast tiers, not {tier}"))
    return out


def _callback(value: object) -> str | None:
    if not isinstance(value, str):
        return "must be a string URL"
    if len(value) > CALLBACK_LIMIT:
        return f"has {len(value)} characters, more than {CALLBACK_LIMIT}"
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return "is not a valid URL"
    if parts.scheme != "https" or not host:
        return "must be an https:// URL with a host"
    if _private(host):
        return "must not point to a loopback or private address"
    return None


def _private(host: str) -> bool:
    name = host.lower().rstrip(".")
    if name in ("localhost", "localhost.localdomain"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_reserved
        or address.is_multicast
    )
