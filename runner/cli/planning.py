"""Commands that plan and start work: plan, run, promote."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import click

from .. import params
from ..errors import ExperimentError, InputError, Problem, RunnerError
from ..grid.plan import Plan, make_plan, plan_json, plan_text, price_lines
from ..metrics.model import METRICS
from ..review.tables import FORMATS, write_table
from ..rules import TIERS, Tier
from ..run import runs
from ..run.backend import choose as choose_backend
from ..run.dispatch import Settings
from ..run.ledger import PENDING, Ledger, Store, reader
from ..run.outlook import Outlook, outlook, outlook_json, outlook_lines, outlook_warnings
from ..run.place import check_workspace
from .base import (
    CONTEXT,
    RATE,
    backend_of,
    confirm_room,
    confirm_spend,
    execute_run,
    main,
    prices_from,
    run_options,
    workspace_option,
)


class _PlanCommand(click.Command):
    """``plan --json`` answers in JSON even when its own options are wrong."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        wants_json = "--json" in args
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            if not wants_json:
                raise
            click.echo(_dumps(error_json(exc.format_message(), [])))
            ctx.exit(exc.exit_code)


@main.command(cls=_PlanCommand, context_settings=CONTEXT)
@click.argument("experiment", type=click.Path(path_type=Path))
@click.option(
    "--tier",
    type=click.Choice(TIERS),
    default="fast",
    show_default=True,
    help="Tier the jobs are planned for.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="COLUMN=VALUE",
    help="Set a column in every row (repeatable; 'a | b' makes it an axis).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write every job to a table (.parquet, .csv or .json).",
)
@click.option(
    "--prices",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Price table TOML (default: WORKSPACE/prices.toml if present), over the prices "
    "`runner prices update` fetched, else the built-in table.",
)
@click.option(
    "--rate",
    type=RATE,
    default=Settings.rate,
    show_default=True,
    help="Creates per second the time estimate assumes (auto: what the last run settled on, "
    "else --max-rate).",
)
@click.option(
    "--max-rate",
    type=click.FloatRange(min=0.01),
    default=Settings.max_rate,
    show_default=True,
    help="The most creates per second --rate auto goes to.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=Settings.concurrency,
    show_default=True,
    help="Tasks in flight the time estimate assumes.",
)
@click.option(
    "--no-reuse", is_flag=True, help="Price every job, even those the workspace already has."
)
@workspace_option
def plan(
    experiment: Path,
    tier: Tier,
    overrides: tuple[str, ...],
    as_json: bool,
    out: Path | None,
    prices: Path | None,
    rate: float | Literal["auto"],
    max_rate: float,
    concurrency: int,
    no_reuse: bool,
    workspace: Path,
) -> None:
    """Validate and expand an experiment; print its jobs and cost per tier. Spends nothing.

    \b
    Examples:
      runner plan experiments/demo.csv
      runner plan experiments/sweep.csv --tier standard --set quality=1080p
      runner plan experiments/demo.csv --json --out plan.parquet
    """
    try:
        if out is not None and out.suffix.lower().lstrip(".") not in (*FORMATS, "pq"):
            raise InputError(
                f"--out {out.name}: a table is written as .parquet, .csv or .json; "
                "end the file name with one of them"
            )
        result = make_plan(experiment, tier, overrides, prices_from(prices, workspace))
        ahead = outlook_of(
            result, workspace, rate, concurrency, reuse=not no_reuse, max_rate=max_rate
        )
        if out is not None:
            try:
                write_table(job_rows(result), out)
            except OSError as exc:
                raise InputError(f"--out {out}: could not write it ({exc.strerror})") from None
    except RunnerError as exc:
        if not as_json:
            raise
        problems = exc.problems if isinstance(exc, ExperimentError) else ()
        click.echo(_dumps(error_json(str(exc), problems)))
        raise SystemExit(exc.exit_code) from None
    warnings = outlook_warnings(ahead, tier, workspace)
    if as_json:
        data = plan_json(result)
        data["outlook"] = outlook_json(ahead)
        data["warnings"] = [*data["warnings"], *warnings]
        click.echo(_dumps(data))
    else:
        click.echo(plan_text(result))
        click.echo("")
        click.echo(f"In {workspace} (--workspace):")
        for line in outlook_lines(ahead, tier):
            click.echo(line)
        for warning in warnings:
            click.echo(f"Warning: {warning}")
        if out is not None:
            click.echo(f"Jobs written to {out}")


