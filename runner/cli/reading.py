"""Commands that read runs: status, report, export."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import InputError
from ..review import report
from ..review.results import result_rows
from ..review.summary import active_seconds, figures_of, next_steps, summary_data
from ..review.tables import write_table
from ..run.ledger import reader
from ..run.progress import clock_text
from .base import (
    CONTEXT,
    main,
    workspace_option,
)


@main.command(context_settings=CONTEXT)
@click.argument("run_ref", metavar="[RUN]", required=False)
@click.option(
    "--json", "as_json", is_flag=True, help="Print one run's summary.json figures as JSON."
)
@workspace_option
def status(run_ref: str | None, as_json: bool, workspace: Path) -> None:
    """List runs, or show one run's counts, spend and state.

    Counts are cumulative over resumes and are the ones the progress line, summary.json and
    the report show. A run no live runner holds is never shown as running.

    \b
    Examples:
      runner status
      runner status latest
      runner status latest --json
    """
    with reader(workspace) as store:
        if run_ref is None:
            if as_json:
                raise InputError(
                    "--json shows one run: give it, e.g. `runner status latest --json`"
                )
            every = store.runs()
            for r in every:
                fig = figures_of(store, r.run_id)
                child = f"  <- promoted from {r.parent_run}" if r.parent_run else ""
                click.echo(
                    f"{r.run_id}  {r.tier:<8} {r.state:<9} {fig.finished}/{fig.total}"
                    f" finished, {fig.done} done  {fig.credits:,.2f} credits{child}"
                )
            if not every:
                click.echo("No runs yet.")
            return
        r = store.run(run_ref)
        if as_json:
            click.echo(json.dumps(summary_data(store, r.run_id), indent=2, ensure_ascii=False))
            return
        tally = store.tally(r.run_id)
        fig = figures_of(store, r.run_id)
        click.echo(f"Run {r.run_id} ({r.name}): {r.state}, tier {r.tier}, backend {r.backend}")
        tags = store.tags(r.run_id)
        if tags:
            click.echo("Tags: " + ", ".join(f"{k}={v}" for k, v in tags.items()))
        click.echo(f"Jobs: {fig.finished:,}/{fig.total:,} finished: {fig.text()}")
        pruned = store.pruned(r.run_id)
        if pruned:
            click.echo(f"{pruned} video(s) pruned (posters and frame strips kept)")
        click.echo(
            f"Spent: {tally.money_text()}" + (f", of a {r.budget:,.2f} budget" if r.budget else "")
        )
        wall = active_seconds(store, r.run_id)
        if wall is not None:
            click.echo(f"Wall time: {clock_text(wall)}")
        if r.stop_reason:
            click.echo(f"Stopped: {r.stop_reason}")
        if r.parent_run:
            click.echo(f"Promoted from {r.parent_run}")
        for promoted in store.children(r.run_id):
            click.echo(f"Promoted to {promoted.run_id} ({promoted.tier})")
        for step in next_steps(store, r.run_id) if r.state != "running" else ():
            go = f": `{step['command']}`" if step["command"] else ""
            click.echo(f"Next: {step['jobs']:,} job(s) {step['what']}{go}")


@main.command(name="report", context_settings=CONTEXT)
@click.argument("run_ref", metavar="RUN")
@click.option("--open", "open_it", is_flag=True, help="Open it in the web browser.")
@click.option(
    "--templates",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of templates that override the shipped ones.",
)
@workspace_option
def report_cmd(run_ref: str, open_it: bool, templates: Path | None, workspace: Path) -> None:
    """(Re)build a run's HTML report and results tables.

    \b
    Examples:
      runner report latest --open
    """
    with reader(workspace) as store:
        path = report.build(store, workspace, store.run(run_ref).run_id, templates)
    click.echo(f"Report: {path}")
    if open_it:
        click.launch(str(path))


@main.command(context_settings=CONTEXT)
@click.argument("run_ref", metavar="RUN")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet", "json"]),
    default="csv",
    show_default=True,
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (default: WORKSPACE/RUN/results.FORMAT).",
)
@workspace_option
def export(run_ref: str, fmt: str, out: Path | None, workspace: Path) -> None:
    """Write a run's results table (one row per job) for pandas or Excel.

    \b
    Examples:
      runner export latest --format parquet
      runner export latest --out sweep.csv
    """
    with reader(workspace) as store:
        run_id = store.run(run_ref).run_id
        path = out or workspace / run_id / f"results.{fmt}"
        write_table(result_rows(store, run_id), path, fmt)
    click.echo(f"Wrote {path}")
