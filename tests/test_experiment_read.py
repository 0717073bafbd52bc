"""Experiments come from real spreadsheets: Excel CSVs (BOM, CRLF, semicolons), Google Sheets
CSVs, tab-separated exports, multi-line quoted cells, and Parquet files with list columns."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from runner.grid.experiment import load
from runner.grid.sheet import read_sheet


def test_excel_csv_with_bom_crlf_and_semicolons(write: Callable[..., Path]) -> None:
    data = "\ufeffPrompt;Duration;Aspect_Ratio\r\nA cat; 8 ;9:16\r\n".encode()
    sheet = read_sheet(write("excel.csv", data))

    assert sheet.columns == ("prompt", "duration", "aspect_ratio")
    assert sheet.rows == ((2, {"prompt": "A cat", "duration": " 8 ", "aspect_ratio": "9:16"}),)


def test_tab_separated_and_column_names_are_case_and_space_insensitive(
    write: Callable[..., Path],
) -> None:
    exp = load(write("tabs.tsv", " PROMPT \tProduct Name\nA {{ product_name }}\tlamp\n"))

    assert exp.variants[0].request.prompt == "A lamp"


def test_quoted_multiline_cells_keep_their_newlines_and_row_numbers_follow_records(
    write: Callable[..., Path],
) -> None:
    text = 'prompt,duration\r\n"Line one\r\nline two, with a comma",5\r\nA dog,3\r\n'

    with pytest.raises(Exception) as info:
        load(write("multi.csv", text))

    # the bad duration is on spreadsheet row 3 even though it is on file line 4
    assert str(info.value).endswith(
        "multi.csv:row 3:duration: 3 is below the minimum 4 (allowed 4–15)"
    )
    exp = load(write("multi_ok.csv", text.replace(",3", ",4")))
    assert exp.variants[0].request.prompt == "Line one\nline two, with a comma"


def test_blank_rows_are_skipped(write: Callable[..., Path]) -> None:
    exp = load(write("blank.csv", "prompt,duration\nA cat,5\n,\n,,\n\nA dog,5\n"))

    assert [v.row for v in exp.variants] == [2, 6]


def test_parquet_with_list_columns_for_urls_and_lists_as_axes(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "prompt": ["Animate @image1", "A {{ thing }}"],
            "image_urls": [["https://cdn.example/a.png", "https://cdn.example/b.png"], None],
            "duration": [5, 6],
            "thing": [None, "lamp"],
            "aspect_ratio": [["16:9", "9:16"], ["1:1"]],
        }
    )
    path = tmp_path / "grid.parquet"
    frame.to_parquet(path)

    exp = load(path)

    first = [v.request for v in exp.variants if v.row == 2]
    assert {r.aspect_ratio for r in first} == {"16:9", "9:16"}
    assert all(r.mode == "image" for r in first)
    assert first[0].image_urls == ("https://cdn.example/a.png", "https://cdn.example/b.png")
    second = [v.request for v in exp.variants if v.row == 3]
    assert [(r.prompt, r.mode, r.duration) for r in second] == [("A lamp", "text", 6)]


def test_parquet_suffix_is_not_needed_the_magic_bytes_decide(tmp_path: Path) -> None:
    path = tmp_path / "grid.data"
    pd.DataFrame({"prompt": ["A cat"]}).to_parquet(path)

    assert load(path).variants[0].request.prompt == "A cat"


def test_a_cell_bigger_than_the_csv_modules_default_limit_is_read(
    write: Callable[..., Path],
) -> None:
    takes = " | ".join(f"take number {i}" for i in range(12_000))  # about 200 kB in one cell
    exp = load(write("big.csv", f"prompt,take\nA {{{{ take }}}},{takes}\n"))

    assert len(exp.variants) == 12_000
