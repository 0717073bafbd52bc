"""Local media in a run, in process (the simulator's ASGI app and a virtual clock): each file is
uploaded once before the first create that needs it, reused for 72 h across runs, uploaded
again after, deleted to make room when the file quota is full, and the exact body sent is
what a replay resends. Ground truth: the simulator's uploads, files and creates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from runner.grid.plan import make_plan
from runner.grid.pricing import default_prices
from runner.providers.base import AccessLost, Transient, Uploaded, UploadRefused
from runner.providers.evolink import EvoLink
from runner.review.promote import promote
from runner.run import ledger as L
from runner.run import runs
from runner.run.backend import choose
from runner.run.clock import VirtualClock
from runner.run.dispatch import Settings
from runner.simulator.config import DEFAULT_KEY

from .dispatchhelp import SIM, Run, Sim, dispatch

pytestmark = pytest.mark.anyio
HOUR = 3600.0
BLUE = (30, 60, 200)
GRID = (  # 3 styles x 2 aspect ratios x 2 durations = 12 jobs, one image
    "prompt,image_urls,style,aspect_ratio,duration\n"
    '"The watch turns slowly, {{ style }}",./images/watch.png,'
    "cinematic | handheld | macro,16:9 | 9:16,4 | 5\n"
)


def picture(path: Path, colour: tuple[int, int, int] = BLUE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (400, 300), colour).save(path, "PNG")
    return path


def evolink(http: httpx.AsyncClient) -> EvoLink:
    """EvoLink on the in-process simulator, its file service on the same origin."""
    return EvoLink(http, DEFAULT_KEY, files_url=SIM)


@asynccontextmanager
async def media_run(
    tmp_path: Path, grid: str = GRID, *, name: str = "grid.csv", reuse: bool = False
) -> AsyncIterator[Run]:
    """A recorded run of the grid ``grid`` (written to ``name``) in ``tmp_path/ws``."""
    path = tmp_path / name
    path.write_text(grid)
    ws = tmp_path / "ws"
    plan = make_plan(path)
    with L.Ledger.open(ws) as ledger:
        run_id, _ = runs.create(
            ledger, plan, choose("sim", None, ws), Settings(), name="t", reuse=reuse
        )
        yield Run(ledger, run_id)


async def render(run: Run, clock: VirtualClock, sim: Sim, **settings: Any) -> runs.Outcome:
    return await dispatch(run, clock=clock, sim=sim, provider=evolink, **settings)


def sent_bodies(run: Run) -> list[dict[str, Any]]:
    out = []
    for (attempt_id,) in run.ledger.conn.execute(
        "SELECT a.attempt_id FROM attempts a JOIN jobs j USING (job_id) WHERE j.run_id = ?"
        " ORDER BY a.attempt_id",
        (run.run_id,),
    ):
        body = run.ledger.sent_body(attempt_id)
        assert body is not None
        out.append(body)
    return out


async def test_twelve_jobs_naming_one_image_upload_it_once_and_a_run_within_72_h_uploads_nothing(
    tmp_path: Path,
) -> None:
    picture(tmp_path / "images" / "watch.png")
    clock = VirtualClock()
    sim = Sim(clock)
    async with media_run(tmp_path) as first:
        await render(first, clock, sim)
        assert first.counts() == {"done": 12}
        urls = {tuple(b["image_urls"]) for b in sent_bodies(first)}
    truth = sim.truth()
    assert truth["files"]["uploads_total"] == 1 and len(truth["tasks"]) == 12
    (url,) = {u for (u,) in urls}
    assert url == truth["files"]["stored"][0]["file_url"]
    assert {tuple(t["body"]["image_urls"]) for t in truth["tasks"]} == {(url,)}
    assert {tuple(t["mark"]) for t in truth["tasks"]} == {BLUE}  # the model saw the picture

    clock.now += 48 * HOUR  # a second run, --no-reuse, two days later
    async with media_run(tmp_path, reuse=False) as second:
        await render(second, clock, sim)
        assert second.counts() == {"done": 12}
        assert {tuple(b["image_urls"]) for b in sent_bodies(second)} == {(url,)}
    truth = sim.truth()
    assert truth["files"]["uploads_total"] == 1 and len(truth["tasks"]) == 24

    clock.now += 25 * HOUR  # 73 h after the upload: it expired, the next run uploads again
    async with media_run(tmp_path, reuse=False) as third:
        await render(third, clock, sim)
        assert third.counts() == {"done": 12}
        (again,) = {tuple(b["image_urls"]) for b in sent_bodies(third)}
    truth = sim.truth()
    assert truth["files"]["uploads_total"] == 2 and again != (url,)
    assert [f["file_url"] for f in truth["files"]["stored"]] == [again[0]]


async def test_the_variant_key_follows_the_file_content_not_its_upload(tmp_path: Path) -> None:
    picture(tmp_path / "images" / "watch.png")
    clock = VirtualClock()
    sim = Sim(clock)
    async with media_run(tmp_path) as run:
        keys = {j.job_key for j in run.ledger.jobs(run.run_id)}
        bodies = {str(j.body["image_urls"]) for j in run.ledger.jobs(run.run_id)}
        await render(run, clock, sim)
    assert all(b.startswith("['sha256:") for b in bodies)  # never a temporary URL
    clock.now += 80 * HOUR  # uploaded again later: same jobs, same keys, so reused
    async with media_run(tmp_path, reuse=True) as later:
        assert {j.job_key for j in later.ledger.jobs(later.run_id)} == keys
        assert later.counts() == {"done": 12}


async def test_a_full_file_quota_deletes_the_oldest_own_upload_no_unfinished_job_needs(
    tmp_path: Path,
) -> None:
    picture(tmp_path / "images" / "watch.png")
    picture(tmp_path / "images" / "strap.png", (200, 40, 40))
    clock = VirtualClock()
    sim = Sim(clock, upload_quota=1)
    async with media_run(tmp_path) as first:
        await render(first, clock, sim)
    grid = GRID.replace("watch.png", "strap.png")
    async with media_run(tmp_path, grid, name="strap.csv") as second:
        outcome = await render(second, clock, sim)
        assert second.counts() == {"done": 12} and outcome.stop_kind is None
        uploads = second.ledger.uploads()
    files = sim.truth()["files"]
    assert files["uploads_total"] == 2 and sum(files["deleted"].values()) == 1
    assert [f["file_name"].split("-")[0] for f in files["stored"]] == ["strap"]
    assert [u.deleted_at is not None for u in uploads] == [True, False]


async def test_a_quota_refusal_found_only_at_upload_deletes_one_and_retries_once(
    tmp_path: Path,
) -> None:
    picture(tmp_path / "images" / "watch.png")
    picture(tmp_path / "images" / "strap.png", (200, 40, 40))
    clock = VirtualClock()
    sim = Sim(clock, {"endpoint": "upload_quota", "kind": "respond", "status": 404}, upload_quota=1)
    async with media_run(tmp_path) as first:
        await render(first, clock, sim)
    async with media_run(tmp_path, GRID.replace("watch.png", "strap.png"), name="s.csv") as second:
        await render(second, clock, sim)
        assert second.counts() == {"done": 12}
    files = sim.truth()["files"]
    assert files["refused"] == {"40003": 1} and sum(files["deleted"].values()) == 1
    assert files["uploads_total"] == 2


async def test_a_quota_full_of_files_runner_did_not_upload_stops_only_the_jobs_needing_one(
    tmp_path: Path,
) -> None:
    picture(tmp_path / "images" / "watch.png")
    clock = VirtualClock()
    sim = Sim(clock, upload_quota=1)
    async with httpx.AsyncClient(transport=sim.transport, base_url=SIM) as someone:
        other = await someone.post(
            "/api/v1/files/upload/stream",
            files={"file": ("theirs.png", (tmp_path / "images" / "watch.png").read_bytes())},
            headers={"Authorization": f"Bearer {DEFAULT_KEY}"},
        )
        assert other.status_code == 200
    grid = GRID + '"A lamp on a desk",,plain,16:9,4\n'
    async with media_run(tmp_path, grid) as run:
        outcome = await render(run, clock, sim)
        assert run.counts() == {"pending": 12, "done": 1}
    assert outcome.stop_kind == "uploads"
    assert outcome.stop_reason is not None and "file storage is full" in outcome.stop_reason
    assert "runner resume" in outcome.stop_reason
    truth = sim.truth()
    assert len(truth["tasks"]) == 1  # the text job only; nothing of someone else's deleted
    assert [f["file_name"] for f in truth["files"]["stored"]] == ["theirs.png"]


async def test_an_unknown_create_is_replayed_with_the_same_bytes_and_the_same_upload(
    tmp_path: Path,
) -> None:
    picture(tmp_path / "images" / "watch.png")
    clock = VirtualClock()
    # the first create makes its task, but its answer is a 502: the outcome is unknown
    sim = Sim(
        clock,
        {"endpoint": "create", "kind": "respond", "status": 502, "processed": True, "calls": [1]},
    )
    async with media_run(
        tmp_path, GRID.replace("cinematic | handheld | macro", "cinematic")
    ) as run:
        await render(run, clock, sim, concurrency=1)
        assert run.counts() == {"done": 4}
        held = run.ledger.conn.execute(
            "SELECT idempotency_key, replays FROM attempts WHERE replays > 0"
        ).fetchall()
    truth = sim.truth()
    assert len(held) == 1 and len(truth["tasks"]) == 4
    key = held[0][0]
    assert truth["replays_by_idempotency_key"] == {key: 1}  # the simulator saw the same body
    first, again = truth["raw_bodies_by_idempotency_key"][key]
    assert first == again  # byte for byte
    assert truth["files"]["uploads_total"] == 1


async def test_a_winner_promoted_after_its_upload_expired_uploads_anew_and_differs_in_model_and_url(
    tmp_path: Path,
) -> None:
    picture(tmp_path / "images" / "watch.png")
    clock = VirtualClock()
    sim = Sim(clock)
    async with media_run(tmp_path, GRID.replace("cinematic | handheld | macro", "macro")) as run:
        await render(run, clock, sim)
        parents = run.ledger.jobs(run.run_id)[:2]
        parent_sent = {
            j.job_key: run.ledger.sent_body(run.ledger.last_attempt(j.job_id).attempt_id)  # type: ignore[union-attr]
            for j in parents
        }
        clock.now += 73 * HOUR
        parent_run = run.ledger.run(run.run_id)
        promotion = promote(
            run.ledger,
            parent_run,
            [(None, j.job_key) for j in parents],
            "--pick",
            "standard",
            {},
            1,
            default_prices(),
        )
        child_id, _ = runs.create(
            run.ledger,
            promotion.plan,
            choose("sim", None, run.ledger.workspace),
            Settings(),
            name="child",
            reuse=True,
            parent_run=run.run_id,
            parent_of=promotion.parents.get,
        )
        child = Run(run.ledger, child_id)
        await render(child, clock, sim)
        assert child.counts() == {"done": 2}
        pairs = [
            (
                parent_sent[j.parent_job_key or ""],
                child.ledger.sent_body(
                    child.ledger.last_attempt(j.job_id).attempt_id  # type: ignore[union-attr]
                ),
            )
            for j in child.ledger.jobs(child_id)
        ]
    assert sim.truth()["files"]["uploads_total"] == 2
    for parent, body in pairs:
        assert parent is not None and body is not None
        differ = {k for k in parent.keys() | body.keys() if parent.get(k) != body.get(k)}
        assert differ == {"model", "image_urls"}
        assert parent["model"].startswith("seedance-2.0-fast-") and "fast" not in body["model"]


async def test_a_changed_file_rejects_its_jobs_before_anything_is_sent(tmp_path: Path) -> None:
    image = picture(tmp_path / "images" / "watch.png")
    clock = VirtualClock()
    sim = Sim(clock)
    async with media_run(tmp_path) as run:
        picture(image, (0, 0, 0))  # edited after the plan
        await render(run, clock, sim)
        jobs = run.ledger.jobs(run.run_id)
    assert {j.state for j in jobs} == {"rejected"}
    assert "changed since the run was planned" in (jobs[0].error_message or "")
    truth = sim.truth()
    assert truth["tasks"] == [] and truth["files"]["uploads_total"] == 0


async def test_a_file_type_the_service_refuses_rejects_its_jobs_saying_what_to_do(
    tmp_path: Path,
) -> None:
    picture(tmp_path / "images" / "watch.png")
    clock = VirtualClock()
    sim = Sim(clock, upload_types=("image/jpeg",))
    async with media_run(tmp_path) as run:
        await render(run, clock, sim)
        jobs = run.ledger.jobs(run.run_id)
    assert {j.state for j in jobs} == {"rejected"}
    message = jobs[0].error_message or ""
    assert "40002" in message and "https://" in message and "image_urls" in message
    assert sim.truth()["files"]["refused"] == {"40002": 1}  # tried once, not per job


async def test_an_upload_whose_answer_was_lost_is_found_by_its_receipt(tmp_path: Path) -> None:
    image = picture(tmp_path / "watch.png")
    clock = VirtualClock()
    sim = Sim(clock, {"endpoint": "upload", "kind": "reset", "processed": True, "times": 1})
    async with httpx.AsyncClient(transport=sim.transport, base_url=SIM) as http:
        outcome = await evolink(http).upload(image, "watch.png", "image/png", "runner-test-1")
    assert isinstance(outcome, Uploaded)
    files = sim.truth()["files"]
    assert files["uploads_total"] == 1 and files["stored"][0]["file_id"] == outcome.file_id
    assert outcome.lifetime == 72 * HOUR


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, {"success": False, "code": 40001, "msg": "File too large"}, "too_large"),
        (200, {"success": False, "code": 40002, "msg": "Unsupported type"}, "wrong_type"),
        (403, {"success": False, "code": 40003, "msg": "Quota exceeded"}, "quota"),
        (422, {"success": False, "code": 422, "msg": "Bad name"}, "refused"),
        (401, {"success": False, "code": 401, "msg": "Unauthorized"}, AccessLost),
        (403, {"error": {"code": "permission_denied"}}, AccessLost),
        (429, {"success": False, "code": 429, "msg": "Slow down"}, Transient),
        (503, "<html>busy</html>", Transient),
    ],
)
async def test_file_service_answers_are_read_by_their_code_first_then_their_status(
    tmp_path: Path, status: int, body: Any, expected: Any
) -> None:
    image = picture(tmp_path / "watch.png")

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "files-api.evolink.ai"
        assert request.headers["authorization"] == "Bearer sk-test"
        assert request.headers["x-evo-upload-id"] == "runner-x-1"
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        files = EvoLink(http, "sk-test")  # EvoLink's own file service by default
        if isinstance(expected, str):
            outcome = await files.upload(image, "watch.png", "image/png", "runner-x-1")
            assert isinstance(outcome, UploadRefused) and outcome.kind == expected
        else:
            with pytest.raises(expected):
                await files.upload(image, "watch.png", "image/png", "runner-x-1")


async def test_uploads_go_to_evolinks_file_service_or_the_simulators_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EVOLINK_API_KEY", "sk-test")
    assert choose("evolink", None, Path("ws")).files_url == "https://files-api.evolink.ai"
    assert choose("sim", None, Path("ws")).files_url == "http://files-api.simulator.local"
    served = choose("sim", "http://127.0.0.1:8787", Path("ws"))
    assert served.files_url == "http://127.0.0.1:8787"
