"""``GET /v1/catalog/pricing-rules``: the simulator's prices as EvoLink's public price rules
(``docs/simulator.md`` §23).

Written from the simulator's own `PriceBook`, in the shape of EvoLink's public catalog of
2026-10-10 [EVO]: ``{"meta": {...}, "models": [...]}``, one entry per Seedance 2.0 model with
its ``settlement_basis``, ``parameters`` and ``components``. A component prices one part of a
task: ``rate`` (credits per unit) times ``quantity_rule`` (an expression tree over the
parameters), rounded half-up per component, raised to ``minimum_charge``. Money is
``{"uc", "credits", "cny", "usd"}`` as decimal strings: 1 credit = 10,000 uc, 10 credits =
1 CNY, ``credits_per_usd`` credits = 1 USD.

What the rules leave out, as EvoLink's do: ``generate_audio`` (free) and the 1.1x of
``content_filter: false``, which the simulator still charges (§10).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from .prices import PriceBook
from .rules import FAMILIES, TIER_PREFIXES, WEB_SEARCH_TIERS

Json = dict[str, Any]

UC_PER_CREDIT: Final = Decimal(10_000)
CREDITS_PER_CNY: Final = Decimal(10)
FRESH_SECONDS: Final = 270  # the catalog's fixture: fresh_until about 4.5 min after updated_at
VIEWS: Final = ("full", "summary")
FILTERS: Final = ("product_id", "operation", "modality", "lifecycle")
_QUALITY_ORDER: Final = ("480p", "720p", "1080p")
_ROUNDING: Final = {"point": "per_component_subtotal", "mode": "half_up"}
_PRODUCT: Final = {
    "standard": "seedance-2-0",
    "fast": "seedance-2-0-fast",
    "mini": "seedance-2-0-mini",
}


def rules_answer(book: PriceBook, now: float, query: Mapping[str, str]) -> Json:
    """The answer to ``GET /v1/catalog/pricing-rules`` at simulated time ``now``: every model
    whose fields equal the ``product_id``, ``operation``, ``modality`` and ``lifecycle``
    given in ``query`` (none: all nine)."""
    models = [m for m in all_models(book) if all(m[f] == query[f] for f in FILTERS if f in query)]
    return {"meta": meta(book, now), "models": models}


def version(book: PriceBook) -> str:
    """The price version (and ETag) of ``book``: a digest of its models' rules."""
    return "prc_" + _digest(all_models(book))[:24]


def meta(book: PriceBook, now: float) -> Json:
    return {
        "schema_version": "2",
        "catalog_version": "cat_sim_" + _digest(sorted(_model_ids()))[:16],
        "pricing_version": version(book),
        "price_scope": "public_default",
        "currency": "USD",
        "exchange_rate_version": f"pricing-fx/v1:USD-CNY={_plain(book.credits_per_usd / 10)}",
        "updated_at": _iso(now),
        "fresh_until": _iso(now + FRESH_SECONDS),
    }


def all_models(book: PriceBook) -> list[Json]:
    """The nine models' rules, sorted by model id like EvoLink's catalog."""
    out = [
        _model(book, tier, family)
        for tier in TIER_PREFIXES
        for family in FAMILIES
        if tier in book.tiers
    ]
    return sorted(out, key=lambda m: str(m["model_id"]))


def _model_ids() -> list[str]:
    return [f"seedance-2.0-{TIER_PREFIXES[t]}{f}-to-video" for t in TIER_PREFIXES for f in FAMILIES]


