"""`runner export RUN --share`: a folder (or zip) holding the report, every poster and strip
and only the starred videos, nothing else of the run; refusals that say what to do. The run
is rendered by the built-in simulator; what is starred and what each video is comes from the
ledger."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from runner.review.share import NOT_SHARED

from .test_promote import write_winners
from .test_prune import jobs
from .test_prune import swept as swept  # the fixture: four jobs rendered by the simulator
from .test_report import Page, jobs_of


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def expected_files(ws: Path, starred: set[str]) -> dict[str, str]:
    """The share's files (relative path -> content hash) as the ledger says they must be."""
    files = {}
    for job in jobs(ws):
        video = ws / job["file_path"]
        kept = [video.with_suffix(".jpg"), video.with_name(video.stem + ".strip.jpg")]
        if job["job_key"] in starred:
            kept.append(video)
        for f in kept:
            files[f"media/{f.name}"] = digest(f)
    return files


def files_of(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): digest(p)
        for p in folder.rglob("*")
        if p.is_file() and p.name != "index.html"
    }


def test_share_folder_holds_the_report_posters_strips_and_only_the_starred_videos(
    cli: Callable[..., Result], swept: Path, tmp_path: Path
) -> None:
    ws = swept
    every = jobs(ws)
    run_id = every[0]["run_id"]
    starred = [every[1], every[3]]
    winners = write_winners(tmp_path / "winners.csv", starred)
    out = tmp_path / "for-client"

    result = cli("export", run_id, "--share", "--winners", winners, "--out", out, "--workspace", ws)

    assert result.exit_code == 0, result.output
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert f"Wrote {out} ({size / 1e6:,.1f} MB)" in result.output
    assert "4 poster(s) and frame strips, 2 starred video(s)" in result.output
    keys = {j["job_key"] for j in starred}
    assert (out / "index.html").is_file()
    assert files_of(out) == expected_files(ws, keys)  # nothing else: no ledger, tables, logs
    html = (out / "index.html").read_text(encoding="utf-8")
    page = Page(html)
    shown = {j["key"]: j["media"] for j in jobs_of(page.data)}
    assert set(shown) == {j["job_key"] for j in every}
    for job in every:
        entry = shown[job["job_key"]]
        assert entry[0] == f"media/{Path(job['file_path']).name}" and entry[1] == 1
        assert entry[8] == (None if job["job_key"] in keys else NOT_SHARED)
    assert "selected videos</title>" in html and "runner report</title>" not in html
    # what the run cost is not the client's business: no credits in the data or the header
    assert page.data["run"]["share"] is True and "money" not in page.text_by_id
    assert all(j["credits"] is None and j["estimate"] is None for j in jobs_of(page.data))
    assert "credits" not in page.text_by_id["top"] and 'value="cost-"' not in html
    assert "video not included in this share" in page.text_by_id["share-note"]
    assert 'href="results.csv"' not in html  # the page points at nothing the folder lacks
    assert not (ws / run_id / "for-client").exists()


def test_share_zip_holds_the_same_files_under_one_folder(
    cli: Callable[..., Result], swept: Path, tmp_path: Path
) -> None:
    ws = swept
    every = jobs(ws)
    run_id = every[0]["run_id"]
    winners = write_winners(tmp_path / "winners.csv", [every[0]])
    folder, archive = tmp_path / "folder", tmp_path / "out" / "for-client.zip"
    args = ("export", run_id, "--share", "--winners", winners, "--workspace", ws, "--out")
    assert cli(*args, folder).exit_code == 0
    result = cli(*args, archive)

    assert result.exit_code == 0, result.output
    assert f"Wrote {archive} ({archive.stat().st_size / 1e6:,.1f} MB)" in result.output
    with zipfile.ZipFile(archive) as z:
        assert z.testzip() is None
        inside = {n: hashlib.sha256(z.read(n)).hexdigest() for n in z.namelist()}
        page = z.read("for-client/index.html").decode("utf-8")
    assert {n.removeprefix("for-client/") for n in inside} == {
        "index.html",
        *files_of(folder),
    }
    assert {n.removeprefix("for-client/"): h for n, h in inside.items() if "media/" in n} == (
        expected_files(ws, {every[0]["job_key"]})
    )
    assert NOT_SHARED in page
    assert [p.name for p in archive.parent.iterdir()] == ["for-client.zip"]  # no leftovers


