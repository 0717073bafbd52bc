"""The fault matrix's download rows (docs/reliability.md §7.1, N20–N26) at runner level: the
dispatcher against the in-process simulator on a virtual clock, with faults on the simulator's
``file`` endpoint. Each test is judged by the job's final state, the files left in the media
folder (never a partial file at the final path, never a ``.part`` left over) and the
simulator's ground truth (file requests, tasks made)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from runner.run import ledger as L
from runner.run import runs
from runner.run.clock import VirtualClock

from .dispatchhelp import Sim, dispatch, new_run
from .faulthelp import CREATE, FAST, Watch, jobs, media, requests, sim_file_sha256

pytestmark = pytest.mark.anyio


def _files_left(run_media: Path) -> list[str]:
    """The videos and partial downloads in the media folder."""
    if not run_media.is_dir():
        return []
    return sorted(p.name for p in run_media.iterdir() if p.suffix in (".mp4", ".part"))


async def _one_job(
    tmp_path: Path, *faults: dict[str, Any], **settings: Any
) -> tuple[L.JobRecord, dict[str, Any], list[str], int]:
    """One job run to its end against ``faults``: the job, the ground truth, the files left
    in the media folder and the run's exit code."""
    clock = VirtualClock()
    sim = Sim(clock, *faults)
    async with new_run(tmp_path, 1) as run:
        outcome = await dispatch(run, clock=clock, sim=sim, **FAST, **settings)
        (job,) = jobs(run)
        code = runs.finish_state(run.ledger, run.run_id, outcome)
        left = _files_left(media(run))
    return job, sim.truth(), left, code


@pytest.mark.fault("N20")
async def test_a_file_announced_over_the_cap_is_refused_before_its_body_and_not_saved(
    tmp_path: Path,
) -> None:
    job, truth, left, _ = await _one_job(tmp_path, max_video_bytes=10_000)  # files are ~35 KB
    assert (job.state, job.error_code) == (L.RESULT_ERROR, "too_large")
    assert "not downloaded" in (job.error_message or "")  # its announced length was enough
    assert left == []
    assert truth["requests"]["file"] == {"200": 1}  # not tried again
    assert len(truth["tasks"]) == 1


@pytest.mark.fault("N21")
async def test_an_endless_file_without_a_length_is_cut_at_the_cap_and_its_part_removed(
    tmp_path: Path,
) -> None:
    endless = {"endpoint": "file", "kind": "endless", "max_bytes": 2_000_000}
    job, truth, left, _ = await _one_job(tmp_path, endless, max_video_bytes=1_000_000)
    assert (job.state, job.error_code) == (L.RESULT_ERROR, "too_large")
    assert "stopped" in (job.error_message or "")  # counted while streaming
    assert left == []  # no .part, no final file
    assert requests(truth, "file") == 1
    assert len(truth["tasks"]) == 1


WEB_PAGE = {
    "endpoint": "file",
    "status": 200,
    "body": "<!DOCTYPE html><html><title>Just a moment...</title></html>",
    "content_type": "text/html",
}
NOT_MP4 = {
    "endpoint": "file",
    "status": 200,
    "body": "this is no video " * 10,
    "content_type": "video/mp4",
}


@pytest.mark.fault("N22")
@pytest.mark.parametrize(
    ("fault", "code", "tries"),
    [(WEB_PAGE, "file_host_refused", 3), (NOT_MP4, "not_video", 1)],
    ids=["text-html", "bad-magic"],
)
async def test_a_web_page_or_a_file_without_mp4_magic_is_never_done(
    tmp_path: Path, fault: dict[str, Any], code: str, tries: int
) -> None:
    job, truth, left, exit_code = await _one_job(tmp_path, fault)
    assert (job.state, job.error_code) == (L.RESULT_ERROR, code)
    assert left == []
    assert exit_code == 1
    # a web page: the link tried again with fresh links; never a new paid task
    assert requests(truth, "file") == tries
    assert len(truth["tasks"]) == 1


