"""The simulator's file service (docs/simulator.md §24): uploads, quota, expiry, overwrites,
receipts, its own origin, the journal, and videos that show a mark of the uploaded image."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from runner.simulator.app import SimConfig, create_app
from runner.simulator.faults import parse_plan
from runner.simulator.testing import ManualClock, asgi_client
from runner.simulator.video import frame_size, mark_box

pytestmark = pytest.mark.anyio
UPLOAD = "/api/v1/files/upload/stream"
GREEN = (20, 190, 60)


def png(colour: tuple[int, int, int] = GREEN, size: int = 320) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, "PNG")
    return out.getvalue()


async def upload(client: Any, data: bytes, name: str = "watch.png", **headers: str) -> Any:
    return await client.post(
        UPLOAD,
        files={"file": (name, data)},
        data={"upload_path": "runner", "file_name": name},
        headers=headers,
    )


async def test_an_uploaded_image_is_stored_counted_listed_and_served_at_its_link() -> None:
    app = create_app(SimConfig())
    async with asgi_client(app) as client:
        answer = await upload(client, png())
        assert answer.status_code == 200
        body = answer.json()
        data = body["data"]
        assert body["success"] is True and body["code"] == 200
        assert set(data) >= {
            "file_id",
            "file_name",
            "original_name",
            "file_size",
            "mime_type",
            "file_url",
            "download_url",
            "upload_time",
            "expires_at",
        }
        assert data["mime_type"] == "image/png" and data["file_name"] == "watch.png"
        assert data["expires_at"].endswith("+08:00")  # ISO 8601 with the docs' offset
        served = await client.get(data["file_url"])
        assert served.status_code == 200 and served.content == png()
        assert (await client.get(data["download_url"])).content == png()
        listed = (await client.get("/api/v1/files/list")).json()["data"]
        assert [f["file_id"] for f in listed["files"]] == [data["file_id"]]
        quota = (await client.get("/api/v1/files/quota")).json()["data"]
        assert quota["used_files"] == 1 and quota["max_files"] == 100
        assert quota["remain_files"] == 99
    truth = app.sim.snapshot()["files"]
    assert truth["uploads_total"] == 1 and truth["stored"][0]["mark"] == list(GREEN)


async def test_a_full_quota_refuses_the_next_upload_with_40003_until_a_file_is_deleted() -> None:
    app = create_app(SimConfig(upload_quota=2))
    async with asgi_client(app) as client:
        first = (await upload(client, png(), "a.png")).json()["data"]
        await upload(client, png(), "b.png")
        refused = await upload(client, png(), "c.png")
        assert refused.status_code == 403
        assert refused.json()["code"] == 40003 and refused.json()["success"] is False
        gone = await client.delete(f"/api/v1/files/{first['file_id']}")
        assert gone.status_code == 200 and gone.json()["data"]["file_id"] == first["file_id"]
        assert (await client.get(first["file_url"])).status_code == 404
        assert (await upload(client, png(), "c.png")).status_code == 200
        again = await client.delete(f"/api/v1/files/{first['file_id']}")
        assert again.status_code == 404 and again.json()["code"] == 404
    truth = app.sim.snapshot()["files"]
    assert truth["refused"] == {"40003": 1} and sum(truth["deleted"].values()) == 1


async def test_too_big_is_40001_and_a_type_the_service_does_not_take_is_40002() -> None:
    app = create_app(SimConfig(upload_max_bytes=2000, upload_types=("image/png",)))
    async with asgi_client(app) as client:
        big = await upload(client, png(size=900))
        assert (big.status_code, big.json()["code"]) == (413, 40001)
        jpeg = io.BytesIO()
        Image.new("RGB", (10, 10)).save(jpeg, "JPEG")
        wrong = await upload(client, jpeg.getvalue(), "w.jpg")
        assert (wrong.status_code, wrong.json()["code"]) == (415, 40002)
        text = await upload(client, b"just some words", "notes.png")
        assert text.json()["code"] == 40002
        nothing = await client.post(UPLOAD, files={"other": ("x.png", png(size=8))})
        assert nothing.status_code == 400
    assert app.sim.snapshot()["files"]["stored"] == []


async def test_a_file_expires_72_simulated_hours_after_its_upload() -> None:
    clock = ManualClock()
    app = create_app(SimConfig(upload_quota=1), clock=clock)
    async with asgi_client(app) as client:
        data = (await upload(client, png())).json()["data"]
        clock.advance(71 * 3600)
        assert (await client.get(data["file_url"])).status_code == 200
        clock.advance(2 * 3600)
        assert (await client.get(data["file_url"])).status_code == 404
        quota = (await client.get("/api/v1/files/quota")).json()["data"]
        assert quota["used_files"] == 0  # an expired file no longer counts
        assert (await upload(client, png(), "next.png")).status_code == 200
    assert app.sim.snapshot()["files"]["expired"] == 1


async def test_an_upload_of_the_same_name_replaces_the_older_file() -> None:
    app = create_app(SimConfig())
    async with asgi_client(app) as client:
        old = (await upload(client, png(GREEN))).json()["data"]
        new = (await upload(client, png((200, 0, 0)))).json()["data"]
        assert (await client.get(old["file_url"])).status_code == 404
        assert (await client.get(new["file_url"])).content == png((200, 0, 0))
        assert (await client.get("/api/v1/files/quota")).json()["data"]["used_files"] == 1
    assert app.sim.snapshot()["files"]["replaced"] == 1


async def test_an_upload_with_an_upload_id_leaves_a_receipt_even_when_its_answer_is_lost() -> None:
    app = create_app(SimConfig())
    app.sim.set_faults(
        parse_plan([{"endpoint": "upload", "kind": "reset", "processed": True, "times": 1}])
    )
    async with asgi_client(app) as client:
        with pytest.raises(Exception, match="reset"):
            await upload(client, png(), **{"X-Evo-Upload-Id": "up-0001"})
        receipt = (await client.get("/api/v1/files/upload-receipts/up-0001")).json()["data"]
        assert receipt["state"] == "done" and receipt["result_verified"] is True
        assert (await client.get(receipt["file"]["file_url"])).status_code == 200
        unknown = await client.get("/api/v1/files/upload-receipts/nope")
        assert unknown.status_code == 404


async def test_the_file_service_answers_only_with_a_key() -> None:
    app = create_app(SimConfig())
    async with asgi_client(app, key=None) as client:
        refused = await upload(client, png())
        assert refused.status_code == 401 and refused.json()["code"] == 401
        assert (await client.get("/api/v1/files/quota")).status_code == 401


async def test_on_its_own_origin_the_file_service_is_routed_by_host() -> None:
    app = create_app(SimConfig(upload_origin="http://files-api.sim.test"))
    async with asgi_client(app, base_url="http://files-api.sim.test") as uploads:
        data = (await upload(uploads, png())).json()["data"]
        assert data["file_url"].startswith("http://files-api.sim.test/uploads/")
        assert (await uploads.get(data["file_url"])).status_code == 200
        assert (await uploads.get("/v1/credits")).status_code == 404
    async with asgi_client(app) as api:
        assert (await upload(api, png())).status_code == 404
        assert (await api.get("/v1/credits")).status_code == 200


async def test_uploaded_files_survive_the_process_with_a_journal(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    first = create_app(SimConfig(journal=journal))
    async with asgi_client(first) as client:
        data = (await upload(client, png())).json()["data"]
    first.sim.close()
    second = create_app(SimConfig(journal=journal))
    async with asgi_client(second) as client:
        assert (await client.get(data["file_url"])).content == png()
        quota = (await client.get("/api/v1/files/quota")).json()["data"]
        assert quota["used_files"] == 1
    assert second.sim.snapshot()["files"]["stored"][0]["mark"] == list(GREEN)
    second.sim.close()


async def test_a_video_made_from_an_uploaded_image_shows_its_colour_top_right() -> None:
    app = create_app(SimConfig(speed=1000.0))
    async with asgi_client(app) as client:
        url = (await upload(client, png(GREEN))).json()["data"]["file_url"]
        body = {
            "model": "seedance-2.0-fast-image-to-video",
            "prompt": "The watch turns slowly",
            "duration": 4,
            "quality": "480p",
            "aspect_ratio": "16:9",
            "image_urls": [url],
        }
        task = (await client.post("/v1/videos/generations", json=body)).json()
        app.sim.advance(400)
        view = (await client.get(f"/v1/tasks/{task['id']}")).json()
        video = (await client.get(view["results"][0])).content
    with av.open(io.BytesIO(video)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    width, height = frame_size("16:9", "fast")
    left, top, right, bottom = mark_box(width, height)
    inside = frame[top + 2 : bottom - 1, left + 2 : right - 1].reshape(-1, 3).mean(axis=0)
    assert np.abs(inside - np.array(GREEN)).max() < 25, inside
    assert app.sim.snapshot()["tasks"][0]["mark"] == list(GREEN)
