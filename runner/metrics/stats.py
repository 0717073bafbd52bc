"""What the audience said, with the uncertainty a marketer needs: rates with 95 % intervals,
the chance each value of a dimension is the best, and a verdict ("winner", "not yet").

Pure functions over the figures summed per video (runner/metrics/store.py). The formulas,
in plain words, are in docs/metrics-statistics.md ("Statistics"):

- CTR = clicks / impressions and completion rate = completions / impressions, each with a
  Wilson 95 % interval.
- Cost per result = spend / results, with a 95 % interval by the delta method on the log
  scale (results counted as Poisson, spend as known): cost x exp(+-1.96 / sqrt(results)).
- P(best) per value: Monte Carlo over posteriors (Beta(1 + successes, 1 + failures) for a
  rate; Gamma(1 + results, spend) for results per unit spent, lower cost is better), seeded,
  so the same figures always give the same answer.
- Verdict: "winner" only when the leader's P(best) >= 0.95; otherwise "not_yet" with the
  impressions per value still needed to separate the top two at the observed effect
  (two-proportion sample size, 80 % power, 5 % two-sided); "no_data" without impressions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..run.records import JobRecord
from .model import METRICS, AdTotals, ImportInfo, Metric

__all__ = ["METRICS", "Metric"]  # defined in model.py: the CLI's choices need no numpy
LABELS: dict[str, str] = {"ctr": "CTR", "completion": "completion rate", "cost_per_result": "cost"}

Z95 = 1.959963984540054  # two-sided 95 %
Z80 = 0.8416212335729143  # one-sided 80 % power
WINNER_P = 0.95
DRAWS = 20_000
SEED = 15


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float

    def json(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def wilson(successes: int, n: int, z: float = Z95) -> Estimate | None:
    """The rate successes / n with its Wilson score interval; None when n is 0."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half))


def cost_per_result(spend: float | None, results: int | None, z: float = Z95) -> Estimate | None:
    """spend / results with a delta-method interval on the log scale (results ~ Poisson, so
    the standard error of log(cost) is 1 / sqrt(results)); None without spend or results."""
    if spend is None or results is None or results <= 0:
        return None
    cost = spend / results
    spread = math.exp(z / math.sqrt(results))
    return Estimate(cost, cost / spread, cost * spread)


@dataclass(frozen=True)
class Counts:
    """Figures summed over some videos. Completions, spend and results only over videos
    that have them (``*_impressions``: the impressions those videos had)."""

    videos: int = 0
    impressions: int = 0
    clicks: int = 0
    completions: int | None = None
    completion_impressions: int = 0
    spend: float | None = None
    results: int | None = None
    currency: str | None = None
    currencies: frozenset[str] = frozenset()
    mixed_cost: bool = False  # some figures without a currency, or several currencies

    def add(self, t: AdTotals) -> Counts:
        comp, comp_impr = self.completions, self.completion_impressions
        if t.completions is not None:
            comp, comp_impr = (comp or 0) + t.completions, comp_impr + t.completion_basis()
        spend, results, currencies, mixed = self.spend, self.results, self.currencies, False
        t_spend, t_results = t.cost_basis()
        if t_spend is not None and t_results is not None and (t_spend or t_results):
            spend, results = (spend or 0.0) + t_spend, (results or 0) + t_results
            currencies = currencies | {t.currency or ""}
            mixed = len(currencies) > 1
        return Counts(
            self.videos + 1,
            self.impressions + t.impressions,
            self.clicks + t.clicks,
            comp,
            comp_impr,
            spend,
            results,
            next(iter(currencies)) or None if len(currencies) == 1 else None,
            currencies,
            self.mixed_cost or mixed,
        )

    def ctr(self) -> Estimate | None:
        return wilson(self.clicks, self.impressions)

    def completion(self) -> Estimate | None:
        if self.completions is None:
            return None
        return wilson(self.completions, self.completion_impressions)

    def cost(self) -> Estimate | None:
        if self.mixed_cost:
            return None  # several currencies (or none named) cannot be added up
        return cost_per_result(self.spend, self.results)

    def estimate(self, metric: Metric) -> Estimate | None:
        return {"ctr": self.ctr, "completion": self.completion, "cost_per_result": self.cost}[
            metric
        ]()

    def json(self) -> dict[str, Any]:
        def block(e: Estimate | None) -> dict[str, float] | None:
            return e.json() if e else None

        return {
            "impressions": self.impressions,
            "clicks": self.clicks,
            "completions": self.completions,
            "spend": None if self.spend is None else round(self.spend, 6),
            "results": self.results,
            "currency": self.currency,
            "ctr": block(self.ctr()),
            "completion": block(self.completion()),
            "cost_per_result": block(self.cost()),
        }


def counts_of(totals: Iterable[AdTotals]) -> Counts:
    c = Counts()
    for t in totals:
        c = c.add(t)
    return c


