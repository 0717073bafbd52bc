"""Jobs: the model id per tier and mode, a body that pins every parameter, and identities."""

from __future__ import annotations

import pytest

from runner.models import Job, Request, Variant, job_key
from runner.rules import MODELS, check_body, model_id


@pytest.mark.parametrize(
    ("tier", "mode", "expected"),
    [
        ("fast", "text", "seedance-2.0-fast-text-to-video"),
        ("fast", "image", "seedance-2.0-fast-image-to-video"),
        ("fast", "reference", "seedance-2.0-fast-reference-to-video"),
        ("standard", "text", "seedance-2.0-text-to-video"),
        ("standard", "reference", "seedance-2.0-reference-to-video"),
        ("mini", "image", "seedance-2.0-mini-image-to-video"),
    ],
)
def test_model_id(tier: str, mode: str, expected: str) -> None:
    assert model_id(tier, mode) == expected
    assert MODELS[expected] == (tier, mode)


def _variant(**kw: object) -> Variant:
    base: dict[str, object] = dict(
        mode="text",
        prompt="A cat",
        duration=5,
        quality="720p",
        aspect_ratio="16:9",
        generate_audio=True,
        content_filter=True,
    )
    base.update(kw)
    request = Request(**base)  # type: ignore[arg-type]
    return Variant(request, request.variant_key, "x.csv", 2, "row 2", ())


def test_body_pins_every_parameter_and_tiers_differ_only_in_model() -> None:
    v = _variant()
    fast, standard = Job(v, "fast", 1).body(), Job(v, "standard", 1).body()

    assert fast == {
        "model": "seedance-2.0-fast-text-to-video",
        "prompt": "A cat",
        "duration": 5,
        "quality": "720p",
        "aspect_ratio": "16:9",
        "generate_audio": True,
        "content_filter": True,
        "model_params": {"web_search": False},
    }
    assert {k: v for k, v in fast.items() if k != "model"} == {
        k: v for k, v in standard.items() if k != "model"
    }
    assert check_body(fast) == [] and check_body(standard) == []


def test_mini_body_leaves_out_model_params_it_does_not_take() -> None:
    body = Job(_variant(), "mini", 1).body()

    assert "model_params" not in body
    assert check_body(body) == []


def test_image_and_reference_bodies_carry_only_their_media() -> None:
    img = _variant(mode="image", image_urls=("https://a.example/1.png",))
    ref = _variant(mode="reference", video_urls=("https://a.example/v.mp4",))

    assert Job(img, "fast", 1).body()["image_urls"] == ["https://a.example/1.png"]
    assert "model_params" not in Job(img, "fast", 1).body()
    ref_body = Job(ref, "fast", 1).body()
    assert ref_body["video_urls"] == ["https://a.example/v.mp4"]
    assert "image_urls" not in ref_body and "audio_urls" not in ref_body


def test_job_key_is_variant_tier_and_sample() -> None:
    v = _variant()
    keys = {Job(v, t, s).job_key for t in ("fast", "standard") for s in (1, 2)}

    assert len(keys) == 4
    assert (
        Job(v, "fast", 2).job_key
        == job_key(v.variant_key, "fast", 2)
        == (f"{v.variant_key}-fast-2")
    )
    assert _variant().variant_key == v.variant_key  # content-addressed
    assert _variant(duration=6).variant_key != v.variant_key


def test_request_round_trips_through_its_body() -> None:
    v = _variant(mode="text", web_search=True)
    body = Job(v, "standard", 1).body()

    assert Request.from_body(body, "text") == v.request
