"""`runner metrics`: what the audience made of the videos. `import` reads ad-platform
reports into the ledger (runner/metrics/importer.py; formats in docs/ad-platforms.md);
`show` ranks the dimensions' values by them (runner/metrics/stats.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from ..errors import InputError
from ..metrics.importer import keep, parse_maps, read_report
from ..metrics.model import METRICS
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


# --- runner metrics show ------------------------------------------------------------------


@metrics.command("show", context_settings=CONTEXT)
@click.argument("run_ref", metavar="RUN")
@click.option("--by", "by", metavar="DIM", help="One varied dimension only (default: each).")
@click.option(
    "--metric",
    type=click.Choice(METRICS),
    default="ctr",
    show_default=True,
    help="What P(best) and the verdict are about (cost per result: lower is better).",
)
@click.option(
    "--winners",
    type=click.Path(dir_okay=False, path_type=Path),
    multiple=True,
    help="winners.csv from the run's report: the reviewers' stars beside the audience "
    "(repeatable: one per reviewer).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@workspace_option
def show(
    run_ref: str,
    by: str | None,
    metric: str,
    winners: tuple[Path, ...],
    as_json: bool,
    workspace: Path,
) -> None:
    """What the audience did with a run's videos: per value of each varied dimension, CTR,
    completion rate and cost per result with 95 % intervals, the chance each value is the
    best, and a verdict ("winner" only at 95 % or more, else "not yet").

    \b
    Examples:
      runner metrics show latest
      runner metrics show latest --by aspect_ratio --metric completion
      runner metrics show latest --winners ~/Downloads/winners.csv
      runner metrics show latest --json
    """
    from ..errors import InputError
    from ..metrics.stats import performance
    from ..metrics.store import imports_for_run, totals_by_job
    from ..review.promote import read_votes, reviewers_by_job
    from ..run.ledger import reader

    stars: dict[str, int] = {}
    with reader(workspace) as store:
        run = store.run(run_ref)
        jobs = store.jobs(run.run_id)
        totals = totals_by_job(store, run.run_id)
        imports = imports_for_run(store, run.run_id)
        if winners:  # keys as the files give them (a unique prefix is enough), made full
            starred = reviewers_by_job(store, run.run_id, read_votes(winners, run.run_id))
            stars = {key: len(who) for key, who in starred.items()}
    try:
        data = performance(jobs, totals, imports, by=by, metric=metric)  # type: ignore[arg-type]
    except ValueError as exc:
        raise InputError(f"--by {by}: {exc}") from None
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    for line in show_lines(run.run_id, data, stars if winners else None):
        click.echo(line)


def show_lines(run_id: str, data: Mapping[str, Any], stars: Mapping[str, int] | None) -> list[str]:
    """`runner metrics show` for people: a table per dimension, the verdicts, the caveat."""
    from ..metrics.stats import chance

    imports = data["imports"]
    if not imports:
        return [
            f"No audience figures for run {run_id} yet.",
            "Export its videos for ads (runner export RUN --for-ads --out DIR), run them on the "
            "platform, then import the platform's report: runner metrics import FILE.",
        ]
    names = ", ".join(f"{i['file']} ({i['platform']}, {_day(i['imported_at'])})" for i in imports)
    lines = [f"Run {run_id}: audience figures from {len(imports)} import(s): {names}."]
    if data["randomised"]:
        lines.append(
            "Every import came from the platform's own split test: delivery was randomised."
        )
    else:
        lines.append(
            "Careful: platform delivery is not randomised unless the platform's own split test "
            "was used. The platform shows each ad to whom it chooses, so a difference may come "
            "from the audience rather than the video. Mark an import that comes from a split "
            "test when you import it (see runner metrics import --help)."
        )
    by_key = {v["job_key"]: v for v in data["variants"]}
    for dim in data["dimensions"]:
        lines += ["", f"{dim['name']} (by {_metric_name(data['metric'])})"]
        head = ["value", "videos", "impressions", "CTR (95 %)", "completion (95 %)"]
        head += ["cost per result (95 %)", "P(best)"]
        if stars is not None:
            head.append("stars")
        rows = [head]
        for v in dim["values"]:
            row = [
                str(v["value"]),
                str(v["variants"]),
                f"{v['impressions']:,}",
                _rate(v["ctr"]),
                _rate(v["completion"]),
                _cost(v["cost_per_result"], v["currency"]),
                "–" if v["p_best"] is None else chance(v["p_best"]),
            ]
            if stars is not None:
                row.append(str(_stars_of(dim["name"], v["value"], by_key, stars)))
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines += [
            "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows
        ]
        lines.append("  " + dim["verdict"]["text"])
        if stars is not None:
            lines.append("  " + _side_by_side(dim, by_key, stars))
    return lines


def _metric_name(metric: str) -> str:
    return {"ctr": "CTR", "completion": "completion rate", "cost_per_result": "cost per result"}[
        metric
    ]


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _rate(block: Mapping[str, float] | None) -> str:
    from ..metrics.stats import percent

    if block is None:
        return "–"
    lo, hi = percent(block["low"], bare=True), percent(block["high"])
    return f"{percent(block['value'])} ({lo}–{hi})"


def _cost(block: Mapping[str, float] | None, currency: str | None) -> str:
    if block is None:
        return "–"
    unit = f" {currency}" if currency else ""
    return f"{block['value']:,.2f}{unit} ({block['low']:,.2f}–{block['high']:,.2f})"


def _stars_of(
    dim: str, value: str, by_key: Mapping[str, Mapping[str, Any]], stars: Mapping[str, int]
) -> int:
    return sum(
        n for key, n in stars.items() if key in by_key and by_key[key]["dims"].get(dim) == value
    )


def _side_by_side(
    dim: Mapping[str, Any], by_key: Mapping[str, Mapping[str, Any]], stars: Mapping[str, int]
) -> str:
    """ "reviewers preferred 16:9, the audience 9:16" (or that they agree)."""
    counts = {v["value"]: _stars_of(dim["name"], v["value"], by_key, stars) for v in dim["values"]}
    most = max(counts.values(), default=0)
    verdict = dim["verdict"]
    leader = verdict["leader"]
    if verdict["state"] == "winner":
        audience = f"the audience {leader}"
    elif leader is not None:
        audience = f"the audience leans to {leader} (not yet sure)"
    else:
        audience = "the audience has no figures yet"
    if most == 0:
        return f"Reviewers starred no video here; {audience}."
    top = [v for v, n in counts.items() if n == most]
    liked = " and ".join(top) if len(top) <= 3 else f"{len(top)} values"
    word = f"{most} star{'' if most == 1 else 's'}"
    if len(top) == 1 and top[0] == leader:
        return f"Reviewers ({word}) and the audience agree: {leader}."
    return f"Reviewers preferred {liked} ({word}), {audience}."