def outlook_of(
    plan: Plan,
    workspace: Path,
    rate: float | Literal["auto"],
    concurrency: int,
    *,
    reuse: bool,
    max_rate: float = Settings.max_rate,
) -> Outlook:
    """The plan net of what ``workspace`` already holds (when ``reuse``), timed."""
    with contextlib.ExitStack() as stack:
        store = None
        if (workspace / "ledger.sqlite").is_file():
            store = stack.enter_context(reader(workspace))
        return outlook(
            plan,
            store if reuse else None,
            workspace,
            rate=rate,
            concurrency=concurrency,
            measured_from=store,
            max_rate=max_rate,
        )


def quote_lines(
    plan: Plan, ahead: Outlook, workspace: Path, warnings: Iterable[str], *, simulated: bool
) -> list[str]:
    """What run and promote say before spending: the jobs to send, their price, time and
    disk; where the prices come from; the warnings."""
    lines = [
        line.strip() + (" (simulated)" if simulated and i == 0 else "")
        for i, line in enumerate(outlook_lines(ahead, plan.tier))
    ]
    lines += price_lines(plan, real=not simulated)
    every = (*warnings, *outlook_warnings(ahead, plan.tier, workspace))
    return lines + [f"Warning: {w}" for w in every]


def error_json(text: str, problems: Iterable[Problem]) -> dict[str, object]:
    """An error as ``plan --json`` prints it: the whole text, and each problem with its
    file, row and column where known (null where not)."""
    listed = [
        {"file": p.file, "row": p.row, "column": p.column, "message": p.message} for p in problems
    ]
    return {
        "error": text,
        "problems": listed or [{"file": None, "row": None, "column": None, "message": text}],
    }


def _dumps(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def job_rows(plan: Plan) -> list[dict[str, object]]:
    dims = list(plan.expansion.dimensions)
    sent = params.TABLE.sent
    rows: list[dict[str, object]] = []
    for job in plan.jobs():
        v, r = job.variant, job.variant.request
        values = dict(v.values)
        rows.append(
            {
                "job_key": job.job_key,
                "variant_key": v.variant_key,
                "tier": job.tier,
                "sample": job.sample,
                "model": job.model,
                "row": v.row,
                "name": v.name,
                **{f"dim_{d}": values.get(d, "") for d in dims},
                **{p.name: _cell(p, r.value(p.name)) for p in sent},
                "estimated_credits": plan.estimate(job),
                "body": json.dumps(job.body(), ensure_ascii=False, sort_keys=True),
            }
        )
    return rows


def _cell(param: params.Param, value: object) -> object:
    """A parameter's value as a table cell (media lists: URLs separated by spaces)."""
    return " ".join(value) if param.media else value  # type: ignore[arg-type]


@main.command(context_settings=CONTEXT)
@click.argument("experiment", type=click.Path(path_type=Path))
@click.option("--tier", type=click.Choice(TIERS), default="fast", show_default=True)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="COLUMN=VALUE",
    help="Set a column in every row (repeatable).",
)
@click.option("--name", help="Label of the run (default: the experiment's file name).")
@click.option("--yes", "-y", is_flag=True, help="Spend without asking for confirmation.")
@click.option(
    "--no-reuse",
    is_flag=True,
    help="Render again even where the workspace already has the same job's video.",
)
@click.option("--prices", type=click.Path(dir_okay=False, path_type=Path), help="Price table TOML.")
@run_options
@workspace_option
def run(
    experiment: Path,
    tier: Tier,
    overrides: tuple[str, ...],
    name: str | None,
    yes: bool,
    no_reuse: bool,
    prices: Path | None,
    backend: str | None,
    base_url: str | None,
    tuning: dict[str, Any],
    workspace: Path,
) -> None:
    """Render an experiment: plan, confirm the cost, create, poll, download, write the report.

    \b
    Examples:
      runner run experiments/demo.csv                    # built-in simulator, no cost
      runner run experiments/sweep.csv --budget 5000 --yes
      runner run experiments/demo.csv --base-url http://127.0.0.1:8787
    """
    check_workspace(workspace)  # before the quote and its confirmation
    chosen = choose_backend(backend, base_url, workspace)
    click.echo(chosen.announce())
    result = make_plan(experiment, tier, overrides, prices_from(prices, workspace))
    settings = Settings(**tuning)
    ahead = outlook_of(
        result,
        workspace,
        settings.rate,
        settings.concurrency,
        reuse=not no_reuse,
        max_rate=settings.max_rate,
    )
    for line in quote_lines(result, ahead, workspace, result.warnings, simulated=chosen.simulated):
        click.echo(line)
    check_budget(result, settings.budget, workspace, reuse=not no_reuse)
    confirm_room(ahead, workspace, settings.min_free_disk, yes)
    if not chosen.simulated and ahead.send:
        confirm_spend(yes)
    with Ledger.open(workspace) as ledger:
        run_id, reused = runs.create(
            ledger, result, chosen, settings, name=name, reuse=not no_reuse
        )
        del result  # the ledger has every job now; a big plan need not stay in memory
        click.echo(
            f"Run {run_id}" + (f" ({reused} job(s) reused from earlier runs)" if reused else "")
        )
        if not chosen.simulated and not ahead.send and ledger.tally(run_id)[PENDING]:
            confirm_spend(yes)  # the quote said nothing to pay, but something is after all
        code = execute_run(ledger, run_id, chosen, settings, yes=yes)
    raise SystemExit(code)


