"""EvoLink's price rules turned into runner's price table (runner.grid.price_rules): against
the simulator's own price book over every priced case, against an entry of EvoLink's real
catalog, and rules the table cannot hold refused, never approximated."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from runner.errors import PricesUnavailable
from runner.grid.price_rules import evaluate, read_cache, to_table, write_cache
from runner.grid.pricing import PriceTable, build, built_in_layer
from runner.simulator.prices import PriceBook, TierRates
from runner.simulator.pricing_rules import rules_answer
from runner.simulator.rules import QUALITY_BY_TIER

ODD = PriceBook(
    tiers={
        "standard": TierRates(
            per_second_720p=Decimal("12.3457"),
            minimum=Decimal("60"),
            factor={"480p": Decimal("0.41"), "720p": Decimal(1), "1080p": Decimal("2.7")},
            factor_with_video={
                "480p": Decimal("0.3"),
                "720p": Decimal("0.55"),
                "1080p": Decimal("1.6"),
            },
        ),
        "fast": TierRates(
            per_second_720p=Decimal("7.7777"),
            minimum=Decimal("31.5"),
            factor={"480p": Decimal("0.5"), "720p": Decimal(1)},
            factor_with_video={"480p": Decimal("0.25"), "720p": Decimal("0.65")},
        ),
        "mini": TierRates(
            per_second_720p=Decimal("3.1"),
            minimum=Decimal("2"),
            factor={"480p": Decimal("0.45"), "720p": Decimal(1)},
            factor_with_video={"480p": Decimal("0.27"), "720p": Decimal("0.61")},
        ),
    },
    per_search=Decimal("0.05"),
)

# seedance-2.0-fast-text-to-video as EvoLink's public catalog of 2026-10-10 gives it
# (docs/evolink.md §18), every field kept.
REAL_FAST_TEXT: dict[str, Any] = json.loads(
    """{"model_id":"seedance-2.0-fast-text-to-video","product_id":"seedance-2-0-fast",
"operation":"text_to_video","modality":"video","lifecycle":"active","pricing_status":"available",
"settlement_basis":"request_then_actual","policy_version":1,
"policy_checksum":"63d6666d13f34c2d9d0706e8a18404992b89fcfb875b53afd8390e4185652ed7",
"policy_source":"published","parameters":[{"name":"duration_seconds","type":"integer",
"minimum":"4","maximum":"15","default":"5"},{"name":"quality","type":"enum",
"values":["480p","720p"],"default":"720p"},{"name":"search_count","type":"integer",
"minimum":"0","default":"0"}],"components":[{"id":"video_output","role":"video_output",
"label_key":"output_seconds","dimension":"output_second","sku_id":"4003","unit":"output_second",
"billing_unit_size":1,"display_unit_size":1,"rate":{"uc":"82013","credits":"8.2013",
"cny":"0.82013","usd":"0.12060735"},"minimum_charge":{"uc":"151893","credits":"15.1893",
"cny":"1.51893","usd":"0.22337206"},"billing_rule":"per_second","pricing_status":"available",
"effective_at":"2026-09-16T07:41:04.814Z","quantity_rule":{"op":"multiply","args":[{"op":"variable",
"name":"duration_seconds"},{"op":"lookup","key":{"op":"variable","name":"quality"},
"values":{"480p":"0.465","720p":"1"}}]},"rounding":{"point":"per_component_subtotal",
"mode":"half_up"},"tiers":[]},{"id":"web_search","role":"web_search",
"label_key":"web_search_per_search","dimension":"search","sku_id":"4006","unit":"search",
"billing_unit_size":1,"display_unit_size":1,"rate":{"uc":"400","credits":"0.04","cny":"0.004",
"usd":"0.00058824"},"minimum_charge":{"uc":"0","credits":"0","cny":"0","usd":"0"},
"billing_rule":"per_call","pricing_status":"available","effective_at":"2026-09-16T17:49:03.571Z",
"condition":{"op":"gt","args":[{"op":"variable","name":"search_count"},{"op":"constant",
"value":"0"}]},"quantity_rule":{"op":"variable","name":"search_count"},
"rounding":{"point":"per_component_subtotal","mode":"half_up"},"tiers":[]}]}"""
)
REAL_META = {
    "schema_version": "2",
    "price_scope": "public_default",
    "currency": "USD",
    "exchange_rate_version": "pricing-fx/v1:USD-CNY=6.8",
    "updated_at": "2026-10-10T06:52:34.303000193Z",
}


def answer(book: PriceBook) -> dict[str, Any]:
    """The simulator's rules answer, as JSON would carry it."""
    data: dict[str, Any] = json.loads(json.dumps(rules_answer(book, 1_800_000_000.0, {})))
    return data


