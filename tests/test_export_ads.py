"""`runner export RUN --for-ads`: a folder of the chosen videos, each under an ad name that
carries its job key (read back by `key_in_name`, as `runner metrics import` does), with a
manifest for Excel; jobs without a video listed as skipped; refusals that say what to do. Runs
are rendered by the built-in simulator; what each video is comes from the ledger."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from runner.cli import main
from runner.metrics.ads_export import ad_name, slug
from runner.metrics.model import key_in_name

from .runhelp import DEMO
from .test_promote import write_winners
from .test_prune import jobs

SAFE = re.compile(r"^[a-z0-9_]+__[0-9a-f]{16}-(mini|fast|standard)-\d+$")

ODD = """name,prompt,style,aspect_ratio,duration,repeats
Café crème ☕,"A {{ style }} cup of coffee, steam rising",Bold | Soft,16:9 | 9:16,4,2
🎧🔥,Headphones on a desk,Bold,9:16,4,1
"Spring sale spring sale spring sale spring sale spring sale spring sale",A shop,Bold,1:1,4,1
abcdef0123456789-fast-2 remix,A red kite over a beach,Bold,9:16,4,1
"=HYPERLINK(""x"")",A blue kite over a beach,Bold,9:16,4,1
Star,A celebrity waves at the camera,Bold,9:16,4,1
"""


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo (12 videos) rendered once by the built-in simulator."""
    ws = tmp_path_factory.mktemp("ads") / "ws"
    result = invoke("run", DEMO, "--workspace", ws, "--rate", "50")
    assert result.exit_code == 0, result.output
    return ws


@pytest.fixture(scope="module")
def odd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Odd names (accents, emoji only, very long, a key look-alike, a formula), two repeats
    of four variants, a job the simulator fails, and two variants promoted to standard."""
    tmp = tmp_path_factory.mktemp("ads-odd")
    exp, ws = tmp / "odd.csv", tmp / "ws"
    exp.write_text(ODD, encoding="utf-8")
    result = invoke("run", exp, "--workspace", ws, "--rate", "50")
    assert result.exit_code == 1, result.output  # the celebrity prompt fails
    first = jobs(ws)
    picks = ",".join(j["job_key"] for j in first[:3])  # two samples of one variant, another
    result = invoke("promote", first[0]["run_id"], "--pick", picks, "--yes", "--workspace", ws)
    assert result.exit_code == 0, result.output
    return ws


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest(folder: Path) -> list[dict[str, str]]:
    raw = (folder / "manifest.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads it as UTF-8
    with (folder / "manifest.csv").open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def videos(folder: Path) -> dict[str, str]:
    """Job key (read back from the file name as the importer reads it) -> content hash."""
    out: dict[str, str] = {}
    for path in folder.iterdir():
        if path.name == "manifest.csv":
            continue
        key = key_in_name(path.stem)
        assert key is not None and key not in out, path.name
        assert SAFE.match(path.stem) and len(path.name) < 100, path.name
        assert path.stem.endswith(f"__{key}")
        out[key] = digest(path)
    return out


def check_manifest(folder: Path, rows: list[sqlite3.Row]) -> None:
    """One manifest row per file, with the ledger's job, variant, values and prompt."""
    by_key = {r["job_key"]: r for r in rows}
    lines = manifest(folder)
    assert sorted(line["file"] for line in lines) == sorted(
        p.name for p in folder.iterdir() if p.suffix == ".mp4"
    )
    for line in lines:
        job = by_key[line["job_key"]]
        assert line["ad_name"] == Path(line["file"]).stem
        assert key_in_name(line["ad_name"]) == job["job_key"]
        assert (line["variant_key"], line["tier"], line["run_id"]) == (
            job["variant_key"],
            job["tier"],
            job["run_id"],
        )
        assert line["prompt"] == json.loads(job["body_json"])["prompt"]
        values = dict(tuple(p) for p in json.loads(job["values_json"]))
        columns = list(line)
        dims = columns[columns.index("tier") + 1 : columns.index("prompt")]
        assert {"name", "style", "aspect_ratio"} <= set(dims)
        for dim in dims:  # one column per varied dimension (a formula shown as text)
            assert line[dim].removeprefix("'") == values[dim]


