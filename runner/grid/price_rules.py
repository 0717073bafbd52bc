"""EvoLink's public price rules (``docs/evolink.md`` §18) as a layer of runner's price table,
and the cache ``runner prices update`` keeps that layer in.

The rules price each model with components (``video_output``, ``web_search``): a rate in
credits times a ``quantity_rule``, an expression tree over the request's parameters
(``duration_seconds``, ``quality``, ``input_seconds``, ``search_count``), rounded per
component and raised to the component's ``minimum_charge``. `to_table` evaluates each
Seedance 2.0 model's rule (`evaluate`) at the points runner's formula needs (a factor per
quality, with and without input videos, with audio if the rules price it), then checks the
formula gives the rule's own price for every duration, quality and input it may meet; rules
it cannot hold are refused, never approximated. Left out because the rules leave them out:
the 1.1x of ``content_filter: false`` (kept from the table below) and the searches a job
runs and its input videos' length (runner's own assumptions).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

from ..errors import ExperimentError, PricesUnavailable
from ..rules import DURATION_MAX, DURATION_MIN, MODELS, TIER_QUALITIES
from .pricing import SETTLEMENTS, Layer, PriceSource, build, built_in_layer, model_name

Value = Decimal | bool | str
CACHE_FORMAT: Final = "runner-prices-cache/1"
KNOWN_PARAMETERS: Final = frozenset(
    {"duration_seconds", "quality", "input_seconds", "search_count", "generate_audio"}
)
CHECKED_INPUT_SECONDS: Final = (Decimal(2), Decimal("7.25"), Decimal(15))  # 2-15 s allowed
ASSUMED_INPUT_SECONDS: Final = Decimal(15)
TOLERANCE: Final = Decimal("0.0001")  # one unit of EvoLink's money (1e-4 credits)
_UNIT: Final = Decimal("0.0001")
_CNY_RATE: Final = re.compile(r"USD-CNY=(\d+(?:\.\d+)?)")
CREDITS_PER_CNY: Final = Decimal(10)


class RuleError(Exception):
    """A rule runner cannot read or hold; the message says which and why."""


class CacheError(Exception):
    """The cache file cannot be used; the message says what to do."""


# --- expressions -------------------------------------------------------------------------------


def evaluate(node: object, values: Mapping[str, Value]) -> Value:
    """The value of a rule's expression tree with the parameters ``values``."""
    if not isinstance(node, Mapping):
        raise RuleError(f"an expression is not an object: {node!r}")
    op = node.get("op")
    if op == "constant":
        return _value(node.get("value"))
    if op == "variable":
        name = node.get("name")
        if not isinstance(name, str) or name not in values:
            raise RuleError(f"the rule uses a parameter runner does not know: {name!r}")
        return values[name]
    if op == "lookup":
        key = evaluate(node.get("key"), values)
        table = node.get("values")
        if not isinstance(table, Mapping):
            raise RuleError("a lookup has no values")
        text = _text(key)
        if text not in table:
            if "default" in node:
                return _value(node["default"])
            raise RuleError(f"no price for {text!r}")
        return _value(table[text])
    args = node.get("args")
    if not isinstance(args, list):
        raise RuleError(f"the operation {op!r} has no arguments")
    if op == "if":
        if len(args) != 3:
            raise RuleError("'if' needs a condition and two branches")
        return evaluate(args[1] if _truth(evaluate(args[0], values)) else args[2], values)
    got = [evaluate(a, values) for a in args]
    if op in _COMPARE:
        if len(got) != 2:
            raise RuleError(f"{op!r} compares two values")
        return _COMPARE[op](got[0], got[1])
    if op == "and":
        return all(_truth(v) for v in got)
    if op == "or":
        return any(_truth(v) for v in got)
    if op == "not" and len(got) == 1:
        return not _truth(got[0])
    numbers = [_number(v) for v in got]
    if op not in _ARITHMETIC:
        raise RuleError(f"the rules use an operation runner does not know: {op!r}")
    try:
        return _ARITHMETIC[op](numbers)
    except (IndexError, ZeroDivisionError, InvalidOperation) as exc:
        raise RuleError(f"{op!r} cannot be worked out ({exc.__class__.__name__})") from None


def _sum(a: list[Decimal]) -> Decimal:
    return sum(a, Decimal(0))


def _product(a: list[Decimal]) -> Decimal:
    out = Decimal(1)
    for v in a:
        out *= v
    return out


