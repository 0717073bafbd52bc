"""Runner's rules and prices against the simulator's own encoding of the same references.

The two are written apart on purpose (``docs/simulator.md``); these tests generate thousands
of create bodies, valid and not, and require both validators to accept or refuse each one and
to blame the same fields, and both price tables to agree within 0.01 credits.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.grid.pricing import default_prices
from runner.rules import check_body
from runner.simulator import rules as sim_rules
from runner.simulator.prices import DEFAULT_PRICES, PriceBook, TierRates

MODELS = sorted(sim_rules.MODEL_TABLE)
BOGUS_MODELS = [
    "seedance-2.0",
    "seedance-2.0-pro-text-to-video",
    "seedance-2.5-text-to-video",
    "SEEDANCE-2.0-TEXT-TO-VIDEO",
    "",
    "seedance-2.0-fast-image-to-video ",
]
IMG, VID, AUD = (
    "https://cdn.example.com/a.png",
    "https://cdn.example.com/v.mp4",
    "https://cdn.example.com/a.mp3",
)

_any_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 30),
    st.floats(allow_nan=False, width=16),
    st.sampled_from(["", "x", "5", "true", "720p", "16:9"]),
)
_prompts = st.one_of(
    st.sampled_from(
        [
            "A red kite over the sea",
            "   ",
            "",
            "a\tb\nc",
            "a\rb",
            "a\x00b",
            "a\x7fb",
            "x" * 10_000,
            "x" * 10_001,
            "é" * 10_000,
            "Use @image1",
        ]
    ),
    st.text(max_size=40),
    st.integers(),
    st.none(),
    st.lists(st.text(max_size=3), max_size=2),
)
_durations = st.one_of(st.integers(0, 20), st.sampled_from([5.0, 5.5, "5", True, False, None]))
_qualities = st.one_of(st.sampled_from(["480p", "720p", "1080p", "4k", "720P", "", None, 720]))
_aspects = st.one_of(
    st.sampled_from(
        ["16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "adaptive", "2:1", "16:10", "", None, 1.0]
    )
)
_flags = st.one_of(st.booleans(), st.sampled_from(["true", "false", 0, 1, None]))
_media_item = st.one_of(
    st.sampled_from(
        [
            IMG,
            VID,
            AUD,
            "http://cdn.example.com/b.jpg",
            "ftp://x.test/a.png",
            "data:image/png;base64,AAAA",
            "not a url",
            "",
            "https://",
            3,
            None,
        ]
    ),
)
_media = st.one_of(
    st.lists(st.just(IMG), max_size=11),
    st.lists(_media_item, max_size=4),
    st.sampled_from([IMG, None, {}, 0]),
)
_model_params = st.one_of(
    st.fixed_dictionaries({}, optional={"web_search": _flags, "seed": st.integers(0, 3)}),
    st.sampled_from([None, True, "web_search", [], {"web_search": True}]),
)
_callbacks = st.one_of(
    st.sampled_from(
        [
            "https://hooks.example.com/done",
            "http://hooks.example.com/done",
            "https://127.0.0.1/h",
            "https://10.1.2.3/h",
            "https://172.20.0.1/h",
            "https://192.168.1.9/h",
            "https://localhost/h",
            "https://[::1]/h",
            "https://169.254.1.1/h",
            "https://0.0.0.0/h",
            "https://8.8.8.8/h",
            "https://224.0.0.1/h",
            "https://100.64.1.1/h",
            "https://[fd00::1]/h",
            "https:///nohost",
            "https://h.example.com/" + "x" * 2030,
            "https://h.example.com/" + "x" * 2026,
            "",
            5,
            None,
            "https://[bad/h",
        ]
    )
)
_OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "duration": _durations,
    "quality": _qualities,
    "aspect_ratio": _aspects,
    "generate_audio": _flags,
    "content_filter": _flags,
    "model_params": _model_params,
    "callback_url": _callbacks,
    "image_urls": _media,
    "video_urls": _media,
    "audio_urls": _media,
}
_BENT = st.lists(st.sampled_from(sorted(_OPTIONAL)), max_size=3, unique=True)
_unknown = st.fixed_dictionaries(
    {},
    optional={
        "seed": st.integers(0, 9),
        "watermark": st.booleans(),
        "resolution": st.just("720p"),
        "n": st.just(2),
    },
)


_ONE_IN_FIVE = st.integers(0, 4)
_GOOD_MODELS = st.sampled_from(MODELS)
_BAD_MODELS = st.sampled_from([*BOGUS_MODELS, None, 7])
_GOOD_PROMPTS = st.sampled_from(["A red kite over the sea", "Use @image1"])


def _mostly(draw: st.DrawFn, good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> Any:
    """A value of ``good`` about four times in five, else one of ``bad``."""
    return draw(bad) if draw(_ONE_IN_FIVE) == 0 else draw(good)


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A create body: mostly well-formed for its model's family, with a few fields bent."""
    model = _mostly(draw, _GOOD_MODELS, _BAD_MODELS)
    family = sim_rules.MODEL_TABLE.get(model, ("", "text"))[1] if isinstance(model, str) else "text"
    body: dict[str, Any] = {} if model is None and draw(st.booleans()) else {"model": model}
    body["prompt"] = _mostly(draw, _GOOD_PROMPTS, _prompts)
    if body["prompt"] is None and draw(st.booleans()):
        del body["prompt"]
    body.update(draw(_FAMILY_MEDIA[family]))
    for name in draw(_BENT):
        body[name] = draw(_OPTIONAL[name])
    body.update(draw(_unknown))
    return body


