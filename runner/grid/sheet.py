"""Reading experiment files: CSV or Parquet sheets, the sidecar TOML and ``--set`` pairs.

Everything comes out as plain Python values (pandas stays in this package's reading code):
normalized column names, and cells as str / int / float / bool / list[str] / None. Problems
carry the file name and the spreadsheet row (the header is row 1).
"""

from __future__ import annotations

import csv
import io
import math
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import params
from ..errors import ExperimentError, Problem

Cell = str | int | float | bool | list[str] | None


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Sheet:
    """A read experiment: normalized column names and the non-empty rows, as plain values."""

    name: str  # file name used in messages
    columns: tuple[str, ...]
    rows: tuple[tuple[int, dict[str, Cell]], ...]  # (spreadsheet row, column -> cell)
    # Parquet has list cells for axes, so its strings are literal; CSV writes axes as a | b
    split_strings: bool = True


def normalize_column(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def read_sheet(path: Path) -> Sheet:
    """Read a CSV or Parquet experiment into plain values, or raise ExperimentError."""
    name = path.name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ExperimentError([Problem(name, None, None, f"file not found: {path}")]) from None
    except IsADirectoryError:
        raise ExperimentError([Problem(name, None, None, "is a folder, not a file")]) from None
    suffix = path.suffix.lower()
    if data.startswith(b"PAR1") or suffix in {".parquet", ".pq"}:
        return _read_parquet(path, name)
    if data.startswith(b"PK\x03\x04") or suffix in {".xlsx", ".xls", ".ods", ".numbers"}:
        raise ExperimentError(
            [
                Problem(
                    name,
                    None,
                    None,
                    "spreadsheet workbooks are not read directly; save the sheet as CSV "
                    "(in Excel: File > Save As > CSV UTF-8) or as Parquet",
                )
            ]
        )
    return _read_csv(data, name)


def _read_csv(data: bytes, name: str) -> Sheet:
    columns, rows, problems = csv_table(data, name, "a header row with a 'prompt' column")
    _finish(name, columns, rows, problems)
    return Sheet(name, tuple(columns), tuple(rows))


def csv_table(
    data: bytes, name: str, needs: str
) -> tuple[list[str], list[tuple[int, dict[str, Cell]]], list[Problem]]:
    """A CSV as normalized column names and non-empty rows (spreadsheet row, cells), plus the
    problems of its rows. UTF-8 with or without BOM; the delimiter (, ; tab) is the one the
    header uses most. Raises ExperimentError when the file as a whole is unusable."""
    empty = ExperimentError([Problem(name, None, None, f"the file is empty; it needs {needs}")])
    if not data.strip():
        raise empty
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise ExperimentError(
            [
                Problem(
                    name,
                    None,
                    None,
                    f"this is not a CSV text file (binary NUL byte on line {line}); "
                    "save it as CSV UTF-8 or Parquet",
                )
            ]
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ExperimentError(
            [
                Problem(
                    name,
                    None,
                    None,
                    f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
                    "save it as 'CSV UTF-8' (Excel: File > Save As > CSV UTF-8)",
                )
            ]
        ) from None
    if not text.strip():  # only a byte-order mark: what Excel saves for an empty sheet
        raise empty
    header_line = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=lambda d: (header_line.count(d), d == ","))
    # the csv module refuses cells over 128 KiB by default; a cell of many axis values or a
    # long list of URLs can be bigger, and the file is already in memory anyway
    csv.field_size_limit(max(csv.field_size_limit(), len(data)))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    problems: list[Problem] = []
    try:
        records = list(reader)
    except csv.Error as exc:
        raise ExperimentError(
            [
                Problem(
                    name, reader.line_num, None, f"the CSV is malformed ({exc}); check the quotes"
                )
            ]
        ) from None
    header = records[0]
    columns = _check_header(name, header, problems)
    rows: list[tuple[int, dict[str, Cell]]] = []
    for index, record in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in record):
            continue
        if len(record) > len(header) and any(c.strip() for c in record[len(header) :]):
            problems.append(
                Problem(
                    name,
                    index,
                    None,
                    f"has {len(record)} cells but the header has {len(header)}; a value containing "
                    f"'{delimiter}' must be put in double quotes",
                )
            )
            continue
        cells: dict[str, Cell] = {}
        for col, value in zip(columns, record, strict=False):
            cells[col] = value.replace("\r\n", "\n").replace("\r", "\n")
        rows.append((index, cells))
    if not rows and problems:  # every row was malformed: "no rows" would mislead
        raise ExperimentError(problems)
    return columns, rows, problems


