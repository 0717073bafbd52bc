"""Bad input is refused before anything is spent, with every problem named by file, row and
column in plain words. The corpus lives in tests/corpus/bad: NAME.csv (or .xlsx) is the input,
NAME.expected the exact lines printed after the 'Error: N problems found' line, NAME.args any
extra command-line arguments, NAME.toml a sidecar."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import Result

CORPUS = Path(__file__).parent / "corpus" / "bad"
CASES = sorted(p for p in CORPUS.iterdir() if p.suffix in {".csv", ".xlsx"})
# fault-matrix rows (docs/reliability.md §7.3) beyond B1, the malformed grid
ROWS = {"templates": ("B1", "B4"), "urls": ("B1", "B5")}


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(p, marks=pytest.mark.fault(*ROWS.get(p.stem, ("B1",))), id=p.stem)
        for p in CASES
    ],
)
def test_bad_input_is_refused_with_exact_messages(
    source: Path, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    for sibling in CORPUS.glob(source.stem + ".*"):
        shutil.copy(sibling, tmp_path / sibling.name)
    args_file = CORPUS / (source.stem + ".args")
    extra = args_file.read_text().split() if args_file.exists() else []
    expected = (CORPUS / (source.stem + ".expected")).read_text("utf-8").splitlines()

    result = cli("plan", tmp_path / source.name, *extra)

    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    count = len(expected)
    assert lines[0] == f"Error: {count} problem{'s' if count != 1 else ''} found; nothing was sent:"
    assert lines[1:] == expected
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_every_corpus_case_has_its_expected_messages() -> None:
    for source in CASES:
        assert (CORPUS / (source.stem + ".expected")).read_text().strip(), source.name


@pytest.mark.fault("B1")
def test_many_problems_are_all_reported_but_the_listing_is_capped(
    write: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    rows = "\n".join(f"A cat number {i},3" for i in range(120))
    path = write("many.csv", "prompt,duration\n" + rows + "\n")

    result = cli("plan", path)

    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "Error: 120 problems found; nothing was sent:"
    assert lines[1] == "many.csv:row 2:duration: 3 is below the minimum 4 (allowed 4–15)"
    assert lines[-1] == "... and 70 more problem(s) of the same kinds"


@pytest.mark.fault("B1")
def test_an_axis_value_and_the_tier_are_checked_per_combination(
    write: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    path = write("axis.csv", "prompt,quality,duration\nA cat,720p | 1080p,5 | 20\n")

    result = cli("plan", path)

    assert result.stderr.splitlines()[1:] == [
        "axis.csv:row 2:duration: 20 is above the maximum 15 (allowed 4–15)",
        "axis.csv:row 2:quality: 1080p is only available on the standard tier "
        "(fast allows 480p, 720p); use --tier standard or choose 720p",
    ]


def test_missing_file_and_bad_set_flag_are_usage_errors(
    tmp_path: Path, write: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    missing = cli("plan", tmp_path / "nope.csv")
    assert missing.exit_code == 2
    assert "nope.csv: file not found" in missing.stderr

    path = write("ok.csv", "prompt\nA cat\n")
    bad_set = cli("plan", path, "--set", "duration")
    assert bad_set.exit_code == 2
    assert "--set: 'duration' must look like column=value (e.g. duration=8)" in bad_set.stderr

    bad_value = cli("plan", path, "--set", "duration=2")
    assert "--set:duration: 2 is below the minimum 4 (allowed 4–15)" in bad_value.stderr


def test_a_set_problem_names_set_once_not_every_row_of_the_file(
    write: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    rows = "\n".join(f"A cat number {i},https://cdn.example.com/{i}.png" for i in range(40))
    path = write("forty.csv", "prompt,image_urls\n" + rows + "\nA plain dog,\n")

    duration = cli("plan", path, "--set", "duration=2")
    quality = cli("plan", path, "--set", "quality=1080p")
    prompt = cli("plan", path, "--set", "prompt=A {{ nope }}")
    typo = cli("plan", path, "--set", "modle=x")
    search = cli("plan", path, "--set", "web_search=true")

    assert duration.exit_code == quality.exit_code == prompt.exit_code == 2
    assert duration.stderr.splitlines()[1:] == [
        "--set:duration: 2 is below the minimum 4 (allowed 4–15)"
    ]
    assert quality.stderr.splitlines()[1:] == [
        "--set:quality: 1080p is only available on the standard tier (fast allows 480p, "
        "720p); use --tier standard or choose 720p"
    ]
    assert prompt.stderr.splitlines()[1:] == [
        "--set:prompt: the prompt uses {{ nope }} but there is no such column "
        "(your columns: none; names are lower case)"
    ]
    assert typo.stderr.splitlines()[1].startswith("--set:modle: unknown column; did you mean")
    # a flag that breaks only some rows says which
    assert search.stderr.splitlines()[1:] == [
        "--set:web_search: web search works in text mode only (in rows 2–41 of forty.csv)"
    ]


def test_text_direction_characters_are_refused_from_set_parquet_and_templates(
    tmp_path: Path, write: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    path = write("ok.csv", "prompt\nA cat\nA {{ '\\u2067' }} dog\n")
    parquet = tmp_path / "p.parquet"
    pd.DataFrame({"prompt": ["A \u202ecat"], "name": ["b\u2068"]}).to_parquet(parquet)

    flagged = cli("plan", path, "--set", "name=Ad \u202e4pm.exe")
    listed = cli("plan", parquet)

    assert flagged.exit_code == listed.exit_code == 2
    lines = flagged.stderr.splitlines()[1:]
    assert [line.split(" contains")[0] for line in lines] == [
        "--set:name: the name",
        "ok.csv:row 3:prompt: the prompt",
    ]
    assert "(U+202E RIGHT-TO-LEFT OVERRIDE)" in lines[0] and "U+2067" in lines[1]
    assert [line.split(" contains")[0] for line in listed.stderr.splitlines()[1:]] == [
        "p.parquet:row 2:name: the name",
        "p.parquet:row 2:prompt: the prompt",
    ]
