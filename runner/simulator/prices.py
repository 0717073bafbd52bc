"""What a task costs on the simulated EvoLink, in credits (``docs/simulator.md``, "Prices").

The simulator's own price encoding, independent of the runner's price table so that a wrong
runner price cannot pass its tests by construction. It follows EvoLink's public price rules
(effective 2026-09-16): per output second at a tier's 720p rate times a quality factor;
reference-to-video with input videos bills ``output + max(input, output)`` seconds rounded up
to 0.1 s at lower factors; each priced part is rounded half-up to 1e-4 credits and raised to
the tier's per-task minimum; web search adds a fixed price per search; ``content_filter:
false`` multiplies the whole charge by 1.1.

The simulator downloads no input media and runs no search, so two figures are settings of
`PriceBook`: how long the input videos of a task last together and how many searches a
web-search task runs.

How each model is settled (``settlement``) is published with the rules
(``GET /v1/catalog/pricing-rules``, `pricing_rules`): ``request_only`` for image-to-video and
mini text-to-video, ``request_then_actual`` for standard and fast text-to-video and every
reference-to-video model [EVO]. The simulator charges what the request says either way [INF].
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

_UC: Final = Decimal("0.0001")  # the smallest money unit, 1e-4 credits


_d = Decimal


@dataclass(frozen=True)
class TierRates:
    """One tier's prices: the 720p rate per second, quality factors without and with input
    video, and the least a task of that tier is charged."""

    per_second_720p: Decimal
    minimum: Decimal
    factor: Mapping[str, Decimal]
    factor_with_video: Mapping[str, Decimal]


STANDARD: Final = TierRates(
    per_second_720p=_d("13.5"),
    minimum=_d("25.002"),
    factor={"480p": _d("0.465"), "720p": _d("1"), "1080p": _d("2.5")},
    factor_with_video={"480p": _d("0.284"), "720p": _d("0.609"), "1080p": _d("1.52")},
)
FAST: Final = TierRates(
    per_second_720p=_d("8.2013"),
    minimum=_d("15.1893"),
    factor={"480p": _d("0.465"), "720p": _d("1")},
    factor_with_video={"480p": _d("0.277"), "720p": _d("0.595")},
)
MINI: Final = TierRates(
    per_second_720p=_d("2.7"),
    minimum=_d("5.0004"),
    factor={"480p": _d("0.465"), "720p": _d("1")},
    factor_with_video={"480p": _d("0.284"), "720p": _d("0.609")},
)


SETTLED_ON_ACTUAL: Final = frozenset(
    {
        ("standard", "text"),
        ("fast", "text"),
        ("standard", "reference"),
        ("fast", "reference"),
        ("mini", "reference"),
    }
)


@dataclass(frozen=True)
class PriceBook:
    """The simulator's prices. The defaults are EvoLink's public rules of 2026-09-16."""

    tiers: Mapping[str, TierRates] = field(
        default_factory=lambda: {"standard": STANDARD, "fast": FAST, "mini": MINI}
    )
    per_search: Decimal = Decimal("0.04")
    searches_per_task: int = 1  # searches a web-search task is taken to run
    input_video_seconds: Decimal = Decimal(15)  # input videos of a task, all together
    content_filter_off: Decimal = Decimal("1.1")
    credits_per_usd: Decimal = Decimal(68)
    # (tier, family) pairs EvoLink bills on the request and settles on actual use
    settled_on_actual: frozenset[tuple[str, str]] = SETTLED_ON_ACTUAL
    effective_at: str = "2026-09-16T07:41:04.814Z"  # when these prices took effect

    def settlement(self, tier: str, family: str) -> str:
        """``settlement_basis`` of a model: ``request_then_actual`` or ``request_only``."""
        actual = (tier, family) in self.settled_on_actual
        return "request_then_actual" if actual else "request_only"

    def charge(
        self,
        tier: str,
        quality: str,
        duration: int,
        *,
        content_filter: bool = True,
        web_search: bool = False,
        video_input: bool = False,
    ) -> Decimal:
        """Credits for one task (1e-4 precision). KeyError for a quality the tier lacks."""
        rates = self.tiers[tier]
        seconds = Decimal(duration)
        if video_input:
            seconds = _up_to_tenth(seconds + max(self.input_video_seconds, seconds))
            video = seconds * rates.per_second_720p * rates.factor_with_video[quality]
        else:
            video = seconds * rates.per_second_720p * rates.factor[quality]
        total = max(_round(video), rates.minimum)
        if web_search and self.searches_per_task > 0:
            total += _round(self.per_search * self.searches_per_task)
        if not content_filter:
            total *= self.content_filter_off
        return _round(total)

    def charge_for(self, tier: str, body: Mapping[str, object]) -> Decimal:
        """`charge` for a valid create body on ``tier``, with the API's defaults filled in."""
        params = body.get("model_params")
        return self.charge(
            tier,
            str(body.get("quality", "720p")),
            _int(body.get("duration", 5)),
            content_filter=body.get("content_filter", True) is not False,
            web_search=isinstance(params, Mapping) and params.get("web_search") is True,
            video_input=bool(body.get("video_urls")),
        )


def _round(value: Decimal) -> Decimal:
    return value.quantize(_UC, ROUND_HALF_UP)


def _up_to_tenth(seconds: Decimal) -> Decimal:
    return Decimal(math.ceil(seconds * 10)) / 10


def _int(value: object) -> int:
    return value if isinstance(value, int) else 5


DEFAULT_PRICES: Final = PriceBook()