def _read_parquet(path: Path, name: str) -> Sheet:
    import pandas as pd
    import pyarrow

    try:
        frame = pd.read_parquet(path)
    except (pyarrow.ArrowException, OSError, ValueError) as exc:
        raise ExperimentError(
            [Problem(name, None, None, f"this is not a readable Parquet file ({exc})")]
        ) from None
    problems: list[Problem] = []
    columns = _check_header(name, [str(c) for c in frame.columns], problems)
    rows: list[tuple[int, dict[str, Cell]]] = []
    for index, record in enumerate(frame.itertuples(index=False, name=None), start=2):
        cells = {col: _plain(value) for col, value in zip(columns, record, strict=True)}
        if all(v is None or v == "" for v in cells.values()):
            continue
        rows.append((index, cells))
    _finish(name, columns, rows, problems)
    return Sheet(name, tuple(columns), tuple(rows), split_strings=False)


def _plain(value: object) -> Cell:
    """A pandas/numpy/pyarrow cell as a plain Python value (None for missing)."""
    if value is None:
        return None
    if isinstance(value, str | bool):
        return value
    if hasattr(value, "tolist") and not isinstance(value, int | float):
        value = value.tolist()
    if isinstance(value, list | tuple):
        return [str(v) for v in value if v is not None]
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    import pandas as pd

    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def _check_header(name: str, header: Sequence[str], problems: list[Problem]) -> list[str]:
    columns = [normalize_column(h) for h in header]
    seen: dict[str, str] = {}
    for raw, col in zip(header, columns, strict=True):
        if not col:
            continue
        if col in seen:
            problems.append(
                Problem(
                    name,
                    1,
                    col,
                    f"the column appears twice ('{seen[col]}' and '{raw.strip()}'); keep one",
                )
            )
        seen.setdefault(col, raw.strip())
    return columns


def _finish(
    name: str,
    columns: list[str],
    rows: list[tuple[int, dict[str, Cell]]],
    problems: list[Problem],
) -> None:
    if "prompt" not in columns:
        found = ", ".join(c for c in columns if c) or "none"
        problems.append(
            Problem(name, 1, None, f"there is no 'prompt' column (columns found: {found})")
        )
    elif not rows:
        problems.append(Problem(name, None, None, "there are no rows under the header"))
    for _, cells in rows:
        cells.pop("", None)
    if problems:
        raise ExperimentError(problems)


# --------------------------------------------------------------------------- sidecar


@dataclass(frozen=True)
class Sidecar:
    name: str
    defaults: dict[str, Cell] = field(default_factory=dict)
    axes: dict[str, list[Cell]] = field(default_factory=dict)


def read_sidecar(experiment: Path) -> Sidecar | None:
    """``EXP.toml`` beside the experiment (same stem), if present."""
    path = experiment.with_suffix(".toml")
    if not path.is_file():
        return None
    name = path.name
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ExperimentError([Problem(name, None, None, f"not valid TOML ({exc})")]) from None
    problems: list[Problem] = []
    for key in data:
        if key not in ("defaults", "axes"):
            problems.append(
                Problem(name, None, f"[{key}]", "unknown section; use [defaults] and [axes]")
            )
    defaults: dict[str, Cell] = {}
    for key, value in _table(data, "defaults", name, problems).items():
        col = normalize_column(key)
        if isinstance(value, list) and col not in params.TABLE.media:
            problems.append(
                Problem(
                    name,
                    None,
                    f"[defaults]:{col}",
                    "holds several values; put lists under [axes] to try each of them",
                )
            )
            continue
        defaults[col] = _toml_cell(value, name, f"[defaults]:{col}", problems)
    axes: dict[str, list[Cell]] = {}
    for key, value in _table(data, "axes", name, problems).items():
        col = normalize_column(key)
        if not isinstance(value, list) or not value:
            problems.append(
                Problem(name, None, f"[axes]:{col}", "must be a non-empty list, like [5, 10]")
            )
            continue
        axes[col] = [_toml_cell(v, name, f"[axes]:{col}", problems) for v in value]
    if problems:
        raise ExperimentError(problems)
    return Sidecar(name, defaults, axes)


def _table(data: dict[str, Any], key: str, name: str, problems: list[Problem]) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        problems.append(Problem(name, None, f"[{key}]", "must be a table of column = value"))
        return {}
    return value


def _toml_cell(value: object, name: str, where: str, problems: list[Problem]) -> Cell:
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [str(v) for v in value]
    problems.append(Problem(name, None, where, f"{value!r} is not a plain value"))
    return None


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """``--set column=value`` pairs (later ones win)."""
    out: dict[str, str] = {}
    problems: list[Problem] = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            problems.append(
                Problem(
                    "--set", None, None, f"{item!r} must look like column=value (e.g. duration=8)"
                )
            )
            continue
        out[normalize_column(key)] = value.strip()
    if problems:
        raise ExperimentError(problems)
    return out
