"""The simulator rejects over HTTP exactly what its own rules (`runner.simulator.rules`) reject,
naming the field in ``param`` and in the message; nothing rejected is created or charged.
(That the runner's validator agrees with those rules is `test_sim_differential`'s job.)"""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.simulator.app import SimConfig, create_app
from runner.simulator.rules import MODEL_TABLE as MODELS
from runner.simulator.rules import problems
from runner.simulator.testing import asgi_client

TEXT = {"model": "seedance-2.0-fast-text-to-video", "prompt": "A red kite"}
IMAGE = {
    "model": "seedance-2.0-image-to-video",
    "prompt": "Animate",
    "image_urls": ["https://cdn.example.com/a.png"],
}
REF = {
    "model": "seedance-2.0-reference-to-video",
    "prompt": "Use @image1",
    "image_urls": ["https://cdn.example.com/a.png"],
}
IMG = "https://cdn.example.com/i.png"

CASES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown model", {**TEXT, "model": "seedance-2.0"}, "model"),
    ("missing model", {"prompt": "x"}, "model"),
    ("missing prompt", {"model": TEXT["model"]}, "prompt"),
    ("prompt not text", {**TEXT, "prompt": 42}, "prompt"),
    ("empty prompt", {**TEXT, "prompt": "   "}, "prompt"),
    ("prompt too long", {**TEXT, "prompt": "x" * 10_001}, "prompt"),
    ("control characters", {**TEXT, "prompt": "a\x00b"}, "prompt"),
    ("duration not an integer", {**TEXT, "duration": 5.5}, "duration"),
    ("duration as text", {**TEXT, "duration": "5"}, "duration"),
    ("duration true", {**TEXT, "duration": True}, "duration"),
    ("duration below 4", {**TEXT, "duration": 3}, "duration"),
    ("duration above 15", {**TEXT, "duration": 16}, "duration"),
    ("unknown quality", {**TEXT, "quality": "4k"}, "quality"),
    ("1080p on fast", {**TEXT, "quality": "1080p"}, "quality"),
    (
        "1080p on mini",
        {**TEXT, "model": "seedance-2.0-mini-text-to-video", "quality": "1080p"},
        "quality",
    ),
    ("unknown aspect ratio", {**TEXT, "aspect_ratio": "2:1"}, "aspect_ratio"),
    ("generate_audio not bool", {**TEXT, "generate_audio": "yes"}, "generate_audio"),
    ("content_filter not bool", {**TEXT, "content_filter": 0}, "content_filter"),
    ("images in text mode", {**TEXT, "image_urls": [IMG]}, "image_urls"),
    ("videos in text mode", {**TEXT, "video_urls": ["https://x.test/v.mp4"]}, "video_urls"),
    ("audios in image mode", {**IMAGE, "audio_urls": ["https://x.test/a.mp3"]}, "audio_urls"),
    (
        "image mode without images",
        {k: v for k, v in IMAGE.items() if k != "image_urls"},
        "image_urls",
    ),
    ("image mode with 0 images", {**IMAGE, "image_urls": []}, "image_urls"),
    ("image mode with 3 images", {**IMAGE, "image_urls": [IMG] * 3}, "image_urls"),
    ("media not a list", {**IMAGE, "image_urls": IMG}, "image_urls"),
    ("media list of non-strings", {**IMAGE, "image_urls": [1]}, "image_urls"),
    ("reference with 10 images", {**REF, "image_urls": [IMG] * 10}, "image_urls"),
    ("reference with 4 videos", {**REF, "video_urls": ["https://x.test/v.mp4"] * 4}, "video_urls"),
    ("reference with 4 audios", {**REF, "audio_urls": ["https://x.test/a.mp3"] * 4}, "audio_urls"),
    (
        "reference audio alone",
        {**REF, "image_urls": [], "audio_urls": ["https://x.test/a.mp3"]},
        "audio_urls",
    ),
    ("reference with no image and no video", {**REF, "image_urls": []}, "image_urls"),
    (
        "reference with no media at all",
        {k: v for k, v in REF.items() if k != "image_urls"},
        "image_urls",
    ),
    ("empty image list in text mode", {**TEXT, "image_urls": []}, "image_urls"),
    ("empty video list in image mode", {**IMAGE, "video_urls": []}, "video_urls"),
    (
        "media item not a web URL",
        {**IMAGE, "image_urls": ["data:image/png;base64,AAAA"]},
        "image_urls",
    ),
    ("model_params not an object", {**TEXT, "model_params": True}, "model_params"),
    ("unknown model parameter", {**TEXT, "model_params": {"seed": 1}}, "model_params.seed"),
    (
        "web_search not bool",
        {**TEXT, "model_params": {"web_search": "on"}},
        "model_params.web_search",
    ),
    (
        "web_search in image mode",
        {**IMAGE, "model_params": {"web_search": True}},
        "model_params.web_search",
    ),
    (
        "web_search on mini",
        {**TEXT, "model": "seedance-2.0-mini-text-to-video", "model_params": {"web_search": True}},
        "model_params.web_search",
    ),
    ("callback not a string", {**TEXT, "callback_url": 5}, "callback_url"),
    ("callback over http", {**TEXT, "callback_url": "http://hooks.example.com/x"}, "callback_url"),
    (
        "callback too long",
        {**TEXT, "callback_url": "https://h.example.com/" + "x" * 2048},
        "callback_url",
    ),
    ("callback to loopback", {**TEXT, "callback_url": "https://127.0.0.1/hook"}, "callback_url"),
    ("callback to private net", {**TEXT, "callback_url": "https://10.1.2.3/hook"}, "callback_url"),
    ("callback to localhost", {**TEXT, "callback_url": "https://localhost/hook"}, "callback_url"),
]


