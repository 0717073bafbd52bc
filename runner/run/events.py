"""What the dispatcher reports as it goes (frozen events for the progress display and logs),
and the figures every surface shows (`Figures`), taken from the ledger's one count."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from .records import (
    COMPLETED,
    DONE,
    EXPIRED,
    FAILED,
    LOST,
    PENDING,
    REJECTED,
    RESULT_ERROR,
    RUNNING,
    SUBMITTED,
    SUBMITTING,
    UNKNOWN,
)


@dataclass(frozen=True, slots=True)
class Event:
    """``kind``: submitted, running, done, failed, rejected, held, expired, lost,
    result_error, retrying, throttled, breaker, stopped, paused, uploaded (a local file),
    upload_deleted (to make room in the file quota)."""

    kind: str
    job_key: str | None = None
    detail: str = ""
    spent: float | None = None  # the run's spent figure after this event (the ledger's)


# what each surface calls a group of job states (README "4. Run it")
GROUPS: dict[str, frozenset[str]] = {
    "waiting": frozenset({PENDING}),
    "running": frozenset({SUBMITTING, SUBMITTED, RUNNING, COMPLETED}),
    "done": frozenset({DONE}),
    "failed": frozenset({FAILED, LOST, RESULT_ERROR}),
    "held": frozenset({UNKNOWN}),
    "rejected": frozenset({REJECTED}),
    "expired": frozenset({EXPIRED}),
}


@dataclass(frozen=True, slots=True)
class Figures:
    """A run's jobs by group and its spent credits, cumulative over resumes: what the progress
    line, the log lines, ``status``, ``summary.json`` and the report header all show.
    ``submitted``: jobs sent at least once (every job not waiting); ``finished``: jobs with
    nothing more to do in this run (done, failed, held, rejected, expired)."""

    total: int
    waiting: int
    running: int
    done: int
    failed: int
    held: int
    rejected: int
    expired: int
    credits: float

    @classmethod
    def of(cls, states: Mapping[str, int], credits: float) -> Figures:
        by = {g: sum(states.get(s, 0) for s in members) for g, members in GROUPS.items()}
        return cls(total=sum(states.values()), credits=credits, **by)

    @property
    def submitted(self) -> int:
        return self.total - self.waiting

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.held + self.rejected + self.expired

    def counts(self) -> dict[str, int]:
        """The groups in the order every surface names them."""
        return {
            "submitted": self.submitted,
            "running": self.running,
            "done": self.done,
            "failed": self.failed,
            "held": self.held,
            "rejected": self.rejected,
            "expired": self.expired,
        }

    def text(self, first: tuple[str, ...] = ()) -> str:
        """``submitted 9 | running 2 | done 6 | failed 1``: groups that are zero left out
        (submitted, running and done always shown); ``first``: groups to put first (a narrow
        terminal cuts the end)."""
        keep = {"submitted", "running", "done"}
        counts = self.counts()
        order = [*first, *(k for k in counts if k not in first)]
        return " | ".join(f"{k} {counts[k]:,}" for k in order if counts[k] or k in keep)


class Counting(Protocol):
    def states(self, run_id: str) -> dict[str, int]: ...
    def spent(self, run_id: str) -> float: ...


def figures(store: Counting, run_id: str) -> Figures:
    """The run's figures from the ledger (`runner.run.ledger.Store`): its count by state and
    its spent figure (the writer keeps that one cached, so this is one index scan)."""
    return Figures.of(store.states(run_id), store.spent(run_id))
