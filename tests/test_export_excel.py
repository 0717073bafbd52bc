"""`runner export RUN --excel`: a CSV for Excel (BOM, the separator asked for, every text cell
that Excel would run as a formula neutralised) that pandas + csvsafe.from_excel read back
exactly; the plain results.csv stays exact. Prompts come from a real run of the built-in
simulator, compared with the experiment file they were typed in."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import Result

from runner.review.csvsafe import from_excel
from runner.review.tables import write_excel_csv

PROMPTS = {
    "formula": "=1+1",
    "minus": "-5",
    "at": "@SUM(A1)",
    "quote": "'quoted",
    "plus": "+33 1 23 45 67 89",
    "plain": 'plain, with comma; semicolon "quoted"',
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One job per prompt above, rendered by the built-in simulator."""
    from click.testing import CliRunner

    from runner.cli import main

    tmp = tmp_path_factory.mktemp("excel")
    exp = tmp / "e.csv"
    with exp.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "prompt", "duration"])
        for name, prompt in PROMPTS.items():
            writer.writerow([name, prompt, 4])
    ws = tmp / "ws"
    result = CliRunner().invoke(main, ["run", str(exp), "--workspace", str(ws), "--rate", "50"])
    assert result.exit_code == 0, result.output
    run_id = next(p.name for p in ws.iterdir() if (p / "index.html").is_file())
    return ws, run_id


def read_back(path: Path, sep: str) -> pd.DataFrame:
    """As a careful pandas user reads the Excel file: text as written, then unmarked."""
    frame = pd.read_csv(path, sep=sep, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    return frame.map(from_excel)


@pytest.mark.parametrize(("flag", "sep"), [(None, ","), (";", ";"), ("tab", "\t")])
def test_excel_csv_has_a_bom_the_separator_and_reads_back_exactly(
    cli: Callable[..., Result], run: tuple[Path, str], tmp_path: Path, flag: str | None, sep: str
) -> None:
    ws, run_id = run
    out = tmp_path / "for-excel.csv"
    args = ["export", run_id, "--excel", "--out", out, "--workspace", ws]
    result = cli(*args, *(["--csv-sep", flag] if flag else []))
    assert result.exit_code == 0, result.output
    assert f"Wrote {out}" in result.output

    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    header = text.splitlines()[0]
    plain = pd.read_csv(ws / run_id / "results.csv", dtype=str, keep_default_na=False)
    assert header == sep.join(plain.columns)  # the same columns as results.csv
    cells = list(csv.reader(io.StringIO(text), delimiter=sep))
    prompt_at = cells[0].index("prompt")
    written = {row[cells[0].index("name")]: row[prompt_at] for row in cells[1:]}
    assert written == {
        "formula": "'=1+1",
        "minus": "'-5",
        "at": "'@SUM(A1)",
        "quote": "''quoted",
        "plus": "'+33 1 23 45 67 89",
        "plain": PROMPTS["plain"],
    }  # no cell a spreadsheet would run

    back = read_back(out, sep)
    assert dict(zip(back["name"], back["prompt"], strict=True)) == PROMPTS
    if sep != ",":  # European Excel: decimal commas (a point would read 12.5 as 12 May)
        floats = pd.read_csv(ws / run_id / "results.csv").select_dtypes("float").columns
        assert len(floats) and any(plain[c].str.contains(".", regex=False).any() for c in floats)
        for c in floats:
            plain[c] = plain[c].str.replace(".", ",", regex=False)
    assert back.equals(plain)  # every cell, once unmarked, as the exact results.csv has it


def test_numbers_stay_numbers_and_only_text_cells_are_marked(tmp_path: Path) -> None:
    path = write_excel_csv(
        [{"credits": -5, "latency": -0.5, "prompt": "-5", "ok": True}], tmp_path / "x.csv", ";"
    )
    assert (
        path.read_bytes().decode("utf-8-sig") == "credits;latency;prompt;ok\r\n-5;-0,5;'-5;True\r\n"
    )
    frame = pd.read_csv(path, sep=";", encoding="utf-8-sig", decimal=",")
    assert frame["credits"].tolist() == [-5] and frame["latency"].tolist() == [-0.5]
    path = write_excel_csv([{"latency": 12.5, "tiny": 1e-05}], tmp_path / "y.csv", ",")
    assert path.read_bytes().decode("utf-8-sig") == "latency,tiny\r\n12.5,1e-05\r\n"


def test_plain_results_csv_and_parquet_stay_exact(
    cli: Callable[..., Result], run: tuple[Path, str], tmp_path: Path
) -> None:
    ws, run_id = run
    csv_path, parquet = tmp_path / "r.csv", tmp_path / "r.parquet"
    assert cli("export", run_id, "--out", csv_path, "--workspace", ws).exit_code == 0
    assert (
        cli("export", run_id, "--format", "parquet", "--out", parquet, "--workspace", ws).exit_code
        == 0
    )
    plain = pd.read_csv(csv_path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert dict(zip(plain["name"], plain["prompt"], strict=True)) == PROMPTS
    table = pd.read_parquet(parquet)
    assert dict(zip(table["name"], table["prompt"], strict=True)) == PROMPTS


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--excel", "--format", "parquet"], "--excel always writes CSV: leave --format out"),
        (["--csv-sep", ";"], "--csv-sep goes with --excel"),
        (["--excel", "--share"], "--share and --excel are separate exports"),
        (["--excel", "--csv-sep", "|"], "'|' is not one of ',', ';', 'tab'"),
    ],
)
def test_excel_refusals_say_what_to_do(
    cli: Callable[..., Result], run: tuple[Path, str], args: list[str], message: str
) -> None:
    ws, run_id = run
    result = cli("export", run_id, *args, "--workspace", ws)
    assert result.exit_code == 2
    assert message in result.output


def test_excel_out_that_is_a_folder_is_refused(
    cli: Callable[..., Result], run: tuple[Path, str], tmp_path: Path
) -> None:
    ws, run_id = run
    result = cli("export", run_id, "--excel", "--out", tmp_path, "--workspace", ws)
    assert result.exit_code == 2
    assert f"--out {tmp_path} is a folder: give a file name" in result.output
