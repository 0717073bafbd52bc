"""Credits and USD estimates: one price table, one formula, one place.

The table is built from layers, each changing only what it names (`prices_for`), highest
first: ``--prices FILE`` or else ``<workspace>/prices.toml`` (the user's own file), the price
rules ``runner prices update`` fetched (``<workspace>/prices-cache.json``, see
`runner.grid.price_rules`), and the built-in ``runner/grid/prices.toml`` (its comments give
the formula and the source). Every layer has a source and a date; quotes show them and warn
about a layer older than `STALE_AFTER_DAYS`. Prices are per model (tier and mode); a tier's
values apply to its three modes unless a mode sets its own.

Estimates are for quoting and budget reservations only: the ledger records what the provider
reports (``usage``) for every task it creates.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

from ..errors import ExperimentError, Problem
from ..models import Shape
from ..rules import MODES, TIERS, model_id

_FOUR_PLACES = Decimal("0.0001")
_TENTH = Decimal("0.1")
STALE_AFTER_DAYS: Final = 30
USER_FILE: Final = "prices.toml"
CACHE_FILE: Final = "prices-cache.json"
SETTLEMENTS: Final = ("request_only", "request_then_actual", "actual_usage")
PER_MODEL_KEYS: Final = (
    "credits_per_second_720p",
    "minimum_credits",
    "quality_factor",
    "video_input_factor",
    "audio_factor",
    "settlement",
)
MODE_NAMES: Final = {
    "text": "text-to-video",
    "image": "image-to-video",
    "reference": "reference-to-video",
}


def now() -> dt.datetime:
    """The time quotes are dated against (UTC); tests replace it to fix the clock."""
    return dt.datetime.now(dt.UTC)


def today() -> dt.date:
    return now().date()


def model_name(tier: str, mode: str) -> str:
    """A model in plain words: ``fast text-to-video``."""
    return f"{tier} {MODE_NAMES.get(mode, mode)}"


@dataclass(frozen=True, slots=True)
class PriceSource:
    """Where a layer of the table comes from, and of when."""

    kind: str  # "file" (the user's), "rules" (fetched), "built-in"
    label: str  # "built-in table", "EvoLink price rules", "your price file reports/prices.toml"
    as_of: dt.date
    how: str  # "of", "fetched", "changed"
    url: str | None = None  # where fetched rules came from
    priced: bool = True  # it sets per-model prices (not only, say, credits_per_usd)

    def __str__(self) -> str:
        return f"{self.label} {self.how} {self.as_of.isoformat()}"

    def age(self, on: dt.date) -> int:
        return (on - self.as_of).days

    def stale(self, on: dt.date) -> bool:
        return self.age(on) > STALE_AFTER_DAYS

    def staleness(self, on: dt.date) -> str:
        """The warning for a stale layer, saying what to do about it."""
        days = self.age(on)
        if self.kind == "file":
            return (
                f"{self} is {days} days old: check its prices are still right and set its "
                "as_of date, or remove it to use the prices `runner prices update` fetches."
            )
        if self.kind == "rules":
            return f"{self} are {days} days old: `runner prices update` fetches them again."
        return (
            f"prices from the {self} are {days} days old and EvoLink's may have changed: "
            "`runner prices update` fetches the current ones (free, no API key needed)."
        )


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """One model's prices: credits per output second at 720p, a factor per quality (with
    input videos: per quality too), a factor with audio on, the least a job costs, and how
    EvoLink settles it (``request_then_actual``: the final charge may differ from the quote)."""

    credits_per_second_720p: Decimal
    minimum_credits: Decimal
    quality_factor: dict[str, Decimal]
    video_input_factor: dict[str, Decimal]
    audio_factor: Decimal = Decimal(1)
    settlement: str = "request_only"

    @property
    def final_charge_may_differ(self) -> bool:
        return self.settlement != "request_only"


@dataclass(frozen=True)
class PriceTable:
    models: dict[str, ModelPrice]  # by model id
    credits_per_usd: Decimal
    content_filter_off_multiplier: Decimal
    web_search_credits_per_search: Decimal
    web_search_searches_per_job: Decimal
    assumed_input_video_seconds: Decimal
    sources: tuple[PriceSource, ...] = ()  # highest layer first
    notes: tuple[str, ...] = ()  # what went wrong while reading a layer (it was left out)
    _cache: dict[tuple[object, ...], float] = field(default_factory=dict, repr=False, compare=False)

    @property
    def source(self) -> str:
        """The layers in force, highest first: ``your price file ... over EvoLink price
        rules fetched 2026-11-29``."""
        return " over ".join(str(s) for s in self.sources)

    def price_of(self, tier: str, mode: str) -> ModelPrice:
        return self.models[model_id(tier, mode)]

    @property
    def first(self) -> PriceSource:
        """The highest layer that sets per-model prices: its date is the date of the quote
        (a file that only sets credits_per_usd does not make older prices new)."""
        return next((s for s in self.sources if s.priced), self.sources[0])

    def warnings(self, on: dt.date | None = None) -> list[str]:
        """A warning when the prices' layer (`first`) is older than `STALE_AFTER_DAYS` on
        ``on`` (default today), and the notes of layers that could not be read. Lower layers
        only fill in what the higher ones leave out, so their dates are shown, not warned
        about."""
        day = on or today()
        stale = [self.first.staleness(day)] if self.first.stale(day) else []
        return stale + list(self.notes)

    def credits(self, tier: str, shape: Shape) -> float:
        """Estimated credits of one job of ``shape`` on ``tier``: the one place a request
        becomes a price (plans, quotes, budget reservations and the report all ask here).
        It reads the parameter table's priced rows: mode, quality, duration, generate_audio,
        content_filter, web_search and whether there are input videos."""
        return self.estimate(
            tier,
            shape.quality,
            shape.duration,
            mode=shape.mode,
            audio=shape.generate_audio,
            content_filter=shape.content_filter,
            web_search=shape.web_search,
            video_input=shape.videos > 0,
        )

    def estimate(
        self,
        tier: str,
        quality: str,
        duration: int,
        *,
        mode: str = "text",
        audio: bool = True,
        content_filter: bool = True,
        web_search: bool = False,
        video_input: bool = False,
    ) -> float:
        """Estimated credits for one job (rounded half-up to 4 places).

        Raises KeyError for a tier/quality pair the table does not price (e.g. 1080p on fast);
        callers validate the request first.
        """
        key = (tier, mode, quality, duration, audio, content_filter, web_search, video_input)
        hit = self._cache.get(key)
        if hit is None:
            hit = float(self._estimate(*key))
            self._cache[key] = hit
        return hit

    def _estimate(
        self,
        tier: str,
        mode: str,
        quality: str,
        duration: int,
        audio: bool,
        content_filter: bool,
        web_search: bool,
        video_input: bool,
    ) -> Decimal:
        price = self.price_of(tier, mode)
        seconds = Decimal(duration)
        if video_input:
            billable = seconds + max(self.assumed_input_video_seconds, seconds)
            billable = (billable / _TENTH).to_integral_value(ROUND_CEILING) * _TENTH
            credits = billable * price.credits_per_second_720p * price.video_input_factor[quality]
        else:
            credits = seconds * price.credits_per_second_720p * price.quality_factor[quality]
        if audio:
            credits *= price.audio_factor
        credits = max(credits, price.minimum_credits)
        if not content_filter:
            credits *= self.content_filter_off_multiplier
        if web_search:
            credits += self.web_search_credits_per_search * self.web_search_searches_per_job
        return credits.quantize(_FOUR_PLACES, ROUND_HALF_UP)

    def usd(self, credits: float) -> float:
        return credits / float(self.credits_per_usd)


# --- the layers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One layer of the table: its values (the schema of prices.toml) and its source."""

    data: dict[str, Any]
    source: PriceSource
    name: str  # the file name problems are reported against


