"""The provider seam: what the dispatcher and the run commands need from a video API.

EvoLink (`runner.providers.evolink`) is one implementation; a test fake is another. Every
value here is provider-neutral, so the dispatcher never sees HTTP.

A create answers with one of five outcomes (docs/design.md §6, docs/reliability.md §4.5)::

    Created    the task exists and is paid for: poll it
    NotSent    provably not processed (connect error, 408, 429): send again later
    Rejected   processed and refused (a 4xx about the request): final, shown with the row
    Stop       no new creates until a person acts (401, 402, 403, a wrong endpoint)
    Unknown    the task may exist: held, never re-created automatically

Reads raise::

    Exception
     ├── Transient    a retry may fix it (timeouts, resets, 429 with Retry-After, 5xx)
     ├── TaskGone     the provider does not know the task (returned per id by read_tasks)
     └── AccessLost   the key no longer works (401/403)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..models import Request

# ---------------------------------------------------------------------- create outcomes


@dataclass(frozen=True, slots=True)
class Created:
    task_id: str
    credits_reserved: float | None
    estimated_time: float | None
    replayed: bool
    http_status: int


@dataclass(frozen=True, slots=True)
class NotSent:
    reason: str
    http_status: int | None = None
    retry_after: float | None = None  # seconds, from a 429's Retry-After
    rate_limited: bool = False


@dataclass(frozen=True, slots=True)
class Rejected:
    code: str
    message: str
    http_status: int


@dataclass(frozen=True, slots=True)
class Stop:
    kind: str  # "auth", "balance", "access", "endpoint"
    message: str
    http_status: int


@dataclass(frozen=True, slots=True)
class Unknown:
    reason: str
    http_status: int | None = None


CreateOutcome = Created | NotSent | Rejected | Stop | Unknown


# ---------------------------------------------------------------------- reads


class Transient(Exception):
    """A read failed in a way a retry may fix."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TaskGone(Exception):
    """The provider does not know the task (400 invalid id, 404)."""


class AccessLost(Exception):
    """401/403 on a read: the key no longer works for this task."""


@dataclass(frozen=True, slots=True)
class TaskView:
    task_id: str
    status: str  # pending, processing, completed, failed, cancelled, or unknown words
    progress: int | None
    result_url: str | None
    error_code: str | None
    error_message: str | None
    estimated_time: float | None


TaskReads = Mapping[str, TaskView | TaskGone]


class Provider(Protocol):
    """A video API as the runner sees it."""

    key_env: str  # the environment variable holding the API key

    async def create(self, body: dict[str, Any], idempotency_key: str) -> CreateOutcome:
        """Send one create; never retried here (its outcome says whether it may be)."""
        ...

    async def read_tasks(self, task_ids: Sequence[str]) -> TaskReads:
        """The current view of each task, keyed by id (`TaskGone` for an unknown one);
        raises `Transient` or `AccessLost` when the read as a whole failed."""
        ...

    async def balance(self) -> dict[str, Any]:
        """The account balance as the provider gives it; free, creates nothing."""
        ...

    async def models(self) -> list[str] | None:
        """The model ids the key may use, or None when the provider cannot list them."""
        ...

    def body_for(self, request: Request, tier: str) -> dict[str, Any]:
        """The create body of ``request`` on ``tier`` (the model id for the tier)."""
        ...

    def time_scale(self) -> float | None:
        """Provider seconds per wall second, when the provider says (a simulator's speed)."""
        ...