def check_budget(plan: Plan, budget: float | None, workspace: Path, *, reuse: bool) -> None:
    """Refuse, before a run is created, a ``--budget`` that cannot pay for the first job to
    send: creates go in order and stop at the first the budget cannot pay, so nothing would
    be made. Jobs whose video the workspace already has (reused, free) are skipped."""
    if budget is None:
        return
    first = None
    with contextlib.ExitStack() as stack:
        done = None
        if reuse and (workspace / "ledger.sqlite").is_file():
            done = stack.enter_context(reader(workspace))
        for job in plan.jobs():
            if done is None or not done.has_result(job.job_key):
                first = plan.estimate(job)
                break
    if first is None or first <= budget + 1e-9:
        return
    cheapest = min(plan.prices.credits(plan.tier, shape) for shape in plan.expansion.shapes)
    raise_to = f"Raise --budget to at least {first:,.2f}, or leave it out."
    if first - cheapest < 0.005:
        raise InputError(
            f"--budget {budget:,.2f} is below the cost of any job: the cheapest costs about "
            f"{cheapest:,.2f} credits, so nothing would be made. {raise_to}"
        )
    raise InputError(
        f"--budget {budget:,.2f} is below the first job's cost (about {first:,.2f} credits; "
        f"the cheapest job costs about {cheapest:,.2f}): jobs are sent in order and the run "
        f"stops at the first the budget cannot pay, so nothing would be made. {raise_to}"
    )


