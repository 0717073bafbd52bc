"""Commands that continue or settle a run: resume, retry, resolve."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from ..errors import InputError
from ..providers.evolink import valid_task_id
from ..providers.evolink_wire import shown_id
from ..run import runs
from ..run.ledger import EXPIRED, FAILED, LOST, RESULT_ERROR, UNKNOWN, JobRecord, Ledger
from .base import (
    CONTEXT,
    backend_of,
    confirm_spend,
    continue_run,
    main,
    run_options,
    workspace_option,
)


@main.command(context_settings=CONTEXT)
@click.argument("run_ref", metavar="RUN")
@run_options
@workspace_option
def resume(
    run_ref: str,
    backend: str | None,
    base_url: str | None,
    tuning: dict[str, Any],
    workspace: Path,
) -> None:
    """Continue an interrupted run: nothing paid for is redone, nothing is lost.

    Jobs caught mid-create are held as unknown (see `runner resolve`); tasks already created
    are polled and downloaded; jobs never sent are sent.

    \b
    Examples:
      runner resume latest
      runner resume 20261125-031500-sweep --budget 8000
    """
    with Ledger.open(workspace) as ledger:
        run = ledger.run(run_ref)
        rechecked = runs.recheck_unsaved(ledger, run.run_id, "operator: runner resume")
        if rechecked:
            click.echo(
                f"{rechecked} paid video(s) that were not saved will be read again and "
                "downloaded (free)."
            )
        code = continue_run(
            ledger,
            run,
            backend,
            base_url,
            **tuning,
        )
    raise SystemExit(code)


@main.command(context_settings=CONTEXT)
@click.argument("run_ref", metavar="RUN")
@click.option(
    "--failed",
    "only_failed",
    is_flag=True,
    help="Only jobs whose task failed (not lost or expired ones).",
)
@click.option("--yes", "-y", is_flag=True, help="Spend without asking for confirmation.")
@run_options
@workspace_option
def retry(
    run_ref: str,
    only_failed: bool,
    yes: bool,
    backend: str | None,
    base_url: str | None,
    tuning: dict[str, Any],
    workspace: Path,
) -> None:
    """Send the failed jobs of a run again (new attempts in the same run).

    Retries failed, lost, expired and unusable results. A video the provider made but that
    was not saved (download failed, task not readable) is first read again and downloaded
    for free; only jobs that truly need a new task are paid again, and runner says how many
    and what they cost first. Jobs the API rejected (400) are not retried: fix the
    experiment instead.

    \b
    Examples:
      runner retry latest
      runner retry latest --failed
    """
    states = [FAILED] if only_failed else [FAILED, LOST, EXPIRED, RESULT_ERROR]
    with Ledger.open(workspace) as ledger:
        run = ledger.run(run_ref)
        run_id = run.run_id
        plan = runs.plan_retry(ledger, run_id, states)
        if plan.recheck:
            click.echo(
                f"{len(plan.recheck)} paid video(s) of run {run_id} were not saved: "
                "they will be read again and downloaded (free)."
            )
        click.echo(
            f"{len(plan.resend)} job(s) of run {run_id} will be sent again as new "
            f"tasks (about {plan.credits:,.2f} credits)."
        )
        chosen = backend_of(run, backend, base_url, ledger.workspace)
        if plan.resend and not chosen.simulated:
            confirm_spend(yes, "retry")
        runs.apply_retry(ledger, run_id, plan, "operator: runner retry")
        code = continue_run(
            ledger,
            run,
            backend,
            base_url,
            **tuning,
        )
    raise SystemExit(code)


@main.command(context_settings=CONTEXT)
@click.argument("run_ref", metavar="RUN")
@click.option(
    "--resubmit",
    "resubmits",
    multiple=True,
    metavar="JOB",
    help="Send this held job again (it may be paid twice if the first create "
    "did reach the provider).",
)
@click.option(
    "--mark-created",
    "marks",
    multiple=True,
    metavar="JOB=TASK_ID",
    help="The held job's create did reach the provider, as this task.",
)
@workspace_option
def resolve(
    run_ref: str, resubmits: tuple[str, ...], marks: tuple[str, ...], workspace: Path
) -> None:
    """List and settle jobs whose create outcome is unknown (held, never re-sent by itself).

    \b
    Examples:
      runner resolve latest
      runner resolve latest --resubmit 3f2a9c0d1e4b5a6c-fast-1
      runner resolve latest --mark-created 3f2a9c0d1e4b5a6c-fast-1=task-unified-1774857405-abc12345
    Then `runner resume RUN` sends or polls them.
    """
    with Ledger.open(workspace) as ledger:
        run_id = ledger.run(run_ref).run_id
        for ref in resubmits:
            job = ledger.find_job(run_id, ref)
            _require_held(job)
            ledger.resubmit(run_id, job.job_id, "operator: runner resolve --resubmit")
            click.echo(f"{job.job_key}: will be sent again by `runner resume {run_id}`")
        for mark in marks:
            ref, sep, task_id = mark.partition("=")
            task_id = task_id.strip()
            if not sep or not ref.strip():
                raise InputError(
                    f"--mark-created {mark!r}: write JOB=TASK_ID, e.g. "
                    "3f2a9c0d1e4b5a6c-fast-1=task-unified-1774857405-abc12345"
                )
            if not valid_task_id(task_id):
                raise InputError(
                    f"--mark-created: {shown_id(task_id)} is not a task id. Copy it from "
                    "the EvoLink dashboard: it starts with a letter or digit, then letters, "
                    "digits and . _ : - (never two dots in a row), at most 128 characters, "
                    "e.g. task-unified-1774857405-abc12345"
                )
            job = ledger.find_job(run_id, ref)
            _require_held(job)
            ledger.mark_created(run_id, job.job_id, task_id)
            click.echo(
                f"{job.job_key}: recorded as {task_id}; `runner resume {run_id}` "
                "polls and downloads it"
            )
        held = ledger.jobs(run_id, [UNKNOWN])
        if not held:
            click.echo(f"No held jobs in run {run_id}.")
            return
        at_risk = sum(j.est_credits for j in held)
        click.echo(
            f"{len(held)} job(s) of run {run_id} have an unknown create outcome "
            f"(up to {at_risk:,.2f} credits may have been charged):"
        )
        for job in held:
            attempt = ledger.last_attempt(job.job_id)
            sent = (
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(attempt.started_at))
                if attempt is not None
                else "never"
            )
            prompt = " ".join(str(job.body.get("prompt", "")).split())
            click.echo(
                f"  {job.job_key}  row {job.row}  {job.name}  ~{job.est_credits:.2f} credits"
                f"  sent {sent}  {job.model}\n"
                f"      prompt: {prompt[:160]}{'…' if len(prompt) > 160 else ''}\n"
                f"      {job.error_message or ''}"
            )
        click.echo(
            "Check your EvoLink dashboard for these tasks, then use --mark-created "
            "JOB=TASK_ID (found) or --resubmit JOB (not found)."
        )


def _require_held(job: JobRecord) -> None:
    if job.state != UNKNOWN:
        raise InputError(
            f"job {job.job_key} is {job.state}, not held as unknown; only held jobs can be resolved"
        )
