"""Commands that read runs: status, report, export (tables, a share, a folder for ads)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import InputError
from ..metrics.ads_export import write_for_ads
from ..review import report
from ..review.results import result_rows
from ..review.share import write_share
from ..review.summary import active_seconds, figures_of, next_steps, summary_data
from ..review.tables import write_excel_csv, write_table
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


SEPARATORS = {",": ",", ";": ";", "tab": "\t"}


@main.command(context_settings=CONTEXT)
@click.argument("run_ref", metavar="RUN")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet", "json"]),
    help="Table format  [default: csv]. Not with --share, --excel or --for-ads.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="File to write (default: WORKSPACE/RUN/results.FORMAT); with --share, a new folder "
    "or a name ending in .zip; with --for-ads, a new folder.",
)
@click.option(
    "--excel",
    is_flag=True,
    help="A CSV for Excel: BOM, --csv-sep between cells, no cell Excel would run as a formula "
    "(default: WORKSPACE/RUN/results-excel.csv).",
)
@click.option(
    "--csv-sep",
    type=click.Choice(list(SEPARATORS)),
    help="Cell separator of --excel (or of --for-ads's manifest.csv)  [default: ,]; ';' for "
    "Excel set to a European language (--excel then writes decimal numbers with a comma: "
    "12,5).",
)
@click.option(
    "--share",
    is_flag=True,
    help="A folder (or .zip) to send a client: the report, posters and strips, and only the "
    "videos of the jobs --winners names.",
)
@click.option(
    "--for-ads",
    is_flag=True,
    help="A folder of videos to upload to Meta, TikTok or Google Ads, each named for the ad "
    "with its job key, and manifest.csv: every done job's, or only those --winners stars.",
)
@click.option(
    "--winners",
    type=click.Path(dir_okay=False, path_type=Path),
    multiple=True,
    help="With --share or --for-ads: a winners.csv exported from the report; repeatable (one "
    "per reviewer): anything starred in any of them, or see --min-votes.",
)
@click.option(
    "--min-votes",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="With --winners: only what at least this many reviewers starred (counted per "
    "reviewer name, as `runner promote` does).",
)
@workspace_option
def export(
    run_ref: str,
    fmt: str | None,
    out: Path | None,
    excel: bool,
    csv_sep: str | None,
    share: bool,
    for_ads: bool,
    winners: tuple[Path, ...],
    min_votes: int,
    workspace: Path,
) -> None:
    """Write a run's results table (one row per job) for pandas or Excel, a folder of
    chosen videos to share, or a folder of videos named for upload to ad platforms.

    results.csv and results.parquet hold every cell exactly as recorded (for pandas);
    --excel writes a copy that is safe to open in Excel.

    \b
    Examples:
      runner export latest --format parquet
      runner export latest --out sweep.csv
      runner export latest --excel --csv-sep ';'
      runner export latest --share --winners winners.csv --out for-client.zip
      runner export latest --share --winners ann.csv --winners bob.csv --min-votes 2 --out x.zip
      runner export latest --for-ads --out ads-spring
      runner export latest --for-ads --winners ann.csv --winners bob.csv --out ads-spring
    """
    if for_ads:
        _check_for_ads(fmt, out, excel, share)
    else:
        _check_export(fmt, out, excel, csv_sep, share, winners)
    if min_votes > 1 and not winners:
        raise InputError(
            "--min-votes counts the reviewers' stars in --winners files, with --share or "
            "--for-ads (e.g. --share --winners ann.csv --winners bob.csv --min-votes 2)"
        )
    with reader(workspace) as store:
        run_id = store.run(run_ref).run_id
        if for_ads:
            assert out is not None
            sep = SEPARATORS[csv_sep or ","]
            exported = write_for_ads(store, workspace, run_id, out, winners, sep, min_votes)
            click.echo(exported.text())
            return
        if share:
            assert out is not None and winners
            click.echo(write_share(store, workspace, run_id, winners, out, None, min_votes).text())
            return
        if out is not None and out.is_dir():
            raise InputError(f"--out {out} is a folder: give a file name, e.g. {out / 'x.csv'}")
        if excel:
            path = out or workspace / run_id / "results-excel.csv"
            write_excel_csv(result_rows(store, run_id), path, SEPARATORS[csv_sep or ","])
        else:
            path = out or workspace / run_id / f"results.{fmt or 'csv'}"
            write_table(result_rows(store, run_id), path, fmt or "csv")
    click.echo(f"Wrote {path}")


def _check_export(
    fmt: str | None,
    out: Path | None,
    excel: bool,
    csv_sep: str | None,
    share: bool,
    winners: tuple[Path, ...],
) -> None:
    """Refuse options that do not go together, saying what to do instead."""
    if share and excel:
        raise InputError(
            "--share and --excel are separate exports: run `runner export` once for each"
        )
    if share:
        if fmt:
            raise InputError(
                "--format does not apply to --share (it writes the report and videos, not a "
                "table): leave --format out"
            )
        if csv_sep:
            raise InputError("--csv-sep goes with --excel, not --share: leave it out")
        if not winners:
            raise InputError(
                "--share needs --winners: the winners.csv exported from the report "
                "(its starred videos are the ones shared)"
            )
        if out is None:
            raise InputError(
                "--share needs --out: a new folder, or a name ending in .zip "
                "(e.g. --out for-client.zip)"
            )
        return
    if winners:
        raise InputError(
            "--winners goes with --share or --for-ads (e.g. `--share --winners winners.csv`)"
        )
    if excel and fmt:
        raise InputError("--excel always writes CSV: leave --format out")
    if csv_sep and not excel:
        raise InputError(
            "--csv-sep goes with --excel (results.csv stays comma-separated for pandas): "
            "add --excel"
        )


def _check_for_ads(fmt: str | None, out: Path | None, excel: bool, share: bool) -> None:
    """Refuse what does not apply to --for-ads (a folder of videos and a manifest)."""
    for given, flag in ((share, "--share"), (excel, "--excel"), (fmt, "--format")):
        if given:
            raise InputError(
                f"{flag} does not apply to --for-ads (it writes a folder of videos and "
                f"manifest.csv, always a CSV for Excel): leave {flag} out, or run "
                "`runner export` once for each"
            )
    if out is None:
        raise InputError(
            "--for-ads needs --out: a new folder to upload from (e.g. --out ads-spring)"
        )