def test_demo_export_holds_every_done_video_under_a_name_carrying_its_key(
    cli: Callable[..., Result], demo: Path, tmp_path: Path
) -> None:
    every = jobs(demo)
    run_id = every[0]["run_id"]
    out = tmp_path / "ads"

    result = cli("export", run_id, "--for-ads", "--out", out, "--workspace", demo)

    assert result.exit_code == 0, result.output
    size = sum(j["file_bytes"] for j in every)
    assert f"Wrote 12 video(s) for ads to {out} ({size / 1e6:,.1f} MB, copied" in result.output
    assert "Skipped" not in result.output
    # exactly the done jobs' videos, byte for byte as the ledger recorded them
    assert videos(out) == {j["job_key"]: j["file_sha256"] for j in every}
    assert all(not (out / n).is_symlink() for n in (p.name for p in out.iterdir()))
    assert sorted(p.name for p in out.iterdir() if p.suffix != ".mp4") == ["manifest.csv"]
    check_manifest(out, every)
    # readable words: the name, then the style and the aspect ratio (the product only
    # follows the name, so it is left out)
    for job in every:
        values = dict(tuple(p) for p in json.loads(job["values_json"]))
        words = f"{values['name']}_{values['style']}_{values['aspect_ratio']}"
        words = words.lower().replace(":", "x").replace("-", "_")
        assert (out / f"{words}__{job['job_key']}.mp4").is_file()
    assert (out / f"headphones_cinematic_9x16__{every[1]['job_key']}.mp4").is_file()
    assert list(manifest(out)[0])[:5] == ["ad_name", "file", "job_key", "variant_key", "tier"]
    assert list(manifest(out)[0])[-2:] == ["prompt", "run_id"]