def _model(book: PriceBook, tier: str, family: str) -> Json:
    rates = book.tiers[tier]
    qualities = [q for q in _QUALITY_ORDER if q in rates.factor]
    searchable = family == "text" and tier in WEB_SEARCH_TIERS
    parameters: list[Json] = [
        {
            "name": "duration_seconds",
            "type": "integer",
            "minimum": "4",
            "maximum": "15",
            "default": "5",
        },
        {"name": "quality", "type": "enum", "values": qualities, "default": "720p"},
    ]
    if searchable:
        parameters.append(
            {"name": "search_count", "type": "integer", "minimum": "0", "default": "0"}
        )
    if family == "reference":
        parameters.append(
            {"name": "input_seconds", "type": "decimal", "minimum": "0", "default": "0"}
        )
    factor = _lookup({q: rates.factor[q] for q in qualities})
    if family == "reference":
        with_video = _lookup({q: rates.factor_with_video[q] for q in qualities})
        # output + (input > 0 ? max(input, output) : 0), rounded up to a tenth of a second
        extra = _call(
            "if",
            _has_input(),
            _call("max", _var("input_seconds"), _var("duration_seconds")),
            _const(0),
        )
        seconds = _call("add", _var("duration_seconds"), extra)
        tenths = _call("ceil", _call("multiply", seconds, _const(10)))
        billed = _call("divide", tenths, _const(10))
        quantity = _call("multiply", billed, _call("if", _has_input(), with_video, factor))
        unit, label = "input_plus_output_second", "output_plus_billable_input_seconds"
    else:
        quantity = _call("multiply", _var("duration_seconds"), factor)
        unit, label = "output_second", "output_seconds"
    video = _component(book, "video_output", unit, label, "per_second", rates.per_second_720p)
    video["minimum_charge"] = money(rates.minimum, book.credits_per_usd)
    video["quantity_rule"] = quantity
    components = [video]
    if searchable:
        search = _component(
            book, "web_search", "search", "web_search_per_search", "per_call", book.per_search
        )
        search["condition"] = _call("gt", _var("search_count"), _const(0))
        search["quantity_rule"] = _var("search_count")
        components.append(search)
    entry: Json = {
        "model_id": f"seedance-2.0-{TIER_PREFIXES[tier]}{family}-to-video",
        "product_id": _PRODUCT.get(tier, f"seedance-2-0-{tier}"),
        "operation": f"{family}_to_video",
        "modality": "video",
        "lifecycle": "active",
        "pricing_status": "available",
        "settlement_basis": book.settlement(tier, family),
        "policy_version": 1,
        "policy_source": "published",
        "parameters": parameters,
        "components": components,
    }
    entry["policy_checksum"] = hashlib.sha256(_canonical(entry).encode()).hexdigest()
    return entry


def _component(
    book: PriceBook,
    role: str,
    unit: str,
    label: str,
    billing_rule: str,
    rate: Decimal,
) -> Json:
    """A component without a minimum (set ``minimum_charge`` after) and ``quantity_rule`` 1."""
    return {
        "id": role,
        "role": role,
        "label_key": label,
        "dimension": "search" if role == "web_search" else unit,
        "unit": unit,
        "billing_unit_size": 1,
        "display_unit_size": 1,
        "rate": money(rate, book.credits_per_usd),
        "minimum_charge": money(Decimal(0), book.credits_per_usd),
        "billing_rule": billing_rule,
        "pricing_status": "available",
        "effective_at": book.effective_at,
        "quantity_rule": _const(1),
        "rounding": dict(_ROUNDING),
        "tiers": [],
    }


def money(credits: Decimal, credits_per_usd: Decimal) -> dict[str, str]:
    """``credits`` as the rules write money: uc, credits, CNY and USD (8 places) strings."""
    usd = (credits / credits_per_usd).quantize(Decimal("1e-8"), ROUND_HALF_UP)
    return {
        "uc": _plain(credits * UC_PER_CREDIT),
        "credits": _plain(credits),
        "cny": _plain(credits / CREDITS_PER_CNY),
        "usd": _plain(usd),
    }


def _var(name: str) -> Json:
    return {"op": "variable", "name": name}


def _const(value: int | Decimal) -> Json:
    return {"op": "constant", "value": _plain(Decimal(value))}


def _call(op: str, *args: Json) -> Json:
    return {"op": op, "args": list(args)}


def _lookup(values: Mapping[str, Decimal]) -> Json:
    return {
        "op": "lookup",
        "key": _var("quality"),
        "values": {q: _plain(v) for q, v in sorted(values.items())},
    }


def _has_input() -> Json:
    return _call("gt", _var("input_seconds"), _const(0))


def _plain(value: Decimal) -> str:
    """A decimal string without exponent or trailing zeros (``"8.2013"``, ``"1"``)."""
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def _iso(unix: float) -> str:
    moment = datetime.fromtimestamp(unix, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _digest(value: object) -> str:
    return hashlib.sha256(_canonical(value).encode()).hexdigest()
