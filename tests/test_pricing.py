"""Estimates against figures computed by hand from the catalog (docs/evolink.md §10.1):
credits per output second at 720p x quality factor, minimum charge, x1.1 without the content
filter, web search per search, reference videos billed on output + max(input, output)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.errors import ExperimentError
from runner.grid.pricing import (
    Layer,
    PriceSource,
    build,
    built_in_layer,
    default_prices,
    load_prices,
)

SOURCE = PriceSource("file", "a test layer", dt.date(2026, 10, 20), "of")


@pytest.mark.parametrize(
    ("tier", "quality", "duration", "expected"),
    [
        ("fast", "720p", 5, 41.0065),  # 8.2013 x 5
        ("fast", "480p", 4, 15.2544),  # 8.2013 x 0.465 x 4 = 15.254418
        ("standard", "480p", 4, 25.11),  # 13.5 x 0.465 x 4 (the catalog's own example)
        ("standard", "1080p", 10, 337.5),  # 13.5 x 2.5 x 10
        ("mini", "480p", 4, 5.022),  # 2.7 x 0.465 x 4
        ("mini", "720p", 15, 40.5),  # 2.7 x 15
    ],
)
def test_per_second_price_by_tier_and_quality(
    tier: str, quality: str, duration: int, expected: float
) -> None:
    assert default_prices().estimate(tier, quality, duration) == expected


def test_content_filter_off_costs_ten_percent_more_rounded_half_up() -> None:
    # 41.0065 x 1.1 = 45.10715 -> 45.1072
    assert default_prices().estimate("fast", "720p", 5, content_filter=False) == 45.1072


def test_web_search_adds_the_per_search_price() -> None:
    assert default_prices().estimate("fast", "720p", 5, web_search=True) == 41.0465


def test_reference_video_is_billed_on_output_plus_assumed_input_seconds() -> None:
    # (5 + max(15, 5)) x 8.2013 x 0.595 = 97.59547
    assert default_prices().estimate("fast", "720p", 5, video_input=True) == 97.5955
    # (10 + 15) x 13.5 x 1.52
    assert default_prices().estimate("standard", "1080p", 10, video_input=True) == 513.0


def test_usd_is_credits_over_68() -> None:
    assert default_prices().usd(68.0) == 1.0


def test_a_partial_override_file_changes_only_what_it_names(write: Callable[..., Path]) -> None:
    path = write(
        "prices.toml",
        "[tiers.fast]\ncredits_per_second_720p = 10\n"
        "[reference_video]\nassumed_input_seconds = 7.25\n"
        "[tiers.mini]\nminimum_credits = 30\n",
    )
    prices = load_prices(path)

    assert prices.estimate("fast", "720p", 5) == 50.0
    assert prices.estimate("standard", "720p", 5) == 67.5
    # 5 + 7.25 = 12.25 s, rounded up to 12.3 s: 12.3 x 10 x 0.595 = 73.185
    assert prices.estimate("fast", "720p", 5, video_input=True) == 73.185
    # the minimum charge applies: 2.7 x 5 = 13.5 < 30
    assert prices.estimate("mini", "720p", 5) == 30.0
    assert prices.source.startswith(f"your price file {path} changed ")
    assert prices.source.endswith(" over built-in table of 2026-10-10")


def test_a_broken_price_file_is_refused_with_the_key(write: Callable[..., Path]) -> None:
    path = write("prices.toml", '[tiers.fast]\ncredits_per_second_720p = "cheap"\n')

    with pytest.raises(ExperimentError) as info:
        load_prices(path)

    assert str(info.value).splitlines()[1] == (
        "prices.toml:tiers.fast.credits_per_second_720p: 'cheap' must be a number ≥ 0"
    )


def test_a_mode_may_set_its_own_price_under_its_tier(write: Callable[..., Path]) -> None:
    path = write(
        "prices.toml",
        '[tiers.fast.modes.image]\ncredits_per_second_720p = 5\nsettlement = "request_only"\n',
    )
    prices = load_prices(path)

    assert prices.estimate("fast", "720p", 5, mode="image") == 25.0
    assert prices.estimate("fast", "720p", 5, mode="text") == 41.0065
    assert prices.price_of("fast", "text").final_charge_may_differ
    assert not prices.price_of("fast", "image").final_charge_may_differ


def test_a_tier_wide_price_of_a_higher_layer_beats_a_lower_layers_mode_price() -> None:
    lower = Layer({"tiers": {"fast": {"modes": {"text": {"minimum_credits": 99}}}}}, SOURCE, "a")
    upper = Layer({"tiers": {"fast": {"minimum_credits": 1}}}, SOURCE, "b")

    only_lower = build([built_in_layer(), lower])
    both = build([built_in_layer(), lower, upper])

    assert only_lower.estimate("fast", "480p", 4) == 99.0
    assert both.estimate("fast", "480p", 4) == 15.2544


def test_an_unknown_settlement_or_mode_is_refused_naming_the_key(
    write: Callable[..., Path],
) -> None:
    path = write(
        "prices.toml",
        '[tiers.fast.modes.text]\nsettlement = "later"\n'
        "[tiers.mini.modes.video]\naudio_factor = 2\n",
    )

    with pytest.raises(ExperimentError) as info:
        load_prices(path)

    assert str(info.value).splitlines()[1:] == [
        "prices.toml:tiers.mini.modes.video: unknown mode (text, image, reference)"
    ]
    fixed = write("fixed.toml", '[tiers.fast.modes.text]\nsettlement = "later"\n')
    with pytest.raises(ExperimentError) as again:
        load_prices(fixed)
    assert str(again.value).splitlines()[1] == (
        "fixed.toml:tiers.fast.modes.text.settlement: 'later' must be one of request_only, "
        "request_then_actual, actual_usage"
    )


def test_the_built_in_table_is_dated_and_says_which_models_settle_on_actual_use() -> None:
    prices = default_prices()

    assert prices.source == "built-in table of 2026-10-10"
    assert prices.warnings(dt.date(2026, 11, 9)) == []
    assert prices.warnings(dt.date(2026, 11, 10))[0].startswith(
        "prices from the built-in table of 2026-10-10 are 31 days old"
    )
    later = {m for m, p in prices.models.items() if p.final_charge_may_differ}
    assert later == {
        "seedance-2.0-text-to-video",
        "seedance-2.0-fast-text-to-video",
        "seedance-2.0-reference-to-video",
        "seedance-2.0-fast-reference-to-video",
        "seedance-2.0-mini-reference-to-video",
    }
