"""The command group, its shared options, and how a run is executed and summed up."""

from __future__ import annotations

import contextlib
import functools
import math
import sys
from pathlib import Path
from typing import Any, Literal

import anyio
import click

from .. import __version__, logs
from ..errors import InputError, RunnerError
from ..grid.pricing import PriceTable, prices_for
from ..review import report
from ..run import runs
from ..run.backend import Backend, api_key_from_env
from ..run.backend import choose as choose_backend
from ..run.dispatch import Settings
from ..run.ledger import DONE, EXPIRED, FAILED, LOST, RESULT_ERROR, UNKNOWN, Ledger, Store, reader
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


# Options that tune the dispatcher; `run_options` hands them to the command as one
# ``tuning`` mapping of what was given (a resumed run keeps its saved values for the rest).
TUNING = ("rate", "max_rate", "poll_rate", "concurrency", "budget", "no_replay", "grace")


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
            "--grace",
            type=click.FloatRange(min=0),
            help="Seconds a Ctrl-C or SIGTERM lets paid videos finish before the run stops; "
            "the rest continues with `runner resume` [default: 60].",
        ),
    ]

    @functools.wraps(f)
    def command(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for name in TUNING}
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
    tally = ledger.tally(run_id)
    display = Display(tally.total, tally[DONE], sys.stderr)
    display.credits = tally.spent
    outcome = None
    try:
        with display:
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
        with reader(ledger.workspace) as store:
            path = report.build(store, ledger.workspace, run_id)
            print_summary(store, run_id, outcome)
        click.echo(f"Report: {path}")
    return code


def print_summary(store: Store, run_id: str, outcome: Any) -> None:
    tally = store.tally(run_id)
    counts = tally.states
    click.echo(f"Run {run_id}: {tally.text()}; spent {tally.money_text()}.")
    before = getattr(outcome, "balance_before", None)
    after = getattr(outcome, "balance_after", None)
    if before is not None and after is not None:
        click.echo(
            f"Account balance: {before:,.2f} -> {after:,.2f} credits "
            f"({before - after:,.2f} used, including any other use of the account meanwhile)."
        )
    if outcome is not None and outcome.stop_reason:
        click.echo(f"Stopped early: {outcome.stop_reason}")
    if counts.get(UNKNOWN):
        click.echo(
            f"{counts[UNKNOWN]} job(s) have an unknown create outcome: `runner resolve {run_id}`"
        )
    retryable = sum(counts.get(s, 0) for s in (FAILED, LOST, RESULT_ERROR))
    if retryable:
        click.echo(
            f"{retryable} job(s) failed, were lost or gave no usable video: "
            f"`runner retry {run_id}` (a video the provider made is fetched again "
            "for free; only the rest is paid again)"
        )
    if counts.get(EXPIRED):
        click.echo(f"{counts[EXPIRED]} paid result(s) EXPIRED before they were downloaded.")
