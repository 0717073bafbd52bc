"""Plain values shared by every stage: requests, variants, jobs, and their identities.

Identity is content-addressed (as in simonw/llm): a variant's key is the hash of the canonical
JSON of its request *without* the model, so the fast and standard renders of one idea share a
``variant_key`` and differ only in ``job_key`` = variant_key + tier + sample index.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from . import params
from .rules import Mode, Tier, model_id, tier_allows

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

    The fields are the rows of the parameter table (`params`); a row added there without a
    field of its own here travels in ``extra``. The body and the canonical form are built
    from the table.

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
    # (name, value) of the table's parameters that have no field above, in table order
    extra: tuple[tuple[str, object], ...] = ()

    @classmethod
    def make(cls, mode: Mode, prompt: str, values: Mapping[str, object]) -> Request:
        """A request from parameter values by name; absent ones take the table's default."""
        fields = {}
        extra = []
        for p in params.TABLE.settings:
            value = values.get(p.name, p.default)
            if p.name in _FIELDS:
                fields[p.name] = value
            else:
                extra.append((p.name, value))
        return cls(mode, prompt, **fields, extra=tuple(extra))  # type: ignore[arg-type]

    def value(self, name: str) -> object:
        """The value of the parameter ``name`` (its default if this request predates it)."""
        if name in _FIELDS:
            return getattr(self, name)
        for key, value in self.extra:
            if key == name:
                return value
        param = params.TABLE.by_name[name]
        return param.default

    def with_values(self, changes: Mapping[str, object]) -> Request:
        """This request with some parameters changed (by name)."""
        values = {p.name: self.value(p.name) for p in params.TABLE.settings}
        return Request.make(self.mode, self.prompt, values | dict(changes))

    def canonical(self) -> dict[str, Any]:
        """The tier-independent body (no ``model``); its hash is the variant key.

        A parameter added after keys were first pinned (``keyed_at_default=False``) is left
        out while at its default, so adding one changes no existing key.
        """
        return self._fields_body(None, keyed=True)

    def body(self, tier: Tier | str) -> dict[str, Any]:
        """The JSON body sent to ``POST /v1/videos/generations`` on ``tier``.

        A model option (``model_params.*``) the tier does not offer is left out while at its
        default (e.g. no ``model_params`` on mini, where web search is not available).
        """
        return {"model": model_id(tier, self.mode), **self._fields_body(tier, keyed=False)}

    def _fields_body(self, tier: str | None, keyed: bool) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for p in params.TABLE.sent:
            value = self.value(p.name)
            if value == p.default:
                if self.mode not in p.pinned_in:
                    continue
                if keyed and not p.keyed_at_default:
                    continue
                if tier is not None and p.option and not tier_allows(tier, p.option):
                    continue
            assert p.field is not None
            where, _, key = p.field.rpartition(".")
            target = body.setdefault(where, {}) if where else body
            target[key] = list(value) if p.media else value  # type: ignore[call-overload]
        return body

    @property
    def variant_key(self) -> str:
        return content_hash(self.canonical())

    @property
    def shape(self) -> Shape:
        """All that rules and prices read: the request but its prompt and its URLs (counted)."""
        return Shape(
            self.mode,
            self.duration,
            self.quality,
            self.aspect_ratio,
            self.generate_audio,
            self.content_filter,
            self.web_search,
            len(self.image_urls),
            len(self.video_urls),
            len(self.audio_urls),
            self.extra,
        )

    @classmethod
    def from_body(cls, body: Mapping[str, Any], mode: Mode) -> Request:
        """Rebuild a request from a stored body (the inverse of `body`)."""
        values: dict[str, object] = {}
        for p in params.TABLE.settings:
            assert p.field is not None
            where, _, key = p.field.rpartition(".")
            source = (body.get(where) or {}) if where else body
            if key in source:
                value = source[key]
                values[p.name] = tuple(value) if p.media else value
        return cls.make(mode, body["prompt"], values)


_FIELDS: Final = frozenset(Request._fields) - {"extra"}


class Shape(NamedTuple):
    """A request without its prompt, URLs counted: what the API's rules and the price
    depend on. Jobs are counted per shape to quote a grid on every tier at once."""

    mode: Mode
    duration: int
    quality: str
    aspect_ratio: str
    generate_audio: bool
    content_filter: bool
    web_search: bool
    images: int
    videos: int
    audios: int
    extra: tuple[tuple[str, object], ...] = ()

    def request(self, prompt: str, url: str) -> Request:
        """A request of this shape (``url`` repeated for the media)."""
        return Request(
            self.mode,
            prompt,
            self.duration,
            self.quality,
            self.aspect_ratio,
            self.generate_audio,
            self.content_filter,
            self.web_search,
            (url,) * self.images,
            (url,) * self.videos,
            (url,) * self.audios,
            self.extra,
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
