"""The simulator's public price rules (docs/simulator.md §23): EvoLink's shape, anonymous,
written from the simulator's own price book, and pricing exactly what the simulator charges.
In process through httpx.ASGITransport."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from runner.simulator.app import DEFAULT_KEY, Fault, SimConfig, create_app
from runner.simulator.prices import DEFAULT_PRICES, FAST, PriceBook, TierRates
from runner.simulator.testing import asgi_client

RULES = "/v1/catalog/pricing-rules"

# From EvoLink's public catalog of 2026-10-10 (docs/simulator.md §23), sku ids left out.
FAST_TEXT_VIDEO_RULE = {
    "op": "multiply",
    "args": [
        {"op": "variable", "name": "duration_seconds"},
        {
            "op": "lookup",
            "key": {"op": "variable", "name": "quality"},
            "values": {"480p": "0.465", "720p": "1"},
        },
    ],
}
STANDARD_REFERENCE_RULE = {
    "op": "multiply",
    "args": [
        {
            "op": "divide",
            "args": [
                {
                    "op": "ceil",
                    "args": [
                        {
                            "op": "multiply",
                            "args": [
                                {
                                    "op": "add",
                                    "args": [
                                        {"op": "variable", "name": "duration_seconds"},
                                        {
                                            "op": "if",
                                            "args": [
                                                {
                                                    "op": "gt",
                                                    "args": [
                                                        {"op": "variable", "name": "input_seconds"},
                                                        {"op": "constant", "value": "0"},
                                                    ],
                                                },
                                                {
                                                    "op": "max",
                                                    "args": [
                                                        {"op": "variable", "name": "input_seconds"},
                                                        {
                                                            "op": "variable",
                                                            "name": "duration_seconds",
                                                        },
                                                    ],
                                                },
                                                {"op": "constant", "value": "0"},
                                            ],
                                        },
                                    ],
                                },
                                {"op": "constant", "value": "10"},
                            ],
                        }
                    ],
                },
                {"op": "constant", "value": "10"},
            ],
        },
        {
            "op": "if",
            "args": [
                {
                    "op": "gt",
                    "args": [
                        {"op": "variable", "name": "input_seconds"},
                        {"op": "constant", "value": "0"},
                    ],
                },
                {
                    "op": "lookup",
                    "key": {"op": "variable", "name": "quality"},
                    "values": {"1080p": "1.52", "480p": "0.284", "720p": "0.609"},
                },
                {
                    "op": "lookup",
                    "key": {"op": "variable", "name": "quality"},
                    "values": {"1080p": "2.5", "480p": "0.465", "720p": "1"},
                },
            ],
        },
    ],
}
SETTLEMENT = {
    "seedance-2.0-text-to-video": "request_then_actual",
    "seedance-2.0-fast-text-to-video": "request_then_actual",
    "seedance-2.0-mini-text-to-video": "request_only",
    "seedance-2.0-image-to-video": "request_only",
    "seedance-2.0-fast-image-to-video": "request_only",
    "seedance-2.0-mini-image-to-video": "request_only",
    "seedance-2.0-reference-to-video": "request_then_actual",
    "seedance-2.0-fast-reference-to-video": "request_then_actual",
    "seedance-2.0-mini-reference-to-video": "request_then_actual",
}
CHEAP_FAST = TierRates(
    per_second_720p=Decimal("1.25"),
    minimum=Decimal("9.5"),
    factor={"480p": Decimal("0.5"), "720p": Decimal(1)},
    factor_with_video={"480p": Decimal("0.25"), "720p": Decimal("0.75")},
)


async def rules(book: PriceBook | None = None, **params: str) -> dict[str, Any]:
    app = create_app(SimConfig(prices=book))
    async with asgi_client(app, key=None) as client:
        response = await client.get(RULES, params=params)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def model(data: Mapping[str, Any], model_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(m for m in data["models"] if m["model_id"] == model_id)
    return found


def evaluate(node: Mapping[str, Any], values: Mapping[str, Any]) -> Any:
    """The test's own reading of a rule's expression tree."""
    op = node["op"]
    if op == "constant":
        return Decimal(node["value"])
    if op == "variable":
        return values[node["name"]]
    if op == "lookup":
        return Decimal(node["values"][evaluate(node["key"], values)])
    args = [evaluate(a, values) for a in node["args"]]
    if op == "if":
        return args[1] if args[0] else args[2]
    simple = {
        "multiply": lambda a: a[0] * a[1],
        "divide": lambda a: a[0] / a[1],
        "add": lambda a: a[0] + a[1],
        "max": max,
        "gt": lambda a: a[0] > a[1],
        "ceil": lambda a: Decimal(math.ceil(a[0])),
    }
    return simple[op](args)


def rule_price(entry: Mapping[str, Any], values: Mapping[str, Any]) -> Decimal:
    """What the rules charge: each component rounded half-up, raised to its minimum, summed."""
    total = Decimal(0)
    for part in entry["components"]:
        if "condition" in part and not evaluate(part["condition"], values):
            continue
        subtotal = Decimal(part["rate"]["credits"]) * evaluate(part["quantity_rule"], values)
        subtotal = subtotal.quantize(Decimal("0.0001"), ROUND_HALF_UP)
        total += max(subtotal, Decimal(part["minimum_charge"]["credits"]))
    return total


@pytest.mark.anyio
async def test_the_rules_come_in_evolinks_shape_for_the_nine_models() -> None:
    data = await rules()

    meta = data["meta"]
    assert meta["schema_version"] == "2" and meta["price_scope"] == "public_default"
    assert meta["currency"] == "USD"
    assert meta["exchange_rate_version"] == "pricing-fx/v1:USD-CNY=6.8"
    assert {"catalog_version", "pricing_version", "updated_at", "fresh_until"} <= set(meta)
    assert {m["model_id"]: m["settlement_basis"] for m in data["models"]} == SETTLEMENT
    fast_text = model(data, "seedance-2.0-fast-text-to-video")
    video, search = fast_text["components"]
    assert video["rate"] == {
        "uc": "82013",
        "credits": "8.2013",
        "cny": "0.82013",
        "usd": "0.12060735",
    }
    assert video["minimum_charge"] == {
        "uc": "151893",
        "credits": "15.1893",
        "cny": "1.51893",
        "usd": "0.22337206",
    }
    assert video["quantity_rule"] == FAST_TEXT_VIDEO_RULE
    assert video["rounding"] == {"point": "per_component_subtotal", "mode": "half_up"}
    assert search["rate"]["credits"] == "0.04" and search["minimum_charge"]["credits"] == "0"
    assert search["condition"] == {
        "op": "gt",
        "args": [{"op": "variable", "name": "search_count"}, {"op": "constant", "value": "0"}],
    }
    standard_reference = model(data, "seedance-2.0-reference-to-video")
    assert standard_reference["components"][0]["quantity_rule"] == STANDARD_REFERENCE_RULE
    names = [p["name"] for p in standard_reference["parameters"]]
    assert names == ["duration_seconds", "quality", "input_seconds"]
    mini_text = model(data, "seedance-2.0-mini-text-to-video")
    assert [c["id"] for c in mini_text["components"]] == ["video_output"]  # no web search


@pytest.mark.parametrize("book", [DEFAULT_PRICES, PriceBook(tiers={"fast": CHEAP_FAST})])
@pytest.mark.anyio
async def test_the_rules_price_every_task_as_the_simulator_charges_it(book: PriceBook) -> None:
    data = await rules(book)
    checked = 0
    for entry in data["models"]:
        tier = entry["product_id"].removeprefix("seedance-2-0").removeprefix("-") or "standard"
        family = entry["operation"].removesuffix("_to_video")
        names = {p["name"] for p in entry["parameters"]}
        qualities = next(p["values"] for p in entry["parameters"] if p["name"] == "quality")
        for quality in qualities:
            for duration in range(4, 16):
                for video in (False, True) if family == "reference" else (False,):
                    for search in (False, True) if "search_count" in names else (False,):
                        values = {
                            "duration_seconds": Decimal(duration),
                            "quality": quality,
                            "input_seconds": book.input_video_seconds if video else Decimal(0),
                            "search_count": Decimal(book.searches_per_task if search else 0),
                        }
                        charged = book.charge(
                            tier, quality, duration, web_search=search, video_input=video
                        )
                        assert rule_price(entry, values) == charged, (entry["model_id"], values)
                        checked += 1
    assert checked >= 100


@pytest.mark.anyio
async def test_the_rules_show_a_changed_price_book_and_its_minimum() -> None:
    data = await rules(
        PriceBook(tiers={"standard": DEFAULT_PRICES.tiers["standard"], "fast": CHEAP_FAST})
    )

    fast_image = model(data, "seedance-2.0-fast-image-to-video")["components"][0]
    assert fast_image["rate"]["credits"] == "1.25"
    assert fast_image["minimum_charge"] == {
        "uc": "95000",
        "credits": "9.5",
        "cny": "0.95",
        "usd": "0.13970588",
    }
    assert len(data["models"]) == 6  # no mini in this book
    assert FAST.per_second_720p == Decimal("8.2013")  # the default book is untouched


@pytest.mark.anyio
async def test_no_key_is_needed_a_wrong_one_is_ignored_and_no_other_state_changes() -> None:
    app = create_app(SimConfig())
    before = app.sim.snapshot()
    async with asgi_client(app, key=None) as anonymous, asgi_client(app, key="sk-wrong") as wrong:
        first = await anonymous.get(RULES)
        second = await wrong.get(RULES)
    after = app.sim.snapshot()

    assert first.status_code == second.status_code == 200
    assert after["requests"] == {"pricing": {"200": 2}}
    assert after["tasks"] == [] and after["accounts"] == before["accounts"]
    assert after["accounts"]  # the default key's account, unchanged
    assert DEFAULT_KEY not in first.text


@pytest.mark.anyio
async def test_an_etag_answers_304_until_the_prices_change() -> None:
    app = create_app(SimConfig())
    other = create_app(SimConfig(prices=PriceBook(tiers={"fast": CHEAP_FAST})))
    async with asgi_client(app, key=None) as client, asgi_client(other, key=None) as changed:
        tag = (await client.get(RULES)).headers["etag"]
        again = await client.get(RULES, headers={"If-None-Match": tag})
        elsewhere = await changed.get(RULES, headers={"If-None-Match": tag})

    assert again.status_code == 304 and again.content == b""
    assert elsewhere.status_code == 200 and elsewhere.headers["etag"] != tag


@pytest.mark.anyio
async def test_filters_pick_models_and_an_unknown_view_is_a_400_naming_view() -> None:
    data = await rules(operation="image_to_video", product_id="seedance-2-0-mini", view="summary")
    app = create_app(SimConfig())
    async with asgi_client(app, key=None) as client:
        bad = await client.get(RULES, params={"view": "everything"})

    assert [m["model_id"] for m in data["models"]] == ["seedance-2.0-mini-image-to-video"]
    assert bad.status_code == 400
    assert (bad.json()["error"]["code"], bad.json()["error"]["param"]) == (
        "invalid_request",
        "view",
    )


@pytest.mark.anyio
async def test_a_fault_plan_can_make_the_rules_endpoint_fail() -> None:
    fault = Fault.from_json({"endpoint": "pricing", "kind": "respond", "status": 503, "times": 1})
    app = create_app(SimConfig(faults=[fault]))
    async with asgi_client(app, key=None) as client:
        failed = await client.get(RULES)
        served = await client.get(RULES)

    assert failed.status_code == 503 and served.status_code == 200
    assert app.sim.snapshot()["requests"]["pricing"] == {"503": 1, "200": 1}
