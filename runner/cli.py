"""The `runner` command line: parse, call, print, map errors to exit codes. Nothing else."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import anyio
import click

from . import __version__, logs, report, runs
from .backend import Backend, api_key_from_env
from .backend import choose as choose_backend
from .dispatch import Settings
from .errors import InputError, RunnerError
from .ledger import DONE, EXPIRED, FAILED, LOST, RESULT_ERROR, UNKNOWN, Ledger, reader
from .ledger import spent as ledger_spent
from .plan import Plan, make_plan, plan_json, plan_text
from .pricing import PriceTable, load_prices
from .progress import Display
from .results import result_rows
from .rules import TIERS, Tier
from .tables import write_table

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _Group(click.Group):
    """Turns our errors into ``Error: ...`` on stderr and their exit code (never a traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RunnerError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:  # before a run's own Ctrl-C handling took over
            click.echo("Stopped (Ctrl-C). Nothing paid for is lost; if a run had started, "
                       "`runner resume latest` continues it.", err=True)
            ctx.exit(3)


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="runner")
@click.option("-v", "--verbose", count=True, help="More log lines (-vv: every HTTP request).")
def main(verbose: int) -> None:
    """Sweep Seedance 2.0 video prompts on the cheap fast tier, review the results side by
    side, and re-render only the winners on the standard tier.

    \b
    Typical loop:
      runner plan experiments/demo.csv       # what will it cost? (spends nothing)
      runner run experiments/demo.csv        # render on fast, write the report
      runner promote latest --winners winners.csv   # winners on standard

    Without EVOLINK_API_KEY set, runs use the built-in simulator (no cost, no network).
    """
    logs.configure(verbose, api_key_from_env())


def _workspace_option(f: Any) -> Any:
    return click.option(
        "--workspace", type=click.Path(file_okay=False, path_type=Path), default=Path("reports"),
        show_default=True, help="Folder holding the ledger and one folder per run.",
    )(f)


def _prices(prices: Path | None, workspace: Path) -> PriceTable:
    if prices is None and (workspace / "prices.toml").is_file():
        prices = workspace / "prices.toml"
    return load_prices(prices)


@main.command(context_settings=CONTEXT)
@click.argument("experiment", type=click.Path(path_type=Path))
@click.option("--tier", type=click.Choice(TIERS), default="fast", show_default=True,
              help="Tier the jobs are planned for.")
@click.option("--set", "overrides", multiple=True, metavar="COLUMN=VALUE",
              help="Set a column in every row (repeatable; 'a | b' makes it an axis).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write every job to a table (.parquet, .csv or .json).")
@click.option("--prices", type=click.Path(dir_okay=False, path_type=Path),
              help="Price table TOML (default: WORKSPACE/prices.toml if present, else built-in).")
@_workspace_option
def plan(
    experiment: Path, tier: Tier, overrides: tuple[str, ...], as_json: bool, out: Path | None,
    prices: Path | None, workspace: Path,
) -> None:
    """Validate and expand an experiment; print its jobs and cost per tier. Spends nothing.

    \b
    Examples:
      runner plan experiments/demo.csv
      runner plan experiments/sweep.csv --tier standard --set quality=1080p
      runner plan experiments/demo.csv --json --out plan.parquet
    """
    result = make_plan(experiment, tier, overrides, _prices(prices, workspace))
    if out is not None:
        write_table(job_rows(result), out)
    if as_json:
        click.echo(json.dumps(plan_json(result), indent=2, ensure_ascii=False))
    else:
        click.echo(plan_text(result))
        if out is not None:
            click.echo(f"Jobs written to {out}")


def job_rows(plan: Plan) -> list[dict[str, object]]:
    dims = list(plan.expansion.dimensions)
    rows: list[dict[str, object]] = []
    for job in plan.jobs():
        v, r = job.variant, job.variant.request
        values = dict(v.values)
        rows.append({
            "job_key": job.job_key, "variant_key": v.variant_key, "tier": job.tier,
            "sample": job.sample, "model": job.model, "row": v.row, "name": v.name,
            **{f"dim_{d}": values.get(d, "") for d in dims},
            "prompt": r.prompt, "duration": r.duration, "quality": r.quality,
            "aspect_ratio": r.aspect_ratio, "generate_audio": r.generate_audio,
            "content_filter": r.content_filter, "web_search": r.web_search,
            "image_urls": " ".join(r.image_urls), "video_urls": " ".join(r.video_urls),
            "audio_urls": " ".join(r.audio_urls), "estimated_credits": plan.estimate(job),
            "body": json.dumps(job.body(), ensure_ascii=False, sort_keys=True),
        })
    return rows


