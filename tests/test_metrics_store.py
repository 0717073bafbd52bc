"""Imported figures are summed per video over imports, for every run holding its key."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from click.testing import CliRunner

from runner.cli import main
from runner.metrics.model import AdTotals
from runner.metrics.store import imports_for_run, totals_by_job
from runner.run.ledger import reader

from .runhelp import grid, simulator


def test_imports_add_up_per_video_in_every_run_holding_it(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    exp = grid(tmp_path / "g.csv", 2)
    with simulator(speed=1000.0) as url:
        for extra in ((), ("--no-reuse",)):  # a second run reusing the videos, then not
            result = CliRunner().invoke(
                main, ["run", str(exp), "--base-url", url, "--workspace", str(ws), *extra]
            )
            assert result.exit_code == 0, result.output
    with sqlite3.connect(ws / "ledger.sqlite") as db:
        runs = [r for (r,) in db.execute("SELECT run_id FROM runs ORDER BY created_at")]
        first, second = sorted({k for (k,) in db.execute("SELECT job_key FROM jobs")})
        for i, (name, split) in enumerate((("meta.csv", 0), ("tiktok.csv", 1)), start=1):
            db.execute(
                "INSERT INTO metric_imports VALUES (?, ?, 'x', ?, ?, ?, 1, 1, 0)",
                (i, name, name[:-4], float(i), split),
            )
        db.executemany(
            "INSERT INTO ad_metrics VALUES (?, ?, 'ad', NULL, NULL, ?, ?, ?, ?, ?, NULL)",
            [
                (1, first, 1000, 30, 400, 5.0, "USD"),
                (2, first, 500, 5, None, 2.5, "USD"),
                (2, second, 200, 1, None, None, None),
            ],
        )
    with reader(ws) as store:
        for run_id in runs:  # the same keys: the same videos, the same figures
            totals = totals_by_job(store, run_id)
            # the completion rate's basis: the impressions of the rows with completions
            assert totals[first] == AdTotals(1500, 35, 400, 7.5, None, "USD", 1000)
            assert totals[second] == AdTotals(200, 1, None, None, None, None)
            assert [(i.file, i.split_test) for i in imports_for_run(store, run_id)] == [
                ("meta.csv", False),
                ("tiktok.csv", True),
            ]
