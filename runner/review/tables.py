"""Tables for pandas and Excel users: jobs and results as CSV, Parquet or JSON files."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("csv", "parquet", "json")


def write_table(rows: Iterable[Mapping[str, object]], path: Path, fmt: str | None = None) -> Path:
    """Write rows to ``path`` as CSV (UTF-8 with BOM, so Excel reads accents), Parquet or
    JSON records; the format comes from ``fmt`` or the file's suffix."""
    return write_tables(rows, [path], fmt)[0]


def write_tables(
    rows: Iterable[Mapping[str, object]], paths: list[Path], fmt: str | None = None
) -> list[Path]:
    """The same rows to several files (one table built in memory for all of them)."""
    import pandas as pd  # here, not at import time: it costs half a second of start-up

    frame = pd.DataFrame.from_records(list(rows))
    for path in paths:
        _write(frame, path, fmt or path.suffix.lstrip(".").lower())
    return paths


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


def _write(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    """Written whole under a temporary name of its own, then renamed: a reader never sees
    half a table, and two writers (a run and `runner report`) never mix theirs."""
    if fmt not in ("csv", "parquet", "pq", "json"):
        raise ValueError(f"unknown table format {fmt!r} (use one of {', '.join(FORMATS)})")
    path.parent.mkdir(parents=True, exist_ok=True)
    with replaced(path) as tmp:
        if fmt == "csv":
            frame.to_csv(tmp, index=False, encoding="utf-8-sig")
        elif fmt == "json":
            frame.to_json(tmp, orient="records", indent=1, force_ascii=False)
        else:
            frame.to_parquet(tmp, index=False)