@main.command(context_settings=CONTEXT)
@click.argument("run_ref", metavar="RUN")
@click.option(
    "--winners",
    type=click.Path(dir_okay=False, path_type=Path),
    multiple=True,
    help="winners.csv exported from the run's report (repeatable: one per reviewer).",
)
@click.option(
    "--min-votes",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Promote only what at least this many reviewers starred (counted per reviewer name).",
)
@click.option(
    "--pick",
    "picks",
    metavar="JOB,...",
    help="Job keys to promote, comma-separated (a unique prefix is enough).",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    metavar="N",
    help="Promote the N videos the audience liked best (figures from `runner metrics import`).",
)
@click.option(
    "--metric",
    type=click.Choice(METRICS),
    default="ctr",
    show_default=True,
    help="With --top: what 'best' means (cost per result: lowest is best).",
)
@click.option(
    "--min-impressions",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="With --top: only videos with at least this many impressions.",
)
@click.option("--tier", type=click.Choice(TIERS), default="standard", show_default=True)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="COLUMN=VALUE",
    help="Change a setting on promotion, e.g. quality=1080p (repeatable).",
)
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Samples of each winner.",
)
@click.option("--name", help="Label of the new run (default: <parent name>-<tier>).")
@click.option("--yes", "-y", is_flag=True, help="Spend without asking for confirmation.")
@click.option("--no-reuse", is_flag=True, help="Render again even if already promoted.")
@click.option("--prices", type=click.Path(dir_okay=False, path_type=Path), help="Price table TOML.")
@run_options
@workspace_option
def promote(
    run_ref: str,
    winners: tuple[Path, ...],
    min_votes: int,
    picks: str | None,
    top: int | None,
    metric: str,
    min_impressions: int,
    tier: Tier,
    overrides: tuple[str, ...],
    repeats: int,
    name: str | None,
    yes: bool,
    no_reuse: bool,
    prices: Path | None,
    backend: str | None,
    base_url: str | None,
    tuning: dict[str, Any],
    workspace: Path,
) -> None:
    """Re-render the winners of a run on another tier: a new run, linked to its parent,
    with identical parameters except the model (and any --set).

    \b
    Examples:
      runner promote latest --winners ~/Downloads/winners.csv
      runner promote 20261125-120301-demo --pick 3f2a9c0d,9b1e77aa --set quality=1080p
      runner promote latest --winners winners.csv --tier fast      # e.g. mini -> fast
      runner promote latest --winners ann.csv --winners bob.csv --min-votes 2
      runner promote latest --top 5 --metric ctr --min-impressions 1000
    """
    from ..grid.sheet import parse_overrides
    from ..review.promote import Votes, read_votes, write_notes
    from ..review.promote import promote as build_promotion

    if top is not None and (winners or picks is not None):
        raise InputError(
            "--top picks by the audience's figures: leave out --winners and --pick, "
            "or leave out --top"
        )
    if top is None and bool(winners) == (picks is not None):
        raise InputError(
            "say which jobs to promote: --winners winners.csv (exported from "
            "the report), --pick JOB,JOB or --top N (by the audience's figures)"
        )
    if (picks is not None or top is not None) and min_votes > 1:
        raise InputError("--min-votes counts reviewers' stars in --winners files, not --pick")
    check_workspace(workspace)
    votes: Votes | None = None
    with reader(workspace) as store:
        parent = store.run(run_ref)
        if winners:
            run_id = parent.run_id
            votes = read_votes(winners, run_id).resolved(
                lambda k: store.find_job(run_id, k).job_key
            )
            starred = votes.chosen(min_votes)
            short = votes.short(min_votes)
            if short:
                shown = "; ".join(short[:10]) + (
                    f" and {len(short) - 10} more" if len(short) > 10 else ""
                )
                click.echo(
                    f"{len(short)} pick(s) starred by fewer than {min_votes} reviewer(s) "
                    f"are left out: {shown}."
                )
            if not starred:
                raise InputError(
                    f"no job was starred by {min_votes} or more of the "
                    f"{len(votes.everyone)} reviewer(s) in "
                    f"{', '.join(w.name for w in winners)}; lower --min-votes"
                )
            chosen_jobs: list[tuple[int | None, str]] = [(p.row, p.key) for p in starred]
            source = winners[0].name
            sources = {p.key: p.file for p in starred}
        elif top is not None:
            chosen_jobs = [
                (None, key) for key in _top_keys(store, parent.run_id, top, metric, min_impressions)
            ]
            source = f"--top {top} --metric {metric}"
            sources = {}
        else:
            chosen_jobs = [(None, p.strip()) for p in (picks or "").split(",") if p.strip()]
            source = "--pick"
            sources = {}
        promotion = build_promotion(
            store,
            parent,
            chosen_jobs,
            source,
            tier,
            parse_overrides(overrides),
            repeats,
            prices_from(prices, workspace),
            sources,
        )
    chosen = backend_of(parent, backend, base_url, workspace)
    click.echo(chosen.announce())
    plan = promotion.plan
    settings = Settings(**tuning)
    ahead = outlook_of(
        plan,
        workspace,
        settings.rate,
        settings.concurrency,
        reuse=not no_reuse,
        max_rate=settings.max_rate,
    )
    click.echo(
        f"{len(plan.expansion.variants)} winner(s) of run {parent.run_id} -> "
        f"{plan.job_count} job(s) on the {tier} tier."
    )
    warnings = plan.prices.warnings(plan.on)
    for line in quote_lines(plan, ahead, workspace, warnings, simulated=chosen.simulated):
        click.echo(line)
    if promotion.collapsed:
        click.echo(
            f"{promotion.collapsed} pick(s) were samples of the same variant and are rendered once."
        )
    check_budget(plan, settings.budget, workspace, reuse=not no_reuse)
    confirm_room(ahead, workspace, settings.min_free_disk, yes)
    if not chosen.simulated and ahead.send:
        confirm_spend(yes)
    with Ledger.open(workspace) as ledger:
        run_id, reused = runs.create(
            ledger,
            plan,
            chosen,
            settings,
            name=name or f"{parent.name}-{tier}",
            reuse=not no_reuse,
            parent_run=parent.run_id,
            parent_of=promotion.parents.get,
        )
        if votes is not None:  # the winners' notes, for the promoted run's report
            write_notes(workspace / run_id, parent.run_id, votes, promotion.parents.values())
        click.echo(
            f"Run {run_id} (promoted from {parent.run_id})"
            + (f" ({reused} job(s) reused from earlier runs)" if reused else "")
        )
        if not chosen.simulated and not ahead.send and ledger.tally(run_id)[PENDING]:
            confirm_spend(yes)  # the quote said nothing to pay, but something is after all
        code = execute_run(ledger, run_id, chosen, settings, yes=yes)
    raise SystemExit(code)


