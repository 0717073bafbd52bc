"""Reading the imported ad figures from the ledger (tables of migration 007_ad_metrics).

Rows are kept per import (file, platform, day or period) and summed here: several imports
add up. A video is its job key, so every run holding that key (reused or not) reads them.
"""

from __future__ import annotations

from ..run.ledger import Store
from .model import AdTotals, ImportInfo


def totals_by_job(store: Store, run_id: str) -> dict[str, AdTotals]:
    """Each job of the run that has figures: impressions and clicks summed over imports;
    completions, spend and results summed where some import had them (else None); the
    currency when all imports agree on one."""
    rows = store.conn.execute(
        "SELECT m.job_key, SUM(m.impressions), SUM(m.clicks), SUM(m.completions),"
        " COUNT(m.completions), SUM(m.spend), COUNT(m.spend), SUM(m.results), COUNT(m.results),"
        " MIN(m.currency), MAX(m.currency), COUNT(m.currency), COUNT(*)"
        " FROM ad_metrics m WHERE m.job_key IN (SELECT job_key FROM jobs WHERE run_id = ?)"
        " GROUP BY m.job_key",
        (run_id,),
    ).fetchall()
    out: dict[str, AdTotals] = {}
    for key, impr, clicks, comp, n_comp, spend, n_spend, res, n_res, lo, hi, n_cur, n in rows:
        out[key] = AdTotals(
            impressions=int(impr or 0),
            clicks=int(clicks or 0),
            completions=int(comp) if n_comp else None,
            spend=float(spend) if n_spend else None,
            results=int(res) if n_res else None,
            currency=lo if lo == hi and n_cur == n else None,
        )
    return out


def imports_for_run(store: Store, run_id: str) -> list[ImportInfo]:
    """The imports that hold figures of the run's jobs, oldest first."""
    rows = store.conn.execute(
        "SELECT import_id, file_name, platform, imported_at, split_test, rows, matched"
        " FROM metric_imports WHERE import_id IN (SELECT DISTINCT import_id FROM ad_metrics"
        " WHERE job_key IN (SELECT job_key FROM jobs WHERE run_id = ?)) ORDER BY import_id",
        (run_id,),
    ).fetchall()
    return [
        ImportInfo(int(i), str(f), str(p), float(t), bool(s), int(r), int(m))
        for i, f, p, t, s, r, m in rows
    ]
