"""What the dispatcher reports as it goes: frozen events for the progress display and logs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Event:
    """``kind``: submitted, running, done, failed, rejected, held, expired, lost,
    result_error, retrying, throttled, breaker, stopped, paused, uploaded (a local file),
    upload_deleted (to make room in the file quota)."""

    kind: str
    job_key: str | None = None
    detail: str = ""
    spent: float | None = None  # the run's spent figure after this event (the ledger's)