def fetched_table(data: dict[str, Any], tmp_path: Path) -> PriceTable:
    """The table quotes use after an update: through the cache file, over the built-in one."""
    path = tmp_path / "prices-cache.json"
    write_cache(path, to_table(data), dt.datetime(2026, 11, 29, tzinfo=dt.UTC), "x", "sim")
    layer = read_cache(path)
    assert layer is not None
    return build([built_in_layer(), layer])


def fast_text(data: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(
        m for m in data["models"] if m["model_id"] == "seedance-2.0-fast-text-to-video"
    )
    return found


CASES = [
    (tier, mode, quality, duration, content_filter, web_search, video)
    for tier, qualities in QUALITY_BY_TIER.items()
    for mode in ("text", "image", "reference")
    for quality in sorted(qualities)
    for duration, content_filter in itertools.product(range(4, 16), (True, False))
    for web_search in ((False, True) if mode == "text" and tier != "mini" else (False,))
    for video in ((False, True) if mode == "reference" else (False,))
]


def test_fetched_prices_quote_every_case_as_the_simulator_charges_it(tmp_path: Path) -> None:
    table = fetched_table(answer(ODD), tmp_path)
    for tier, mode, quality, duration, content_filter, web_search, video in CASES:
        quoted = table.estimate(
            tier,
            quality,
            duration,
            mode=mode,
            content_filter=content_filter,
            web_search=web_search,
            video_input=video,
        )
        charged = ODD.charge(
            tier,
            quality,
            duration,
            content_filter=content_filter,
            web_search=web_search,
            video_input=video,
        )
        assert quoted == pytest.approx(float(charged), abs=0.01), (tier, mode, quality, duration)
    assert len(CASES) == 792


def test_an_entry_of_evolinks_real_catalog_converts_to_the_catalog_figures(tmp_path: Path) -> None:
    converted = to_table({"meta": REAL_META, "models": [REAL_FAST_TEXT]})
    table = fetched_table({"meta": REAL_META, "models": [REAL_FAST_TEXT]}, tmp_path)

    assert converted.table == {
        "tiers": {
            "fast": {
                "modes": {
                    "text": {
                        "credits_per_second_720p": 8.2013,
                        "minimum_credits": 15.1893,
                        "quality_factor": {"480p": 0.465, "720p": 1},
                        "settlement": "request_then_actual",
                    }
                }
            }
        },
        "web_search": {"credits_per_search": 0.04},
        "credits_per_usd": 68,
    }
    assert converted.notes == [
        "No rules for mini text-to-video, mini image-to-video, mini reference-to-video, "
        "fast image-to-video, fast reference-to-video, standard text-to-video, standard "
        "image-to-video, standard reference-to-video: their prices stay as they were."
    ]
    assert table.estimate("fast", "480p", 4) == 15.2544  # the catalog's own example
    assert table.estimate("fast", "720p", 5, web_search=True) == 41.0465


def test_a_rule_not_proportional_to_seconds_is_refused_naming_the_model() -> None:
    data = answer(ODD)
    video = fast_text(data)["components"][0]
    video["quantity_rule"] = {
        "op": "add",
        "args": [video["quantity_rule"], {"op": "constant", "value": "1"}],
    }

    with pytest.raises(PricesUnavailable) as info:
        to_table(data)

    assert str(info.value) == (
        "runner cannot use EvoLink's price rule for fast text-to-video "
        "(seedance-2.0-fast-text-to-video): its price of 6 s at 480p (31.5 credits) does "
        "not follow runner's per-second formula"
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda m: m["components"][0]["quantity_rule"].update(op="power"),
            "the rules use an operation runner does not know: 'power'",
        ),
        (
            lambda m: m["components"].append({**m["components"][1], "role": "audio_output"}),
            "it prices parts runner does not know (audio_output)",
        ),
        (
            lambda m: (
                m["parameters"].append(
                    {"name": "style", "type": "enum", "values": ["a", "b"], "default": "a"}
                ),
                m["components"][0].update(
                    quantity_rule={
                        "op": "multiply",
                        "args": [
                            m["components"][0]["quantity_rule"],
                            {
                                "op": "lookup",
                                "key": {"op": "variable", "name": "style"},
                                "values": {"a": "1", "b": "2"},
                            },
                        ],
                    }
                ),
            ),
            "its price depends on 'style', which runner's price table cannot hold",
        ),
        (
            lambda m: m["components"][0].update(tiers=[{"multiplier": "5"}]),
            "it has volume tiers",
        ),
    ],
    ids=["unknown operation", "unknown part", "unknown parameter", "volume tiers"],
)
def test_rules_the_table_cannot_hold_are_refused(change: Any, reason: str) -> None:
    data = answer(ODD)
    change(fast_text(data))

    with pytest.raises(PricesUnavailable) as info:
        to_table(data)

    assert str(info.value).endswith(f"(seedance-2.0-fast-text-to-video): {reason}")


