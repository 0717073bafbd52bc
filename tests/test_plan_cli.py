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

    assert "-> 30 job(s)" in small.stdout and "Warning" not in small.stdout
    assert "Warning: This is a large grid: 600 jobs, about 9,153 credits ($134.60)" in many.stdout
    assert "Warning: This is a large grid: 30 jobs, about 15,188 credits ($223.35)" in (
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
