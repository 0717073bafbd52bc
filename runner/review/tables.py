"""Tables for pandas and Excel users: jobs and results as CSV, Parquet or JSON files.

CSV and Parquet are written a chunk of rows at a time (a 100,000-job run's results never
sit in memory as one table): the column types are found first (`ColumnTypes`, from the rows
or from a pass the caller already made), then each chunk goes to a `csv.writer` and to a
`pyarrow.parquet.ParquetWriter`.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow.parquet as pq

FORMATS = ("csv", "parquet", "json")
CHUNK = 5_000  # rows per Parquet row group / CSV write


class ColumnTypes:
    """The columns of a stream of rows (in first-seen order) and the Python types each
    holds, so that a table can be typed before it is written a chunk at a time."""

    def __init__(self) -> None:
        self.seen: dict[str, set[type]] = {}

    @classmethod
    def of(cls, rows: Iterable[Mapping[str, object]]) -> ColumnTypes:
        types = cls()
        for row in rows:
            types.observe(row)
        return types

    def observe(self, row: Mapping[str, object]) -> None:
        seen = self.seen
        for key, value in row.items():
            kinds = seen.get(key)
            if kinds is None:
                kinds = seen[key] = set()
            if value is not None:
                kinds.add(type(value))

    @property
    def columns(self) -> list[str]:
        return list(self.seen)

    def kind(self, column: str) -> str:
        """null, bool, int, float or str (anything else, or a mix, is written as text)."""
        kinds = self.seen[column]
        if not kinds:
            return "null"
        if kinds == {bool}:
            return "bool"
        if kinds == {int}:
            return "int"
        if kinds <= {int, float}:
            return "float"
        return "str"


def write_table(rows: Iterable[Mapping[str, object]], path: Path, fmt: str | None = None) -> Path:
    """Write rows to ``path`` as CSV (UTF-8 with BOM, so Excel reads accents), Parquet or
    JSON records; the format comes from ``fmt`` or the file's suffix."""
    return write_tables(rows, [path], fmt)[0]


def write_tables(
    rows: Iterable[Mapping[str, object]],
    paths: list[Path],
    fmt: str | None = None,
    types: ColumnTypes | None = None,
) -> list[Path]:
    """The same rows to several files, a chunk at a time. ``types``: the rows' column types
    when the caller has seen them all already (then ``rows`` is read once, and may be a
    generator); without it the rows are read twice (a generator is listed first)."""
    formats = [_format(path, fmt) for path in paths]
    if types is None:
        if not isinstance(rows, Sequence):
            rows = list(rows)
        types = ColumnTypes.of(rows)
    if "json" in formats:  # `runner export --format json` only: a list already
        rows = list(rows)
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        sinks: list[_Sink] = []
        for path, kind in zip(paths, formats, strict=True):
            tmp = stack.enter_context(replaced(path))
            if kind == "csv":
                sinks.append(
                    _Csv(
                        stack.enter_context(tmp.open("w", encoding="utf-8-sig", newline="")), types
                    )
                )
            elif kind == "parquet":
                sinks.append(stack.enter_context(_Parquet(tmp, types)))
            else:
                _write_json(rows, tmp)
        columns = types.columns
        coerce = [_coercer(types.kind(c)) for c in columns]
        chunk: list[list[Any]] = []
        for row in rows:
            chunk.append([f(row.get(c)) for c, f in zip(columns, coerce, strict=True)])
            if len(chunk) >= CHUNK:
                for sink in sinks:
                    sink.write(chunk)
                chunk = []
        for sink in sinks:
            sink.write(chunk)
    return paths