def test_winners_files_choose_the_videos_anything_starred_in_any(
    cli: Callable[..., Result], demo: Path, tmp_path: Path
) -> None:
    every = jobs(demo)
    run_id = every[0]["run_id"]
    ann = write_winners(tmp_path / "ann.csv", [every[1], every[4]])
    bob = write_winners(tmp_path / "bob.csv", [every[4], every[7]], sep=";", bom=True)
    out = tmp_path / "ads"

    result = cli(
        "export", run_id, "--for-ads", "--winners", ann, "--winners", bob, "--out", out,
        "--workspace", demo,
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "Wrote 3 video(s) for ads" in result.output
    chosen = [every[1], every[4], every[7]]
    assert videos(out) == {j["job_key"]: j["file_sha256"] for j in chosen}
    check_manifest(out, chosen)


def test_odd_names_stay_safe_and_unique_and_keep_their_key(
    cli: Callable[..., Result], odd: Path, tmp_path: Path
) -> None:
    every = jobs(odd)
    fast_run, standard_run = every[0]["run_id"], every[-1]["run_id"]
    assert fast_run != standard_run
    names: dict[str, str] = {}
    for run_id in (fast_run, standard_run):
        out = tmp_path / run_id
        result = cli("export", run_id, "--for-ads", "--out", out, "--workspace", odd)
        assert result.exit_code == 0, result.output
        mine = [j for j in every if j["run_id"] == run_id]
        done = [j for j in mine if j["state"] == "done"]
        assert videos(out) == {j["job_key"]: j["file_sha256"] for j in done}
        check_manifest(out, mine)
        for p in out.glob("*.mp4"):
            assert p.stem not in names, p.name  # no name twice across runs
            names[p.stem] = run_id
    # the failed job is listed with why; it is in the fast run only
    failed = next(j for j in every if j["state"] != "done")
    assert failed["run_id"] == fast_run

    stems = set(names)
    first = every[0]  # promoted: its fast and standard renders have distinct names
    promoted = [j for j in every if j["run_id"] == standard_run]
    assert {j["parent_job_key"] for j in promoted} >= {first["job_key"]}
    child = next(j for j in promoted if j["parent_job_key"] == first["job_key"])
    assert child["variant_key"] == first["variant_key"]
    fast_name = f"cafe_creme_bold_16x9__{first['job_key']}"
    assert fast_name in stems and f"cafe_creme_bold_16x9__{child['job_key']}" in stems
    assert f"cafe_creme_bold_16x9__{every[1]['job_key']}" in stems  # the second repeat
    assert every[1]["variant_key"] == first["variant_key"]
    assert any(s.startswith("bold_9x16__") for s in stems)  # the emoji name: its values only
    assert any(s.startswith("spring_sale_spring_sale_spring_sale_bold_1x1__") for s in stems)
    assert any(s.startswith("abcdef0123456789_fast_2_remix_bold_9x16__") for s in stems)


def test_the_failed_job_is_skipped_with_why_and_the_formula_is_text_in_excel(
    cli: Callable[..., Result], odd: Path, tmp_path: Path
) -> None:
    every = jobs(odd)
    run_id = every[0]["run_id"]
    out = tmp_path / "ads"
    result = cli("export", run_id, "--for-ads", "--out", out, "--workspace", odd)
    assert result.exit_code == 0, result.output
    failed = next(j for j in every if j["state"] != "done")
    assert "Skipped 1 of 13 job(s) without a video:" in result.output
    assert f"  {failed['job_key']} Star: failed: Content policy violation." in result.output
    formula = next(r for r in manifest(out) if r["name"].endswith('HYPERLINK("x")'))
    assert formula["name"] == '\'=HYPERLINK("x")'  # csvsafe.to_excel: shown as text


@pytest.mark.parametrize(
    "text",
    [
        "Headphones",
        "Café crème ☕",
        "🎧🔥",
        "漢字だけ",
        "x" * 500,
        "deadbeefdeadbeef-standard-3",  # a key look-alike: the real key, last, wins
        "0123456789abcdef",
        "a__b",
        "9:16 — 16:9",
        "",
    ],
)
@pytest.mark.parametrize("key", ["3f2a9c0d1e4b5a6c-standard-1", "00000000000000ff-fast-12"])
def test_every_name_is_safe_and_short_and_key_in_name_finds_its_key(text: str, key: str) -> None:
    name = ad_name([text, "Bold", "9:16"], key)
    assert SAFE.match(name) and len(name) + len(".mp4") < 100
    assert key_in_name(name) == key
    assert key_in_name(name + ".mp4") == key


@pytest.mark.parametrize(
    "edit",
    [
        lambda n: n + " - Copy",
        lambda n: n.upper(),
        lambda n: n.replace("-", "_"),
        lambda n: n.replace("-", " "),
        lambda n: "Spring " + n.split("__")[1],
    ],
)
def test_the_key_survives_what_platforms_and_people_do_to_a_name(
    edit: Callable[[str], str],
) -> None:
    """What the README promises: renaming the readable part, a " - Copy" suffix, upper
    case, '_' or ' ' in place of the key's '-'."""
    key = "950efe193cc996b9-fast-1"
    assert key_in_name(edit(ad_name(["Headphones", "Cinematic", "9:16"], key))) == key


def test_slug_words() -> None:
    assert slug("Café crème ☕") == "cafe_creme"
    assert slug("16:9") == "16x9" and slug("Offer: 50%") == "offer_50"
    assert slug("E-bike") == "e_bike" and slug("🎧") == ""


def test_a_pruned_or_changed_video_is_skipped_with_why(
    cli: Callable[..., Result], demo: Path, tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(demo, ws)
    every = jobs(ws)
    run_id = every[0]["run_id"]
    keep = write_winners(tmp_path / "keep.csv", every[:2])
    assert cli("prune", run_id, "--keep", keep, "--yes", "--workspace", ws).exit_code == 0
    changed = ws / every[1]["file_path"]
    changed.write_bytes(changed.read_bytes() + b"\0")
    winners = write_winners(tmp_path / "w.csv", every[:3])
    out = tmp_path / "ads"

    result = cli(
        "export", run_id, "--for-ads", "--winners", winners, "--out", out, "--workspace", ws
    )

    assert result.exit_code == 0, result.output
    assert "Wrote 1 video(s) for ads" in result.output
    assert "Skipped 2 of 3 job(s) without a video:" in result.output
    assert f"  {every[1]['job_key']} Headphones: the video file changed since it was rendered" in (
        result.output
    )
    assert f"  {every[2]['job_key']} Headphones: video removed by prune" in result.output
    assert videos(out) == {every[0]["job_key"]: every[0]["file_sha256"]}
    assert [r["job_key"] for r in manifest(out)] == [every[0]["job_key"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "csv", "--out", "x"], "--format does not apply to --for-ads"),
        (["--excel", "--out", "x"], "--excel does not apply to --for-ads"),
        (["--share", "--out", "x"], "--share does not apply to --for-ads"),
        ([], "--for-ads needs --out: a new folder to upload from"),
        (["--out", "x.zip"], "--for-ads writes a folder (ad platforms upload the videos"),
    ],
)
def test_for_ads_refusals_say_what_to_do(
    cli: Callable[..., Result], demo: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    run_id = jobs(demo)[0]["run_id"]
    args = [str(tmp_path / a) if a.startswith("x") else a for a in args]
    result = cli("export", run_id, "--for-ads", *args, "--workspace", demo)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert list(tmp_path.iterdir()) == []


def test_for_ads_refuses_a_non_empty_folder_a_file_and_bad_winners(
    cli: Callable[..., Result], demo: Path, tmp_path: Path
) -> None:
    every = jobs(demo)
    run_id = every[0]["run_id"]
    base = ("export", run_id, "--for-ads", "--workspace", demo, "--out")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    result = cli(*base, busy)
    assert result.exit_code == 2
    assert f"--out {busy} is a folder that is not empty: give a new or empty folder" in (
        result.output
    )
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    file = tmp_path / "file"
    file.write_text("mine")
    result = cli(*base, file)
    assert result.exit_code == 2 and f"--out {file} is a file" in result.output

    other = write_winners(tmp_path / "other.csv", [every[0]], run_id="other-run")
    result = cli(*base, tmp_path / "a", "--winners", other)
    assert result.exit_code == 2 and "this pick is from run other-run" in result.output
    unknown = tmp_path / "unknown.csv"
    unknown.write_text(f"run_id,job_key\n{run_id},{every[0]['job_key']}\n{run_id},ffff0000\n")
    result = cli(*base, tmp_path / "b", "--winners", unknown)
    assert result.exit_code == 2
    assert "unknown.csv:row 3:job_key: no job in run" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "busy", "file", "other.csv", "unknown.csv"
    ]  # fmt: skip

    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli(*base, empty).exit_code == 0  # an empty folder is fine
    assert len(list(empty.glob("*.mp4"))) == 12


