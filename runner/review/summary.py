"""``summary.json``: what a run came to, beside its ``index.html``, for the morning after and
for scripts (README "The morning after"). Written from the ledger's one count (`Store.tally`),
so it says what ``status``, the progress line and the report say.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..run import ledger as L
from ..run.ledger import Store
from .tables import replaced

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


def summary_data(store: Store, run_id: str) -> dict[str, Any]:
    run = store.run(run_id)
    tally = store.tally(run_id)
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
        "wall_seconds": round(ended - run.started_at, 1) if ended and run.started_at else None,
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
