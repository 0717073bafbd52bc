"""Commands that look after a workspace: prune (free the disk of a run's videos) and spend
(credits and dollars across runs, by tag, month, tier or run)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import InputError
from ..review import report
from ..review.prune import apply_prune, plan_prune, winner_keys
from ..review.spend import BY, parse_since, spend
from ..run.ledger import Ledger, lock_holder, reader
from .base import CONTEXT, main, parse_tags, prices_from, stdin_is_terminal, workspace_option


@main.command(context_settings=CONTEXT)
@click.argument("run_ref", metavar="RUN")
@click.option(
    "--keep",
    type=click.Path(dir_okay=False, path_type=Path),
    help="winners.csv exported from the run's report: these jobs keep their videos.",
)
@click.option(
    "--archive",
    type=click.Path(file_okay=False, path_type=Path),
    help="Move the videos into this folder (same paths as in the workspace) instead of "
    "deleting them.",
)
@click.option("--yes", "-y", is_flag=True, help="Remove without asking for confirmation.")
@workspace_option
def prune(
    run_ref: str, keep: Path | None, archive: Path | None, yes: bool, workspace: Path
) -> None:
    """Free the disk a run's videos take: remove them (or move them with --archive),
    keeping posters and frame strips so the report still opens.

    A pruned video is not reused by a later run of the same job: that run renders (and pays
    for) it again, unless the archived file is moved back first.

    \b
    Examples:
      runner prune latest --keep ~/Downloads/winners.csv
      runner prune 20261125-031500-sweep --archive /Volumes/backup/runner --yes
    """
    holder = lock_holder(workspace) if (workspace / "ledger.sqlite").is_file() else None
    if holder:
        raise InputError(
            f"a run is going in {workspace} ({holder}): prune after it ends, or stop it "
            "(Ctrl-C) first"
        )
    with Ledger.open(workspace) as ledger:
        run_id = ledger.run(run_ref).run_id
        keys = winner_keys(ledger, run_id, keep) if keep else set()
        plan = plan_prune(ledger, run_id, keys)
        if not plan.videos:
            click.echo(
                f"Run {run_id}: no videos to prune"
                + (f" ({plan.kept} winner video(s) kept)." if plan.kept else ".")
            )
            return
        click.echo(plan.text(archive))
        if not yes:
            if not stdin_is_terminal():
                more = f" --keep {keep}" if keep else ""
                more += f" --archive {archive}" if archive else ""
                raise InputError(
                    f"pruning removes videos: add --yes to confirm "
                    f"(runner prune {run_id}{more} --yes)"
                )
            try:
                agreed = click.confirm("Remove them?" if archive is None else "Move them?")
            except click.Abort:
                agreed = False
            if not agreed:
                click.echo("Not confirmed: nothing removed.", err=True)
                raise click.exceptions.Exit(2)
        done = apply_prune(ledger, plan, archive)
    with reader(workspace) as store:
        path = report.build(store, workspace, run_id)
    where = f"moved into {archive}" if archive else "removed"
    click.echo(f"{done} video(s) {where}, {plan.bytes / 1e6:,.1f} MB. Report: {path}")


@main.command(name="spend", context_settings=CONTEXT)
@click.option(
    "--by",
    type=click.Choice(BY),
    default="run",
    show_default=True,
    help="Group by run, by each tag's values, by the month the money was spent, or by tier.",
)
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only runs with this tag (repeatable: all must match).",
)
@click.option("--since", metavar="DATE", help="Only money spent on or after DATE (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="Print it as JSON.")
@click.option(
    "--prices",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Price table TOML for the dollar rate (default: the workspace's).",
)
@workspace_option
def spend_cmd(
    by: str,
    tags: tuple[str, ...],
    since: str | None,
    as_json: bool,
    prices: Path | None,
    workspace: Path,
) -> None:
    """Credits and dollars spent across runs (promotions and retries included), refunds
    taken off. Safe while a run is going.

    \b
    Examples:
      runner spend
      runner spend --by tag
      runner spend --by month --since 2026-11-01
      runner spend --tag client=acme --by tier --json
    """
    only = parse_tags(tags)
    start = parse_since(since)
    table = prices_from(prices, workspace)
    with reader(workspace) as store:
        result = spend(store, table, by, only, start)
    if as_json:
        click.echo(json.dumps(result.data(), indent=2, ensure_ascii=False))
    else:
        for line in result.lines():
            click.echo(line)
