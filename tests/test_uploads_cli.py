"""The done-when of local media, end to end: `runner run` on a grid naming ./images/watch.png,
twice, each in its own process on the built-in simulator (whose journal is the ground truth)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from .runhelp import runner

pytestmark = pytest.mark.slow

GRID = (
    "prompt,image_urls,style,aspect_ratio,duration\n"
    '"The watch turns slowly, {{ style }}",./images/watch.png,'
    "cinematic | handheld | macro,16:9 | 9:16,4 | 5\n"
)


def journal(ws: Path) -> list[dict[str, object]]:
    lines = (ws / "simulator" / "journal.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_a_grid_naming_a_local_image_runs_with_one_upload_and_a_no_reuse_rerun_uploads_none(
    tmp_path: Path,
) -> None:
    (tmp_path / "shoot" / "images").mkdir(parents=True)
    Image.new("RGB", (640, 480), (30, 60, 200)).save(tmp_path / "shoot" / "images" / "watch.png")
    grid = tmp_path / "shoot" / "watch.csv"
    grid.write_text(GRID)
    ws = tmp_path / "ws"

    first = runner("run", grid, "--workspace", ws, "--rate", "50", timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "done 12" in first.stdout
    again = runner("run", grid, "--workspace", ws, "--rate", "50", "--no-reuse", timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr

    lines = journal(ws)
    uploads = [line for line in lines if line["type"] == "upload"]
    creates = [line for line in lines if line["type"] == "create"]
    assert len(uploads) == 1 and len(creates) == 24
    (file,) = [u["file"] for u in uploads]
    assert isinstance(file, dict)
    for create in creates:
        body = create["body"]
        assert isinstance(body, dict) and body["image_urls"] == [file["file_url"]]
        assert create["mark"] == [30, 60, 200]