_ARITHMETIC: Final[dict[str, Callable[[list[Decimal]], Decimal]]] = {
    "add": _sum,
    "subtract": lambda a: a[0] - _sum(a[1:]),
    "multiply": _product,
    "divide": lambda a: a[0] / a[1],
    "min": min,
    "max": max,
    "ceil": lambda a: a[0].to_integral_value(ROUND_CEILING),
    "floor": lambda a: Decimal(math.floor(a[0])),
    "clamp": lambda a: min(max(a[0], a[1]), a[2]),
}
_COMPARE: Final[dict[str, Callable[[Value, Value], bool]]] = {
    "gt": lambda a, b: _number(a) > _number(b),
    "gte": lambda a, b: _number(a) >= _number(b),
    "lt": lambda a, b: _number(a) < _number(b),
    "lte": lambda a, b: _number(a) <= _number(b),
    "eq": lambda a, b: _same(a, b),
    "ne": lambda a, b: not _same(a, b),
}


def _value(raw: object) -> Value:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float) and math.isfinite(raw):
        return Decimal(str(raw))
    if isinstance(raw, str):
        try:
            return Decimal(raw)
        except InvalidOperation:
            return raw
    raise RuleError(f"not a value: {raw!r}")


def _number(value: Value) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal):
        raise RuleError(f"{value!r} is not a number")
    return value


