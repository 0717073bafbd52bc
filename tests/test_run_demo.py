"""`runner run`: the demo end to end, against the built-in simulator and a served one."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import av
import pytest
from click.testing import Result

from runner.grid.plan import make_plan
from runner.models import Request

from .runhelp import DEMO, simulator, truth


@pytest.mark.fault("B7")
def test_demo_runs_on_the_built_in_simulator_and_writes_the_report(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: object
) -> None:
    ws = tmp_path / "reports"

    result = cli("run", DEMO, "--workspace", ws)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Backend: built-in simulator (EVOLINK_API_KEY is not set)")
    report = Path(lines[-1].removeprefix("Report: "))
    assert report.is_file() and report.name == "index.html"
    videos = sorted((report.parent / "media").glob("*.mp4"))
    assert len(videos) == 12
    with av.open(str(videos[0])) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    assert (report.parent / "results.parquet").is_file()
    assert "SIMULATED" in report.read_text()


@pytest.mark.slow
def test_served_simulator_gets_each_pinned_body_exactly_once(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    plan = make_plan(DEMO, "fast")
    expected = {json.dumps(j.body(), sort_keys=True) for j in plan.jobs()}
    with simulator() as url:
        result = cli("run", DEMO, "--base-url", url, "--workspace", tmp_path / "ws", "--rate", "20")
        state = truth(url)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        f"Backend: simulator at {url}: nothing is paid, videos are simulated."
    )
    sent = [json.dumps(t["body"], sort_keys=True) for t in state["tasks"]]
    assert sorted(sent) == sorted(expected)
    for task in state["tasks"]:
        body = task["body"]
        assert {"duration", "quality", "aspect_ratio", "generate_audio", "content_filter"} <= (
            set(body)
        )
        Request.from_body(body, "text")  # every parameter present


@pytest.mark.slow
@pytest.mark.fault("B2")
def test_a_second_run_reuses_downloaded_results_unless_told_not_to(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    with simulator() as url:
        cli("run", DEMO, "--base-url", url, "--workspace", ws, "--rate", "20")
        again = cli("run", DEMO, "--base-url", url, "--workspace", ws)
        after_reuse = len(truth(url)["tasks"])
        fresh = cli("run", DEMO, "--base-url", url, "--workspace", ws, "--no-reuse", "--rate", "20")
        after_no_reuse = len(truth(url)["tasks"])

    assert again.exit_code == 0 and "(12 job(s) reused from earlier runs)" in again.stdout
    assert after_reuse == 12
    assert fresh.exit_code == 0 and after_no_reuse == 24
    run_dirs = sorted(p for p in ws.iterdir() if p.is_dir())
    assert len(list((run_dirs[1] / "media").glob("*.mp4"))) == 12  # linked into the new run


def test_reuse_takes_a_video_still_on_disk_when_an_older_copy_was_deleted(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    with simulator() as url:
        for _ in range(2):
            cli("run", DEMO, "--base-url", url, "--workspace", ws, "--no-reuse", "--rate", "20")
        first = sorted(p for p in ws.iterdir() if p.is_dir() and p.name[0].isdigit())[0]
        for video in (first / "media").glob("*.mp4"):
            video.unlink()  # the older copies are gone, the newer ones are not
        plan = cli("plan", DEMO, "--workspace", ws).output
        third = cli("run", DEMO, "--base-url", url, "--workspace", ws)
        tasks = len(truth(url)["tasks"])

    assert "To send: 0 of 12 job(s)" in plan
    assert third.exit_code == 0 and "(12 job(s) reused from earlier runs)" in third.stdout
    assert tasks == 24  # as the plan said: nothing paid again
