"""The report embeds the audience's figures as DATA.performance (null without any), through
the statistics of runner/metrics/stats.py (runner/review/performance.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from runner.review import report
from runner.run import ledger as L
from tests.test_report import Page
from tests.test_report_support import grid_jobs, media_pool, write_run


def page_data(path: Path) -> dict[str, Any]:
    return Page(path.read_text("utf-8")).data


def test_the_page_embeds_performance_only_when_figures_were_imported(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    pool = media_pool(ws / "_pool", 1)
    jobs = grid_jobs(["Lamp", "Kettle"], ["cinematic"], ["16:9", "9:16"], media=1)
    write_run(ws, "r", jobs, pool_dir=ws / "_pool", pool=pool)
    with L.reader(ws) as store:
        assert page_data(report.build(store, ws, "r"))["performance"] is None
    with sqlite3.connect(ws / "ledger.sqlite") as db:
        db.execute(
            "INSERT INTO metric_imports VALUES (1, 'meta.csv', 'x', 'meta', 1.0, 1, 4, 4, 0)"
        )
        db.executemany(
            "INSERT INTO ad_metrics VALUES"
            " (1, ?, 'ad', NULL, NULL, 20000, ?, NULL, NULL, NULL, NULL)",
            [(j.job_key("fast"), 600 if j.values["aspect_ratio"] == "9:16" else 200) for j in jobs],
        )
    with L.reader(ws) as store:
        perf = page_data(report.build(store, ws, "r"))["performance"]
        share = report.build_share(store, ws, "r", tmp_path / "share", lambda row: row)
    assert perf["metric"] == "ctr" and perf["randomised"] is True
    assert [i["file"] for i in perf["imports"]] == ["meta.csv"]
    assert sorted(v["job_key"] for v in perf["variants"]) == sorted(j.job_key("fast") for j in jobs)
    (aspect,) = [d for d in perf["dimensions"] if d["name"] == "aspect_ratio"]
    assert aspect["verdict"]["state"] == "winner" and aspect["verdict"]["leader"] == "9:16"
    assert {v["value"]: v["ctr"]["value"] for v in aspect["values"]} == {"9:16": 0.03, "16:9": 0.01}
    assert set(perf["by_metric"]) == {"ctr"}  # no completions, no results: CTR only
    assert page_data(share)["performance"] is None  # a client's share carries no figures