def _text(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else format(value.normalize(), "f")


def _truth(value: Value) -> bool:
    return value if isinstance(value, bool) else _text(value) not in ("0", "", "false")


def _same(a: Value, b: Value) -> bool:
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return a == b
    return _text(a) == _text(b)


# --- rules -> table ------------------------------------------------------------------------------


@dataclass
class Converted:
    """The rules as a layer of the price table (prices.toml's schema), and what to tell."""

    table: dict[str, Any]
    models: list[str]  # the model ids converted
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def to_table(answer: object) -> Converted:
    """The price table layer of a ``GET /v1/catalog/pricing-rules`` answer. Raises
    PricesUnavailable naming the model and the reason when the rules cannot be held."""
    if not isinstance(answer, Mapping) or not isinstance(answer.get("models"), list):
        raise PricesUnavailable("the answer is not EvoLink's price rules (it has no model list)")
    meta = answer.get("meta")
    meta = dict(meta) if isinstance(meta, Mapping) else {}
    tiers: dict[str, Any] = {}
    converted: list[str] = []
    notes: list[str] = []
    searches: list[Decimal] = []
    for entry in answer["models"]:
        model = entry.get("model_id") if isinstance(entry, Mapping) else None
        if not isinstance(model, str) or model not in MODELS:
            continue
        tier, mode = MODELS[model]
        name = model_name(tier, mode)
        if entry.get("pricing_status", "available") != "available":
            notes.append(f"EvoLink publishes no price for {name} now: it keeps its old one.")
            continue
        try:
            spec, search = _model_spec(entry, tier, mode)
        except RuleError as exc:
            raise PricesUnavailable(
                f"runner cannot use EvoLink's price rule for {name} ({model}): {exc}"
            ) from None
        tiers.setdefault(tier, {}).setdefault("modes", {})[mode] = spec
        converted.append(model)
        if search is not None:
            searches.append(search)
    if not converted:
        raise PricesUnavailable("the price rules name none of the Seedance 2.0 models runner uses")
    missing = [model_name(*MODELS[m]) for m in MODELS if m not in converted]
    if missing:
        notes.append(f"No rules for {', '.join(missing)}: their prices stay as they were.")
    table: dict[str, Any] = {"tiers": tiers}
    if searches:
        table["web_search"] = {"credits_per_search": _json(max(searches))}
        if len(set(searches)) > 1:
            notes.append(
                "Web search costs differ between models; quotes use the highest, "
                f"{max(searches)} credits per search."
            )
    rate = _CNY_RATE.search(str(meta.get("exchange_rate_version", "")))
    if rate is not None:
        table["credits_per_usd"] = _json(Decimal(rate.group(1)) * CREDITS_PER_CNY)
    return Converted(table, converted, notes, meta)


def _model_spec(
    entry: Mapping[str, Any], tier: str, mode: str
) -> tuple[dict[str, Any], Decimal | None]:
    """One model's values at mode level, and its price per web search (None: none)."""
    parameters = {
        p["name"]: p for p in entry.get("parameters", []) if isinstance(p, Mapping) and "name" in p
    }
    components = entry.get("components")
    if not isinstance(components, list) or not components:
        raise RuleError("it has no components")
    video = [c for c in components if isinstance(c, Mapping) and c.get("role") == "video_output"]
    search = [c for c in components if isinstance(c, Mapping) and c.get("role") == "web_search"]
    other = [c for c in components if c not in video and c not in search]
    if len(video) != 1 or other:
        roles = sorted(str(c.get("role")) if isinstance(c, Mapping) else "?" for c in other)
        raise RuleError(f"it prices parts runner does not know ({', '.join(roles) or 'videos'})")
    for part in components:
        if part.get("tiers"):
            raise RuleError("it has volume tiers")
    settlement = entry.get("settlement_basis", "request_only")
    if settlement not in SETTLEMENTS:
        raise RuleError(f"unknown settlement_basis {settlement!r}")
    base = _defaults(parameters)
    part = _Part(video[0])
    qualities = _qualities(parameters, tier)

    def quantity(quality: str, seconds: int, **extra: Value) -> Decimal:
        values = {**base, "duration_seconds": Decimal(seconds), "quality": quality, **extra}
        return _number(evaluate(part.rule, values))

    rate, minimum = _as_float(part.rate), _as_float(part.minimum)
    d0 = DURATION_MIN
    factor = {q: _as_float(quantity(q, d0) / d0) for q in qualities}
    spec: dict[str, Any] = {
        "credits_per_second_720p": _json(part.rate),
        "minimum_credits": _json(part.minimum),
        "quality_factor": {q: _json(v) for q, v in factor.items()},
        "settlement": settlement,
    }
    with_video: dict[str, Decimal] = {}
    if mode == "reference" and "input_seconds" in parameters:
        billed = _billed(d0, ASSUMED_INPUT_SECONDS)
        for q in qualities:
            billed_quantity = quantity(q, d0, input_seconds=ASSUMED_INPUT_SECONDS)
            with_video[q] = _as_float(billed_quantity / billed)
        spec["video_input_factor"] = {q: _json(v) for q, v in with_video.items()}
    audio = Decimal(1)
    if "generate_audio" in parameters:
        silent = quantity(qualities[0], d0)
        if silent == 0:
            raise RuleError("a silent video costs nothing, so the audio price is unclear")
        audio = _as_float(quantity(qualities[0], d0, generate_audio=True) / silent)
        spec["audio_factor"] = _json(audio)
    _unknown_parameters_do_not_matter(parameters, lambda v: quantity(qualities[0], d0, **v))
    for q in qualities:
        for seconds in _durations(parameters):
            for sound in (False, True) if "generate_audio" in parameters else (False,):
                inputs = (Decimal(0), *CHECKED_INPUT_SECONDS) if with_video else (Decimal(0),)
                for given in inputs:
                    rule = part.price(
                        quantity(q, seconds, generate_audio=sound, input_seconds=given)
                    )
                    if given:
                        mine = _billed(seconds, given) * rate * with_video[q]
                    else:
                        mine = seconds * rate * factor[q]
                    mine = max(mine * (audio if sound else 1), minimum)
                    if abs(mine.quantize(_UNIT, ROUND_HALF_UP) - rule) > TOLERANCE:
                        raise RuleError(
                            f"its price of {seconds} s at {q}"
                            + (f" with {given} s of input video" if given else "")
                            + f" ({rule} credits) does not follow runner's per-second formula"
                        )
    return spec, _search_price(search[0], base) if search else None


class _Part:
    """One component: its rate, minimum, rounding and quantity rule."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.rate = _credits(raw.get("rate"), "rate")
        minimum = raw.get("minimum_charge")
        self.minimum = Decimal(0) if minimum is None else _credits(minimum, "minimum_charge")
        self.rule = raw.get("quantity_rule")
        self.condition = raw.get("condition")
        rounding = raw.get("rounding")
        mode = rounding.get("mode") if isinstance(rounding, Mapping) else "half_up"
        self.rounding = ROUND_CEILING if mode == "ceil" else ROUND_HALF_UP

    def price(self, quantity: Decimal) -> Decimal:
        return max((self.rate * quantity).quantize(_UNIT, self.rounding), self.minimum)


def _search_price(raw: Mapping[str, Any], base: Mapping[str, Value]) -> Decimal:
    """Credits per search, checked to be the same for 1, 2 and 3 searches."""
    part = _Part(raw)

    def price(n: int) -> Decimal:
        values = {**base, "duration_seconds": Decimal(DURATION_MIN), "search_count": Decimal(n)}
        if part.condition is not None and not _truth(evaluate(part.condition, values)):
            return Decimal(0)
        return part.price(_number(evaluate(part.rule, values)))

    if price(0) != 0:
        raise RuleError("web search costs something even when no search runs")
    one = price(1)
    if any(abs(price(n) - n * one) > TOLERANCE for n in (2, 3)):
        raise RuleError("web search is not priced per search")
    return one


def _defaults(parameters: Mapping[str, Mapping[str, Any]]) -> dict[str, Value]:
    """Every parameter at its default (runner's own values replace the ones it knows)."""
    out: dict[str, Value] = {
        "input_seconds": Decimal(0),
        "search_count": Decimal(0),
        "generate_audio": False,
    }
    for name, spec in parameters.items():
        if name in KNOWN_PARAMETERS or "default" not in spec:
            continue
        out[name] = _typed(spec, spec["default"])
    return out


def _typed(spec: Mapping[str, Any], raw: object) -> Value:
    if spec.get("type") == "boolean":
        return raw is True or str(raw).lower() == "true"
    return _value(raw)


def _unknown_parameters_do_not_matter(
    parameters: Mapping[str, Mapping[str, Any]], quantity: Callable[[dict[str, Value]], Decimal]
) -> None:
    """Refuse a rule whose price moves with a parameter runner does not know."""
    for name, spec in parameters.items():
        if name in KNOWN_PARAMETERS:
            continue
        if spec.get("type") == "boolean":
            tried: list[Value] = [False, True]
        elif spec.get("type") == "enum":
            tried = [_value(v) for v in spec.get("values", [])]
        else:
            tried = [_value(spec[k]) for k in ("minimum", "maximum") if k in spec]
        if len({quantity({name: v}) for v in tried}) > 1:
            raise RuleError(
                f"its price depends on {name!r}, which runner's price table cannot hold"
            )


def _qualities(parameters: Mapping[str, Mapping[str, Any]], tier: str) -> list[str]:
    allowed = TIER_QUALITIES[tier]
    spec = parameters.get("quality")
    if spec is None:
        return list(allowed)
    listed = [str(v) for v in spec.get("values", [])]
    found = [q for q in allowed if q in listed]
    if not found:
        raise RuleError(f"it prices none of the qualities runner sends ({', '.join(allowed)})")
    return found


def _durations(parameters: Mapping[str, Mapping[str, Any]]) -> range:
    spec = parameters.get("duration_seconds", {})
    low, high = DURATION_MIN, DURATION_MAX
    with contextlib.suppress(KeyError, ValueError, TypeError, InvalidOperation):
        low = max(low, int(Decimal(str(spec["minimum"]))))
    with contextlib.suppress(KeyError, ValueError, TypeError, InvalidOperation):
        high = min(high, int(Decimal(str(spec["maximum"]))))
    return range(low, high + 1)


def _billed(seconds: int, given: Decimal) -> Decimal:
    """Output plus input seconds, rounded up to a tenth (runner's formula)."""
    total = Decimal(seconds) + max(given, Decimal(seconds))
    return (total * 10).to_integral_value(ROUND_CEILING) / 10


def _credits(money: object, what: str) -> Decimal:
    if not isinstance(money, Mapping) or "credits" not in money:
        raise RuleError(f"its {what} has no credits")
    value = _value(money["credits"])
    if not isinstance(value, Decimal) or value < 0:
        raise RuleError(f"its {what} is not a number of credits")
    return value


def _as_float(value: Decimal) -> Decimal:
    """``value`` as the cache will give it back (JSON holds floats)."""
    return Decimal(str(_json(value)))


def _json(value: Decimal) -> int | float:
    """A number for the cache: whole numbers as integers, others as floats."""
    return int(value) if value == value.to_integral_value() else float(value)


# --- the cache -----------------------------------------------------------------------------------


def write_cache(
    path: Path, converted: Converted, fetched_at: dt.datetime, url: str, backend: str
) -> None:
    """Save the fetched layer, whole or not at all (a failed write leaves the old file)."""
    data = {
        "format": CACHE_FORMAT,
        "fetched_at": fetched_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "backend": backend,
        "source_url": url,
        "rules": {
            k: converted.meta[k]
            for k in ("pricing_version", "catalog_version", "updated_at")
            if k in converted.meta
        },
        "models": converted.models,
        "notes": converted.notes,
        "table": converted.table,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".prices-cache-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2, ensure_ascii=False)
            out.flush()
            os.fsync(out.fileno())
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def read_cache(path: Path) -> Layer | None:
    """The fetched layer in ``path`` (None when there is none). Raises CacheError when it
    cannot be used."""
    try:
        raw = path.read_text("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise _unusable(path, exc.__class__.__name__) from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        raise _unusable(path, "it is not JSON") from None
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        raise _unusable(path, "it is not a price cache of this runner")
    try:
        fetched = dt.datetime.fromisoformat(str(data["fetched_at"]).replace("Z", "+00:00"))
        table = data["table"]
        if not isinstance(table, dict):
            raise TypeError
    except (KeyError, ValueError, TypeError):
        raise _unusable(path, "it lacks its date or its table") from None
    label = "EvoLink price rules" if data.get("backend") == "evolink" else "simulator price rules"
    url = data.get("source_url")
    day = fetched.astimezone(dt.UTC).date()
    source = PriceSource("rules", label, day, "fetched", url if isinstance(url, str) else None)
    layer = Layer(table, source, path.name)
    try:
        build([built_in_layer(), layer])
    except ExperimentError as exc:
        raise _unusable(path, str(exc).splitlines()[-1]) from None
    return layer


def _unusable(path: Path, why: str) -> CacheError:
    return CacheError(
        f"the fetched prices in {path} cannot be used ({why}), so they are left out: "
        "`runner prices update` fetches them again."
    )
