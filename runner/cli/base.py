"""The command group, its shared options, and how a run is executed and summed up."""

from __future__ import annotations

import contextlib
import functools
import math
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import anyio
import click

from .. import __version__, logs
from ..errors import InputError, RunnerError
from ..grid.pricing import PriceTable, prices_for
from ..review import report
from ..review.live import LiveReport
from ..review.notify import notify_url, shown
from ..review.notify import send as send_notification
from ..review.summary import end_lines, summary_data
from ..run import runs
from ..run.backend import Backend, api_key_from_env
from ..run.backend import choose as choose_backend
from ..run.disk import MIN_FREE_ENV, SIZE, room_problem
from ..run.dispatch import Settings
from ..run.events import figures
from ..run.ledger import Ledger, Store, reader
from ..run.outlook import Outlook
from ..run.progress import Display
from ..run.records import RunRecord

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _Group(click.Group):
    """Turns our errors into ``Error: ...`` on stderr and their exit code (never a traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RunnerError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except BaseExceptionGroup as group:  # from a run's task group: its first own error
            mine = group.subgroup(RunnerError)
            if mine is None:
                raise
            first = _first(mine)
            click.echo(f"Error: {first}", err=True)
            ctx.exit(first.exit_code)
        except KeyboardInterrupt:  # before a run's own Ctrl-C handling took over
            click.echo(
                "Stopped (Ctrl-C). Nothing paid for is lost; if a run had started, "
                "`runner resume latest` continues it.",
                err=True,
            )
            ctx.exit(3)


def _reason(exc: BaseException) -> str:
    """Why a run ended early, in its own words when it is one of ours."""
    if isinstance(exc, BaseExceptionGroup) and (mine := exc.subgroup(RunnerError)):
        return str(_first(mine))
    return str(exc) if isinstance(exc, RunnerError) else f"stopped by an error: {exc!r}"[:2000]


def _first(group: BaseExceptionGroup[RunnerError]) -> RunnerError:
    error = group.exceptions[0]
    return _first(error) if isinstance(error, BaseExceptionGroup) else error


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


def workspace_option(f: Any) -> Any:
    return click.option(
        "--workspace",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("reports"),
        show_default=True,
        help="Folder holding the ledger and one folder per run.",
    )(f)


def prices_from(prices: Path | None, workspace: Path) -> PriceTable:
    """``--prices FILE`` or WORKSPACE/prices.toml, over the fetched rules, over the built-in
    table (`runner.grid.pricing.prices_for`). Never uses the network."""
    return prices_for(workspace, prices)


def stdin_is_terminal() -> bool:
    """Whether a person at a terminal can answer a question."""
    return sys.stdin.isatty()


def confirm_spend(yes: bool, what: str = "run") -> None:
    """Real credits are spent only with --yes, or after a person said yes at a terminal.
    Any other answer (no, Ctrl-C, end of input) ends the command with exit 2."""
    if yes:
        return
    if not stdin_is_terminal():
        raise InputError(
            f"this {what} spends real credits: add --yes to confirm (or --budget CREDITS to cap it)"
        )
    try:
        agreed = click.confirm("Spend these credits?", default=False)
    except click.Abort:  # Ctrl-C or end of input at the question
        agreed = False
    if not agreed:
        click.echo(f"Not confirmed: nothing spent, no {what} started.", err=True)
        raise click.exceptions.Exit(2)


def confirm_room(ahead: Outlook, workspace: Path, min_free: int | None, yes: bool) -> None:
    """Before a run: the plan's videos must leave the disk margin free (README "Disk space").
    Short of it, --yes or a person's yes at a terminal starts anyway (creates stop at the
    margin); otherwise nothing starts (exit 2)."""
    problem = room_problem(ahead, workspace, min_free)
    if problem is None:
        return
    later = "new creates stop at the margin, and `runner resume` goes on once there is room."
    if yes:
        click.echo(f"Warning: {problem} Starting anyway: {later}", err=True)
        return
    if not stdin_is_terminal():
        raise InputError(f"{problem} Add --yes to start anyway: {later} Nothing was spent.")
    click.echo(f"Warning: {problem}", err=True)
    try:
        agreed = click.confirm("Start anyway?", default=False)
    except click.Abort:
        agreed = False
    if not agreed:
        click.echo("Not started: nothing spent.", err=True)
        raise click.exceptions.Exit(2)


# Options that tune the dispatcher; `run_options` hands them to the command as one
# ``tuning`` mapping of what was given (a resumed run keeps its saved values for the rest).
TUNING = (
    "rate",
    "max_rate",
    "poll_rate",
    "concurrency",
    "budget",
    "no_replay",
    "grace",
    "min_free_disk",
)
NOTIFY = "runner.notify"  # where `run_options` leaves the checked --notify URL (ctx.meta)


class CreateRate(click.ParamType["float | Literal['auto']"]):
    """``--rate``: ``auto`` or a number of creates per second."""

    name = "auto|N"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float | Literal["auto"]:
        if isinstance(value, float | int) and not isinstance(value, bool):
            number = float(value)
        elif str(value).strip().lower() == "auto":
            return "auto"
        else:
            try:
                number = float(str(value))
            except ValueError:
                number = math.nan
        if not math.isfinite(number) or number < 0.01:
            self.fail(
                f"{value!r}: give auto (find the provider's limit, up to --max-rate) or a "
                "number of creates per second of at least 0.01, e.g. --rate 5",
                param,
                ctx,
            )
        return number


RATE = CreateRate()


def run_options(f: Any) -> Any:
    options = [
        click.option(
            "--backend",
            type=click.Choice(["sim", "evolink"]),
            help="API to use (default: evolink when EVOLINK_API_KEY is set, else the "
            "built-in simulator).",
        ),
        click.option(
            "--base-url",
            help="API address, e.g. a `runner simulate` server at http://127.0.0.1:8787.",
        ),
        click.option(
            "--rate",
            type=RATE,
            help="Creates per second: auto starts at 2 and rises until the provider turns "
            "creates away, up to --max-rate; a number keeps that rate at most [default: auto].",
        ),
        click.option(
            "--max-rate",
            type=click.FloatRange(min=0.01),
            help="The most creates per second --rate auto goes to [default: 20].",
        ),
        click.option(
            "--poll-rate",
            type=click.FloatRange(min=0.01),
            help="Task queries per second [default: 5].",
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(min=1),
            help="Tasks in flight at most [default: 50].",
        ),
        click.option(
            "--budget",
            type=click.FloatRange(min=0),
            help="Stop before spending more than this many credits.",
        ),
        click.option(
            "--budget-usd",
            type=click.FloatRange(min=0),
            help="The same cap in US dollars, converted at the price table's rate.",
        ),
        click.option(
            "--no-replay",
            is_flag=True,
            default=None,
            help="Hold a create whose outcome is unknown for `runner resolve` instead of "
            "sending it once more with the same Idempotency-Key.",
        ),
        click.option(
            "--tag",
            "tags",
            multiple=True,
            metavar="KEY=VALUE",
            help="Label the run, e.g. --tag client=acme (repeatable; `runner spend --by tag` "
            "sums credits by them; a promotion keeps its parent's tags).",
        ),
        click.option(
            "--grace",
            type=click.FloatRange(min=0),
            help="Seconds a Ctrl-C or SIGTERM lets paid videos finish before the run stops; "
            "the rest continues with `runner resume` [default: 60].",
        ),
        click.option(
            "--notify",
            metavar="URL",
            help="POST the run's summary here when it ends or stops, e.g. a Slack incoming "
            "webhook (default: $RUNNER_NOTIFY_URL).",
        ),
        click.option(
            "--min-free-disk",
            type=SIZE,
            envvar=MIN_FREE_ENV,
            help="Free disk space to keep under the videos: new creates stop below it "
            "(e.g. 500MB, 2GB) [default: 1GB, or more while many videos are in flight].",
        ),
    ]

    @functools.wraps(f)
    def command(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for name in TUNING}
        # recorded on the run by `execute_run`, which every command of these options calls
        click.get_current_context().meta[TAGS] = parse_tags(kwargs.pop("tags"))
        click.get_current_context().meta[NOTIFY] = notify_url(kwargs.pop("notify"))
        given["replay"] = False if given.pop("no_replay") else None
        usd = kwargs.pop("budget_usd")
        if usd is not None:
            given["budget"] = budget_in_credits(
                usd, given["budget"], prices_from(kwargs.get("prices"), kwargs["workspace"])
            )
        return f(*args, tuning={k: v for k, v in given.items() if v is not None}, **kwargs)

    for option in reversed(options):
        command = option(command)
    return command


TAGS = "runner.tags"
TAG_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def parse_tags(given: Iterable[str], option: str = "--tag") -> list[tuple[str, str]]:
    """``KEY=VALUE`` pairs: the key letters, digits, _ and -; the value not empty."""
    tags = []
    for text in given:
        key, sep, value = text.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not TAG_KEY.match(key) or not value:
            raise InputError(
                f"{option} {text!r}: write KEY=VALUE, e.g. {option} client=acme (the key "
                "letters, digits, _ and - only; the value not empty)"
            )
        tags.append((key, value))
    return tags


def budget_in_credits(usd: float, credits: float | None, prices: PriceTable) -> float:
    """``--budget-usd`` as credits at the price table's rate (said, so it can be checked)."""
    if credits is not None:
        raise InputError("give the budget once: --budget (credits) or --budget-usd, not both")
    rate = prices.credits_per_usd
    budget = round(usd * float(rate), 2)
    click.echo(
        f"Budget: ${usd:,.2f} = {budget:,.2f} credits at {format(rate.normalize(), 'f')} "
        "credits per USD."
    )
    return budget


