"""Plain values shared by every stage: requests, variants, jobs, and their identities.

Identity is content-addressed (as in simonw/llm): a variant's key is the hash of the canonical
JSON of its request *without* the model, so the fast and standard renders of one idea share a
``variant_key`` and differ only in ``job_key`` = variant_key + tier + sample index.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, NamedTuple

from .rules import Mode, Tier, model_id

KEY_HEX_CHARS = 16  # 64 bits: collision odds at 10^6 variants are ~3e-8


def canonical_json(value: object) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(value: object) -> str:
    return text_hash(canonical_json(value))


def text_hash(text: str) -> str:
    """BLAKE2b of the UTF-8 text, 64 bits as 16 hex characters."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=KEY_HEX_CHARS // 2).hexdigest()


class Request(NamedTuple):
    """Every parameter of a create call except ``model``: pinned, so that re-rendering on
    another tier changes nothing but the model, whatever the provider's defaults become.

    A NamedTuple rather than a frozen dataclass (the house default) because big grids build
    a million of them: 1 µs each instead of 3.6 µs. Immutable all the same.
    """

    mode: Mode
    prompt: str
    duration: int
    quality: str
    aspect_ratio: str
    generate_audio: bool
    content_filter: bool
    web_search: bool = False
    image_urls: tuple[str, ...] = ()
    video_urls: tuple[str, ...] = ()
    audio_urls: tuple[str, ...] = ()

    def canonical(self) -> dict[str, Any]:
        """The tier-independent body (no ``model``); its hash is the variant key."""
        body: dict[str, Any] = {
            "prompt": self.prompt,
            "duration": self.duration,
            "quality": self.quality,
            "aspect_ratio": self.aspect_ratio,
            "generate_audio": self.generate_audio,
            "content_filter": self.content_filter,
        }
        if self.mode == "text":
            body["model_params"] = {"web_search": self.web_search}
        elif self.mode == "image":
            body["image_urls"] = list(self.image_urls)
        else:
            for name in ("image_urls", "video_urls", "audio_urls"):
                urls: tuple[str, ...] = getattr(self, name)
                if urls:
                    body[name] = list(urls)
        return body

    def body(self, tier: Tier | str) -> dict[str, Any]:
        """The JSON body sent to ``POST /v1/videos/generations`` on ``tier``.

        The mini tier takes no ``model_params`` (web search is standard/fast only), so the
        explicit ``web_search: false`` is left out there.
        """
        body = {"model": model_id(tier, self.mode), **self.canonical()}
        if tier == "mini" and not self.web_search:
            body.pop("model_params", None)
        return body

    @property
    def variant_key(self) -> str:
        return content_hash(self.canonical())

    @classmethod
    def from_body(cls, body: dict[str, Any], mode: Mode) -> Request:
        """Rebuild a request from a stored body (the inverse of `body`)."""
        params = body.get("model_params") or {}
        return cls(
            mode=mode,
            prompt=body["prompt"],
            duration=body["duration"],
            quality=body["quality"],
            aspect_ratio=body["aspect_ratio"],
            generate_audio=body["generate_audio"],
            content_filter=body["content_filter"],
            web_search=bool(params.get("web_search", False)),
            image_urls=tuple(body.get("image_urls", ())),
            video_urls=tuple(body.get("video_urls", ())),
            audio_urls=tuple(body.get("audio_urls", ())),
        )


class Variant(NamedTuple):
    """One distinct request from an experiment, with where it came from (a NamedTuple for
    the same reason as `Request`)."""

    request: Request
    variant_key: str
    source: str  # file name
    row: int  # spreadsheet row (header = 1)
    name: str  # the row's label
    # (column, value) for every column of the row after expansion, in a stable order;
    # the varied ones are the report's dimensions.
    values: tuple[tuple[str, str], ...]
    samples: int = 1


@dataclass(frozen=True, slots=True)
class Job:
    """One paid render: a variant on a tier, sample ``sample`` (1-based)."""

    variant: Variant
    tier: Tier
    sample: int

    @property
    def job_key(self) -> str:
        return job_key(self.variant.variant_key, self.tier, self.sample)

    @property
    def model(self) -> str:
        return model_id(self.tier, self.variant.request.mode)

    def body(self) -> dict[str, Any]:
        return self.variant.request.body(self.tier)


def job_key(variant_key: str, tier: str, sample: int) -> str:
    """``<variant_key>-<tier>-<sample>``: readable, and a valid Idempotency-Key stem."""
    return f"{variant_key}-{tier}-{sample}"