def built_in_layer() -> Layer:
    text = resources.files("runner.grid").joinpath("prices.toml").read_text("utf-8")
    data = tomllib.loads(text)
    as_of = _date(data.get("as_of"))
    assert as_of is not None, "the built-in prices.toml needs its as_of date"
    return Layer(data, PriceSource("built-in", "built-in table", as_of, "of"), "prices.toml")


def file_layer(path: Path) -> Layer:
    """The user's price file; ExperimentError when it is missing or not TOML. Its date is its
    ``as_of`` line, else the day it was last changed."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
        changed = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).date()
    except FileNotFoundError:
        raise ExperimentError([Problem(path.name, None, None, "price file not found")]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        problem = Problem(path.name, None, None, f"not a valid TOML file ({exc})")
        raise ExperimentError([problem]) from None
    as_of = _date(data.get("as_of"))
    if "as_of" in data and as_of is None:
        problem = Problem(path.name, None, "as_of", "must be a date like 2026-11-29")
        raise ExperimentError([problem])
    label = f"your price file {path}"
    source = PriceSource("file", label, as_of or changed, "of" if as_of else "changed")
    return Layer(data, source, path.name)


def load_prices(path: Path | None = None) -> PriceTable:
    """The built-in table, with the TOML file at ``path`` (if given) over it."""
    return build([built_in_layer(), *([file_layer(path)] if path is not None else [])])


@cache
def default_prices() -> PriceTable:
    return load_prices(None)


def prices_for(workspace: Path, file: Path | None = None) -> PriceTable:
    """The table in force for ``workspace``: ``file`` (``--prices``) or else
    ``WORKSPACE/prices.toml``, over the fetched rules in ``WORKSPACE/prices-cache.json``,
    over the built-in table. Needs no network. A cache that cannot be read is left out with
    a note (shown as a warning); a broken user file is an ExperimentError."""
    from .price_rules import CacheError, read_cache

    layers = [built_in_layer()]
    notes: list[str] = []
    try:
        fetched = read_cache(workspace / CACHE_FILE)
    except CacheError as exc:
        notes.append(str(exc))
    else:
        if fetched is not None:
            layers.append(fetched)
    if file is None and (workspace / USER_FILE).is_file():
        file = workspace / USER_FILE
    if file is not None:
        layers.append(file_layer(file))
    return build(layers, notes)


def build(layers: Iterable[Layer], notes: Iterable[str] = ()) -> PriceTable:
    """The table of ``layers`` (lowest first), each over the ones before it. Problems are
    reported against the highest layer's file name."""
    data: dict[str, Any] = {}
    sources: list[PriceSource] = []
    name = "prices.toml"
    for layer in layers:
        _check(layer.data, layer.name)
        data = _layer(data, layer.data)
        priced = bool(layer.data.get("tiers"))
        sources.insert(0, dataclasses.replace(layer.source, priced=priced))
        name = layer.name
    return _parse(data, tuple(sources), name, tuple(notes))


