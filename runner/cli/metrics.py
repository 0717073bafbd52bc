"""`runner metrics`: what the audience made of the videos. `import` reads ad-platform
reports into the ledger (runner/metrics/importer.py; formats in docs/ad-platforms.md)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..errors import InputError
from ..metrics.importer import keep, parse_maps, read_report
from ..metrics.platforms import CHOICES
from ..review import report
from ..run.ledger import Ledger, lock_holder, reader
from .base import CONTEXT, main, workspace_option


@main.group(name="metrics", context_settings=CONTEXT)
def metrics() -> None:
    """Audience results of the videos: import ad-platform reports, see what performs."""


@metrics.command(name="import", context_settings=CONTEXT)
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="COLUMN=FIELD",
    help="Read this column as a field: ad_name, impressions, clicks, completions, "
    "completion_rate (a % of impressions), spend, results, currency, day, start, end "
    "(repeatable).",
)
@click.option(
    "--platform",
    type=click.Choice(CHOICES),
    default="auto",
    show_default=True,
    help="Where the reports come from (auto: told by their columns).",
)
@click.option(
    "--split-test",
    is_flag=True,
    help="The ads ran in the platform's own split (A/B) test, so delivery was randomised.",
)
@workspace_option
def import_cmd(
    files: tuple[Path, ...],
    maps: tuple[str, ...],
    platform: str,
    split_test: bool,
    workspace: Path,
) -> None:
    """Bring an ad platform's results (impressions, clicks, completed views, spend,
    results) back to the videos they belong to: each report row is matched to its video by
    the runner key in the ad name (`runner export --for-ads` names the ads that way).

    Export the ad-level report as CSV from Meta Ads Manager, TikTok Ads Manager, Google Ads,
    LinkedIn or Snapchat; split by day if you import again later. Importing the same file
    twice, or days already imported, adds nothing.

    \b
    Examples:
      runner metrics import ~/Downloads/meta-ads-nov.csv
      runner metrics import tiktok.csv google.csv --workspace reports
      runner metrics import google.csv --map 'Video title=ad_name'
      runner metrics import split-test.csv --split-test
    """
    mapped = parse_maps(maps)
    if not (workspace / "ledger.sqlite").is_file():
        raise InputError(
            f"no runs in {workspace}: import into the workspace holding the videos "
            "(--workspace FOLDER)"
        )
    reports = [read_report(path, platform, mapped) for path in files]
    unused = set(mapped) - set().union(*(r.mapped_used for r in reports))
    if unused:
        raise InputError(
            "--map: no column "
            + ", ".join(repr(c) for c in sorted(unused))
            + " in "
            + ", ".join(r.name for r in reports)
            + " (columns are matched ignoring case and spaces)"
        )
    holder = lock_holder(workspace)
    if holder:
        raise InputError(
            f"a run is going in {workspace} ({holder}): import after it ends, or stop it "
            "(Ctrl-C) first"
        )
    runs: set[str] = set()
    kept = 0
    with Ledger.open(workspace) as ledger:
        for one in reports:
            outcome = keep(ledger, one, split_test=split_test, now=time.time())
            for line in outcome.lines():
                click.echo(line)
            if outcome.import_id is not None:
                kept += 1
                runs.update(outcome.runs)
    if not kept:
        raise InputError("nothing new imported (the lines above say why)")
    with reader(workspace) as store:
        paths = [report.build(store, workspace, run_id) for run_id in sorted(runs)]
    for path in paths:
        click.echo(f"Report updated: {path}")
    shown = sorted(runs)[0]
    click.echo(f"See what performs: runner metrics show {shown}")