# ---------------------------------------------------------------------- running


def _run_options(f: Any) -> Any:
    options = [
        click.option("--backend", type=click.Choice(["sim", "evolink"]),
                     help="API to use (default: evolink when EVOLINK_API_KEY is set, else the "
                          "built-in simulator)."),
        click.option("--base-url", help="API address, e.g. a `runner simulate` server at "
                                        "http://127.0.0.1:8787."),
        click.option("--rate", type=click.FloatRange(min=0.01), help="Creates per second "
                     "[default: 2]."),
        click.option("--poll-rate", type=click.FloatRange(min=0.01),
                     help="Task queries per second [default: 5]."),
        click.option("--concurrency", type=click.IntRange(min=1),
                     help="Tasks in flight at most [default: 50]."),
        click.option("--budget", type=click.FloatRange(min=0),
                     help="Stop before spending more than this many credits."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _settings(rate: float | None, poll_rate: float | None, concurrency: int | None,
              budget: float | None) -> Settings:
    given: dict[str, Any] = {"rate": rate, "poll_rate": poll_rate, "concurrency": concurrency,
                             "budget": budget}
    return Settings(**{k: v for k, v in given.items() if v is not None})


@main.command(context_settings=CONTEXT)
@click.argument("experiment", type=click.Path(path_type=Path))
@click.option("--tier", type=click.Choice(TIERS), default="fast", show_default=True)
@click.option("--set", "overrides", multiple=True, metavar="COLUMN=VALUE",
              help="Set a column in every row (repeatable).")
@click.option("--name", help="Label of the run (default: the experiment's file name).")
@click.option("--yes", "-y", is_flag=True, help="Spend without asking for confirmation.")
@click.option("--no-reuse", is_flag=True,
              help="Render again even where the workspace already has the same job's video.")
@click.option("--prices", type=click.Path(dir_okay=False, path_type=Path),
              help="Price table TOML.")
@_run_options
@_workspace_option
def run(
    experiment: Path, tier: Tier, overrides: tuple[str, ...], name: str | None, yes: bool,
    no_reuse: bool, prices: Path | None, backend: str | None, base_url: str | None,
    rate: float | None, poll_rate: float | None, concurrency: int | None,
    budget: float | None, workspace: Path,
) -> None:
    """Render an experiment: plan, confirm the cost, create, poll, download, write the report.

    \b
    Examples:
      runner run experiments/demo.csv                    # built-in simulator, no cost
      runner run experiments/sweep.csv --budget 5000 --yes
      runner run experiments/demo.csv --base-url http://127.0.0.1:8787
    """
    chosen = choose_backend(backend, base_url, workspace)
    click.echo(chosen.announce())
    result = make_plan(experiment, tier, overrides, _prices(prices, workspace))
    q = result.quote
    click.echo(f"{result.job_count:,} job(s) on the {tier} tier, about {q.credits:,.2f} credits "
               f"(${q.usd:,.2f}){' (simulated)' if chosen.simulated else ''}.")
    for warning in result.warnings:
        click.echo(f"Warning: {warning}")
    if not chosen.simulated and not yes:
        if not sys.stdin.isatty():
            raise InputError("this run spends real credits: add --yes to confirm "
                             "(or --budget CREDITS to cap it)")
        click.confirm("Spend these credits?", abort=True)
    settings = _settings(rate, poll_rate, concurrency, budget)
    with Ledger.open(workspace) as ledger:
        run_id, reused = runs.create(ledger, result, chosen, settings, name=name,
                                     reuse=not no_reuse)
        del result  # the ledger has every job now; a big plan need not stay in memory
        click.echo(f"Run {run_id}" + (f" ({reused} job(s) reused from earlier runs)"
                                       if reused else ""))
        code = _execute(ledger, run_id, chosen, settings)
    raise SystemExit(code)


@main.command(context_settings=CONTEXT)
@click.argument("run_ref", metavar="RUN")
@_run_options
@_workspace_option
def resume(run_ref: str, backend: str | None, base_url: str | None, rate: float | None,
           poll_rate: float | None, concurrency: int | None, budget: float | None,
           workspace: Path) -> None:
    """Continue an interrupted run: nothing paid for is redone, nothing is lost.

    Jobs caught mid-create are held as unknown (see `runner resolve`); tasks already created
    are polled and downloaded; jobs never sent are sent.

    \b
    Examples:
      runner resume latest
      runner resume 20261125-031500-sweep --budget 8000
    """
    with Ledger.open(workspace) as ledger:
        row = runs.run_row(ledger.conn, run_ref)
        code = _continue(ledger, row, backend, base_url, rate=rate, poll_rate=poll_rate,
                         concurrency=concurrency, budget=budget)
    raise SystemExit(code)


@main.command(context_settings=CONTEXT)
@click.argument("run_ref", metavar="RUN")
@click.option("--failed", "only_failed", is_flag=True,
              help="Only jobs whose task failed (not lost or expired ones).")
@_run_options
@_workspace_option
def retry(run_ref: str, only_failed: bool, backend: str | None, base_url: str | None,
          rate: float | None, poll_rate: float | None, concurrency: int | None,
          budget: float | None, workspace: Path) -> None:
    """Send the failed jobs of a run again (new attempts in the same run).

    Retries failed, lost, expired and unusable results; jobs the API rejected (400) are not
    retried: fix the experiment instead.

    \b
    Examples:
      runner retry latest
      runner retry latest --failed
    """
    states = [FAILED] if only_failed else [FAILED, LOST, EXPIRED, RESULT_ERROR]
    with Ledger.open(workspace) as ledger:
        row = runs.run_row(ledger.conn, run_ref)
        count = runs.reset_jobs(ledger, row["run_id"], states, "operator: runner retry")
        click.echo(f"{count} job(s) of run {row['run_id']} will be sent again.")
        code = _continue(ledger, row, backend, base_url, rate=rate, poll_rate=poll_rate,
                         concurrency=concurrency, budget=budget)
    raise SystemExit(code)


@main.command(context_settings=CONTEXT)
@click.argument("run_ref", metavar="RUN")
@click.option("--resubmit", "resubmits", multiple=True, metavar="JOB",
              help="Send this held job again (it may be paid twice if the first create "
                   "did reach the provider).")
@click.option("--mark-created", "marks", multiple=True, metavar="JOB=TASK_ID",
              help="The held job's create did reach the provider, as this task.")
@_workspace_option
def resolve(run_ref: str, resubmits: tuple[str, ...], marks: tuple[str, ...],
            workspace: Path) -> None:
    """List and settle jobs whose create outcome is unknown (held, never re-sent by itself).

    \b
    Examples:
      runner resolve latest
      runner resolve latest --resubmit 3f2a9c0d1e4b5a6c-fast-1
      runner resolve latest --mark-created 3f2a9c0d1e4b5a6c-fast-1=task-unified-1774857405-abc12345
    Then `runner resume RUN` sends or polls them.
    """
    with Ledger.open(workspace) as ledger:
        row = runs.run_row(ledger.conn, run_ref)
        run_id = row["run_id"]
        for ref in resubmits:
            job = runs.find_job(ledger, run_id, ref)
            _require_held(job)
            ledger.resubmit(run_id, job["job_id"], "operator: runner resolve --resubmit")
            click.echo(f"{job['job_key']}: will be sent again by `runner resume {run_id}`")
        for mark in marks:
            ref, sep, task_id = mark.partition("=")
            if not sep or not task_id.startswith("task-unified-"):
                raise InputError(f"--mark-created {mark!r}: write JOB=TASK_ID with a task id "
                                 "starting task-unified-")
            job = runs.find_job(ledger, run_id, ref)
            _require_held(job)
            ledger.mark_created(run_id, job["job_id"], task_id)
            click.echo(f"{job['job_key']}: recorded as {task_id}; `runner resume {run_id}` "
                       "polls and downloads it")
        held = ledger.jobs(run_id, [UNKNOWN])
        if not held:
            click.echo(f"No held jobs in run {run_id}.")
            return
        at_risk = sum(j["est_credits"] for j in held)
        click.echo(f"{len(held)} job(s) of run {run_id} have an unknown create outcome "
                   f"(up to {at_risk:,.2f} credits may have been charged):")
        for job in held:
            click.echo(f"  {job['job_key']}  row {job['row']}  {job['name']}  "
                       f"~{job['est_credits']:.2f} credits  {job['error_message'] or ''}")
        click.echo("Check your EvoLink dashboard for these tasks, then use --mark-created "
                   "JOB=TASK_ID (found) or --resubmit JOB (not found).")


@main.command(context_settings=CONTEXT)
@click.argument("run_ref", metavar="RUN")
@click.option("--winners", type=click.Path(dir_okay=False, path_type=Path),
              help="winners.csv exported from the run's report.")
@click.option("--pick", "picks", metavar="JOB,...",
              help="Job keys to promote, comma-separated (a unique prefix is enough).")
@click.option("--tier", type=click.Choice(TIERS), default="standard", show_default=True)
@click.option("--set", "overrides", multiple=True, metavar="COLUMN=VALUE",
              help="Change a setting on promotion, e.g. quality=1080p (repeatable).")
@click.option("--repeats", type=click.IntRange(min=1), default=1, show_default=True,
              help="Samples of each winner.")
@click.option("--name", help="Label of the new run (default: <parent name>-<tier>).")
@click.option("--yes", "-y", is_flag=True, help="Spend without asking for confirmation.")
@click.option("--no-reuse", is_flag=True, help="Render again even if already promoted.")
@click.option("--prices", type=click.Path(dir_okay=False, path_type=Path),
              help="Price table TOML.")
@_run_options
@_workspace_option
def promote(
    run_ref: str, winners: Path | None, picks: str | None, tier: Tier,
    overrides: tuple[str, ...], repeats: int, name: str | None, yes: bool, no_reuse: bool,
    prices: Path | None, backend: str | None, base_url: str | None, rate: float | None,
    poll_rate: float | None, concurrency: int | None, budget: float | None, workspace: Path,
) -> None:
    """Re-render the winners of a run on another tier: a new run, linked to its parent,
    with identical parameters except the model (and any --set).

    \b
    Examples:
      runner promote latest --winners ~/Downloads/winners.csv
      runner promote 20261125-120301-demo --pick 3f2a9c0d,9b1e77aa --set quality=1080p
      runner promote latest --winners winners.csv --tier fast      # e.g. mini -> fast
    """
    from .promote import promote as build_promotion
    from .promote import read_winners
    from .sheet import parse_overrides

    if (winners is None) == (picks is None):
        raise InputError("say which jobs to promote: --winners winners.csv (exported from "
                         "the report) or --pick JOB,JOB")
    with reader(workspace) as conn:
        parent = runs.run_row(conn, run_ref)
        if winners is not None:
            chosen_jobs: list[tuple[int | None, str]] = list(
                read_winners(winners, parent["run_id"]))
            source = winners.name
        else:
            chosen_jobs = [(None, p.strip()) for p in (picks or "").split(",") if p.strip()]
            source = "--pick"
        promotion = build_promotion(conn, parent, chosen_jobs, source, tier,
                                    parse_overrides(overrides), repeats,
                                    _prices(prices, workspace))
    chosen = _backend_of(parent, backend, base_url, workspace)
    click.echo(chosen.announce())
    plan = promotion.plan
    q = plan.quote
    click.echo(f"{len(plan.expansion.variants)} winner(s) of run {parent['run_id']} -> "
               f"{plan.job_count} job(s) on the {tier} tier, about {q.credits:,.2f} credits "
               f"(${q.usd:,.2f}){' (simulated)' if chosen.simulated else ''}.")
    if promotion.collapsed:
        click.echo(f"{promotion.collapsed} pick(s) were samples of the same variant and are "
                   "rendered once.")
    if not chosen.simulated and not yes:
        if not sys.stdin.isatty():
            raise InputError("this run spends real credits: add --yes to confirm")
        click.confirm("Spend these credits?", abort=True)
    settings = _settings(rate, poll_rate, concurrency, budget)
    with Ledger.open(workspace) as ledger:
        run_id, reused = runs.create(
            ledger, plan, chosen, settings, name=name or f"{parent['name']}-{tier}",
            reuse=not no_reuse, parent_run=parent["run_id"],
            parent_of=promotion.parents.get)
        click.echo(f"Run {run_id} (promoted from {parent['run_id']})" + (
            f" ({reused} job(s) reused from earlier runs)" if reused else ""))
        code = _execute(ledger, run_id, chosen, settings)
    raise SystemExit(code)


def _require_held(job: Any) -> None:
    if job["state"] != UNKNOWN:
        raise InputError(f"job {job['job_key']} is {job['state']}, not held as unknown; "
                         "only held jobs can be resolved")


def _backend_of(row: Any, backend: str | None, base_url: str | None,
                workspace: Path) -> Backend:
    saved = json.loads(row["config_json"])
    return choose_backend(backend or row["backend"],
                          base_url or (None if saved.get("in_process") else row["base_url"]),
                          workspace)


def _continue(ledger: Ledger, row: Any, backend: str | None, base_url: str | None,
              **overrides: Any) -> int:
    """Dispatch an existing run again (resume, retry), with its saved settings."""
    chosen = _backend_of(row, backend, base_url, ledger.workspace)
    click.echo(chosen.announce())
    return _execute(ledger, row["run_id"], chosen, runs.settings_of(row, **overrides))


def _execute(ledger: Ledger, run_id: str, chosen: Backend, settings: Settings) -> int:
    total, done = ledger.conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(state = ?), 0) FROM jobs WHERE run_id = ?",
        (DONE, run_id)).fetchone()
    display = Display(total, done, sys.stderr)
    outcome = None
    try:
        with display:
            outcome = anyio.run(runs.execute, ledger, run_id, chosen, settings, display,
                                display.notice)
    finally:
        code = runs.finish_state(ledger, run_id, outcome) if outcome else 3
        with reader(ledger.workspace) as conn:
            path = report.build(conn, ledger.workspace, run_id)
            _summary(conn, run_id, outcome)
        click.echo(f"Report: {path}")
    return code


