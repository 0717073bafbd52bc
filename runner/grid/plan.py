"""A plan: an experiment expanded into jobs on one tier, with its quote on every tier.

Planning spends nothing. `make_plan` raises ExperimentError listing every problem, including
those of the chosen tier (1080p outside standard, web search on mini).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..localfiles import MB, describe
from ..models import Job, Shape
from ..rules import MODELS, TIERS, Tier, model_id
from . import experiment, pricing, sheet
from .pricing import PriceTable, default_prices, model_name

# a grid this large (jobs to send, or dollars) gets a warning (`runner.run.outlook`)
LARGE_JOBS = 500
LARGE_USD = 50.0


@dataclass(frozen=True, slots=True)
class TierQuote:
    tier: str
    jobs: int
    credits: float
    usd: float
    unavailable: int  # jobs this tier cannot render (e.g. 1080p on fast)
    reason: str | None  # why, for the first such job


@dataclass(frozen=True)
class Plan:
    path: Path
    expansion: experiment.Expansion
    tier: Tier
    output_seconds: int
    quotes: dict[str, TierQuote]
    prices: PriceTable
    warnings: tuple[str, ...]
    on: dt.date  # the day of the quote (prices older than 30 days then get a warning)

    @property
    def quote(self) -> TierQuote:
        return self.quotes[self.tier]

    @property
    def settled_later(self) -> tuple[str, ...]:
        """Model ids of this plan's tier that EvoLink bills on the request, then settles on
        actual use: their final charge may differ from the quote."""
        modes = sorted({shape.mode for shape in self.expansion.shapes})
        return tuple(
            model_id(self.tier, m)
            for m in modes
            if self.prices.price_of(self.tier, m).final_charge_may_differ
        )

    @property
    def job_count(self) -> int:
        return self.expansion.jobs_per_tier

    def jobs(self) -> Iterator[Job]:
        """Every job, variant by variant (generated: a million jobs need no list)."""
        for v in self.expansion.variants:
            for sample in range(1, v.samples + 1):
                yield Job(v, self.tier, sample)

    def estimate(self, job: Job) -> float:
        return self.prices.credits(job.tier, job.variant.request.shape)


def make_plan(
    path: Path,
    tier: Tier = "fast",
    overrides: Iterable[str] = (),
    prices: PriceTable | None = None,
) -> Plan:
    expansion = experiment.load(path, sheet.parse_overrides(overrides), tier)
    return plan_for(path, expansion, tier, prices or default_prices())


def plan_for(path: Path, expansion: experiment.Expansion, tier: Tier, prices: PriceTable) -> Plan:
    """The plan of variants already expanded and validated for ``tier``, quoted today."""
    quotes: dict[str, TierQuote] = {t: _quote(prices, expansion.shapes, t) for t in TIERS}
    seconds = sum(shape.duration * jobs for shape, jobs in expansion.shapes.items())
    plan = Plan(path, expansion, tier, seconds, quotes, prices, (), pricing.today())
    return dataclasses.replace(plan, warnings=_warnings(plan))


def _quote(prices: PriceTable, shapes: dict[Shape, int], tier: str) -> TierQuote:
    credits = 0.0
    jobs = unavailable = 0
    reason: str | None = None
    for shape, count in shapes.items():
        problems = experiment.shape_problems(shape, tier)
        if problems:
            unavailable += count
            reason = reason or f"{problems[0][0]}: {problems[0][1]}"
            continue
        jobs += count
        credits += count * prices.credits(tier, shape)
    return TierQuote(
        tier, jobs, round(credits, 4), round(prices.usd(credits), 2), unavailable, reason
    )


def _warnings(plan: Plan) -> tuple[str, ...]:
    out = list(plan.expansion.warnings)
    if plan.expansion.duplicates:
        out.append(
            f"{plan.expansion.duplicates:,} job(s) were identical to others and are counted once."
        )
    return tuple(out + plan.prices.warnings(plan.on))


def price_lines(plan: Plan, *, real: bool = False) -> list[str]:
    """What a quote says of its prices: where they come from and of when, whose final charge
    may differ, and (``real``: money will be spent) whether they are only the simulator's."""
    usd = format(plan.prices.credits_per_usd.normalize(), "f")
    lines = [f"Prices: {plan.prices.source} ({usd} credits = 1 USD)."]
    later = [model_name(*MODELS[m]) for m in plan.settled_later]
    if later:
        them = "them" if len(later) > 1 else "it"
        lines.append(
            f"The final charge may differ from this quote for {', '.join(later)}: EvoLink "
            f"bills {them} on the request, then settles on what the task really used."
        )
    if real and any(s.label == "simulator price rules" for s in plan.prices.sources):
        lines.append(
            "Warning: these prices were fetched from a simulator, not from EvoLink: "
            "`runner prices update --backend evolink` fetches EvoLink's."
        )
    return lines


