"""Typed records of what the ledger holds: a run, a job, and the run's tally.

The ledger (`runner.run.ledger`) is the only module that writes SQL; everything downstream reads
these frozen values. A job keeps its typed request (`JobRecord.request`) instead of a JSON
string to parse again, and a run its settings and dimensions as plain values.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..models import Request

# Job states (the state machine is drawn in `runner.run.ledger`'s docstring).
PENDING, SUBMITTING, UNKNOWN, REJECTED = "pending", "submitting", "unknown", "rejected"
SUBMITTED, RUNNING, COMPLETED, DONE = "submitted", "running", "completed", "done"
FAILED, LOST, EXPIRED, RESULT_ERROR = "failed", "lost", "expired", "result_error"
# Tasks that exist (paid for) and are not finished remotely.
ACTIVE = frozenset({SUBMITTED, RUNNING})
# Ended badly: the run's exit code is 1 when any job ends in one of these.
BAD = frozenset({FAILED, REJECTED, LOST, EXPIRED, RESULT_ERROR, UNKNOWN})


@dataclass(frozen=True, slots=True)
class RunRecord:
    run_id: str
    name: str
    experiment: str
    tier: str
    backend: str
    base_url: str | None
    parent_run: str | None
    settings: Mapping[str, Any]  # the dispatcher settings the run was started with
    in_process: bool  # the built-in simulator
    dimensions: Mapping[str, tuple[str, ...]]  # varied column -> values, first seen first
    budget: float | None
    state: str  # created, running, stopped, finished
    created_at: float
    started_at: float | None
    finished_at: float | None
    exit_code: int | None
    stop_reason: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> RunRecord:
        config = json.loads(row["config_json"])
        dims = json.loads(row["dimensions_json"] or "{}")
        return cls(
            run_id=row["run_id"],
            name=row["name"],
            experiment=row["experiment"],
            tier=row["tier"],
            backend=row["backend"],
            base_url=row["base_url"],
            parent_run=row["parent_run"],
            settings=config.get("settings", {}),
            in_process=bool(config.get("in_process")),
            dimensions={k: tuple(v) for k, v in dims.items()},
            budget=row["budget"],
            state=row["state"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            exit_code=row["exit_code"],
            stop_reason=row["stop_reason"],
        )


@dataclass(frozen=True)
class JobRecord:
    """One job of a run as the ledger holds it (``body`` is the request body as sent)."""

    job_id: int
    run_id: str
    job_key: str
    variant_key: str
    tier: str
    sample: int
    model: str
    mode: str
    body: Mapping[str, Any]
    values: tuple[tuple[str, str], ...]  # (dimension, shown value), in the sheet's order
    source: str
    row: int
    name: str
    parent_job_key: str | None
    est_credits: float
    state: str
    task_id: str | None
    credits: float | None
    attempts: int
    resubmits: int
    rechecks: int
    progress: int | None
    estimated_time: float | None
    submitted_at: float | None
    completed_at: float | None
    result_url: str | None
    result_expires_at: float | None
    file_path: str | None
    file_bytes: int | None
    file_sha256: str | None
    media: Mapping[str, Any] = field(default_factory=dict)  # what the probe measured
    reused_from: str | None = None
    error_code: str | None = None
    error_message: str | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> JobRecord:
        return cls(
            job_id=row["job_id"],
            run_id=row["run_id"],
            job_key=row["job_key"],
            variant_key=row["variant_key"],
            tier=row["tier"],
            sample=row["sample"],
            model=row["model"],
            mode=row["mode"],
            body=json.loads(row["body_json"]),
            values=tuple((str(k), str(v)) for k, v in json.loads(row["values_json"])),
            source=row["source"],
            row=row["row"],
            name=row["name"],
            parent_job_key=row["parent_job_key"],
            est_credits=row["est_credits"],
            state=row["state"],
            task_id=row["task_id"],
            credits=row["credits"],
            attempts=row["attempts"],
            resubmits=row["resubmits"],
            rechecks=row["rechecks"],
            progress=row["progress"],
            estimated_time=row["estimated_time"],
            submitted_at=row["submitted_at"],
            completed_at=row["completed_at"],
            result_url=row["result_url"],
            result_expires_at=row["result_expires_at"],
            file_path=row["file_path"],
            file_bytes=row["file_bytes"],
            file_sha256=row["file_sha256"],
            media=json.loads(row["media_json"] or "{}"),
            reused_from=row["reused_from"],
            error_code=row["error_code"],
            error_message=row["error_message"],
        )

    @cached_property
    def request(self) -> Request:
        """The typed request (every parameter but ``model``), parsed once."""
        return Request.from_body(dict(self.body), self.mode)  # type: ignore[arg-type]

    @property
    def latency(self) -> float | None:
        """Seconds from the create's answer to the task's completion."""
        if self.completed_at and self.submitted_at:
            return round(self.completed_at - self.submitted_at, 3)
        return None


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """One upload of a local file to a provider's file service (``service``: its base URL).
    Times are wall clock (``time.time``); ``deleted_at`` is set once runner deleted it."""

    upload_id: int
    sha256: str
    service: str
    file_id: str
    url: str
    name: str
    run_id: str | None
    uploaded_at: float
    expires_at: float
    deleted_at: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> UploadRecord:
        return cls(**{f.name: row[f.name] for f in dataclasses.fields(cls)})


@dataclass(frozen=True, slots=True)
class Tally:
    """A run's jobs by state and its money, from one query: what the progress line, the
    summary, ``status`` and the report all show, so they never disagree."""

    states: Mapping[str, int]
    spent: float  # charged - refunded + estimates of creates not settled (ledger.attempt_cost)
    held_credits: float  # estimates of jobs held with an unknown create outcome
    charged: float = 0.0  # the provider's charges for created tasks (final, else reserved)
    refunded: float = 0.0  # refunds the provider's billing proved

    @property
    def total(self) -> int:
        return sum(self.states.values())

    def __getitem__(self, state: str) -> int:
        return self.states.get(state, 0)

    @property
    def bad(self) -> int:
        return sum(self.states.get(s, 0) for s in BAD)

    def text(self) -> str:
        return ", ".join(f"{n} {state}" for state, n in sorted(self.states.items()))

    def money_text(self) -> str:
        """The spent figure, and how the provider's charges and refunds make it up."""
        text = f"{self.spent:,.2f} credits"
        if self.refunded:
            text += f" ({self.charged:,.2f} charged, {self.refunded:,.2f} refunded)"
        return text
