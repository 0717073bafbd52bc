"""The `runner` command line: parse, call, print, map errors to exit codes. Nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import RunnerError
from .plan import Plan, make_plan, plan_json, plan_text
from .pricing import PriceTable, load_prices
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


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="runner")
def main() -> None:
    """Sweep Seedance 2.0 video prompts on the cheap fast tier, review the results side by
    side, and re-render only the winners on the standard tier.

    \b
    Typical loop:
      runner plan experiments/demo.csv       # what will it cost? (spends nothing)
      runner run experiments/demo.csv        # render on fast, write the report
      runner promote latest --winners winners.csv   # winners on standard

    Without EVOLINK_API_KEY set, runs use the built-in simulator (no cost, no network).
    """


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