def _top_keys(store: Store, run_id: str, top: int, metric: str, min_impressions: int) -> list[str]:
    """`promote --top`: the job keys of the ``top`` best videos by the audience's figures
    (runner.metrics.stats.best_videos), said aloud; refuses when none qualifies."""
    from ..metrics.stats import best_videos, percent, performance
    from ..metrics.store import imports_for_run, totals_by_job

    jobs = [j for j in store.jobs(run_id) if j.state == "done"]
    totals = totals_by_job(store, run_id)
    data = performance(jobs, totals, imports_for_run(store, run_id), metric=metric)  # type: ignore[arg-type]
    ranked = best_videos(data["variants"], metric, min_impressions)  # type: ignore[arg-type]
    if not ranked:
        counted = [v for v in data["variants"] if v["impressions"] > 0]
        if not counted:
            raise InputError(
                f"run {run_id} has no audience figures yet: import the platform's report "
                "first (runner metrics import FILE)"
            )
        most = max(v["impressions"] for v in counted)
        enough = sum(v["impressions"] >= min_impressions for v in counted)
        need = "" if metric == "ctr" else f" and {metric.replace('_', ' ')} figures"
        raise InputError(
            f"no video of run {run_id} has {min_impressions:,} or more impressions{need}: "
            f"{len(counted)} have figures ({enough} with enough impressions; the most is "
            f"{most:,}); lower --min-impressions or import more figures"
        )
    chosen: list[Mapping[str, Any]] = []
    for v in ranked:  # the best sample of each variant: another would be rendered once again
        if all(v["variant_key"] != c["variant_key"] for c in chosen):
            chosen.append(v)
    passed = len(ranked) - len(chosen)
    chosen = chosen[:top]
    if len(chosen) < top:
        click.echo(
            f"Only {len(chosen)} variant(s) have videos with {min_impressions:,} or more "
            "impressions: promoting those."
            + (f" ({passed} other sample(s) of them passed over.)" if passed else "")
        )
    for v in chosen:
        block = v[metric]
        shown = (
            f"{block['value']:,.2f} {v['currency'] or ''}".rstrip()
            if metric == "cost_per_result"
            else percent(block["value"])
        )
        seen = f"{v['impressions']:,} impressions"
        click.echo(f"Top by {metric}: {v['job_key']} {v['name']} ({shown}, {seen})")
    return [str(v["job_key"]) for v in chosen]
