"""`runner promote`: winners of a fast sweep re-rendered on standard, identical but for the
model, linked to their parents; checked against the simulator's ground truth."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from .runhelp import DEMO, simulator, truth
from .test_report import Page, jobs_of

pytestmark = pytest.mark.slow  # every test shares a run against a served simulator


def run_jobs(ws: Path, run_id: str | None = None) -> list[sqlite3.Row]:
    with sqlite3.connect(ws / "ledger.sqlite") as db:
        db.row_factory = sqlite3.Row
        if run_id is None:
            run_id = db.execute(
                "SELECT run_id FROM runs ORDER BY created_at DESC, rowid DESC LIMIT 1"
            ).fetchone()[0]
        return db.execute(
            "SELECT * FROM jobs WHERE run_id = ? ORDER BY job_id", (run_id,)
        ).fetchall()


def write_winners(
    path: Path,
    jobs: list[sqlite3.Row],
    *,
    sep: str = ",",
    bom: bool = False,
    run_id: str | None = None,
) -> Path:
    lines = [sep.join(["run_id", "job_key", "variant_key", "tier", "name", "style", "note"])]
    for j in jobs:
        values = dict(tuple(p) for p in json.loads(j["values_json"]))
        lines.append(
            sep.join(
                [
                    run_id or j["run_id"],
                    j["job_key"],
                    j["variant_key"],
                    j["tier"],
                    j["name"],
                    values.get("style", ""),
                    '"bold, keep"',
                ]
            )
        )
    path.write_text(("\ufeff" if bom else "") + "\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    """The demo, rendered once on fast against a served simulator."""
    from click.testing import CliRunner

    from runner.cli import main

    ws = tmp_path_factory.mktemp("promote") / "ws"
    with simulator() as url:
        result = CliRunner().invoke(
            main, ["run", str(DEMO), "--base-url", url, "--workspace", str(ws), "--rate", "50"]
        )
        assert result.exit_code == 0, result.output
        yield url, ws, ws.parent


def test_three_winners_become_three_standard_tasks_identical_but_for_model(
    swept: tuple[str, Path, Path], cli: Callable[..., Result]
) -> None:
    url, ws, tmp = swept
    parents = run_jobs(ws)[:3]
    winners = write_winners(tmp / "winners.csv", parents)
    before = {t["id"] for t in truth(url)["tasks"]}

    result = cli("promote", "latest", "--winners", winners, "--workspace", ws, "--rate", "50")

    assert result.exit_code == 0, result.output
    assert "3 winner(s) of run" in result.stdout and "3 job(s) on the standard tier" in (
        result.stdout
    )
    assert "Prices: built-in table of 2026-10-10 (68 credits = 1 USD)." in result.stdout
    assert "final charge may differ from this quote for standard text-to-video" in result.stdout
    new = [t for t in truth(url)["tasks"] if t["id"] not in before]
    assert len(new) == 3
    fast_bodies = {j["job_key"]: json.loads(j["body_json"]) for j in parents}
    children = run_jobs(ws)
    assert {c["parent_job_key"] for c in children} == set(fast_bodies)
    for child in children:
        parent = fast_bodies[child["parent_job_key"]]
        sent = next(t["body"] for t in new if t["id"] == child["task_id"])
        assert sent["model"] == parent["model"].replace("-fast-", "-")
        assert {k: v for k, v in sent.items() if k != "model"} == {
            k: v for k, v in parent.items() if k != "model"
        }
        assert child["state"] == "done" and child["variant_key"] in {
            j["variant_key"] for j in parents
        }
    status = cli("status", "--workspace", ws).stdout
    assert "<- promoted from" in status
    report = Path(result.stdout.strip().splitlines()[-1].removeprefix("Report: "))
    page = Page(report.read_text())
    pairs = {row["key"]: row["parent"] for row in jobs_of(page.data)}
    for child in children:  # the child report shows each standard render beside its parent
        parent = pairs[child["job_key"]]
        assert parent["key"] == child["parent_job_key"] and parent["tier"] == "fast"
        assert (report.parent / parent["media"][0]).is_file()

    again = cli(
        "promote", parents[0]["run_id"], "--winners", winners, "--workspace", ws, "--rate", "50"
    )
    after_again = len(truth(url)["tasks"])
    fresh = cli(
        "promote",
        parents[0]["run_id"],
        "--winners",
        winners,
        "--workspace",
        ws,
        "--rate",
        "50",
        "--no-reuse",
    )
    after_fresh = len(truth(url)["tasks"])

    assert again.exit_code == 0 and "(3 job(s) reused from earlier runs)" in again.stdout
    assert after_again == len(before) + 3
    assert fresh.exit_code == 0 and after_fresh == len(before) + 6


def test_pick_by_key_prefix_with_an_override(
    swept: tuple[str, Path, Path], cli: Callable[..., Result]
) -> None:
    _, ws, _ = swept
    first = run_jobs(ws, _first_run(ws))[4]

    result = cli(
        "promote",
        _first_run(ws),
        "--pick",
        first["job_key"][:10],
        "--set",
        "quality=1080p",
        "--workspace",
        ws,
        "--rate",
        "50",
    )

    assert result.exit_code == 0, result.output
    (child,) = run_jobs(ws)
    body = json.loads(child["body_json"])
    assert body["quality"] == "1080p" and body["model"] == "seedance-2.0-text-to-video"
    assert child["parent_job_key"] == first["job_key"]


def test_tier_rules_are_checked_before_anything_is_spent(
    swept: tuple[str, Path, Path], cli: Callable[..., Result]
) -> None:
    url, ws, _ = swept
    job = run_jobs(ws, _first_run(ws))[0]
    before = len(truth(url)["tasks"])

    hd_on_fast = cli(
        "promote",
        _first_run(ws),
        "--pick",
        job["job_key"],
        "--tier",
        "fast",
        "--set",
        "quality=1080p",
        "--workspace",
        ws,
    )
    search_on_mini = cli(
        "promote",
        _first_run(ws),
        "--pick",
        job["job_key"],
        "--tier",
        "mini",
        "--set",
        "web_search=true",
        "--workspace",
        ws,
    )

    assert hd_on_fast.exit_code == 2
    assert hd_on_fast.stderr.splitlines()[1:] == [
        "--set:quality: on fast: 1080p is only available on the "
        "standard tier (fast allows 480p, 720p); use --tier standard or choose 720p"
    ]
    assert search_on_mini.exit_code == 2
    assert "web search is not available on the mini tier" in search_on_mini.stderr
    assert len(truth(url)["tasks"]) == before


def test_bad_winners_files_are_refused_with_rows(
    swept: tuple[str, Path, Path], cli: Callable[..., Result]
) -> None:
    url, ws, tmp = swept
    run_id = _first_run(ws)
    jobs = run_jobs(ws, run_id)
    before = len(truth(url)["tasks"])
    bad = write_winners(tmp / "bad.csv", [jobs[0], jobs[0], jobs[1]])
    text = bad.read_text().splitlines()
    text[3] = text[3].replace(run_id, "20990101-000000-other")
    text.append(text[1].replace(jobs[0]["job_key"], "ffffffffffffffff-fast-1"))
    bad.write_text("\n".join(text) + "\n")

    result = cli("promote", run_id, "--winners", bad, "--workspace", ws)

    assert result.exit_code == 2
    assert result.stderr.splitlines()[1:] == [
        f"bad.csv:row 3:job_key: {jobs[0]['job_key']} is picked twice (also on row 2); "
        "keep one row",
        f"bad.csv:row 4:run_id: this pick is from run 20990101-000000-other, not {run_id}; "
        f"promote that run (`runner promote 20990101-000000-other --winners bad.csv`)",
    ]
    unknown = write_winners(tmp / "unknown.csv", [jobs[0]])
    unknown.write_text(unknown.read_text().replace(jobs[0]["job_key"], "ffffffffffffffff-fast-1"))
    missing = cli("promote", run_id, "--winners", unknown, "--workspace", ws)
    assert missing.stderr.splitlines()[1] == (
        f"unknown.csv:row 2:job_key: ffffffffffffffff-fast-1 is not a job of run {run_id}; "
        "check the run, or export the winners from its report again"
    )
    assert len(truth(url)["tasks"]) == before


def test_a_hand_edited_winners_file_with_bom_and_semicolons_works(
    swept: tuple[str, Path, Path], cli: Callable[..., Result]
) -> None:
    _, ws, tmp = swept
    run_id = _first_run(ws)
    winners = write_winners(tmp / "excel.csv", run_jobs(ws, run_id)[5:7], sep=";", bom=True)

    result = cli("promote", run_id, "--winners", winners, "--workspace", ws, "--rate", "50")

    assert result.exit_code == 0, result.output
    assert len(run_jobs(ws)) == 2


def _first_run(ws: Path) -> str:
    with sqlite3.connect(ws / "ledger.sqlite") as db:
        (run_id,) = db.execute(
            "SELECT run_id FROM runs ORDER BY created_at, rowid LIMIT 1"
        ).fetchone()
    return str(run_id)