def _summary(conn: Any, run_id: str, outcome: Any) -> None:
    counts = dict(conn.execute("SELECT state, COUNT(*) FROM jobs WHERE run_id = ? GROUP BY "
                               "state", (run_id,)).fetchall())
    spent = ledger_spent(conn, run_id)
    parts = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    click.echo(f"Run {run_id}: {parts}; {spent:,.2f} credits.")
    if outcome is not None and outcome.stop_reason:
        click.echo(f"Stopped early: {outcome.stop_reason}")
    if counts.get(UNKNOWN):
        click.echo(f"{counts[UNKNOWN]} job(s) have an unknown create outcome: "
                   f"`runner resolve {run_id}`")
    if counts.get(EXPIRED):
        click.echo(f"{counts[EXPIRED]} paid result(s) EXPIRED before they were downloaded.")


# ---------------------------------------------------------------------- reading runs


@main.command(context_settings=CONTEXT)
@click.argument("run_ref", metavar="[RUN]", required=False)
@_workspace_option
def status(run_ref: str | None, workspace: Path) -> None:
    """List runs, or show one run's counts, spend and state.

    \b
    Examples:
      runner status
      runner status latest
    """
    with reader(workspace) as conn:
        if run_ref is None:
            rows = conn.execute("SELECT * FROM runs ORDER BY created_at").fetchall()
            for r in rows:
                total, done = conn.execute(
                    "SELECT COUNT(*), SUM(state = 'done') FROM jobs WHERE run_id = ?",
                    (r["run_id"],)).fetchone()
                child = f"  <- promoted from {r['parent_run']}" if r["parent_run"] else ""
                click.echo(f"{r['run_id']}  {r['tier']:<8} {r['state']:<9} {done or 0}/{total}"
                           f" done  {ledger_spent(conn, r['run_id']):,.2f} credits{child}")
            if not rows:
                click.echo("No runs yet.")
            return
        r = runs.run_row(conn, run_ref)
        counts = dict(conn.execute("SELECT state, COUNT(*) FROM jobs WHERE run_id = ? "
                                   "GROUP BY state", (r["run_id"],)).fetchall())
        click.echo(f"Run {r['run_id']} ({r['name']}): {r['state']}, tier {r['tier']}, "
                   f"backend {r['backend']}")
        click.echo("Jobs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        click.echo(f"Credits: {ledger_spent(conn, r['run_id']):,.2f}"
                   + (f" of a {r['budget']:,.2f} budget" if r["budget"] else ""))
        if r["stop_reason"]:
            click.echo(f"Stopped: {r['stop_reason']}")
        if r["parent_run"]:
            click.echo(f"Promoted from {r['parent_run']}")
        for child in conn.execute("SELECT run_id, tier FROM runs WHERE parent_run = ?",
                                  (r["run_id"],)):
            click.echo(f"Promoted to {child['run_id']} ({child['tier']})")