def backend_of(
    run: RunRecord, backend: str | None, base_url: str | None, workspace: Path
) -> Backend:
    return choose_backend(
        backend or run.backend, base_url or (None if run.in_process else run.base_url), workspace
    )


def continue_run(
    ledger: Ledger, run: RunRecord, backend: str | None, base_url: str | None, **overrides: Any
) -> int:
    """Dispatch an existing run again (resume, retry), with its saved settings and the
    ``overrides`` given now, which are saved in their turn (`status` shows the budget in
    force; a later resume keeps them)."""
    chosen = backend_of(run, backend, base_url, ledger.workspace)
    click.echo(chosen.announce())
    settings = runs.settings_of(run, **overrides)
    if any(v is not None for v in overrides.values()):
        ledger.save_settings(run.run_id, settings)
    return execute_run(ledger, run.run_id, chosen, settings)


def execute_run(
    ledger: Ledger, run_id: str, chosen: Backend, settings: Settings, *, yes: bool = True
) -> int:
    """Run the dispatcher, then write the report and the summary. ``yes``: a shortfall of
    credits found by the preflight caps the run instead of refusing it."""
    context = click.get_current_context(silent=True)
    ledger.tag(run_id, context.meta.get(TAGS, []) if context else [])
    display = Display(functools.partial(figures, ledger, run_id), sys.stderr)
    live = LiveReport(ledger.workspace, run_id, display.notice)  # rewrites the page meanwhile
    if live.enabled:
        click.echo(
            f"Live report: {live.page} (written once the first videos are in, then kept up "
            "to date while the run goes)"
        )
    outcome = None
    try:
        with display, live:
            outcome = anyio.run(
                functools.partial(
                    runs.execute,
                    ledger,
                    run_id,
                    chosen,
                    settings,
                    display,
                    display.notice,
                    yes=yes,
                )
            )
    except BaseException as exc:  # the run did not end by itself: say why, if it can be written
        with contextlib.suppress(Exception):
            ledger.set_run_state(
                run_id, "stopped", exit_code=getattr(exc, "exit_code", 3), stop_reason=_reason(exc)
            )
        raise
    finally:
        code = runs.finish_state(ledger, run_id, outcome) if outcome else 3
        url = _notify_target()
        with reader(ledger.workspace) as store:
            path = report.build(store, ledger.workspace, run_id)
            print_summary(store, run_id, outcome)
            summary = summary_data(store, run_id) if url else None
        click.echo(f"Report: {path}")
        if url and summary is not None:
            notify(ledger, url, summary)
    return code


def _notify_target() -> str | None:
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(NOTIFY) if ctx is not None else None


def notify(ledger: Ledger, url: str, summary: dict[str, Any]) -> None:
    """Send the summary to ``url``; a failure is one line on stderr (and an event in the
    ledger), never fatal."""
    problem = send_notification(url, summary, api_key_from_env())
    with contextlib.suppress(Exception):  # the ledger's own trouble was said already
        ledger.event(summary["run"], None, "notify_failed" if problem else "notified", problem)
    if problem is None:
        click.echo(f"Notified {shown(url)}.")
    else:
        click.echo(
            f"Warning: the notification to {shown(url)} failed ({problem}); the run's summary "
            f"is in {summary['run']}/summary.json.",
            err=True,
        )


def print_summary(store: Store, run_id: str, outcome: Any) -> None:
    for line in end_lines(store, run_id, outcome):
        click.echo(line)