_FAMILY_MEDIA: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "image": st.fixed_dictionaries({"image_urls": st.lists(st.just(IMG), max_size=3)}),
    "reference": st.fixed_dictionaries(
        {},
        optional={
            "image_urls": st.lists(st.just(IMG), max_size=10),
            "video_urls": st.lists(st.just(VID), max_size=4),
            "audio_urls": st.lists(st.just(AUD), max_size=4),
        },
    ),
    "text": st.fixed_dictionaries(
        {},
        optional={
            "model_params": st.fixed_dictionaries({"web_search": st.booleans()}),
        },
    ),
}


def _fields(pairs: list[tuple[str, str]]) -> set[str]:
    return {field for field, _message in pairs}


def verdicts(body: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(fields runner blames, fields the simulator blames)."""
    runner = {v.field for v in check_body(body)}
    return runner, _fields(sim_rules.problems(body))


@settings(
    max_examples=2000,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(body=bodies())
def test_runner_and_simulator_accept_and_refuse_the_same_bodies(body: dict[str, Any]) -> None:
    runner, simulator = verdicts(body)
    assert bool(runner) == bool(simulator), (runner, simulator)
    assert runner == simulator


VALID: list[dict[str, Any]] = [
    {
        "model": m,
        "prompt": "A calm lake",
        **({"image_urls": [IMG]} if not m.endswith("text-to-video") else {}),
    }
    for m in MODELS
]


@pytest.mark.parametrize("body", VALID, ids=[b["model"] for b in VALID])
def test_a_minimal_body_of_each_model_passes_both(body: dict[str, Any]) -> None:
    assert verdicts(body) == (set(), set())


GRID = [
    (tier, quality, duration, content_filter, web_search, video_input)
    for tier, quality in [(t, q) for t, qs in sim_rules.QUALITY_BY_TIER.items() for q in sorted(qs)]
    for duration, content_filter, web_search, video_input in itertools.product(
        range(4, 16), (True, False), (False, True), (False, True)
    )
]


@pytest.mark.parametrize("case", GRID, ids=lambda c: "-".join(map(str, c)))
def test_runner_estimates_what_the_simulator_charges(
    case: tuple[str, str, int, bool, bool, bool],
) -> None:
    tier, quality, duration, content_filter, web_search, video_input = case
    runner = default_prices().estimate(
        tier,
        quality,
        duration,
        content_filter=content_filter,
        web_search=web_search,
        video_input=video_input,
    )
    simulator = DEFAULT_PRICES.charge(
        tier,
        quality,
        duration,
        content_filter=content_filter,
        web_search=web_search,
        video_input=video_input,
    )
    assert runner == pytest.approx(float(simulator), abs=0.01)


@pytest.mark.parametrize(
    ("tier", "quality", "duration", "credits"),
    [
        ("standard", "480p", 4, 25.11),
        ("fast", "480p", 4, 15.2544),
        ("mini", "480p", 4, 5.0220),
        ("standard", "720p", 5, 67.5),
        ("standard", "1080p", 15, 506.25),
        ("mini", "720p", 5, 13.5),
        ("fast", "720p", 5, 41.0065),
    ],
)
def test_the_simulator_charges_the_public_examples(
    tier: str, quality: str, duration: int, credits: float
) -> None:
    """Figures worked out in the references (docs/simulator.md, "Prices")."""
    assert float(DEFAULT_PRICES.charge(tier, quality, duration)) == pytest.approx(credits)


def test_the_per_task_minimum_applies_before_search_and_filter_prices() -> None:
    """At public prices no 4-15 s task falls under its tier's minimum, so a cheaper book shows
    the rule: the video part is raised to the minimum, then search is added, then x1.1."""
    cheap = TierRates(
        per_second_720p=Decimal("0.1"),
        minimum=Decimal("5"),
        factor={"720p": Decimal(1)},
        factor_with_video={"720p": Decimal(1)},
    )
    book = PriceBook(tiers={"mini": cheap})
    assert book.charge("mini", "720p", 4) == Decimal("5")
    assert book.charge("mini", "720p", 4, web_search=True) == Decimal("5.04")
    assert book.charge("mini", "720p", 4, web_search=True, content_filter=False) == Decimal("5.544")
    assert book.charge("mini", "720p", 15, video_input=True) == Decimal("5")  # 30 s x 0.1 = 3


def test_input_video_seconds_are_rounded_up_to_a_tenth() -> None:
    book = PriceBook(input_video_seconds=Decimal("7.01"))
    # 4 s out + max(7.01, 4) in = 11.01 s -> 11.1 s x 13.5 x 0.609
    assert book.charge("standard", "720p", 4, video_input=True) == Decimal("91.2587")