@main.command(name="report", context_settings=CONTEXT)
@click.argument("run_ref", metavar="RUN")
@click.option("--open", "open_it", is_flag=True, help="Open it in the web browser.")
@click.option("--templates", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of templates that override the shipped ones.")
@_workspace_option
def report_cmd(run_ref: str, open_it: bool, templates: Path | None, workspace: Path) -> None:
    """(Re)build a run's HTML report and results tables.

    \b
    Examples:
      runner report latest --open
    """
    with reader(workspace) as conn:
        r = runs.run_row(conn, run_ref)
        path = report.build(conn, workspace, r["run_id"], templates)
    click.echo(f"Report: {path}")
    if open_it:
        click.launch(str(path))


@main.command(context_settings=CONTEXT)
@click.argument("run_ref", metavar="RUN")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "json"]), default="csv",
              show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (default: WORKSPACE/RUN/results.FORMAT).")
@_workspace_option
def export(run_ref: str, fmt: str, out: Path | None, workspace: Path) -> None:
    """Write a run's results table (one row per job) for pandas or Excel.

    \b
    Examples:
      runner export latest --format parquet
      runner export latest --out sweep.csv
    """
    with reader(workspace) as conn:
        r = runs.run_row(conn, run_ref)
        path = out or workspace / r["run_id"] / f"results.{fmt}"
        write_table(result_rows(conn, r["run_id"]), path, fmt)
    click.echo(f"Wrote {path}")