@pytest.mark.fault("N23")
async def test_a_download_cut_short_is_fetched_again_whole_with_the_simulators_sha256(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    sim = Sim(clock, {"endpoint": "file", "kind": "truncate", "calls": [1]})
    async with new_run(tmp_path, 1) as run:
        await dispatch(run, clock=clock, sim=sim, **FAST)
        (job,) = jobs(run)
        folder = media(run)
        left = _files_left(folder)
    assert job.state == L.DONE and job.task_id is not None
    assert left == [f"{job.job_key}.mp4"]  # the final file only, no .part
    on_disk = (folder / left[0]).read_bytes()
    assert job.file_sha256 == hashlib.sha256(on_disk).hexdigest()
    assert job.file_sha256 == sim_file_sha256(sim, job.task_id)
    assert job.file_bytes == len(on_disk)
    truth = sim.truth()
    assert truth["requests"]["file"] == {"200-truncated": 1, "200": 1}


@pytest.mark.fault("N24")
async def test_a_slow_file_host_holds_up_neither_creates_nor_task_reads(tmp_path: Path) -> None:
    clock = VirtualClock()
    slow = {"endpoint": "file", "kind": "throttle", "bytes_per_second": 50_000, "calls": [1]}
    sim = Sim(clock, slow)
    watch = Watch(sim.transport, clock)
    sim.transport = watch
    async with new_run(tmp_path, 3) as run:
        # one task at a time: the next create waits for the slot, never for the download
        await dispatch(run, clock=clock, sim=sim, concurrency=1, **FAST)
        assert run.counts() == {"done": 3}
    first = watch.on("/files/")[0]
    while_slow = [s for s in watch.seen if first.order < s.order < first.answered_order]
    assert any(s.path == CREATE for s in while_slow)  # the next job was created meanwhile
    # and on the simulator's clock time went on: tasks were read while the file came
    assert any(
        s.path.startswith("/v1/tasks") and first.sent < s.sent < first.answered for s in while_slow
    )
    assert len(sim.truth()["tasks"]) == 3


@pytest.mark.fault("N25")
@pytest.mark.parametrize(
    "fault",
    [
        {"endpoint": "file", "kind": "expire"},
        {"endpoint": "file", "status": 404},
        {"endpoint": "file", "status": 410},
    ],
    ids=["403", "404", "410"],
)
async def test_an_expired_result_link_ends_the_job_expired_and_the_run_not_ok(
    tmp_path: Path, fault: dict[str, Any]
) -> None:
    job, truth, left, exit_code = await _one_job(tmp_path, fault)
    assert (job.state, job.error_code) == (L.EXPIRED, "result_expired")
    assert "expired" in (job.error_message or "")
    assert left == []
    assert exit_code == 1  # not a success
    assert len(truth["tasks"]) == 1  # never paid again by itself


@pytest.mark.fault("N26")
@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://127.0.0.1:8080/x.mp4", "only https"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
    ],
    ids=["loopback-http", "metadata-address"],
)
async def test_a_redirect_to_loopback_or_a_metadata_address_is_refused_unfollowed(
    tmp_path: Path, location: str, reason: str
) -> None:
    clock = VirtualClock()
    sim = Sim(clock, {"endpoint": "file", "kind": "redirect", "location": location})
    watch = Watch(sim.transport, clock)
    sim.transport = watch
    async with new_run(tmp_path, 1) as run:
        await dispatch(run, clock=clock, sim=sim, **FAST)
        (job,) = jobs(run)
        left = _files_left(media(run))
    assert (job.state, job.error_code) == (L.RESULT_ERROR, "blocked_url")
    assert reason in (job.error_message or "")
    assert left == []
    assert {s.host for s in watch.seen} == {"sim.test"}  # the redirect was never followed
    assert requests(sim.truth(), "file") == 1
