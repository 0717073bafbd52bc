"""The provider seam: what the dispatcher and the run commands need from a video API.

EvoLink (`runner.providers.evolink`) is one implementation; a test fake is another. Every
value here is provider-neutral, so the dispatcher never sees HTTP.

A create answers with one of five outcomes (docs/design.md §6, docs/reliability.md §4.5)::

    Created    the task exists and is paid for (or a replay found it): poll it
    NotSent    provably not processed (connect error, 408, 429): send again, same key
    Rejected   refused before anything was admitted (400, 413, ...): final, shown with the row
    Stop       no new creates until a person acts or a limit resets (401, 402, 403, 404)
    Unknown    the task may exist (timeout or reset after sending, 5xx, a 2xx without a
               valid id, ``paid_outcome_unknown``): replayed once with the same key and
               body; ``idempotency_conflict`` is never replayed

An upload of an input file (the provider's file service) answers `Uploaded` or
`UploadRefused` (too large, wrong type, the account's file quota used up, or refused for
another reason); like reads, it raises `Transient` (try again later) or `AccessLost`.

Reads raise::

    Exception
     ├── Transient    a retry may fix it (timeouts, resets, 429 with Retry-After, 5xx)
     ├── TaskGone     the provider does not know the task (returned per id by read_tasks)
     └── AccessLost   the key no longer works (401/403)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

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
    """No new creates. ``kind``: "auth" (401), "balance" (402 balance or key quota),
    "model" (402 ``key_model_not_allowed``; ``allowed`` lists what the key may use),
    "daily" (402 daily key limit; ``reset_in`` is the provider seconds until it resets,
    when known), "access" (403), "endpoint" (404/405, a bad address)."""

    kind: str
    message: str
    http_status: int
    code: str | None = None
    reset_in: float | None = None
    allowed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Unknown:
    reason: str
    http_status: int | None = None
    code: str | None = None  # e.g. "paid_outcome_unknown", "idempotency_conflict"

    @property
    def replayable(self) -> bool:
        """Whether one replay with the same key and body may settle it (not a conflict)."""
        return self.code != "idempotency_conflict"


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
    # money (docs/evolink.md §19): the final charge, read only once completed
    # (``usage.credits_used``, else ``usage.cost.credits``); the reservation while unfinished;
    # a refund only when the ``billing`` object proves it (scope account_balance, refund
    # completed, charge released, a refund time, refunded == reserved)
    credits_used: float | None = None
    credits_reserved: float | None = None
    refunded: float | None = None


@dataclass(frozen=True, slots=True)
class Funds:
    """``GET /v1/credits``: what the account and the key may still spend (None: unknown or
    unlimited)."""

    account: float | None  # data.user.remaining_credits
    key: float | None  # data.token.remaining_credits, None when unlimited
    daily_limit: float | None  # data.token.daily_limit_credits
    daily_used: float | None
    reset_timezone: str | None

    @property
    def available(self) -> float | None:
        """The least of the account's balance, the key's remaining credits and what is left
        of its daily limit; None when none of them is known."""
        limits = [v for v in (self.account, self.key) if v is not None]
        if self.daily_limit is not None:
            limits.append(self.daily_limit - (self.daily_used or 0.0))
        return min(limits) if limits else None


TaskReads = Mapping[str, TaskView | TaskGone]


# ---------------------------------------------------------------------- input files


@dataclass(frozen=True, slots=True)
class Uploaded:
    """A file the provider now holds: its id, the URL to put in a create, and how many
    provider seconds it lives (docs/evolink.md §21: 72 h)."""

    file_id: str
    url: str
    lifetime: float


@dataclass(frozen=True, slots=True)
class UploadRefused:
    """The provider would not take the file. ``kind``: "too_large", "wrong_type", "quota" (the
    account's file quota is used up) or "refused" (any other refusal)."""

    kind: Literal["too_large", "wrong_type", "quota", "refused"]
    message: str
    http_status: int
    code: str | None = None


@dataclass(frozen=True, slots=True)
class FileQuota:
    """How many files the account keeps and may keep (None: not said)."""

    used: int | None
    limit: int | None
    remaining: int | None


UploadOutcome = Uploaded | UploadRefused


class Provider(Protocol):
    """A video API as the runner sees it."""

    key_env: str  # the environment variable holding the API key

    async def create(self, body: dict[str, Any], idempotency_key: str) -> CreateOutcome:
        """Send one create; never retried here (its outcome says whether it may be)."""
        ...

    async def read_tasks(self, task_ids: Sequence[str]) -> TaskReads:
        """The current view of each task, keyed by id (`TaskGone` for an unknown one), in
        as few requests as the provider allows (EvoLink: one per 50 ids); raises
        `Transient` or `AccessLost` when the read as a whole failed."""
        ...

    async def balance(self) -> Funds:
        """What the account and key may still spend; free, creates nothing."""
        ...

    async def models(self) -> list[str] | None:
        """The model ids the key may use, or None when the provider cannot list them."""
        ...

    def body_for(self, request: Request, tier: str) -> dict[str, Any]:
        """The create body of ``request`` on ``tier`` (the model id for the tier)."""
        ...

    def upload_service(self) -> str:
        """Where uploads go (a base URL): the ledger keeps uploads per service."""
        ...

    async def upload(self, path: Path, name: str, mime: str, upload_id: str) -> UploadOutcome:
        """Upload one input file under ``name``; ``upload_id`` lets a lost answer be looked
        up instead of uploading twice. Raises `Transient` or `AccessLost`."""
        ...

    async def delete_upload(self, file_id: str) -> None:
        """Delete an uploaded file (one already gone is no error). Raises `Transient` or
        `AccessLost`."""
        ...

    async def upload_quota(self) -> FileQuota | None:
        """The account's file quota, or None when the provider cannot say. Raises
        `Transient` or `AccessLost`."""
        ...

    def time_scale(self) -> float | None:
        """Provider seconds per wall second, when the provider says (a simulator's speed)."""
        ...
