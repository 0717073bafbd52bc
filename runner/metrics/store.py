"""Reading the imported ad figures from the ledger (tables of migration 007_ad_metrics).

Rows are kept per import (file, platform, day or period) and summed here: several imports
add up. A video is its job key, so every run holding that key (reused or not) reads them;
a variant rendered again with `--no-reuse` keeps its key, so both renders show the figures.
"""

from __future__ import annotations

from ..run.ledger import Store
from .model import AdTotals, ImportInfo


def totals_by_job(store: Store, run_id: str) -> dict[str, AdTotals]:
    """Each job of the run that has figures: impressions and clicks summed over imports;
    completions, spend and results summed where some import had them (else None), with the
    bases of the rates when only some had them; the currency of the spend when all rows
    with spend agree on one."""
    rows = store.conn.execute(
        "SELECT m.job_key, SUM(m.impressions), SUM(m.clicks), SUM(m.completions),"
        " COUNT(m.completions), SUM(m.spend), COUNT(m.spend), SUM(m.results), COUNT(m.results),"
        " SUM(CASE WHEN m.completions IS NOT NULL THEN m.impressions END),"
        " SUM(CASE WHEN m.results IS NOT NULL THEN m.spend END),"
        " SUM(CASE WHEN m.spend IS NOT NULL THEN m.results END),"
        " COUNT(CASE WHEN m.spend IS NOT NULL AND m.results IS NOT NULL THEN 1 END),"
        " MIN(CASE WHEN m.spend IS NOT NULL THEN m.currency END),"
        " MAX(CASE WHEN m.spend IS NOT NULL THEN m.currency END),"
        " COUNT(CASE WHEN m.spend IS NOT NULL THEN m.currency END),"
        " MIN(CASE WHEN m.spend IS NOT NULL AND m.results IS NOT NULL THEN m.currency END),"
        " MAX(CASE WHEN m.spend IS NOT NULL AND m.results IS NOT NULL THEN m.currency END),"
        " COUNT(CASE WHEN m.spend IS NOT NULL AND m.results IS NOT NULL THEN m.currency END)"
        " FROM ad_metrics m WHERE m.job_key IN (SELECT job_key FROM jobs WHERE run_id = ?)"
        " GROUP BY m.job_key",
        (run_id,),
    ).fetchall()
    out: dict[str, AdTotals] = {}
    for row in rows:
        key, impr, clicks, comp, n_comp, spend, n_spend, res, n_res = row[:9]
        comp_impr, cost_spend, cost_res, n_both = row[9:13]
        # the currency of the spend (of the cost's rows when there are some): rows without
        # spend say nothing of it
        lo, hi, n_cur, of = (*row[16:19], n_both) if n_both else (*row[13:16], n_spend)
        basis = _cost_basis(n_spend, n_res, n_both, cost_spend, cost_res)
        out[key] = AdTotals(
            impressions=int(impr or 0),
            clicks=int(clicks or 0),
            completions=int(comp) if n_comp else None,
            spend=float(spend) if n_spend else None,
            results=int(res) if n_res else None,
            currency=lo if of and lo == hi and n_cur == of else None,
            completion_impressions=(
                int(comp_impr) if n_comp and int(comp_impr or 0) != int(impr or 0) else None
            ),
            cost_spend=basis[0],
            cost_results=basis[1],
        )
    return out


def _cost_basis(
    n_spend: int, n_res: int, n_both: int, spend: float | None, results: int | None
) -> tuple[float | None, int | None]:
    """The cost's spend and results, of the rows that report both, when some rows report
    only one (a report without a results column would otherwise add its spend to the
    others' results); (None, None) when every row with either has both."""
    if not n_spend or not n_res or (n_spend == n_both and n_res == n_both):
        return None, None
    return float(spend or 0.0), int(results or 0)


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
