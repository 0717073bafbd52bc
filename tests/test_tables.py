"""The results tables written a chunk at a time (`runner.review.tables`)."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow.parquet as pq

from runner.review.tables import ColumnTypes, write_tables


def test_rows_that_changed_since_their_types_were_found_still_write_every_table(
    tmp_path: Path,
) -> None:
    """A report built while a run writes the ledger may find a value in its second read
    where the first saw none (or a float where it saw ints): the tables are written, the
    text column keeps the new value and the typed ones leave it empty."""
    types = ColumnTypes.of(
        [{"job": "a", "latency_s": None, "attempts": 1, "state": "running"}],
    )
    later = [
        {"job": "a", "latency_s": 12.5, "attempts": 1.5, "state": "done"},
        {"job": "b", "latency_s": None, "attempts": 2, "state": "done"},
    ]
    parquet, text = tmp_path / "r.parquet", tmp_path / "r.csv"

    write_tables(iter(later), [parquet, text], types=types)

    table = pq.read_table(parquet).to_pylist()
    assert table == [
        {"job": "a", "latency_s": None, "attempts": None, "state": "done"},
        {"job": "b", "latency_s": None, "attempts": 2, "state": "done"},
    ]
    with text.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["state"] for r in rows] == ["done", "done"]
    assert [r["attempts"] for r in rows] == ["", "2"]
