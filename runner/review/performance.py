"""The report's Performance view: the audience's figures of a run (`runner metrics import`)
through the statistics of `runner metrics show`, embedded in the page as `DATA.performance`
(templates/static/report/78-performance.js; docs/report-page.md, "Performance")."""

from __future__ import annotations

from typing import Any

from ..metrics import stats
from ..metrics.store import imports_for_run, totals_by_job
from ..run.ledger import Store

# The metrics the view's selector offers besides CTR, each shown when some video has it.
OTHER_METRICS: dict[stats.Metric, str] = {"completion": "completions", "cost_per_result": "results"}


def performance_for_report(store: Store, run_id: str) -> dict[str, Any] | None:
    """`stats.performance` of the run ranked by CTR, with ``by_metric`` holding the same
    ranked by each other metric the figures allow (completion rate, cost per result); None
    when no import holds figures of the run's videos (the view's button is then hidden)."""
    totals = totals_by_job(store, run_id)
    if not totals:
        return None
    jobs, imports = store.jobs(run_id), imports_for_run(store, run_id)
    out = stats.performance(jobs, totals, imports, metric="ctr")
    by_metric = {"ctr": {"dimensions": out["dimensions"]}}
    for metric, field in OTHER_METRICS.items():
        if any(getattr(t, field) for t in totals.values()):
            ranked = stats.performance(jobs, totals, imports, metric=metric)
            by_metric[metric] = {"dimensions": ranked["dimensions"]}
    return {**out, "by_metric": by_metric}