@pytest.mark.parametrize(("case", "body", "param"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.anyio
async def test_each_rule_is_rejected_with_400_naming_the_field(
    case: str, body: dict[str, Any], param: str
) -> None:
    assert problems(body), f"{case}: the rules accept this body, so the test is wrong"
    app = create_app()
    async with asgi_client(app) as client:
        response = await client.post("/v1/videos/generations", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert param in error["message"]
    assert app.state.sim.snapshot()["tasks"] == []


@pytest.mark.parametrize(
    ("raw", "why"),
    [(b"{not json", "not valid JSON"), (b"[1, 2]", "JSON object"), (b"\xff\xfe", "not valid JSON")],
)
@pytest.mark.anyio
async def test_a_body_that_is_not_a_json_object_is_rejected(raw: bytes, why: str) -> None:
    async with asgi_client(create_app()) as client:
        response = await client.post(
            "/v1/videos/generations", content=raw, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 400
    assert why in response.json()["error"]["message"]


@pytest.mark.anyio
async def test_every_violation_is_listed_in_the_message_and_the_first_is_the_param() -> None:
    body = {**TEXT, "duration": 3, "aspect_ratio": "2:1"}
    async with asgi_client(create_app()) as client:
        error = (await client.post("/v1/videos/generations", json=body)).json()["error"]
    assert error["param"] == "duration"
    assert "duration: 3 is below the minimum 4" in error["message"]
    assert "aspect_ratio:" in error["message"]


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.anyio
async def test_every_model_accepts_a_minimal_valid_body(model: str) -> None:
    body: dict[str, Any] = {"model": model, "prompt": "A calm lake"}
    if not model.endswith("text-to-video"):  # reference needs an image or a video too
        body["image_urls"] = [IMG]
    async with asgi_client(create_app()) as client:
        response = await client.post("/v1/videos/generations", json=body)
    assert response.status_code == 200, response.text


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 20),
    st.floats(allow_nan=False, allow_infinity=False, width=16),
    st.sampled_from(["480p", "720p", "1080p", "16:9", "adaptive", "", "x", "https://a.test/"]),
    st.lists(st.sampled_from([IMG, "https://x.test/v.mp4", 3]), max_size=11),
    st.fixed_dictionaries({}, optional={"web_search": st.booleans(), "seed": st.integers()}),
)
_bodies = st.fixed_dictionaries(
    {"model": st.sampled_from([*sorted(MODELS), "seedance-2.0", "x"])},
    optional={
        name: _values
        for name in (
            "prompt",
            "duration",
            "quality",
            "aspect_ratio",
            "generate_audio",
            "content_filter",
            "image_urls",
            "video_urls",
            "audio_urls",
            "model_params",
            "callback_url",
        )
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_bodies)
def test_http_answers_agree_with_the_rules_for_any_body(body: dict[str, Any]) -> None:
    violations = problems(body)

    async def send() -> httpx.Response:
        async with asgi_client(create_app(SimConfig(trigger_words={}))) as client:
            return await client.post("/v1/videos/generations", json=body)

    response = anyio.run(send)
    if violations:
        assert response.status_code == 400
        assert response.json()["error"]["param"] == violations[0][0]
    else:
        assert response.status_code == 200, response.text