def test_a_starred_video_that_was_pruned_is_reported_not_shared(
    cli: Callable[..., Result], swept: Path, tmp_path: Path
) -> None:
    import shutil

    ws = tmp_path / "ws"
    shutil.copytree(swept, ws)
    every = jobs(ws)
    run_id = every[0]["run_id"]
    assert cli("prune", run_id, "--yes", "--workspace", ws).exit_code == 0
    winners = write_winners(tmp_path / "winners.csv", [every[2]])
    out = tmp_path / "share"
    result = cli("export", run_id, "--share", "--winners", winners, "--out", out, "--workspace", ws)
    assert result.exit_code == 0, result.output
    assert "0 starred video(s)" in result.output
    assert "1 of the 1 starred job(s) have no video to include" in result.output
    assert list(out.rglob("*.mp4")) == []
    page = Page((out / "index.html").read_text(encoding="utf-8"))
    assert {j["media"][8] for j in jobs_of(page.data)} == {"video removed by prune"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "csv", "--out", "x"], "--format does not apply to --share"),
        (["--out", "x", "--no-winners"], "--share needs --winners: the winners.csv exported"),
        ([], "--share needs --out: a new folder, or a name ending in .zip"),
        (["--out", "x", "--csv-sep", ";"], "--csv-sep goes with --excel, not --share"),
    ],
)
def test_share_refusals_say_what_to_do(
    cli: Callable[..., Result],
    swept: Path,
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    ws = swept
    run_id = jobs(ws)[0]["run_id"]
    winners = write_winners(tmp_path / "winners.csv", [jobs(ws)[0]])
    given = ["--winners", str(winners)] if "--no-winners" not in args else []
    args = [str(tmp_path / a) if a == "x" else a for a in args if a != "--no-winners"]
    result = cli("export", run_id, "--share", *given, *args, "--workspace", ws)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "x").exists()


def test_share_refuses_a_non_empty_folder_an_existing_zip_and_winners_alone(
    cli: Callable[..., Result], swept: Path, tmp_path: Path
) -> None:
    ws = swept
    run_id = jobs(ws)[0]["run_id"]
    winners = write_winners(tmp_path / "winners.csv", [jobs(ws)[0]])
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    old = tmp_path / "old.zip"
    old.write_bytes(b"not ours")
    base = ("export", run_id, "--winners", winners, "--workspace", ws)

    result = cli(*base, "--share", "--out", busy)
    assert result.exit_code == 2
    assert f"--out {busy} is a folder that is not empty: give a new or empty folder" in (
        result.output
    )
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    result = cli(*base, "--share", "--out", old)
    assert result.exit_code == 2 and f"--out {old} already exists" in result.output
    assert old.read_bytes() == b"not ours"
    result = cli(*base)
    assert result.exit_code == 2 and "--winners goes with --share" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli(*base, "--share", "--out", empty).exit_code == 0  # an empty folder is fine
    assert (empty / "index.html").is_file()


def test_share_refuses_a_winners_file_of_another_run(
    cli: Callable[..., Result], swept: Path, tmp_path: Path
) -> None:
    ws = swept
    run_id = jobs(ws)[0]["run_id"]
    winners = write_winners(tmp_path / "winners.csv", [jobs(ws)[0]], run_id="other-run")
    out = tmp_path / "share"
    result = cli("export", run_id, "--share", "--winners", winners, "--out", out, "--workspace", ws)
    assert result.exit_code == 2
    assert "this pick is from run other-run" in result.output
    assert not out.exists()