def p_best(groups: Sequence[Counts], metric: Metric, seed: int = SEED) -> list[float | None]:
    """The probability that each group is the best by ``metric`` (Monte Carlo over the
    posteriors, seeded); None for a group without the figures the metric needs."""
    rng = np.random.default_rng(seed)
    usable = [i for i, g in enumerate(groups) if _usable(g, metric)]
    out: list[float | None] = [None] * len(groups)
    if not usable:
        return out
    draws = np.empty((len(usable), DRAWS))
    for row, i in enumerate(usable):
        g = groups[i]
        if metric == "cost_per_result":  # results per unit spent: the highest costs least
            draws[row] = rng.gamma(1 + (g.results or 0), 1 / max(g.spend or 0.0, 1e-12), DRAWS)
        else:
            hits, n = (
                (g.clicks, g.impressions)
                if metric == "ctr"
                else (g.completions or 0, g.completion_impressions)
            )
            draws[row] = rng.beta(1 + hits, 1 + n - hits, DRAWS)
    wins = np.bincount(np.argmax(draws, axis=0), minlength=len(usable)) / DRAWS
    for row, i in enumerate(usable):
        out[i] = float(wins[row])
    return out


def _usable(g: Counts, metric: Metric) -> bool:
    if metric == "ctr":
        return g.impressions > 0
    if metric == "completion":
        return g.completions is not None and g.completion_impressions > 0
    return g.cost() is not None


def impressions_needed(p1: float, p2: float) -> int | None:
    """Impressions per value for a two-sided 5 % test of p1 against p2 to have 80 % power
    (the two-proportion sample size); None when there is no difference to detect."""
    if p1 == p2:
        return None
    bar = (p1 + p2) / 2
    top = Z95 * math.sqrt(2 * bar * (1 - bar)) + Z80 * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(top * top / (p1 - p2) ** 2)


def dimensions_of(jobs: Sequence[JobRecord]) -> list[str]:
    """The dimensions whose value differs between the jobs, in the sheet's order."""
    seen: dict[str, set[str]] = {}
    for job in jobs:
        for dim, value in job.values:
            seen.setdefault(dim, set()).add(value)
    return [d for d, values in seen.items() if len(values) > 1]