def plan_text(plan: Plan) -> str:
    """The quote as people read it."""
    e = plan.expansion
    lines = [
        f"Plan for {plan.path.name} (planning spends nothing)",
        f"  {e.rows_read:,} row(s) -> {len(e.variants):,} variant(s) -> "
        f"{plan.job_count:,} job(s) on the {plan.tier} tier",
    ]
    if e.duplicates:
        lines.append(f"  {e.duplicates:,} identical job(s) collapsed (counted once)")
    lines.append(f"  {plan.output_seconds:,} s of video in all")
    if e.grid and len(e.grid) > 1:
        lines.append(f"  grid: {grid_text(e.grid)}")
    if e.splits:
        lines += ["", "Multi-valued cells (each value is tried; write \\| for a literal pipe):"]
        lines += [f"  {line}" for line in split_lines(e.splits)]
    if e.files:
        lines += ["", f"Files to upload ({_UPLOADS}):"]
        lines += [f"  {line}" for line in file_lines(plan)]
    if e.dimensions:
        lines += ["", "Varied dimensions (the report compares by these):"]
        width = max(len(d) for d in e.dimensions)
        for dim, values in e.dimensions.items():
            shown = " | ".join(_short(v) for v in values[:8])
            more = f", ... ({len(values)} values)" if len(values) > 8 else ""
            lines.append(f"  {dim:<{width}}  {shown}{more}")
    lines += ["", f"  {'Estimated cost':<24}{'jobs':>8}{'credits':>14}{'USD':>12}"]
    for tier in TIERS:
        q = plan.quotes[tier]
        label = f"{tier}{'  <- this plan' if tier == plan.tier else ''}"
        if q.unavailable and not q.jobs:
            lines.append(f"  {label:<24}{'-':>8}   not available: {q.reason}")
            continue
        lines.append(f"  {label:<24}{q.jobs:>8,}{q.credits:>14,.2f}{q.usd:>12,.2f}")
        if q.unavailable:
            lines.append(f"  {'':<24}{q.unavailable:>8,} job(s) not available: {q.reason}")
    lines += ["", *price_lines(plan)]
    lines.append("These are estimates; each job records what the provider charged.")
    for warning in plan.warnings:
        lines.append(f"Warning: {warning}")
    return "\n".join(lines)


def plan_json(plan: Plan) -> dict[str, Any]:
    e = plan.expansion
    return {
        "experiment": str(plan.path),
        "tier": plan.tier,
        "rows": e.rows_read,
        "variants": len(e.variants),
        "jobs": plan.job_count,
        "duplicates_collapsed": e.duplicates,
        "output_seconds": plan.output_seconds,
        "dimensions": {k: list(v) for k, v in e.dimensions.items()},
        "splits": [
            {
                "file": s.source,
                "row": s.row,
                "column": s.column,
                "count": len(s.values),
                "values": list(s.values),
            }
            for s in e.splits
        ],
        "grid": None
        if e.grid is None
        else {
            "rows": e.grid[0][1],
            "axes": {c: n for c, n in e.grid[1:] if c != "repeats"},
            "repeats": dict(e.grid).get("repeats", 1),
            "text": grid_text(e.grid),
        },
        "quotes": {
            t: {
                "jobs": q.jobs,
                "credits": q.credits,
                "usd": q.usd,
                "unavailable_jobs": q.unavailable,
                "unavailable_reason": q.reason,
            }
            for t, q in plan.quotes.items()
        },
        "credits_per_usd": float(plan.prices.credits_per_usd),
        "prices": plan.prices.source,
        "prices_date": plan.prices.first.as_of.isoformat(),
        "prices_age_days": plan.prices.first.age(plan.on),
        "prices_stale": plan.prices.first.stale(plan.on),
        "prices_sources": [
            {
                "source": str(s),
                "kind": s.kind,
                "date": s.as_of.isoformat(),
                "age_days": s.age(plan.on),
                "url": s.url,
            }
            for s in plan.prices.sources
        ],
        "final_charge_may_differ": list(plan.settled_later),
        "local_files": [
            {
                "path": str(f.path),
                "column": f.kind,
                "type": f.mime,
                "bytes": f.size,
                "sha256": f.sha256,
            }
            for f in plan.expansion.files.values()
        ],
        "warnings": list(plan.warnings),
    }