def test_a_rule_that_prices_audio_becomes_an_audio_factor(tmp_path: Path) -> None:
    data = answer(ODD)
    model = fast_text(data)
    model["parameters"].append({"name": "generate_audio", "type": "boolean", "default": True})
    video = model["components"][0]
    doubled = {
        "op": "if",
        "args": [
            {"op": "variable", "name": "generate_audio"},
            {"op": "constant", "value": "2"},
            {"op": "constant", "value": "1"},
        ],
    }
    video["quantity_rule"] = {"op": "multiply", "args": [video["quantity_rule"], doubled]}

    table = fetched_table(data, tmp_path)

    assert table.price_of("fast", "text").audio_factor == 2
    silent = table.estimate("fast", "720p", 10, audio=False)
    assert silent == 77.777
    assert table.estimate("fast", "720p", 10, audio=True) == 2 * silent
    assert table.estimate("fast", "720p", 10, mode="image", audio=True) == silent


def test_a_rule_with_other_models_and_unknown_operations_elsewhere_is_read() -> None:
    data = answer(ODD)
    other = copy.deepcopy(fast_text(data))
    other["model_id"] = "seedance-2.5-text-to-video"
    other["components"][0]["quantity_rule"] = {"op": "power", "args": []}
    data["models"].append(other)

    converted = to_table(data)

    assert len(converted.models) == 9 and converted.notes == []


@pytest.mark.parametrize(
    ("tree", "value"),
    [
        (
            {
                "op": "clamp",
                "args": [
                    {"op": "constant", "value": "31"},
                    {"op": "constant", "value": "4"},
                    {"op": "constant", "value": "30"},
                ],
            },
            "30",
        ),
        ({"op": "ceil", "args": [{"op": "constant", "value": "12.01"}]}, "13"),
        (
            {
                "op": "if",
                "args": [
                    {
                        "op": "eq",
                        "args": [
                            {"op": "variable", "name": "quality"},
                            {"op": "constant", "value": "1080p"},
                        ],
                    },
                    {"op": "constant", "value": "2"},
                    {"op": "lookup", "key": {"op": "variable", "name": "quality"}, "values": {}},
                ],
            },
            "2",
        ),
    ],
)
def test_expressions_evaluate_like_the_catalog_means_them(tree: Any, value: str) -> None:
    assert evaluate(tree, {"quality": "1080p"}) == Decimal(value)