def performance(
    run_jobs: Sequence[JobRecord],
    totals: Mapping[str, AdTotals],
    imports: Sequence[ImportInfo],
    by: str | None = None,
    metric: Metric = "ctr",
) -> dict[str, Any]:
    """The JSON-ready figures of a run (shape in docs/metrics-statistics.md): per video,
    per value of each varied dimension (or of ``by`` only), with the verdict by ``metric``.
    Raises ValueError for an unknown ``by`` or ``metric`` (the message lists the choices)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}")
    dims = dimensions_of(run_jobs)
    if by is not None:
        if by not in dims:
            raise ValueError(
                f"the run has no varied dimension {by!r}: use one of {', '.join(dims) or 'none'}"
            )
        dims = [by]
    videos = [j for j in run_jobs if j.job_key in totals or j.state == "done"]
    varied = dimensions_of(run_jobs)
    variants = []
    for job in videos:
        counts = counts_of([totals[job.job_key]] if job.job_key in totals else [])
        variants.append(
            {
                "job_key": job.job_key,
                "variant_key": job.variant_key,
                "name": job.name,
                "tier": job.tier,
                "dims": {d: v for d, v in job.values if d in varied},
                **counts.json(),
            }
        )
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
        "dimensions": [_dimension(d, videos, totals, metric) for d in dims],
    }


def _dimension(
    dim: str, jobs: Sequence[JobRecord], totals: Mapping[str, AdTotals], metric: Metric
) -> dict[str, Any]:
    order: list[str] = []
    figures: dict[str, list[AdTotals]] = {}
    for job in jobs:
        value = dict(job.values).get(dim)
        if value is None:
            continue
        if value not in figures:
            order.append(value)
            figures[value] = []
        if job.job_key in totals:
            figures[value].append(totals[job.job_key])
    groups = [counts_of(figures[v]) for v in order]
    chances = p_best(groups, metric)
    values = [
        {"value": v, "variants": g.videos, **g.json(), "p_best": p}
        for v, g, p in zip(order, groups, chances, strict=True)
    ]
    # ranked: the likeliest best first, values without figures last (in the sheet's order)
    values.sort(key=lambda x: (x["p_best"] is None, -(x["p_best"] or 0.0)))
    return {"name": dim, "values": values, "verdict": verdict(dim, order, groups, chances, metric)}


def verdict(
    dim: str,
    names: Sequence[str],
    groups: Sequence[Counts],
    chances: Sequence[float | None],
    metric: Metric,
) -> dict[str, Any]:
    """The call on one dimension, with one plain sentence."""
    ranked = sorted(
        (i for i, p in enumerate(chances) if p is not None),
        key=lambda i: -(chances[i] or 0.0),
    )
    if not ranked:
        what = "impressions" if metric != "cost_per_result" else "spend and results in one currency"
        return {
            "state": "no_data",
            "leader": None,
            "p_best": None,
            "impressions_needed": None,
            "text": f"No {what} for {dim} yet: import the platform's report "
            "(runner metrics import FILE).",
        }
    lead = ranked[0]
    p = chances[lead]
    est = groups[lead].estimate(metric)
    assert p is not None and est is not None
    if len(ranked) == 1:
        return {
            "state": "not_yet",
            "leader": names[lead],
            "p_best": p,
            "impressions_needed": None,
            "text": f"Not yet: only {names[lead]} has figures for {dim}; run the other "
            "values too to compare.",
        }
    second = ranked[1]
    other = groups[second].estimate(metric)
    assert other is not None
    unit = groups[lead].currency or "" if metric == "cost_per_result" else ""
    if p >= WINNER_P:
        ahead = "costs least" if metric == "cost_per_result" else "is ahead"
        return {
            "state": "winner",
            "leader": names[lead],
            "p_best": p,
            "impressions_needed": None,
            "text": f"{names[lead]} {ahead}: {show(est.value, metric, unit)} {LABELS[metric]} "
            f"({show(est.low, metric, unit, bare=True)}–{show(est.high, metric, unit)}) vs "
            f"{show(other.value, metric, unit)} for {names[second]}, "
            f"{chance(p)} likely the best.",
        }
    needed: int | None = None
    if metric != "cost_per_result":
        total = impressions_needed(est.value, other.value)
        if total is not None:
            have = min(_trials(groups[lead], metric), _trials(groups[second], metric))
            needed = max(0, total - have)
    pair = f"{show(est.value, metric, unit)} vs {show(other.value, metric, unit)}"
    if pair_rounds_apart(est.value, other.value, metric):
        pair = (
            f"{show(est.value, metric, unit, fine=True)} vs "
            f"{show(other.value, metric, unit, fine=True)}"
        )
    if metric == "cost_per_result":
        tail = "more results are needed to tell"
    elif needed is None:
        tail = "no difference so far"
    elif needed == 0:
        tail = "the leaders are close to separating; a little more delivery should tell"
    elif needed > PRACTICALLY_EQUAL:
        tail = (
            f"they perform practically the same (telling them apart would take over "
            f"{PRACTICALLY_EQUAL:,} more impressions per value)"
        )
    else:
        tail = f"about {about(needed):,} more impressions per value needed to tell"
    return {
        "state": "not_yet",
        "leader": names[lead],
        "p_best": p,
        "impressions_needed": needed,
        "text": f"Not yet: {pair} ({names[lead]} vs {names[second]}); {tail}.",
    }


def _trials(g: Counts, metric: Metric) -> int:
    return g.completion_impressions if metric == "completion" else g.impressions


def about(n: int) -> int:
    """n to two significant figures (151,096 -> 150,000), as a marketer reads it."""
    if n < 100:
        return n
    step = int(10 ** (len(str(n)) - 2))
    return round(n / step) * step


# Impressions per value above which two values are called practically the same: no
# realistic test budget separates them.
PRACTICALLY_EQUAL = 10_000_000


def pair_rounds_apart(a: float, b: float, metric: Metric) -> bool:
    """True when the two rates lie within a tenth of a point: one decimal would show them
    equal, or a gap they do not have (1.85 % and 1.849 % as 1.9 % vs 1.8 %); the sentence
    then shows two decimals, as the page's table does."""
    if metric == "cost_per_result":
        return False
    return abs(a - b) < 0.001


def percent(rate: float, *, bare: bool = False, fine: bool = False) -> str:
    """3.0 % / 0.45 %: one decimal from 1 %, two below (``fine``: always two)."""
    text = f"{rate * 100:.1f}" if (rate >= 0.01 or rate == 0) and not fine else f"{rate * 100:.2f}"
    return text if bare else f"{text} %"


def show(
    value: float, metric: Metric, unit: str = "", *, bare: bool = False, fine: bool = False
) -> str:
    if metric == "cost_per_result":
        return f"{value:,.2f}" if bare or not unit else f"{value:,.2f} {unit}"
    return percent(value, bare=bare, fine=fine)


def chance(p: float) -> str:
    if p >= 0.9995:
        return "over 99.9 %"
    return f"{p * 100:.1f} %"


def best_videos(
    variants: Sequence[Mapping[str, Any]], metric: Metric, min_impressions: int
) -> list[Mapping[str, Any]]:
    """The videos of ``performance(...)["variants"]`` with at least ``min_impressions`` and
    the figures ``metric`` needs, best first: by the interval's cautious end (a rate's lower
    bound, a cost's upper bound), so a lucky handful of impressions does not outrank a
    steady result; ties by the point value, then the job key."""
    sign = 1.0 if metric == "cost_per_result" else -1.0
    pool = [v for v in variants if v["impressions"] >= min_impressions and v[metric] is not None]

    def cautious(v: Mapping[str, Any]) -> tuple[float, float, str]:
        block = v[metric]
        end = block["high"] if metric == "cost_per_result" else block["low"]
        return (sign * end, sign * block["value"], str(v["job_key"]))

    return sorted(pool, key=cautious)