@main.command(context_settings=CONTEXT)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to serve on (loopback only by default).")
@click.option("--port", default=8787, show_default=True, type=int)
@click.option("--speed", default=1.0, show_default=True, type=click.FloatRange(min=0.001),
              help="Simulated seconds per real second (100: a 2-minute render takes 1.2 s).")
@click.option("--rate-limit", type=click.FloatRange(min=0.01),
              help="Creates per second per key before 429s.")
@click.option("--concurrency", type=click.IntRange(min=1),
              help="Videos generating at once per key (the rest wait as pending).")
@click.option("--fail-rate", "fail_rates", multiple=True, metavar="CODE=P",
              help="Fail this share of tasks with an error code, e.g. service_error=0.05.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--key", "keys", multiple=True,
              help="API key to accept (repeatable; default: any key).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="JSON file of simulator settings (see runner/simulator/config.py).")
def simulate(host: str, port: int, speed: float, rate_limit: float | None,
             concurrency: int | None, fail_rates: tuple[str, ...], seed: int,
             keys: tuple[str, ...], config_file: Path | None) -> None:
    """Serve the local EvoLink simulator (no cost, no network beyond this machine).

    \b
    Examples:
      runner simulate --speed 100
      runner run experiments/demo.csv --base-url http://127.0.0.1:8787
    """
    import uvicorn

    from .simulator.app import KeyConfig, SimConfig, create_app

    data: dict[str, Any] = json.loads(config_file.read_text()) if config_file else {}
    config = SimConfig.from_json(data) if data else SimConfig()
    rates: dict[str, float] = {}
    for item in fail_rates:
        code, _, p = item.partition("=")
        try:
            rates[code.strip()] = float(p)
        except ValueError:
            raise InputError(f"--fail-rate {item!r}: write CODE=P, "
                             "e.g. service_error=0.05") from None
    changes: dict[str, Any] = {"speed": speed, "seed": seed}
    if rate_limit:
        changes["create_rate"] = rate_limit
    if concurrency:
        changes["concurrency"] = concurrency
    if rates:
        changes["fail_rates"] = rates
    if keys:
        changes["keys"] = {k: KeyConfig() for k in keys}
    else:
        changes["accept_any_key"] = True
    try:
        config = dataclasses.replace(config, **changes)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    click.echo(f"Simulator on http://{host}:{port} (speed x{speed:g}); Ctrl-C to stop.")
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning",
                http="h11", loop="asyncio")
