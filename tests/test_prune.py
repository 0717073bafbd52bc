"""`runner prune`: a run's videos removed or archived, its posters and strips kept, the report
still opening on them; winners kept; refused while a run goes; a pruned video never reused."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from runner.run.ledger import Ledger

from .runhelp import grid, simulator, truth
from .test_browser_report import CHROMIUM, Opened, browser  # noqa: F401 - the fixture
from .test_promote import write_winners
from .test_report import Page, jobs_of


def jobs(ws: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(ws / "ledger.sqlite") as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM jobs ORDER BY job_id").fetchall()


def page_jobs(ws: Path, run_id: str) -> dict[str, dict]:  # type: ignore[type-arg]
    page = Page((ws / run_id / "index.html").read_text(encoding="utf-8"))
    return {j["key"]: j for j in jobs_of(page.data)}


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four jobs rendered once by the built-in simulator: real videos, posters, strips."""
    from click.testing import CliRunner

    from runner.cli import main

    tmp = tmp_path_factory.mktemp("prune")
    exp, ws = grid(tmp / "g.csv", 4), tmp / "ws"
    result = CliRunner().invoke(main, ["run", str(exp), "--workspace", str(ws), "--rate", "50"])
    assert result.exit_code == 0, result.output
    return ws


@pytest.fixture
def ws(swept: Path, tmp_path: Path) -> Path:
    """A copy of the swept workspace for one test to prune."""
    copy = tmp_path / "ws"
    shutil.copytree(swept, copy)
    return copy


def test_prune_keeps_the_winners_posters_and_strips_and_the_report_shows_posters(
    cli: Callable[..., Result], ws: Path, tmp_path: Path
) -> None:
    before = jobs(ws)
    run_id = before[0]["run_id"]
    winner = before[1]
    size = sum((ws / j["file_path"]).stat().st_size for j in before if j is not winner)
    winners = write_winners(tmp_path / "winners.csv", [winner])

    result = cli("prune", run_id, "--keep", winners, "--yes", "--workspace", ws)

    assert result.exit_code == 0, result.output
    assert f"3 video(s), {size / 1e6:,.1f} MB, will be removed; 1 winner video(s) kept" in (
        result.output
    )
    media = ws / run_id / "media"
    assert sorted(p.name for p in media.glob("*.mp4")) == [Path(winner["file_path"]).name]
    shown = page_jobs(ws, run_id)
    for job in before:
        entry = shown[job["job_key"]]["media"]
        assert entry is not None and entry[1] == 1  # the poster beside it, as before
        stem = Path(job["file_path"]).stem
        assert (media / f"{stem}.jpg").is_file() and (media / f"{stem}.strip.jpg").is_file()
        assert entry[8] == (None if job is winner else "video removed by prune")
    status = cli("status", run_id, "--workspace", ws).output
    assert "3 video(s) pruned" in status
    exported = (ws / run_id / "results.csv").read_text(encoding="utf-8")
    assert exported.count("video removed by prune") == 3


def test_archive_moves_the_videos_keeping_their_paths(
    cli: Callable[..., Result], ws: Path, tmp_path: Path
) -> None:
    before = jobs(ws)
    run_id = before[0]["run_id"]
    archive = tmp_path / "archive"

    result = cli("prune", run_id, "--archive", archive, "--yes", "--workspace", ws)

    assert result.exit_code == 0, result.output
    assert not list((ws / run_id / "media").glob("*.mp4"))
    shown = page_jobs(ws, run_id)
    for job in before:
        moved = archive / job["file_path"]
        assert hashlib.sha256(moved.read_bytes()).hexdigest() == job["file_sha256"]
        note = shown[job["job_key"]]["media"][8]
        assert note == f"video removed by prune (archived at {moved.resolve()})"


def test_without_yes_and_no_terminal_it_refuses_and_says_what_to_type(
    cli: Callable[..., Result], ws: Path
) -> None:
    run_id = jobs(ws)[0]["run_id"]
    result = cli("prune", run_id, "--workspace", ws)  # CliRunner's stdin is no terminal
    assert result.exit_code == 2
    assert f"runner prune {run_id} --yes" in result.output
    assert len(list((ws / run_id / "media").glob("*.mp4"))) == 4


def test_it_refuses_while_a_run_holds_the_workspace(cli: Callable[..., Result], ws: Path) -> None:
    run_id = jobs(ws)[0]["run_id"]
    with Ledger.open(ws):  # what a running `runner run` holds
        result = cli("prune", run_id, "--yes", "--workspace", ws)
    assert result.exit_code == 2
    assert "a run is going" in result.output and "prune after it ends" in result.output
    assert len(list((ws / run_id / "media").glob("*.mp4"))) == 4


@pytest.mark.slow
def test_a_rerun_after_prune_pays_again_for_pruned_videos_only(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    """Decided (README, `runner.review.prune`): a pruned video is gone from the workspace, so
    an identical experiment renders it again; a kept winner is reused for free."""
    exp, ws = grid(tmp_path / "g.csv", 4), tmp_path / "ws"
    with simulator() as url:
        assert cli("run", exp, "--base-url", url, "--workspace", ws, "--rate", "50").exit_code == 0
        first = jobs(ws)
        winners = write_winners(tmp_path / "w.csv", [first[0]])
        pruned = cli("prune", "latest", "--keep", winners, "--yes", "--workspace", ws)
        assert pruned.exit_code == 0, pruned.output
        plan = cli("plan", exp, "--workspace", ws).output
        again = cli("run", exp, "--base-url", url, "--workspace", ws, "--rate", "50")
        books = truth(url)

    assert again.exit_code == 0, again.output
    assert "(1 job(s) reused from earlier runs)" in again.output
    assert "To send: 3 of 4 job(s)" in plan and "1 reused from earlier runs" in plan
    assert sorted(books["creates_by_body"].values()) == [1, 2, 2, 2]  # 3 bodies paid again
    second = [j for j in jobs(ws) if j["run_id"] != first[0]["run_id"]]
    assert [j["reused_from"] for j in second].count(first[0]["run_id"]) == 1


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium")
def test_in_a_browser_a_pruned_card_shows_its_poster_and_note_and_never_a_player(
    swept: Path,  # before the browser: a run cannot start inside Playwright's event loop
    cli: Callable[..., Result],
    ws: Path,
    tmp_path: Path,
    browser: Any,  # noqa: F811 - the fixture of test_browser_report
) -> None:
    before = jobs(ws)
    run_id, winner = before[0]["run_id"], before[1]
    winners = write_winners(tmp_path / "winners.csv", [winner])
    assert cli("prune", run_id, "--keep", winners, "--yes", "--workspace", ws).exit_code == 0

    opened = Opened(browser, ws / run_id / "index.html")
    try:
        pruned = opened.page.locator(".media.pruned")
        assert pruned.count() == 3
        assert opened.texts(".media.pruned .badge-b") == ["video removed by prune"] * 3
        assert opened.page.locator(".media.pruned img").count() == 3  # the posters
        for i in range(3):
            pruned.nth(i).hover()
            pruned.nth(i).click()
        opened.settle()
        assert opened.page.locator("video").count() == 0  # no player, no broken request
        playable = opened.page.locator(".media[data-k]")
        assert playable.count() == 1  # the kept winner
        playable.first.click()
        opened.settle()
        assert opened.page.locator(".media[data-k] video").count() == 1
        opened.clean()
    finally:
        opened.close()
