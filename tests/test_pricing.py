"""Estimates against figures computed by hand from the catalog (docs/evolink.md §10.1):
credits per output second at 720p x quality factor, minimum charge, x1.1 without the content
filter, web search per search, reference videos billed on output + max(input, output)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from runner.errors import ExperimentError
from runner.grid.pricing import default_prices, load_prices


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
    assert prices.source == str(path)


def test_a_broken_price_file_is_refused_with_the_key(write: Callable[..., Path]) -> None:
    path = write("prices.toml", '[tiers.fast]\ncredits_per_second_720p = "cheap"\n')

    with pytest.raises(ExperimentError) as info:
        load_prices(path)

    assert str(info.value).splitlines()[1] == (
        "prices.toml:tiers.fast.credits_per_second_720p: 'cheap' must be a number ≥ 0"
    )
