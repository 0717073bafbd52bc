"""Runs: create one from a plan, execute (or resume) it, and read it back.

A run lives in the workspace ledger and in ``<workspace>/<run_id>/`` (media, report, tables).
Executing is the same whether the run is new, resumed, retried or promoted: the dispatcher
picks up every job where the ledger left it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio

from ..errors import InputError, RunStopped
from ..grid.plan import Plan
from ..providers.base import AccessLost, Provider, TaskGone, Transient
from . import ledger as L
from .backend import SIM_SPEED, Backend, connect
from .dispatch import Dispatcher, Outcome, Settings
from .events import Event


def new_run_id(label: str, workspace: Path) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40] or "run"
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}"
    run_id, n = base, 1
    while (workspace / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def create(
    ledger: L.Ledger,
    plan: Plan,
    backend: Backend,
    settings: Settings,
    *,
    name: str | None,
    reuse: bool,
    parent_run: str | None = None,
    parent_of: Callable[[str], str | None] | None = None,
) -> tuple[str, int]:
    """Record a run and its jobs; link reused results. Returns (run_id, jobs reused)."""
    label = name or plan.path.stem
    run_id = new_run_id(label, ledger.workspace)
    (ledger.workspace / run_id / "media").mkdir(parents=True)
    jobs = (
        L.NewJob(
            job_key=job.job_key,
            variant_key=job.variant.variant_key,
            tier=job.tier,
            sample=job.sample,
            model=job.model,
            mode=job.variant.request.mode,
            body=job.body(),
            values=job.variant.values,
            source=job.variant.source,
            row=job.variant.row,
            name=job.variant.name,
            est_credits=plan.estimate(job),
            parent_job_key=parent_of(job.job_key) if parent_of else None,
        )
        for job in plan.jobs()
    )
    run = {
        "run_id": run_id,
        "name": label,
        "experiment": str(plan.path),
        "tier": plan.tier,
        "backend": backend.name,
        "base_url": None if backend.in_process else backend.base_url,
        "parent_run": parent_run,
        "budget": settings.budget,
        "config_json": json.dumps({"settings": asdict(settings), "in_process": backend.in_process}),
        "dimensions_json": json.dumps({k: list(v) for k, v in plan.expansion.dimensions.items()}),
    }
    reused = ledger.create_run(run, jobs, reuse=reuse, files=plan.expansion.files.values())
    if reused:
        _link_reused(ledger, run_id)
    return run_id, reused


def _link_reused(ledger: L.Ledger, run_id: str) -> None:
    """Reused results get their files (video, poster, strip) into this run's media folder,
    so every run folder can be zipped and shared on its own."""
    media = ledger.workspace / run_id / "media"
    for job in ledger.jobs(run_id, [L.DONE]):
        if not job.reused_from or not job.file_path:
            continue
        src = ledger.workspace / job.file_path
        for name in (src.name, job.media.get("poster"), job.media.get("strip")):
            if name:
                _link(src.parent / name, media / name)
        ledger.finish(
            run_id,
            job.job_id,
            L.DONE,
            None,
            None,
            file_path=(media / src.name).relative_to(ledger.workspace).as_posix(),
        )


def _link(src: Path, dest: Path) -> None:
    if dest.exists() or not src.exists():
        return
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def settings_of(run: L.RunRecord, **overrides: Any) -> Settings:
    known = {f.name for f in dataclasses.fields(Settings)}
    saved = {k: v for k, v in run.settings.items() if k in known}  # older runs: renamed fields
    saved.update({k: v for k, v in overrides.items() if v is not None})
    if isinstance(saved.get("trusted_origins"), list):  # a tuple, stored as a JSON list
        saved["trusted_origins"] = tuple(saved["trusted_origins"])
    return Settings(**saved)


async def execute(
    ledger: L.Ledger,
    run_id: str,
    backend: Backend,
    settings: Settings,
    emit: Callable[[Event], None],
    notice: Callable[[str], None],
    *,
    yes: bool = True,
) -> Outcome:
    """Preflight (the key's models and credits, both free), then dispatch until every job is
    settled or creates stop. Ctrl-C once stops creates and lets paid work finish; twice exits
    at once. ``yes``: a shortfall of credits caps the run instead of refusing it."""
    async with connect(backend) as (provider, http):
        settings, before = await preflight(provider, ledger, run_id, settings, yes, notice)
        ledger.set_run_state(run_id, "running")
        speed = provider.time_scale() or (SIM_SPEED if backend.in_process else 1.0)
        settings = dataclasses.replace(
            settings, time_scale=speed, trusted_origins=backend.trusted_origins
        )
        dispatcher = Dispatcher(
            ledger, run_id, provider, http, ledger.workspace / run_id / "media", settings, emit
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(_signals, dispatcher, notice)
            outcome = await dispatcher.run()
            tg.cancel_scope.cancel()
        outcome.balance_before = before
        with contextlib.suppress(Transient, AccessLost, TaskGone):
            outcome.balance_after = (await provider.balance()).account
    return outcome


async def preflight(
    provider: Provider,
    ledger: L.Ledger,
    run_id: str,
    settings: Settings,
    yes: bool,
    notice: Callable[[str], None],
) -> tuple[Settings, float | None]:
    """Before anything is spent (docs/evolink.md §22): every model the run still sends must be
    on the key's model list (else InputError, exit 2), and the account and key must be able to
    pay for what is left to send (else InputError, or with ``yes`` a budget that stops creates
    before the shortfall). A daily key limit only warns: creates pause at it until it resets.
    Returns the settings to run with and the account's balance."""
    key = provider.key_env
    try:
        allowed = await provider.models()
        funds = await provider.balance()
    except AccessLost as exc:
        raise RunStopped(
            f"the API key was refused ({exc}): check {key} "
            "(keys are at https://evolink.ai/dashboard/keys). Nothing was "
            f"spent; `runner resume {run_id}` continues."
        ) from None
    except (Transient, TaskGone) as exc:
        notice(f"Warning: the model and credit checks failed ({exc}); going on.")
        return settings, None
    models = ledger.models_to_send(run_id)
    if allowed is not None:
        missing = [m for m in models if m not in allowed]
        if missing:
            raise InputError(
                f"this API key may not use {', '.join(missing)} (it may use: "
                f"{', '.join(sorted(allowed)) or 'no video model'}). Enable the model for the "
                "key in the EvoLink dashboard, or run on another --tier. Nothing was spent."
            )
    needed = ledger.credits_to_send(run_id)
    spendable = [v for v in (funds.account, funds.key) if v is not None]
    can = min(spendable) if spendable else None
    if can is not None and can < needed:
        what = "the account" if can == funds.account else "this API key's credit limit"
        if not yes:
            raise InputError(
                f"{what} allows {can:,.2f} more credits and the jobs still to send need about "
                f"{needed:,.2f}: top up (or raise the key's limit), or shrink the grid; --yes "
                "runs until the credits run out. Nothing was spent."
            )
        cap = ledger.spent(run_id) + can
        budget = cap if settings.budget is None else min(settings.budget, cap)
        settings = dataclasses.replace(settings, budget=budget)
        notice(
            f"{what} allows {can:,.2f} more credits; the jobs still to send need about "
            f"{needed:,.2f}: creates stop before the shortfall (at {budget:,.2f} credits)."
        )
    if funds.daily_limit is not None:
        left = funds.daily_limit - (funds.daily_used or 0.0)
        if left < needed:
            notice(
                f"This API key's daily limit leaves {max(left, 0):,.2f} credits today and the "
                f"jobs still to send need about {needed:,.2f}: creates will pause at the limit "
                f"until it resets at midnight ({funds.reset_timezone or 'the key time zone'})."
            )
    return settings, funds.account


async def _signals(dispatcher: Dispatcher, notice: Callable[[str], None]) -> None:
    with (
        contextlib.suppress(NotImplementedError, ValueError),
        anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals,
    ):
        count = 0
        async for _ in signals:
            count += 1
            if count == 1:
                grace = dispatcher.s.grace
                dispatcher.interrupt(
                    "Interrupted (Ctrl-C or SIGTERM): no new videos were started after it.",
                )
                notice(
                    f"Stopping: no new creates; finishing what is paid for, {grace:g} s at "
                    "most (Ctrl-C again to quit at once)."
                )
            else:
                notice(f"Stopped at once. `runner resume {dispatcher.run_id}` continues.")
                os._exit(3)


def finish_state(ledger: L.Ledger, run_id: str, outcome: Outcome) -> int:
    tally = ledger.tally(run_id)
    if outcome.stop_kind:
        code = 3
    elif tally.bad or tally[L.PENDING]:
        code = 1
    else:
        code = 0
    ledger.set_run_state(
        run_id,
        "stopped" if code == 3 else "finished",
        exit_code=code,
        stop_reason=outcome.stop_reason,
    )
    return code


# A paid task whose result was not saved: the provider may still have it.
UNSAVED = (L.RESULT_ERROR, L.LOST)


@dataclass(frozen=True)
class RetryPlan:
    """What `runner retry` does: re-read for free, or pay for a new task."""

    recheck: tuple[L.JobRecord, ...]  # paid tasks read again, their results fetched again
    resend: tuple[L.JobRecord, ...]  # jobs that truly need a new (paid) task

    @property
    def credits(self) -> float:
        return float(sum(j.est_credits for j in self.resend))


def needs_recheck(job: L.JobRecord) -> bool:
    """A job whose paid result was not saved and that no re-read has tried yet."""
    return job.state in UNSAVED and bool(job.task_id) and not job.rechecks


def recheck_unsaved(ledger: L.Ledger, run_id: str, reason: str) -> int:
    """Put every paid task whose result was not saved (and not yet re-read) back to be read
    again for free: `resume` and `retry` both do this first. Returns how many."""
    jobs = [j for j in ledger.jobs(run_id, UNSAVED) if needs_recheck(j)]
    for job in jobs:
        ledger.recheck(run_id, job.job_id, reason)
    return len(jobs)


def plan_retry(ledger: L.Ledger, run_id: str, states: Iterable[str]) -> RetryPlan:
    """Split the jobs of ``states`` into those a free re-read may save (a paid task whose
    result was not saved, not yet re-read) and those that need a new task."""
    jobs = ledger.jobs(run_id, states)
    return RetryPlan(
        tuple(j for j in jobs if needs_recheck(j)), tuple(j for j in jobs if not needs_recheck(j))
    )


def apply_retry(ledger: L.Ledger, run_id: str, plan: RetryPlan, reason: str) -> None:
    for job in plan.recheck:
        ledger.recheck(run_id, job.job_id, reason)
    for job in plan.resend:
        ledger.resubmit(run_id, job.job_id, reason)
