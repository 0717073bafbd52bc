"""A run's results as plain rows: one per job, for the report and for `runner export`.

`iter_result_rows` reads the ledger a chunk at a time (a 100,000-job run never holds all its
rows at once); `result_rows` is the same as a list, for the callers that want one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .. import params
from ..run.ledger import Store
from ..run.records import JobRecord

CHUNK = 2_000  # ledger rows fetched at a time


def iter_jobs(store: Store, run_id: str, chunk: int = CHUNK) -> Iterator[JobRecord]:
    """The run's jobs in creation order, fetched ``chunk`` rows at a time."""
    cursor = store.conn.execute("SELECT * FROM jobs WHERE run_id = ? ORDER BY job_id", (run_id,))
    try:
        while batch := cursor.fetchmany(chunk):
            for row in batch:
                yield JobRecord.from_row(row)
    finally:
        cursor.close()


def result_rows(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Every job of the run with its varied values, outcome, cost, timing and media."""
    return list(iter_result_rows(store, run_id))


def iter_result_rows(store: Store, run_id: str) -> Iterator[dict[str, Any]]:
    """`result_rows`, one at a time."""
    for _, row in iter_results(store, run_id):
        yield row


def iter_results(store: Store, run_id: str) -> Iterator[tuple[JobRecord, dict[str, Any]]]:
    """Each job with its result row (the record carries what the row leaves out, e.g. the
    frame rate the probe measured)."""
    dims = list(store.run(run_id).dimensions)
    # The body's top-level settings, as sent (model options and media lists are not columns).
    settings = [p.name for p in params.TABLE.sent if not p.media and "." not in str(p.field)]
    for job in iter_jobs(store, run_id):
        values = dict(job.values)
        media = job.media
        body = job.body
        yield (
            job,
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
            },
        )
