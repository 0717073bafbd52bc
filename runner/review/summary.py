"""``summary.json``: what a run came to, beside its ``index.html``, for the morning after and
for scripts (README "The morning after"), and the end summary printed after a run. Written from
the ledger's one count (`Store.tally`, grouped as `runner.run.events.Figures`), so it says what
``status``, the progress line and the report say.

Wall time (`active_seconds`) counts only the stretches a runner was at work on the run: from
each ``run_running`` event to the stop or finish that ended it. A runner that died without a
clean stop (kill -9, a second Ctrl-C) is settled as stopped by the next one to open the ledger;
its stretch ends at the last thing it recorded, so the gap before a resume is never counted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..run import ledger as L
from ..run.events import Figures
from ..run.ledger import Store
from ..run.progress import clock_text
from .tables import replaced

_ORPHANED = "ended without a clean stop"  # what `Ledger.settle_orphans` records

# what to do about each kind of unfinished job, as a command (RUN is filled in)
NEXT: tuple[tuple[tuple[str, ...], str, str], ...] = (
    ((L.PENDING, *L.ACTIVE, L.COMPLETED), "runner resume {run}", "not finished yet"),
    ((L.UNKNOWN,), "runner resolve {run}", "held: the create's outcome is unknown"),
    (
        (L.FAILED, L.LOST, L.RESULT_ERROR, L.EXPIRED),
        "runner retry {run}",
        "failed, lost, expired or unusable (a video already made is fetched again free)",
    ),
    ((L.REJECTED,), "", "refused by the API: fix these rows of the experiment"),
)


def next_steps(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Each kind of unfinished job of the run, how many, and the command that goes on."""
    tally = store.tally(run_id)
    steps = []
    for states, command, what in NEXT:
        count = sum(tally[s] for s in states)
        if count:
            steps.append(
                {
                    "jobs": count,
                    "states": [s for s in states if tally[s]],
                    "what": what,
                    "command": command.format(run=run_id) or None,
                }
            )
    return steps


def active_seconds(store: Store, run_id: str) -> float | None:
    """Seconds a runner was at work on the run, over all its starts and resumes (the gaps
    between a stop and a resume left out); None if it never started."""
    marks = store.conn.execute(
        "SELECT event_id, at, kind, detail FROM events WHERE run_id = ?"
        " AND kind IN ('run_running', 'run_finished', 'run_stopped') ORDER BY event_id",
        (run_id,),
    ).fetchall()
    total, opened = 0.0, None  # opened: (event_id, at) of the stretch under way

    def last_recorded(after: int, before: int | None, until: float) -> float:
        """The last thing a runner that died recorded: an event, or a change to a job
        (before ``until``, when the next runner found it dead)."""
        row = store.conn.execute(
            "SELECT MAX(at) FROM events WHERE run_id = ? AND event_id > ? AND event_id < ?",
            (run_id, after, before if before is not None else 2**62),
        ).fetchone()
        job = store.conn.execute(
            "SELECT MAX(updated_at) FROM jobs WHERE run_id = ? AND updated_at < ?",
            (run_id, until),
        ).fetchone()
        return max(float(row[0] or 0.0), float(job[0] or 0.0))

    for event_id, at, kind, detail in marks:
        if kind == "run_running":
            if opened is not None:  # the one before ended with nothing said
                end = last_recorded(opened[0], event_id, at)
                total += max(end, opened[1]) - opened[1]
            opened = (event_id, at)
        elif opened is not None:
            end = last_recorded(opened[0], event_id, at) if detail == _ORPHANED else at
            total += max(min(end, at), opened[1]) - opened[1]
            opened = None
    if opened is not None:
        run = store.run(run_id)
        now = time.time()
        end = now if run.state == "running" else last_recorded(opened[0], None, now)
        total += max(end, opened[1]) - opened[1]
    if not marks:  # a ledger from before these events: its start to its end
        run = store.run(run_id)
        if not run.started_at or not run.finished_at:
            return None
        return max(run.finished_at - run.started_at, 0.0)
    return total


def figures_of(store: Store, run_id: str) -> Figures:
    """The run's figures, as every surface shows them (`runner.run.events.Figures`)."""
    tally = store.tally(run_id)
    return Figures.of(tally.states, tally.spent)


def summary_data(store: Store, run_id: str) -> dict[str, Any]:
    run = store.run(run_id)
    tally = store.tally(run_id)
    fig = Figures.of(tally.states, tally.spent)
    wall = active_seconds(store, run_id)
    estimated = store.conn.execute(
        "SELECT COALESCE(SUM(est_credits), 0) FROM jobs WHERE run_id = ?", (run_id,)
    ).fetchone()[0]
    ended = run.finished_at if run.state in ("finished", "stopped") else None
    return {
        "run": run.run_id,
        "name": run.name,
        "experiment": run.experiment,
        "tier": run.tier,
        "backend": run.backend,
        "tags": store.tags(run_id),
        "state": run.state,
        "exit_code": run.exit_code,
        "stop_reason": run.stop_reason,
        "jobs": tally.total,
        "counts": dict(sorted(tally.states.items())),
        "progress": {"finished": fig.finished, "total": fig.total, **fig.counts()},
        "credits": {
            "estimated": round(float(estimated), 4),
            "spent": round(tally.spent, 4),
            "charged": round(tally.charged, 4),
            "refunded": round(tally.refunded, 4),
            "held": round(tally.held_credits, 4),
            "budget": run.budget,
        },
        "started_at": run.started_at,
        "finished_at": ended,
        "wall_seconds": round(wall, 1) if wall is not None else None,
        "next": next_steps(store, run_id),
        "report": "index.html",
    }


def write_summary(store: Store, workspace: Path, run_id: str) -> Path:
    """Write ``<run>/summary.json`` atomically; returns its path."""
    out = workspace / run_id / "summary.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(summary_data(store, run_id), indent=2, ensure_ascii=False) + "\n"
    with replaced(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return out


def end_lines(store: Store, run_id: str, outcome: Any = None) -> list[str]:
    """What a run, resume, retry or promote prints when it ends: the figures, the money, why
    it stopped, and the command that goes on for each kind of unfinished job (`next_steps`,
    the same list as ``summary.json``'s ``next``)."""
    tally = store.tally(run_id)
    fig = Figures.of(tally.states, tally.spent)
    lines = [
        f"Run {run_id}: {fig.finished:,}/{fig.total:,} finished: {fig.text()}; "
        f"spent {tally.money_text()}."
    ]
    before = getattr(outcome, "balance_before", None)
    after = getattr(outcome, "balance_after", None)
    if before is not None and after is not None:
        lines.append(
            f"Account balance: {before:,.2f} -> {after:,.2f} credits "
            f"({before - after:,.2f} used, including any other use of the account meanwhile)."
        )
    reason = getattr(outcome, "stop_reason", None)
    if reason:
        lines.append(f"Stopped early: {reason}")
    wall = active_seconds(store, run_id)
    if wall is not None:
        lines.append(f"Wall time: {clock_text(wall)} (time stopped between runs left out).")
    if tally[L.UNKNOWN]:
        lines.append(
            f"{tally[L.UNKNOWN]} job(s) have an unknown create outcome: `runner resolve {run_id}`"
        )
    if tally[L.EXPIRED]:
        lines.append(f"{tally[L.EXPIRED]} paid result(s) EXPIRED before they were downloaded.")
    steps = next_steps(store, run_id)
    if steps:
        lines.append("Next:")
        for step in steps:
            go = f": `{step['command']}`" if step["command"] else ""
            lines.append(f"  {step['jobs']:,} job(s) {step['what']}{go}")
    return lines
