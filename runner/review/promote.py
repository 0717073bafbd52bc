"""Promote: re-render chosen jobs of a run on another tier, identical but for ``model``.

Every parameter comes from the parent job's pinned request (the body the ledger recorded);
only the model changes, plus explicit ``--set`` overrides. The tier's rules are checked
before anything is spent. The child run records each job's ``parent_job_key``, so its report
shows every standard render beside its fast parent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .. import params
from ..errors import ExperimentError, Problem
from ..grid.cells import Choice
from ..grid.experiment import Expansion, shape_problems
from ..grid.plan import Plan, plan_for
from ..grid.pricing import PriceTable
from ..grid.sheet import csv_table
from ..models import Shape, Variant, job_key
from ..rules import Tier
from ..run.ledger import Store
from ..run.records import JobRecord, RunRecord


@dataclass(frozen=True)
class Promotion:
    plan: Plan
    parents: dict[str, str]  # child job key -> parent job key
    collapsed: int  # picks that were samples of the same variant


def read_winners(path: Path, run_id: str) -> list[tuple[int, str]]:
    """(row, job_key) of each pick in a winners.csv exported by the report (or written by
    hand: BOM, semicolons and tabs are fine). Refuses files of other runs and duplicates."""
    name = path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ExperimentError(
            [Problem(name, None, None, f"cannot read it ({exc.strerror})")]
        ) from None
    columns, rows, problems = csv_table(data, name, "a header row with a 'job_key' column")
    if "job_key" not in columns:
        found = ", ".join(c for c in columns if c) or "none"
        raise ExperimentError(
            [
                Problem(
                    name,
                    1,
                    None,
                    "there is no 'job_key' column (columns "
                    f"found: {found}); export it from the report",
                )
            ]
        )
    run_column = "run_id" if "run_id" in columns else "run" if "run" in columns else None
    picks: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for row, cells in rows:
        key = str(cells.get("job_key") or "").strip()
        if not key:
            problems.append(Problem(name, row, "job_key", "is empty"))
            continue
        other = str(cells.get(run_column) or "").strip() if run_column else ""
        if other and other != run_id:
            problems.append(
                Problem(
                    name,
                    row,
                    run_column,
                    f"this pick is from run {other}, not {run_id}; promote "
                    f"that run (`runner promote {other} --winners {name}`)",
                )
            )
            continue
        if key in seen:
            problems.append(
                Problem(
                    name,
                    row,
                    "job_key",
                    f"{key} is picked twice (also on row {seen[key]}); keep one row",
                )
            )
            continue
        seen[key] = row
        picks.append((row, key))
    if not picks and not problems:
        problems.append(Problem(name, None, None, "no winners in the file"))
    if problems:
        raise ExperimentError(problems)
    return picks


def promote(
    store: Store,
    run: RunRecord,
    picks: Iterable[tuple[int | None, str]],
    source: str,
    tier: Tier,
    overrides: Mapping[str, str],
    repeats: int,
    prices: PriceTable,
) -> Promotion:
    """The child run's plan: each picked job of ``run`` on ``tier``. ``source`` names where
    the picks came from in messages (the winners file, or --pick)."""
    jobs = {j.job_key: j for j in store.jobs(run.run_id)}
    problems: list[Problem] = []
    changes = _overrides(overrides, problems)
    variants: dict[str, Variant] = {}
    parents: dict[str, str] = {}
    shapes: dict[Shape, int] = {}
    collapsed = 0
    of_flags: dict[tuple[str, str], list[str]] = {}  # a --set that breaks a rule: the keys
    picks = list(picks)
    for row, key in picks:
        job = jobs.get(key) or _by_prefix(jobs, key)
        if job is None:
            problems.append(
                Problem(
                    source,
                    row,
                    "job_key",
                    f"{key} is not a job of run "
                    f"{run.run_id}; check the run, or export the winners "
                    "from its report again",
                )
            )
            continue
        if job.state != "done":
            problems.append(
                Problem(
                    source,
                    row,
                    "job_key",
                    f"{job.job_key} is {job.state}, not done: promote finished videos only",
                )
            )
            continue
        request = job.request.with_values({k: v.value for k, v in changes.items()})
        for column, message in shape_problems(request.shape, tier):
            if column in changes:  # the flag's problem: said once, below
                of_flags.setdefault((column, f"on {tier}: {message}"), []).append(job.job_key)
            else:
                problems.append(Problem(source, row, column, f"{job.job_key} on {tier}: {message}"))
        values = _values(job.values, changes)
        variant = Variant(
            request, request.variant_key, job.source, job.row, job.name, values, repeats
        )
        if variant.variant_key in variants:
            collapsed += 1
            continue
        variants[variant.variant_key] = variant
        shapes[request.shape] = shapes.get(request.shape, 0) + repeats
        for sample in range(1, repeats + 1):
            parents[job_key(variant.variant_key, tier, sample)] = job.job_key
    for (column, message), keys in of_flags.items():
        if len(keys) < len(picks):
            named = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
            message += f" (for {named})"
        problems.append(Problem("--set", None, column, message))
    if problems:
        raise ExperimentError(problems)
    dims = dict(run.dimensions)
    expansion = Expansion(
        source=source,
        rows_read=len(variants),
        variants=tuple(variants.values()),
        expanded=len(variants) * repeats,
        jobs_per_tier=len(variants) * repeats,
        dimensions=dims,
        shapes=shapes,
    )
    return Promotion(plan_for(Path(run.experiment), expansion, tier, prices), parents, collapsed)


def _overrides(overrides: Mapping[str, str], problems: list[Problem]) -> dict[str, Choice]:
    """``--set`` values parsed by the parameter table; only its promotable rows (the prompt
    and media stay the winner's)."""
    out: dict[str, Choice] = {}
    changeable = params.TABLE.promotable
    for column, text in overrides.items():
        param = params.TABLE.by_name.get(column)
        if param is None or not param.promotable:
            problems.append(
                Problem(
                    "--set",
                    None,
                    column,
                    "cannot be changed when promoting "
                    f"(allowed: {', '.join(changeable)}); the prompt and media "
                    "stay those of the winner",
                )
            )
            continue
        try:
            value, shown = param.parse(text)
        except ValueError as exc:
            problems.append(Problem("--set", None, column, str(exc)))
            continue
        out[column] = Choice(column, value, shown)
    return out


def _values(
    pairs: Iterable[tuple[str, str]], changes: Mapping[str, Choice]
) -> tuple[tuple[str, str], ...]:
    values = {k: v for k, v in pairs}
    for column, choice in changes.items():
        values[column] = choice.shown
    return tuple(values.items())


def _by_prefix(jobs: Mapping[str, JobRecord], prefix: str) -> JobRecord | None:
    found = [j for k, j in jobs.items() if k.startswith(prefix)]
    return found[0] if len(found) == 1 else None
