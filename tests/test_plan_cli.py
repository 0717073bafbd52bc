"""`runner plan`: the quote a marketer reads before spending anything."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import Result

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "experiments").glob("*.csv")) + sorted(
    (ROOT / "experiments").glob("*.parquet")
)


def test_demo_plan_prints_jobs_dimensions_and_cost_per_tier(cli: Callable[..., Result]) -> None:
    result = cli("plan", ROOT / "experiments" / "demo.csv")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "3 row(s) -> 12 variant(s) -> 12 job(s) on the fast tier" in out
    assert "60 s of video in all" in out
    assert "style         Cinematic | Playful" in out
    assert "aspect_ratio  16:9 | 9:16" in out
    # 12 jobs x 5 s at 720p: mini 2.7/s, fast 8.2013/s, standard 13.5/s; 68 credits = $1
    assert "mini                          12        162.00        2.38" in out
    assert "fast  <- this plan            12        492.08        7.24" in out
    assert "standard                      12        810.00       11.91" in out


def test_plan_json_and_jobs_table(cli: Callable[..., Result], tmp_path: Path) -> None:
    out = tmp_path / "plan.parquet"
    result = cli(
        "plan", ROOT / "experiments" / "demo.csv", "--json", "--tier", "standard", "--out", out
    )

    data = json.loads(result.stdout)
    assert data["tier"] == "standard" and data["jobs"] == 12
    assert data["quotes"]["standard"]["credits"] == 810.0
    assert data["dimensions"]["style"] == ["Cinematic", "Playful"]
    jobs = pd.read_parquet(out)
    assert len(jobs) == 12
    assert set(jobs["model"]) == {"seedance-2.0-text-to-video"}
    assert jobs["job_key"].is_unique
    assert (jobs["estimated_credits"] == 67.5).all()
    body = json.loads(jobs["body"][0])
    assert body["duration"] == 5 and body["quality"] == "720p"


def test_tiers_that_cannot_render_a_grid_are_marked(
    cli: Callable[..., Result], write: Callable[..., Path]
) -> None:
    path = write("hd.csv", "prompt,quality\nA cat,1080p\nA dog,720p\n")

    result = cli("plan", path, "--tier", "standard")

    assert result.exit_code == 0
    assert "1 job(s) not available: quality: 1080p is only available" in result.stdout


def test_large_grids_get_a_warning(cli: Callable[..., Result], write: Callable[..., Path]) -> None:
    values = " | ".join(f"v{i}" for i in range(30))
    path = write("big.csv", f"prompt,x,duration,quality\nA {{{{ x }}}},{values},4,480p\n")

    small = cli("plan", path)  # 30 jobs, about $6.73
    many = cli("plan", path, "--set", "repeats=20")  # 600 jobs
    costly = cli(
        "plan", path, "--tier", "standard", "--set", "duration=15", "--set", "quality=1080p"
    )  # 30 x 506.25 credits

    assert "-> 30 job(s)" in small.stdout and "large grid" not in small.stdout
    assert (
        "Warning: This is a large grid: 600 jobs to send, about 9,153 credits ($134.60)"
        in many.stdout
    )
    assert "Warning: This is a large grid: 30 jobs to send, about 15,188 credits ($223.35)" in (
        costly.stdout
    )


def test_workspace_price_file_is_used(cli: Callable[..., Result], tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "prices.toml").write_text("[tiers.fast]\ncredits_per_second_720p = 10\n")

    result = cli("plan", ROOT / "experiments" / "demo.csv", "--workspace", ws, "--json")

    data = json.loads(result.stdout)
    assert data["quotes"]["fast"]["credits"] == 600.0
    assert data["prices"].startswith(f"your price file {ws / 'prices.toml'} changed ")
    assert data["prices_sources"][0]["kind"] == "file"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_shipped_example_plans_cleanly(example: Path, cli: Callable[..., Result]) -> None:
    tier = "standard" if "standard" in example.stem else "fast"
    result = cli("plan", example, "--tier", tier)

    assert result.exit_code == 0, result.output


def test_help_explains_itself_with_examples() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "runner", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "runner plan experiments/demo.csv" in out


@pytest.mark.parametrize(
    "command",
    [
        "plan",
        "run",
        "resume",
        "retry",
        "resolve",
        "status",
        "report",
        "promote",
        "export",
        "simulate",
    ],
)
def test_every_command_has_help_with_an_example(command: str, cli: Callable[..., Result]) -> None:
    out = cli(command, "--help").stdout
    assert "Examples:" in out and f"runner {command}" in out


def test_plan_json_prints_its_errors_as_json_naming_file_row_and_column(
    cli: Callable[..., Result], write: Callable[..., Path], tmp_path: Path
) -> None:
    path = write("bad.csv", "prompt,duration\nA cat,3\nA dog,5\n")

    bad_row = cli("plan", path, "--json")
    missing = cli("plan", tmp_path / "nope.csv", "--json")
    bad_flag = cli("plan", path, "--json", "--tier", "turbo")

    assert bad_row.exit_code == missing.exit_code == bad_flag.exit_code == 2
    data = json.loads(bad_row.stdout)
    assert data["error"].startswith("1 problem found; nothing was sent:")
    assert data["problems"] == [
        {
            "file": "bad.csv",
            "row": 2,
            "column": "duration",
            "message": "3 is below the minimum 4 (allowed 4–15)",
        }
    ]
    (problem,) = json.loads(missing.stdout)["problems"]
    assert problem["file"] == "nope.csv" and problem["row"] is None
    assert problem["message"].startswith("file not found")
    flag = json.loads(bad_flag.stdout)
    assert "'--tier'" in flag["error"] and flag["problems"][0]["file"] is None
    assert "Traceback" not in bad_row.output + missing.output + bad_flag.output


def test_a_prompt_citing_media_its_row_does_not_send_gets_a_warning_naming_the_row(
    cli: Callable[..., Result], write: Callable[..., Path]
) -> None:
    img, vid = "https://cdn.example.com/a.png", "https://cdn.example.com/v.mp4"
    path = write(
        "cite.csv",
        "prompt,image_urls,video_urls\n"
        f"@image1 dances like @video1,{img},\n"  # image mode: no video
        f"@image1 then @image2 then @image3,{img} {img}?2,{vid}\n"  # reference: 2 images
        "A cat to the beat of @audio1,,\n"  # text mode
        f"@image1 spins,{img},\n",  # fine: the image is sent
    )

    result = cli("plan", path)
    shipped = cli("plan", ROOT / "experiments" / "reference.csv")

    assert result.exit_code == 0
    warnings = [line for line in result.stdout.splitlines() if line.startswith("Warning:")]
    assert warnings == [
        "Warning: cite.csv:row 2:prompt: cites @video1 but the row sends no video (image mode); "
        "add the video to video_urls (reference mode), or take @video1 out of the prompt.",
        "Warning: cite.csv:row 3:prompt: cites @image3 but the row sends 2 images; "
        "add the image to image_urls (reference mode), or take @image3 out of the prompt.",
        "Warning: cite.csv:row 4:prompt: cites @audio1 but the row sends no audio track (text "
        "mode); add the audio track to audio_urls (reference mode), or take @audio1 out of the "
        "prompt.",
    ]
    assert "Warning" not in shipped.stdout


def test_an_out_file_of_an_unknown_kind_is_refused_before_planning(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    result = cli("plan", ROOT / "experiments" / "demo.csv", "--out", tmp_path / "jobs.xlsx")

    assert result.exit_code == 2
    assert result.stderr == (
        "Error: --out jobs.xlsx: a table is written as .parquet, .csv or .json; "
        "end the file name with one of them\n"
    )