def _date(value: object) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _layer(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on ``base``: what a higher layer sets for a whole tier also replaces what a
    lower one set for that tier's modes (a tier-wide price beats an older per-mode one)."""
    tiers = base.get("tiers")
    over_tiers = over.get("tiers")
    if isinstance(tiers, dict) and isinstance(over_tiers, dict):
        tiers = dict(tiers)
        for tier, spec in over_tiers.items():
            lower = tiers.get(tier)
            if not isinstance(spec, dict) or not isinstance(lower, dict):
                continue
            modes = lower.get("modes")
            if not isinstance(modes, dict):
                continue
            stripped = {m: _without(v, spec) for m, v in modes.items()}
            tiers[tier] = {**lower, "modes": stripped}
        base = {**base, "tiers": tiers}
    return _merge(base, over)


def _without(spec: object, over: Mapping[str, Any]) -> object:
    """A lower layer's mode table without what ``over`` sets tier-wide."""
    if not isinstance(spec, dict):
        return spec
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if key in over and key != "modes":
            if isinstance(value, dict) and isinstance(over[key], dict):
                value = {k: v for k, v in value.items() if k not in over[key]}
            else:
                continue
        out[key] = value
    return out


def _check(data: Mapping[str, Any], name: str) -> None:
    """Refuse a layer whose tables have the wrong shape (before it is merged)."""
    problems: list[Problem] = []
    tiers = data.get("tiers", {})
    if not isinstance(tiers, dict):
        problems.append(Problem(name, None, "tiers", "must be a table of tiers"))
    else:
        for tier, spec in tiers.items():
            if not isinstance(spec, dict):
                problems.append(Problem(name, None, f"tiers.{tier}", "must be a table"))
                continue
            if tier not in TIERS:
                known = ", ".join(TIERS)
                problems.append(Problem(name, None, f"tiers.{tier}", f"unknown tier ({known})"))
            modes = spec.get("modes", {})
            if not isinstance(modes, dict) or not all(isinstance(v, dict) for v in modes.values()):
                where = f"tiers.{tier}.modes"
                problems.append(Problem(name, None, where, "must be like { text = { ... } }"))
                continue
            for mode in modes:
                if mode not in MODES:
                    where = f"tiers.{tier}.modes.{mode}"
                    problems.append(
                        Problem(name, None, where, f"unknown mode ({', '.join(MODES)})")
                    )
    if problems:
        raise ExperimentError(problems)


def _parse(
    data: dict[str, Any], sources: tuple[PriceSource, ...], name: str, notes: tuple[str, ...]
) -> PriceTable:
    problems: list[Problem] = []

    def number(where: str, value: object) -> Decimal:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            problems.append(Problem(name, None, where, f"{value!r} must be a number ≥ 0"))
            return Decimal(0)
        return Decimal(str(value))

    def table(where: str, value: object) -> dict[str, Decimal]:
        if not isinstance(value, dict):
            problems.append(Problem(name, None, where, 'must be a table like { "720p" = 1.0 }'))
            return {}
        return {str(k): number(f"{where}.{k}", v) for k, v in value.items()}

    def settlement(where: str, value: object) -> str:
        if value not in SETTLEMENTS:
            allowed = ", ".join(SETTLEMENTS)
            problems.append(Problem(name, None, where, f"{value!r} must be one of {allowed}"))
            return "request_only"
        return str(value)

    models: dict[str, ModelPrice] = {}
    raw_tiers = data.get("tiers", {})
    for tier in TIERS:
        raw = raw_tiers.get(tier)
        if not isinstance(raw, dict):
            problems.append(Problem(name, None, f"tiers.{tier}", "missing tier"))
            continue
        for mode in MODES:
            spec, where = _spec(raw, mode, f"tiers.{tier}")
            models[model_id(tier, mode)] = ModelPrice(
                credits_per_second_720p=number(
                    where["credits_per_second_720p"], spec.get("credits_per_second_720p")
                ),
                minimum_credits=number(where["minimum_credits"], spec.get("minimum_credits", 0)),
                quality_factor=table(where["quality_factor"], spec.get("quality_factor")),
                video_input_factor=table(
                    where["video_input_factor"], spec.get("video_input_factor")
                ),
                audio_factor=number(where["audio_factor"], spec.get("audio_factor", 1)),
                settlement=settlement(where["settlement"], spec.get("settlement", "request_only")),
            )
    web = data.get("web_search", {})
    ref = data.get("reference_video", {})
    prices = PriceTable(
        models=models,
        credits_per_usd=number("credits_per_usd", data.get("credits_per_usd")),
        content_filter_off_multiplier=number(
            "content_filter_off_multiplier", data.get("content_filter_off_multiplier")
        ),
        web_search_credits_per_search=number(
            "web_search.credits_per_search", web.get("credits_per_search")
        ),
        web_search_searches_per_job=number(
            "web_search.searches_per_job_estimate", web.get("searches_per_job_estimate")
        ),
        assumed_input_video_seconds=number(
            "reference_video.assumed_input_seconds", ref.get("assumed_input_seconds")
        ),
        sources=sources,
        notes=notes,
    )
    if prices.credits_per_usd == 0:
        problems.append(Problem(name, None, "credits_per_usd", "must be above 0"))
    if problems:
        raise ExperimentError(problems)
    return prices


def _spec(raw: Mapping[str, Any], mode: str, at: str) -> tuple[dict[str, Any], dict[str, str]]:
    """One mode's values (the tier's, with the mode's own over them; tables merged key by
    key) and, per key, where it was set (for problems)."""
    spec = {k: v for k, v in raw.items() if k != "modes"}
    where = {k: f"{at}.{k}" for k in PER_MODEL_KEYS}
    own = raw.get("modes", {}).get(mode, {})
    for key, value in own.items():
        lower = spec.get(key)
        both = isinstance(value, dict) and isinstance(lower, dict)
        spec[key] = {**lower, **value} if both else value  # type: ignore[dict-item]
        where[key] = f"{at}.modes.{mode}.{key}"
    return spec, where