_UPLOADS = "each before the first job that needs it; reused for 72 h"


def file_lines(plan: Plan, shown: int = 10) -> list[str]:
    """``images/watch.png  PNG image, 0.2 MB``: each local file the grid names (its path
    relative to the experiment's folder when it is inside it)."""
    folder = plan.path.absolute().parent
    out = []
    files = list(plan.expansion.files.values())
    for f in files[:shown]:
        path = f.path.relative_to(folder) if f.path.is_relative_to(folder) else f.path
        out.append(f"{path}  {describe(f.mime).split(' ', 1)[1]}, {_size(f.size)}")
    if len(files) > shown:
        out.append(f"... and {len(files) - shown:,} more (plan --json lists every one)")
    return out


def grid_text(grid: tuple[tuple[str, int], ...]) -> str:
    """``25 rows × 2 aspect ratios × 2 durations × 3 repeats``."""
    return " × ".join(f"{n:,} {_plural(column, n)}" for column, n in grid)


_PLURALS = {
    "rows": ("row", "rows"),
    "repeats": ("repeat", "repeats"),
    "generate_audio": ("audio setting", "audio settings"),
    "web_search": ("web search setting", "web search settings"),
    "content_filter": ("content filter setting", "content filter settings"),
    "image_urls": ("set of images", "sets of images"),
    "video_urls": ("set of videos", "sets of videos"),
    "audio_urls": ("set of audio tracks", "sets of audio tracks"),
}


def _plural(column: str, n: int) -> str:
    """A column as a counted noun: 2 aspect ratios, 3 qualities, 4 styles."""
    if column in _PLURALS:
        return _PLURALS[column][n != 1]
    word = column.replace("_", " ")
    if n == 1:
        return word
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u"):
        return word[:-1] + "ies"
    return word + "s"


def split_lines(splits: Iterable[experiment.Split], shown: int = 20) -> list[str]:
    """``rows 2–26: style -> 3 values, aspect_ratio -> 2 values``: rows that split the same
    columns into as many values share a line; axes crossed with every row come last."""
    by_row: dict[int, list[str]] = {}
    every: list[str] = []
    for s in splits:
        text = f"{s.column} -> {len(s.values)} values"
        if s.row is None:
            origin = s.source if s.source == "--set" else f"{s.source} [axes]"
            every.append(f"every row: {text} ({origin})")
        else:
            by_row.setdefault(s.row, []).append(text)
    groups: dict[str, list[int]] = {}
    for row, texts in by_row.items():
        groups.setdefault(", ".join(texts), []).append(row)
    lines = [f"{experiment.rows_text(rows)}: {text}" for text, rows in groups.items()]
    if len(lines) > shown:
        rest = sum(len(rows) for rows in list(groups.values())[shown:])
        lines = [
            *lines[:shown],
            f"... and {rest:,} more row(s) with multi-valued cells (plan --json lists every one)",
        ]
    return lines + every


def _size(size: int) -> str:
    return f"{size / MB:,.1f} MB" if size >= MB // 10 else f"{max(1, round(size / 1000)):,} kB"


def _short(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
