"""A run's results as plain rows: one per job, for the report and for `runner export`."""

from __future__ import annotations

from typing import Any

from .. import params
from ..run.ledger import Store


def result_rows(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Every job of the run with its varied values, outcome, cost, timing and media."""
    dims = list(store.run(run_id).dimensions)
    # The body's top-level settings, as sent (model options and media lists are not columns).
    settings = [p.name for p in params.TABLE.sent if not p.media and "." not in str(p.field)]
    rows = []
    for job in store.jobs(run_id):
        values = dict(job.values)
        media = job.media
        body = job.body
        rows.append(
            {
                "run_id": run_id,
                "job_key": job.job_key,
                "variant_key": job.variant_key,
                "tier": job.tier,
                "sample": job.sample,
                "model": job.model,
                "mode": job.mode,
                "source": job.source,
                "row": job.row,
                "name": job.name,
                **{f"dim_{d}": values.get(d, "") for d in dims},
                **{name: body.get(name) for name in settings},
                "prompt": body.get("prompt", ""),
                "state": job.state,
                "error_code": job.error_code,
                "error_message": job.error_message,
                "task_id": job.task_id,
                "estimated_credits": job.est_credits,
                "credits": job.credits,
                "attempts": job.attempts,
                "latency_s": job.latency,
                "file": job.file_path,
                "reused_from": job.reused_from,
                "parent_job_key": job.parent_job_key,
                "video_duration_s": media.get("duration"),
                "video_width": media.get("width"),
                "video_height": media.get("height"),
                "video_has_audio": media.get("has_audio"),
                "mismatches": "; ".join(media.get("mismatches", [])),
                "poster": media.get("poster"),
                "strip": media.get("strip"),
                "video_pruned": media.get("pruned"),  # what `runner prune` did with it
            }
        )
    return rows