def test_share_and_for_ads_count_reviewers_votes_with_min_votes(
    cli: Callable[..., Result], demo: Path, tmp_path: Path
) -> None:
    every = jobs(demo)
    run_id = every[0]["run_id"]
    ann = write_winners(tmp_path / "ann.csv", every[0:2])  # no reviewer column: "ann"
    bob = write_winners(tmp_path / "bob.csv", every[1:3])
    both = ("--winners", ann, "--winners", bob)

    def shared(out: Path) -> set[str]:
        return {p.name for p in (out / "media").glob("*.mp4")}

    def video(job: sqlite3.Row) -> str:
        return Path(job["file_path"]).name

    base = ("export", run_id, "--workspace", demo)
    result = cli(*base, "--share", *both, "--out", tmp_path / "any")
    assert result.exit_code == 0, result.output
    assert shared(tmp_path / "any") == {video(j) for j in every[0:3]}  # starred by anyone
    result = cli(*base, "--share", *both, "--min-votes", "2", "--out", tmp_path / "two")
    assert result.exit_code == 0, result.output
    assert shared(tmp_path / "two") == {video(every[1])}  # the only job both starred
    result = cli(*base, "--for-ads", *both, "--min-votes", "2", "--out", tmp_path / "ads")
    assert result.exit_code == 0, result.output
    ads = list((tmp_path / "ads").glob("*.mp4"))
    assert len(ads) == 1 and ads[0].stem.endswith("__" + every[1]["job_key"])

    result = cli(*base, "--share", *both, "--min-votes", "3", "--out", tmp_path / "three")
    assert result.exit_code == 2
    assert f"no job was starred by 3 or more of the 2 reviewer(s) in {ann}, {bob}" in (
        " ".join(result.output.split())  # as given: two files may share a name
    )
    result = cli(*base, "--for-ads", "--min-votes", "2", "--out", tmp_path / "none")
    assert result.exit_code == 2 and "--min-votes counts the reviewers' stars" in result.output
    assert not (tmp_path / "three").exists() and not (tmp_path / "none").exists()
