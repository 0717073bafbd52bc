"""Credits and USD estimates: one price table, one formula, one place.

The table ships as ``runner/grid/prices.toml`` (its comments give the formula and the source);
users override it with ``<workspace>/prices.toml`` or ``--prices FILE`` when prices change.
Estimates are for quoting and budget reservations only: the ledger records what the provider
reports (``usage.credits_reserved``) for every task it creates.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ExperimentError, Problem
from ..models import Shape
from ..rules import TIERS

_FOUR_PLACES = Decimal("0.0001")
_TENTH = Decimal("0.1")


@dataclass(frozen=True, slots=True)
class TierPrice:
    credits_per_second_720p: Decimal
    minimum_credits: Decimal
    quality_factor: dict[str, Decimal]
    video_input_factor: dict[str, Decimal]


@dataclass(frozen=True)
class PriceTable:
    tiers: dict[str, TierPrice]
    credits_per_usd: Decimal
    content_filter_off_multiplier: Decimal
    web_search_credits_per_search: Decimal
    web_search_searches_per_job: Decimal
    assumed_input_video_seconds: Decimal
    source: str = "built-in table"
    _cache: dict[tuple[object, ...], float] = field(default_factory=dict, repr=False, compare=False)

    def credits(self, tier: str, shape: Shape) -> float:
        """Estimated credits of one job of ``shape`` on ``tier``: the one place a request
        becomes a price (plans, quotes, budget reservations and the report all ask here).
        It reads the parameter table's priced rows: quality, duration, content_filter,
        web_search and whether there are input videos."""
        return self.estimate(
            tier,
            shape.quality,
            shape.duration,
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
        content_filter: bool = True,
        web_search: bool = False,
        video_input: bool = False,
    ) -> float:
        """Estimated credits for one job (rounded half-up to 4 places).

        Raises KeyError for a tier/quality pair the table does not price (e.g. 1080p on fast);
        callers validate the request first.
        """
        key = (tier, quality, duration, content_filter, web_search, video_input)
        hit = self._cache.get(key)
        if hit is None:
            hit = float(self._estimate(*key))
            self._cache[key] = hit
        return hit

    def _estimate(
        self,
        tier: str,
        quality: str,
        duration: int,
        content_filter: bool,
        web_search: bool,
        video_input: bool,
    ) -> Decimal:
        price = self.tiers[tier]
        seconds = Decimal(duration)
        if video_input:
            billable = seconds + max(self.assumed_input_video_seconds, seconds)
            billable = (billable / _TENTH).to_integral_value(ROUND_CEILING) * _TENTH
            credits = billable * price.credits_per_second_720p * price.video_input_factor[quality]
        else:
            credits = seconds * price.credits_per_second_720p * price.quality_factor[quality]
        credits = max(credits, price.minimum_credits)
        if not content_filter:
            credits *= self.content_filter_off_multiplier
        if web_search:
            credits += self.web_search_credits_per_search * self.web_search_searches_per_job
        return credits.quantize(_FOUR_PLACES, ROUND_HALF_UP)

    def usd(self, credits: float) -> float:
        return credits / float(self.credits_per_usd)


def load_prices(path: Path | None = None) -> PriceTable:
    """The built-in table, with the TOML file at ``path`` (if given) merged over it."""
    default_text = resources.files("runner.grid").joinpath("prices.toml").read_text("utf-8")
    data: dict[str, Any] = tomllib.loads(default_text)
    source = "built-in table"
    if path is not None:
        try:
            override = tomllib.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            problem = Problem(path.name, None, None, "price file not found")
            raise ExperimentError([problem]) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            problem = Problem(path.name, None, None, f"not a valid TOML file ({exc})")
            raise ExperimentError([problem]) from None
        data = _merge(data, override)
        source = str(path)
    return _parse(data, path.name if path else "prices.toml", source)


@cache
def default_prices() -> PriceTable:
    return load_prices(None)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _parse(data: dict[str, Any], name: str, source: str) -> PriceTable:
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

    tiers: dict[str, TierPrice] = {}
    raw_tiers = data.get("tiers", {})
    for tier in TIERS:
        raw = raw_tiers.get(tier) if isinstance(raw_tiers, dict) else None
        if not isinstance(raw, dict):
            problems.append(Problem(name, None, f"tiers.{tier}", "missing tier"))
            continue
        w = f"tiers.{tier}"
        tiers[tier] = TierPrice(
            credits_per_second_720p=number(
                f"{w}.credits_per_second_720p", raw.get("credits_per_second_720p")
            ),
            minimum_credits=number(f"{w}.minimum_credits", raw.get("minimum_credits", 0)),
            quality_factor=table(f"{w}.quality_factor", raw.get("quality_factor")),
            video_input_factor=table(f"{w}.video_input_factor", raw.get("video_input_factor")),
        )
    web = data.get("web_search", {})
    ref = data.get("reference_video", {})
    prices = PriceTable(
        tiers=tiers,
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
        source=source,
    )
    if prices.credits_per_usd == 0:
        problems.append(Problem(name, None, "credits_per_usd", "must be above 0"))
    if problems:
        raise ExperimentError(problems)
    return prices
