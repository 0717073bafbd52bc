"""The audience's verdict per variant and per dimension value (a minimal build: engineer C's
full `stats.py` replaces this file; the returned shape is the shared one, docs/report-page.md).

Rates get 95 % Wilson intervals; P(best) is a seeded Monte Carlo over Beta(1 + hits,
1 + misses) posteriors (rates) or spend / Gamma(1 + results) (cost per result, lower is
better); a value is called a winner only when P(best) >= 0.95.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..run.records import JobRecord
from .model import AdTotals, ImportInfo

Z, Z_POWER, WINNER, DRAWS = 1.959964, 0.841621, 0.95, 20_000
HITS = {"ctr": "clicks", "completion": "completions"}


def wilson(hits: int, n: int) -> dict[str, float] | None:
    if n <= 0:
        return None
    p, z2 = hits / n, Z * Z
    mid, half = (p + z2 / (2 * n)), Z * (p * (1 - p) / n + z2 / (4 * n * n)) ** 0.5
    return {"value": p, "low": (mid - half) / (1 + z2 / n), "high": (mid + half) / (1 + z2 / n)}


def _cost(spend: float | None, results: int | None, rng: np.random.Generator) -> Any:
    if spend is None or not results:
        return None
    q = np.quantile(spend / rng.gamma(results + 1.0, size=4000), [0.025, 0.975])
    return {"value": spend / results, "low": float(q[0]), "high": float(q[1])}


def _block(f: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    n, comp = f["impressions"], f["completions"]
    return {
        "ctr": wilson(f["clicks"], n),
        "completion": None if comp is None else wilson(comp, n),
        "cost_per_result": _cost(f["spend"], f["results"], rng),
    }


def _add(into: dict[str, Any], t: AdTotals) -> None:
    into["impressions"] += t.impressions
    into["clicks"] += t.clicks
    for k in ("completions", "spend", "results"):
        v = getattr(t, k)
        if v is not None:
            into[k] = (into[k] or 0) + v


def performance(
    run_jobs: Sequence[JobRecord],
    totals: Mapping[str, AdTotals],
    imports: Sequence[ImportInfo],
    by: str | None = None,
    metric: str = "ctr",
) -> dict[str, Any]:
    rng = np.random.default_rng(15)
    empty = {"impressions": 0, "clicks": 0, "completions": None, "spend": None, "results": None}
    seen: dict[str, set[str]] = {}
    for j in run_jobs:
        for d, v in j.values:
            seen.setdefault(d, set()).add(v)
    dims = [d for d, vs in seen.items() if len(vs) > 1 and d != "name" and by in (None, d)]
    variants, groups = [], {d: {} for d in dims}  # type: ignore[var-annotated]
    for j in run_jobs:
        t = totals.get(j.job_key)
        if t is None:
            continue
        f = dict(empty, variants=1)
        _add(f, t)
        values = dict(j.values)
        variants.append(
            {
                "job_key": j.job_key,
                "variant_key": j.variant_key,
                "name": j.name,
                "tier": j.tier,
                "dims": {d: values.get(d, "") for d in seen if len(seen[d]) > 1},
                **{k: f[k] for k in empty},
                "currency": t.currency,
                **_block(f, rng),
            }
        )
        for d in dims:
            g = groups[d].setdefault(values.get(d, ""), dict(empty, variants=0))
            g["variants"] += 1
            _add(g, t)
    return {
        "metric": metric,
        "randomised": bool(imports) and all(i.split_test for i in imports),
        "imports": [
            {
                "file": i.file,
                "platform": i.platform,
                "imported_at": i.imported_at,
                "split_test": i.split_test,
                "rows": i.rows,
                "matched": i.matched,
            }
            for i in imports
        ],
        "variants": variants,
        "dimensions": [_dimension(d, groups[d], metric, rng) for d in dims],
    }


def _dimension(name: str, groups: dict[str, Any], metric: str, rng: Any) -> dict[str, Any]:
    values = [{"value": v, **g, **_block(g, rng)} for v, g in groups.items()]
    if metric in HITS:
        ok = [v for v in values if v[HITS[metric]] is not None and v["impressions"] > 0]
        hits = [v[HITS[metric]] for v in ok]
        draws = [
            rng.beta(1 + k, 1 + v["impressions"] - k, DRAWS) for k, v in zip(hits, ok, strict=True)
        ]
        best = np.argmax(draws, axis=0) if draws else None
    else:
        ok = [v for v in values if v["spend"] is not None and v["results"]]
        draws = [v["spend"] / rng.gamma(v["results"] + 1.0, size=DRAWS) for v in ok]
        best = np.argmin(draws, axis=0) if draws else None
    for v in values:
        v["p_best"] = None
    for i, v in enumerate(ok):
        v["p_best"] = float(np.mean(best == i))
    ok.sort(key=lambda v: -v["p_best"])
    values.sort(key=lambda v: -(v["p_best"] if v["p_best"] is not None else -1))
    return {"name": name, "values": values, "verdict": _verdict(ok, metric)}


def _verdict(ok: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    label = {"ctr": "CTR", "completion": "completion rate", "cost_per_result": "cost per result"}
    if len(ok) < 2:
        return {
            "state": "no_data",
            "leader": None,
            "p_best": None,
            "impressions_needed": None,
            "text": f"No {label[metric]} figures for two values or more yet.",
        }
    a, b = ok[0], ok[1]
    ra, rb = a[metric]["value"], b[metric]["value"]

    def shown(x: float) -> str:
        return f"{x:.2f}" if metric == "cost_per_result" else f"{100 * x:.2f} %"

    if a["p_best"] >= WINNER:
        chance = "more than 99.9 %" if a["p_best"] > 0.999 else f"{100 * a['p_best']:.1f} %"
        text = (
            f"{a['value']} is ahead: {label[metric]} {shown(ra)} against {shown(rb)}"
            f" for {b['value']}; {chance} likely the best."
        )
        return {
            "state": "winner",
            "leader": a["value"],
            "p_best": a["p_best"],
            "text": text,
            "impressions_needed": None,
        }
    if ra == rb:
        text = f"Not yet: no value is ahead so far ({label[metric]} {shown(ra)} for the top two)."
        return {"state": "not_yet", "leader": None, "p_best": a["p_best"], "text": text,
                "impressions_needed": None}  # fmt: skip
    needed = None
    if metric in HITS and ra != rb:
        n = (Z + Z_POWER) ** 2 * (ra * (1 - ra) + rb * (1 - rb)) / (ra - rb) ** 2
        needed = max(0, int(np.ceil(n)) - min(a["impressions"], b["impressions"]))
    more = f"about {needed:,} more impressions per value" if needed else "more impressions"
    text = (
        f"Not yet: {a['value']} leads {b['value']} ({label[metric]} {shown(ra)} against"
        f" {shown(rb)}), {100 * a['p_best']:.0f} % likely the best; {more} needed to tell"
        " them apart."
    )
    return {
        "state": "not_yet",
        "leader": a["value"],
        "p_best": a["p_best"],
        "text": text,
        "impressions_needed": needed,
    }