def write_excel_csv(rows: Iterable[Mapping[str, object]], path: Path, sep: str = ",") -> Path:
    """Rows as a CSV meant for Excel (`runner export --excel`): the columns of results.csv,
    UTF-8 with BOM, ``sep`` between cells, and every text cell through `csvsafe.to_excel`, so
    that no cell runs as a formula (read back exactly with `csvsafe.from_excel`). With ``;``
    or a tab (for Excel set to a European language, whose decimal mark is a comma) a decimal
    number is written with a comma, ``12,5``: with a point that Excel reads ``12.5`` as the
    date 12 May. Only cells of number columns: a number in a column that also holds text is
    text, written as it is. Written a chunk at a time, like `write_tables`."""
    from .csvsafe import to_excel

    if not isinstance(rows, Sequence):
        rows = list(rows)
    types = ColumnTypes.of(rows)
    columns = types.columns
    kinds = [types.kind(c) for c in columns]
    coerce = [_coercer(k) for k in kinds]
    comma = sep != ","  # ";" or tab: for an Excel whose decimal mark is a comma
    path.parent.mkdir(parents=True, exist_ok=True)
    with replaced(path) as tmp, tmp.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, delimiter=sep, lineterminator="\r\n")
        writer.writerow([to_excel(c) for c in columns])
        chunk: list[list[Any]] = []
        for row in rows:
            cells = [f(row.get(c)) for c, f in zip(columns, coerce, strict=True)]
            chunk.append(
                [
                    to_excel(v)
                    if k == "str" and isinstance(v, str)
                    else repr(v).replace(".", ",")
                    if comma and isinstance(v, float)
                    else v
                    for v, k in zip(cells, kinds, strict=True)
                ]
            )
            if len(chunk) >= CHUNK:
                writer.writerows(chunk)
                chunk = []
        writer.writerows(chunk)
    return path


def _format(path: Path, fmt: str | None) -> str:
    kind = (fmt or path.suffix.lstrip(".")).lower()
    if kind not in ("csv", "parquet", "pq", "json"):
        raise ValueError(f"unknown table format {kind!r} (use one of {', '.join(FORMATS)})")
    return "parquet" if kind == "pq" else kind


def _coercer(kind: str) -> Any:
    """A cell as its column's type. A value the types were not found on (a second read of a
    ledger that a running run changed meanwhile) becomes text in a text column and empty in
    the others: the table is written, and the report at the run's end is exact."""
    if kind == "null":
        return lambda v: None
    if kind == "bool":
        return lambda v: v if isinstance(v, bool) else None
    if kind == "int":
        return lambda v: v if isinstance(v, int) and not isinstance(v, bool) else None
    if kind == "float":
        return lambda v: (
            float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
        )
    if kind == "str":
        return lambda v: (
            None
            if v is None
            else v
            if isinstance(v, str)
            else json.dumps(v, ensure_ascii=False)
            if isinstance(v, list | dict)
            else str(v)
        )
    raise ValueError(f"unknown column kind {kind!r}")


class _Sink:
    def write(self, chunk: list[list[Any]]) -> None:
        raise NotImplementedError


class _Csv(_Sink):
    """Excel-friendly CSV: a header, empty cells for missing values, True/False."""

    def __init__(self, handle: IO[str], types: ColumnTypes) -> None:
        self.writer = csv.writer(handle, lineterminator="\n")
        self.writer.writerow(types.columns)

    def write(self, chunk: list[list[Any]]) -> None:
        self.writer.writerows(chunk)


class _Parquet(_Sink):
    def __init__(self, path: Path, types: ColumnTypes) -> None:
        import pyarrow as pa  # here, not at import time: start-up cost

        self.pa = pa
        arrow = {
            "null": pa.null(),
            "bool": pa.bool_(),
            "int": pa.int64(),
            "float": pa.float64(),
            "str": pa.string(),
        }
        self.schema = pa.schema([(c, arrow[types.kind(c)]) for c in types.columns])
        self.path = path
        self.writer: pq.ParquetWriter | None = None
        self.empty = True

    def __enter__(self) -> _Parquet:
        import pyarrow.parquet as pq

        self.writer = pq.ParquetWriter(self.path, self.schema)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.writer is not None
        if self.empty:  # a table of no rows still has its columns
            self.writer.write_table(self.schema.empty_table())
        self.writer.close()

    def write(self, chunk: list[list[Any]]) -> None:
        if not chunk:
            return
        assert self.writer is not None
        pa = self.pa
        arrays = [
            pa.array([row[i] for row in chunk], type=field.type)
            for i, field in enumerate(self.schema)
        ]
        self.writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=self.schema))
        self.empty = False


def _write_json(rows: Iterable[Mapping[str, object]], path: Path) -> None:
    import pandas as pd

    pd.DataFrame.from_records(list(rows)).to_json(
        path, orient="records", indent=1, force_ascii=False
    )


@contextlib.contextmanager
def replaced(path: Path) -> Iterator[Path]:
    """A temporary path of its own beside ``path`` (same suffix), renamed over ``path`` when
    the block ends: a reader never sees half a file, and two writers (a run and `runner
    report`) never mix theirs."""
    tmp = path.with_name(f".tmp-{os.getpid()}-{secrets.token_hex(4)}-{path.name}")
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
