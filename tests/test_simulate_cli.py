"""`runner simulate` serves the simulator on loopback: the README's short httpx script works
against it, and so does `runner run --base-url`."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import Result

from .runhelp import DEMO


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runner",
            "simulate",
            "--port",
            str(port),
            "--speed",
            "200",
            "--fail-rate",
            "service_error=0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                httpx.get(f"{url}/_sim/state", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_the_readme_script_creates_polls_and_downloads_a_video(served: str) -> None:
    api = httpx.Client(base_url=served, headers={"Authorization": "Bearer sk-anything"})
    task = api.post(
        "/v1/videos/generations",
        json={
            "model": "seedance-2.0-fast-text-to-video",
            "prompt": "A red kite over a beach",
            "duration": 5,
            "quality": "480p",
            "aspect_ratio": "9:16",
        },
    ).json()
    deadline = time.monotonic() + 30
    while (task := api.get(f"/v1/tasks/{task['id']}").json())["status"] not in (
        "completed",
        "failed",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    video = httpx.get(task["results"][0])
    api.close()

    assert task["status"] == "completed"
    assert video.headers["content-type"] == "video/mp4" and video.content[4:8] == b"ftyp"
    assert video.headers["x-simulator-speed"] == "200"


def test_runner_run_against_runner_simulate(
    served: str, cli: Callable[..., Result], tmp_path: Path
) -> None:
    result = cli("run", DEMO, "--base-url", served, "--workspace", tmp_path / "ws", "--rate", "50")

    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "ws").glob("2*/media/*.mp4"))) == 12


def test_bad_simulator_options_are_usage_errors(cli: Callable[..., Result]) -> None:
    result = cli("simulate", "--fail-rate", "service_error")

    assert result.exit_code == 2
    assert "--fail-rate 'service_error': write CODE=P" in result.stderr
    unknown = cli("simulate", "--fail-rate", "no_such_code=0.5")
    assert unknown.exit_code == 2 and "unknown task error codes" in unknown.stderr


def test_file_port_serves_result_files_on_a_second_origin() -> None:
    port, file_port = _free_port(), _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runner",
            "simulate",
            "--port",
            str(port),
            "--file-port",
            str(file_port),
            "--strict-file-host",
            "--speed",
            "1000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                httpx.get(f"{url}/_sim/state", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        api = httpx.Client(base_url=url, headers={"Authorization": "Bearer sk-anything"})
        task = api.post(
            "/v1/videos/generations",
            json={"model": "seedance-2.0-mini-text-to-video", "prompt": "A kite", "duration": 4},
        ).json()
        api.post("/_sim/advance", json={"seconds": 1000})
        done = api.get(f"/v1/tasks/{task['id']}").json()
        api.close()
        result = done["results"][0]
        refused = httpx.get(result, timeout=5)
        video = httpx.get(result, headers={"User-Agent": "EvoLinkClient/1.0"}, timeout=60)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)

    assert result.startswith(f"http://127.0.0.1:{file_port}/files/")
    assert refused.status_code == 403 and refused.text == "error code: 1010"
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    assert f"files on http://127.0.0.1:{file_port}" in out
