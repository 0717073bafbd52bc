"""The durable ledger: one SQLite database per workspace (``reports/ledger.sqlite``).

It holds runs, jobs (with their state machine), attempts (every create, its outcome and its
money) and events. Durability rules
(``docs/reliability.md`` §4):

- WAL journal, ``synchronous=FULL``: a committed transaction survives ``kill -9`` and power loss.
- Intent before effect: an attempt row is committed (``in_flight``) before its create is sent,
  together with the budget reservation, in one ``BEGIN IMMEDIATE`` transaction.
- The task id is committed the moment the create answers.
- One writer: a process holds an exclusive lock on ``ledger.lock`` while it writes; a second
  runner refuses at once, naming the holder. Readers (report, status) open the database
  read-only with short transactions and never block the writer.

Job states::

    pending -> submitting -> submitted -> running -> completed -> done
                  |  |  `-> unknown (create outcome unknown: held, never re-sent automatically)
                  |  `-> rejected (400 at create: final)
                  `-> pending (provably not sent: retried later)
    running -> failed (task error) | lost (task no longer found)
    completed -> expired (result URL gone before download) | result_error (not a usable video)

Money is kept per attempt (docs/evolink.md §18-§19): the estimate (``est_credits``, reserved
against ``--budget`` before the create is sent), the provider's reservation
(``credits_reserved`` of the create's answer), the final charge (``usage.credits_used`` once
the task completed) and a refund (only when the task's ``billing`` object proves it). What an
attempt costs (`attempt_cost`)::

    not sent, rejected, released (a held create settled as never made)      0
    otherwise: final charge, else reservation, else estimate  -  proven refund

A run's spent figure is the sum over its attempts; ``jobs.credits`` is the same sum per job.
Both are kept up to date by `Ledger` as attempts change, so reading them is cheap.

Local media (`runner.localfiles`): ``local_files`` maps each file's sha256 to where it was last
seen; ``uploads`` holds every upload of one to a provider's file service (its ``file_id``, URL
and expiry, keyed by sha256 and the service), so a file is uploaded once per 72 h per workspace,
whatever run needs it. Each attempt keeps the exact body it sent (``attempts.body_json``, URLs
filled in): a replay resends it as it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, RunStopped
from ..localfiles import REF_PREFIX, LocalFile
from .failpoints import disk_full, failpoint
from .place import check_workspace
from .records import (
    ACTIVE,
    BAD,
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
    JobRecord,
    RunRecord,
    Tally,
    UploadRecord,
)

__all__ = [
    "ACTIVE",
    "BAD",
    "COMPLETED",
    "DONE",
    "EXPIRED",
    "FAILED",
    "LOST",
    "PENDING",
    "REJECTED",
    "RESULT_ERROR",
    "RUNNING",
    "SUBMITTED",
    "SUBMITTING",
    "UNKNOWN",
    "Attempt",
    "BudgetExceeded",
    "JobRecord",
    "Ledger",
    "LedgerBusy",
    "NewJob",
    "RunRecord",
    "Store",
    "Tally",
    "UploadRecord",
    "reader",
]

MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "001_initial",
        """
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        experiment TEXT NOT NULL,
        tier TEXT NOT NULL,
        backend TEXT NOT NULL,
        base_url TEXT,
        parent_run TEXT REFERENCES runs(run_id),
        config_json TEXT NOT NULL,
        dimensions_json TEXT NOT NULL,
        budget REAL,
        state TEXT NOT NULL,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        exit_code INTEGER,
        stop_reason TEXT
    );
    CREATE TABLE jobs (
        job_id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(run_id),
        job_key TEXT NOT NULL,
        variant_key TEXT NOT NULL,
        tier TEXT NOT NULL,
        sample INTEGER NOT NULL,
        model TEXT NOT NULL,
        mode TEXT NOT NULL,
        body_json TEXT NOT NULL,
        values_json TEXT NOT NULL,
        source TEXT NOT NULL,
        row INTEGER NOT NULL,
        name TEXT NOT NULL,
        parent_job_key TEXT,
        est_credits REAL NOT NULL,
        state TEXT NOT NULL,
        task_id TEXT UNIQUE,
        credits REAL,
        attempts INTEGER NOT NULL DEFAULT 0,
        resubmits INTEGER NOT NULL DEFAULT 0,
        progress INTEGER,
        estimated_time REAL,
        submitted_at REAL,
        completed_at REAL,
        next_action_at REAL,
        result_url TEXT,
        result_expires_at REAL,
        file_path TEXT,
        file_bytes INTEGER,
        file_sha256 TEXT,
        media_json TEXT,
        reused_from TEXT,
        error_code TEXT,
        error_message TEXT,
        updated_at REAL NOT NULL,
        UNIQUE (run_id, job_key)
    );
    CREATE INDEX jobs_by_state ON jobs (run_id, state);
    CREATE INDEX jobs_by_key ON jobs (job_key, state);
    CREATE TABLE attempts (
        attempt_id INTEGER PRIMARY KEY,
        job_id INTEGER NOT NULL REFERENCES jobs(job_id),
        n INTEGER NOT NULL,
        idempotency_key TEXT NOT NULL,
        outcome TEXT NOT NULL,
        started_at REAL NOT NULL,
        finished_at REAL,
        http_status INTEGER,
        task_id TEXT,
        replayed INTEGER,
        detail TEXT
    );
    CREATE TABLE money (
        entry_id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL,
        job_id INTEGER NOT NULL,
        attempt_id INTEGER,
        kind TEXT NOT NULL CHECK (kind IN ('reserve', 'release', 'confirm')),
        credits REAL NOT NULL,
        at REAL NOT NULL
    );
    CREATE INDEX money_by_run ON money (run_id);
    CREATE TABLE events (
        event_id INTEGER PRIMARY KEY,
        run_id TEXT,
        job_id INTEGER,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT
    );
    """,
    ),
    (
        "002_rechecks",
        """
    ALTER TABLE jobs ADD COLUMN rechecks INTEGER NOT NULL DEFAULT 0;
    """,
    ),
    (
        "003_drop_next_action_at",  # never used
        """
    ALTER TABLE jobs DROP COLUMN next_action_at;
    """,
    ),
    (
        "004_money_per_attempt",  # one money figure: the provider's, per attempt
        """
    ALTER TABLE attempts ADD COLUMN est_credits REAL NOT NULL DEFAULT 0;
    ALTER TABLE attempts ADD COLUMN reserved REAL;
    ALTER TABLE attempts ADD COLUMN charged REAL;
    ALTER TABLE attempts ADD COLUMN refunded REAL;
    ALTER TABLE attempts ADD COLUMN ended TEXT;
    ALTER TABLE attempts ADD COLUMN replays INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX attempts_by_job ON attempts (job_id);
    CREATE INDEX attempts_by_task ON attempts (task_id);
    UPDATE attempts SET est_credits = COALESCE((SELECT m.credits FROM money m
        WHERE m.attempt_id = attempts.attempt_id AND m.kind = 'reserve'), 0);
    UPDATE attempts SET reserved = (SELECT m.credits FROM money m
        WHERE m.attempt_id = attempts.attempt_id AND m.kind = 'confirm')
        WHERE outcome = 'created';
    UPDATE attempts SET outcome = 'created',
        task_id = (SELECT j.task_id FROM jobs j WHERE j.job_id = attempts.job_id)
        WHERE outcome = 'unknown'
        AND attempt_id = (SELECT MAX(a2.attempt_id) FROM attempts a2
            WHERE a2.job_id = attempts.job_id)
        AND (SELECT j.task_id FROM jobs j WHERE j.job_id = attempts.job_id) IS NOT NULL
        AND (SELECT j.state FROM jobs j WHERE j.job_id = attempts.job_id) != 'unknown';
    UPDATE attempts SET outcome = 'released'
        WHERE outcome IN ('unknown', 'in_flight')
        AND attempt_id != (SELECT MAX(a2.attempt_id) FROM attempts a2
            WHERE a2.job_id = attempts.job_id);
    UPDATE jobs SET credits = (SELECT COALESCE(SUM(
        CASE WHEN a.outcome IN ('not_sent', 'rejected', 'released') THEN 0
        ELSE COALESCE(a.charged, a.reserved, a.est_credits) - COALESCE(a.refunded, 0) END), 0)
        FROM attempts a WHERE a.job_id = jobs.job_id)
        WHERE EXISTS (SELECT 1 FROM attempts a WHERE a.job_id = jobs.job_id);
    DROP TABLE money;
    """,
    ),
    (
        "005_uploads",  # local media files, their uploads, and the body each attempt sent
        """
    CREATE TABLE local_files (
        sha256 TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        kind TEXT NOT NULL,
        mime TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        seen_at REAL NOT NULL
    );
    CREATE TABLE uploads (
        upload_id INTEGER PRIMARY KEY,
        sha256 TEXT NOT NULL,
        service TEXT NOT NULL,
        file_id TEXT NOT NULL,
        url TEXT NOT NULL,
        name TEXT NOT NULL,
        run_id TEXT,
        uploaded_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        deleted_at REAL
    );
    CREATE INDEX uploads_by_file ON uploads (sha256, service);
    ALTER TABLE attempts ADD COLUMN body_json TEXT;
    """,
    ),
    (
        "006_run_tags",  # labels of a run (client=acme) for `runner spend --by tag`
        """
    CREATE TABLE run_tags (
        run_id TEXT NOT NULL REFERENCES runs(run_id),
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    );
    """,
    ),
    (
        "007_ad_metrics",  # ad-platform reports imported by `runner metrics import`
        """
    CREATE TABLE metric_imports (
        import_id INTEGER PRIMARY KEY,
        file_name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        platform TEXT NOT NULL,
        imported_at REAL NOT NULL,
        split_test INTEGER NOT NULL DEFAULT 0,
        rows INTEGER NOT NULL,
        matched INTEGER NOT NULL,
        unmatched INTEGER NOT NULL
    );
    CREATE TABLE ad_metrics (
        import_id INTEGER NOT NULL REFERENCES metric_imports(import_id),
        job_key TEXT NOT NULL,
        ad_name TEXT NOT NULL,
        period_start TEXT,
        period_end TEXT,
        impressions INTEGER NOT NULL,
        clicks INTEGER NOT NULL,
        completions INTEGER,
        spend REAL,
        currency TEXT,
        results INTEGER
    );
    CREATE INDEX ad_metrics_by_job ON ad_metrics (job_key);
    """,
    ),
)

RELEASED_OUTCOMES = ("not_sent", "rejected", "released")
_COST_SQL = (
    "CASE WHEN a.outcome IN ('not_sent', 'rejected', 'released') THEN 0"
    " ELSE COALESCE(a.charged, a.reserved, a.est_credits) - COALESCE(a.refunded, 0) END"
)

_DETAIL_LIMIT = 2048
_FINISH_COLUMNS = frozenset(
    {
        "file_path",
        "file_bytes",
        "file_sha256",
        "media_json",
        "result_url",
        "result_expires_at",
        "completed_at",
        "progress",
    }
)


class LedgerBusy(InputError):
    """Another runner process holds the ledger."""


class LedgerUnavailable(RunStopped):
    """The ledger could not be written (its write lock held too long by another process, a
    full disk, an I/O error): creates stop, what is committed stays, `runner resume` goes on."""


# seconds a write waits for another process's lock on the database; a setting so tests need
# not wait (RUNNER_LEDGER_BUSY_SECONDS)
BUSY_TIMEOUT = float(os.environ.get("RUNNER_LEDGER_BUSY_SECONDS", "30"))


def _unavailable(exc: sqlite3.Error, workspace: Path) -> LedgerUnavailable:
    text = str(exc)
    if "locked" in text or "busy" in text:
        advice = (
            "another program kept the ledger locked (a database browser, a backup or sync "
            "tool?): close it"
        )
    elif "full" in text:
        advice = f"the disk holding {workspace} is full: free some space"
    else:
        advice = f"check the disk holding {workspace}"
    return LedgerUnavailable(
        f"the ledger {workspace / 'ledger.sqlite'} could not be written ({text}): {advice}, "
        "then run `runner resume latest`. Everything already recorded is kept, including "
        "every task already paid for."
    )


class BudgetExceeded(RunStopped):
    """The next create could take spending over ``--budget``."""


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to record when a run is created."""

    job_key: str
    variant_key: str
    tier: str
    sample: int
    model: str
    mode: str
    body: Mapping[str, Any]
    values: Sequence[tuple[str, str]]
    source: str
    row: int
    name: str
    est_credits: float
    parent_job_key: str | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    attempt_id: int
    job_id: int
    n: int
    idempotency_key: str
    estimate: float
    started_at: float  # wall time of its first send
    replays: int  # sends of the same key after an unknown outcome (not those turned away)
    reopened: bool = False  # sent again under its key (not sent before, or a replay)
    body: Mapping[str, Any] | None = None  # what to send (`Ledger.begin_attempt`)


def attempt_cost(
    outcome: str,
    est: float,
    reserved: float | None,
    charged: float | None,
    refunded: float | None,
) -> float:
    """What one attempt costs (see the module docstring); `_COST_SQL` is the same in SQL."""
    if outcome in RELEASED_OUTCOMES:
        return 0.0
    base = charged if charged is not None else reserved if reserved is not None else est
    return base - (refunded or 0.0)


def _now() -> float:
    return time.time()


def clip(text: str | None, limit: int = _DETAIL_LIMIT) -> str | None:
    """Provider text as stored: valid UTF-8 (a lone surrogate, which SQLite refuses, becomes
    "?") of at most ``limit`` bytes, clipped with "…"."""
    if text is None:
        return None
    data = text[: limit + 1].encode("utf-8", "replace")
    if len(data) <= limit:
        return data.decode("utf-8")
    return data[: limit - len("…".encode())].decode("utf-8", "ignore") + "…"


class Store:
    """Reading the ledger: typed records, never rows. `reader` opens one read-only (reports,
    ``status``: never blocks the running writer); `Ledger` is one that also writes."""

    def __init__(self, workspace: Path, conn: sqlite3.Connection, *, live: bool = True) -> None:
        self.workspace = workspace
        self.conn = conn
        # False: no process holds the write lock, so a run recorded "running" was ended
        # without a clean stop; it is shown as what it is (`_seen`)
        self.live = live

    def _seen(self, row: sqlite3.Row) -> RunRecord:
        record = RunRecord.from_row(row)
        if record.state == "running" and not self.live:
            return dataclasses.replace(
                record, state="stopped", stop_reason=orphan_reason(record.run_id)
            )
        return record

    # ------------------------------------------------------------------ runs

    def run(self, ref: str) -> RunRecord:
        """A run by id, folder path, or ``latest``; an error naming recent runs otherwise."""
        if ref == "latest":
            row = self.conn.execute(
                "SELECT * FROM runs ORDER BY created_at DESC, rowid DESC LIMIT 1"
            ).fetchone()
        else:
            row = self.conn.execute(
                "SELECT * FROM runs WHERE run_id = ?", (Path(ref).name,)
            ).fetchone()
        if row is None:
            known = [
                r[0]
                for r in self.conn.execute(
                    "SELECT run_id FROM runs ORDER BY created_at DESC LIMIT 5"
                )
            ]
            hint = f" (recent runs: {', '.join(known)})" if known else ""
            raise InputError(f"no run {ref!r} in this workspace{hint}; `runner status` lists them")
        return self._seen(row)

    def runs(self) -> list[RunRecord]:
        return [
            self._seen(r)
            for r in self.conn.execute("SELECT * FROM runs ORDER BY created_at, rowid")
        ]

    def children(self, run_id: str) -> list[RunRecord]:
        """Runs promoted from this one."""
        return [
            RunRecord.from_row(r)
            for r in self.conn.execute(
                "SELECT * FROM runs WHERE parent_run = ? ORDER BY created_at", (run_id,)
            )
        ]

    def tags(self, run_id: str) -> dict[str, str]:
        """The run's tags (``--tag key=value``), by key."""
        return dict(
            self.conn.execute(
                "SELECT key, value FROM run_tags WHERE run_id = ? ORDER BY key", (run_id,)
            ).fetchall()
        )

    def pruned(self, run_id: str) -> int:
        """How many of the run's videos `runner prune` removed or archived."""
        row = self.conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE run_id = ?"
            " AND json_extract(media_json, '$.pruned') IS NOT NULL",
            (run_id,),
        ).fetchone()
        return int(row[0])

    # ------------------------------------------------------------------ jobs

    def jobs(self, run_id: str, states: Iterable[str] | None = None) -> list[JobRecord]:
        """The run's jobs (in ``states``, if given) in creation order."""
        if states is None:
            rows = self.conn.execute(
                "SELECT * FROM jobs WHERE run_id = ? ORDER BY job_id", (run_id,)
            )
        else:
            wanted = list(states)
            marks = ", ".join("?" for _ in wanted)
            query = f"SELECT * FROM jobs WHERE run_id = ? AND state IN ({marks}) ORDER BY job_id"  # noqa: S608 - placeholders only
            rows = self.conn.execute(query, (run_id, *wanted))
        return [JobRecord.from_row(r) for r in rows]

    def job(self, job_id: int) -> JobRecord:
        row = self.conn.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return JobRecord.from_row(row)

    def job_ids(self, run_id: str, state: str, *, by: str = "job_id") -> list[int]:
        """The run's jobs in this state, ordered by ``job_id`` or ``result_expires_at`` (the
        links that run out first come first; none known, first of all)."""
        sql = {
            "job_id": "SELECT job_id FROM jobs WHERE run_id = ? AND state = ? ORDER BY job_id",
            "result_expires_at": "SELECT job_id FROM jobs WHERE run_id = ? AND state = ? "
            "ORDER BY result_expires_at, job_id",
        }[by]
        return [r[0] for r in self.conn.execute(sql, (run_id, state))]

    def has_result(self, job_key: str) -> bool:
        """Whether a finished job of this key has its video in the workspace: a new run
        reuses it instead of paying (`Ledger.create_run`)."""
        rows = self.conn.execute(
            "SELECT file_path FROM jobs WHERE job_key = ? AND state = 'done'"
            " AND reused_from IS NULL",
            (job_key,),
        ).fetchall()
        return any(r[0] and (self.workspace / r[0]).is_file() for r in rows)

    def reusable_keys(self) -> frozenset[str]:
        """Keys of every job whose video the workspace holds: a new run of any of them
        reuses it at no cost (`Ledger.create_run`), so a plan prices them at 0."""
        rows = self.conn.execute(
            "SELECT job_key, file_path FROM jobs WHERE state = 'done' AND reused_from IS NULL"
        )
        return frozenset(k for k, p in rows if p and (self.workspace / p).is_file())

    def find_job(self, run_id: str, ref: str) -> JobRecord:
        """A job of the run by its key or a unique prefix of it."""
        rows = (
            self.conn.execute(
                "SELECT * FROM jobs WHERE run_id = ? AND job_key = ?", (run_id, ref)
            ).fetchall()
            or self.conn.execute(
                "SELECT * FROM jobs WHERE run_id = ? AND substr(job_key, 1, ?) = ?",
                (run_id, len(ref), ref),
            ).fetchall()
        )
        if len(rows) != 1:
            what = "no job" if not rows else f"{len(rows)} jobs"
            raise InputError(
                f"{what} in run {run_id} match {ref!r}; use a job key from "
                f"`runner resolve {run_id}`"
            )
        return JobRecord.from_row(rows[0])

    # ------------------------------------------------------------------ counting

    def states(self, run_id: str) -> dict[str, int]:
        """The run's jobs by state: the one count every surface shows (an index scan)."""
        return dict(
            self.conn.execute(
                "SELECT state, COUNT(*) FROM jobs WHERE run_id = ? GROUP BY state", (run_id,)
            )
        )

    def tally(self, run_id: str) -> Tally:
        """Jobs by state and the money figure: the one count every surface shows."""
        states = self.states(run_id)
        held = self.conn.execute(
            "SELECT COALESCE(SUM(est_credits), 0) FROM jobs WHERE run_id = ? AND state = ?",
            (run_id, UNKNOWN),
        ).fetchone()[0]
        m = self.money(run_id)
        return Tally(states, self.spent(run_id), float(held), m.charged, m.refunded)

    def spent(self, run_id: str) -> float:
        """Final charges, reservations not (yet) settled, minus proven refunds."""
        return spent(self.conn, run_id)

    def money(self, run_id: str) -> Money:
        """The run's money as the provider sees it: gross charges of created tasks (final
        charge, else reservation), proven refunds, and estimates held for creates whose
        outcome is not known yet."""
        row = self.conn.execute(
            "SELECT"
            " COALESCE(SUM(CASE WHEN a.outcome = 'created'"
            "   THEN COALESCE(a.charged, a.reserved, a.est_credits) END), 0),"
            " COALESCE(SUM(a.refunded), 0),"
            " COALESCE(SUM(CASE WHEN a.outcome IN ('in_flight', 'unknown')"
            "   THEN a.est_credits END), 0),"
            " COUNT(CASE WHEN a.ended IN ('failed', 'cancelled') AND a.refunded IS NULL"
            "   AND a.charged IS NULL THEN 1 END)"
            " FROM attempts a JOIN jobs j USING (job_id) WHERE j.run_id = ?",
            (run_id,),
        ).fetchone()
        return Money(float(row[0]), float(row[1]), float(row[2]), int(row[3]))

    def last_attempt(self, job_id: int) -> Attempt | None:
        row = self.conn.execute(
            "SELECT attempt_id, job_id, n, idempotency_key, est_credits, started_at, replays"
            " FROM attempts WHERE job_id = ? ORDER BY attempt_id DESC LIMIT 1",
            (job_id,),
        ).fetchone()
        return None if row is None else Attempt(*tuple(row))

    def held_attempts(self, run_id: str) -> list[Attempt]:
        """The last attempt of every job held with an unknown create outcome."""
        rows = self.conn.execute(
            "SELECT a.attempt_id, a.job_id, a.n, a.idempotency_key, a.est_credits,"
            " a.started_at, a.replays FROM attempts a JOIN jobs j USING (job_id)"
            " WHERE j.run_id = ? AND j.state = ? AND a.outcome = 'unknown'"
            " AND a.attempt_id = (SELECT MAX(attempt_id) FROM attempts WHERE job_id = j.job_id)",
            (run_id, UNKNOWN),
        ).fetchall()
        return [Attempt(*tuple(r)) for r in rows]

    def unrefunded_tasks(self, run_id: str) -> list[str]:
        """Task ids of failed or cancelled tasks whose refund is not proven yet."""
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT a.task_id FROM attempts a JOIN jobs j USING (job_id)"
                " WHERE j.run_id = ? AND a.ended IN ('failed', 'cancelled')"
                " AND a.refunded IS NULL AND a.charged IS NULL AND a.task_id IS NOT NULL",
                (run_id,),
            )
        ]

    def models_to_send(self, run_id: str) -> list[str]:
        """The model ids of the jobs still to create."""
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT DISTINCT model FROM jobs WHERE run_id = ? AND state = ? ORDER BY model",
                (run_id, PENDING),
            )
        ]

    def credits_to_send(self, run_id: str) -> float:
        """Estimated credits of the jobs still to create."""
        return float(
            self.conn.execute(
                "SELECT COALESCE(SUM(est_credits), 0) FROM jobs WHERE run_id = ? AND state = ?",
                (run_id, PENDING),
            ).fetchone()[0]
        )

    def sent_body(self, attempt_id: int) -> dict[str, Any] | None:
        """The body an attempt sent (None for attempts recorded before bodies were kept)."""
        row = self.conn.execute(
            "SELECT body_json FROM attempts WHERE attempt_id = ?", (attempt_id,)
        ).fetchone()
        if row is None or row[0] is None:
            return None
        body: dict[str, Any] = json.loads(row[0])
        return body

    # ------------------------------------------------------------------ local files

    def local_file(self, sha256: str) -> LocalFile | None:
        """Where the file of this content was last seen, and what it is."""
        row = self.conn.execute("SELECT * FROM local_files WHERE sha256 = ?", (sha256,)).fetchone()
        if row is None:
            return None
        return LocalFile(row["sha256"], Path(row["path"]), row["kind"], row["mime"], row["bytes"])

    def live_upload(self, sha256: str, service: str, until: float) -> UploadRecord | None:
        """The newest upload of this file to ``service`` that lives past ``until`` (wall)."""
        row = self.conn.execute(
            "SELECT * FROM uploads WHERE sha256 = ? AND service = ? AND deleted_at IS NULL"
            " AND expires_at > ? ORDER BY uploaded_at DESC, upload_id DESC LIMIT 1",
            (sha256, service, until),
        ).fetchone()
        return None if row is None else UploadRecord.from_row(row)

    def uploads(
        self, service: str | None = None, *, live_at: float | None = None
    ) -> list[UploadRecord]:
        """Uploads, oldest first (to ``service``; not deleted and alive at ``live_at``)."""
        query = "SELECT * FROM uploads WHERE 1 = 1"
        args: list[Any] = []
        if service is not None:
            query += " AND service = ?"
            args.append(service)
        if live_at is not None:
            query += " AND deleted_at IS NULL AND expires_at > ?"
            args.append(live_at)
        rows = self.conn.execute(query + " ORDER BY uploaded_at, upload_id", args)
        return [UploadRecord.from_row(r) for r in rows]

    def upload_needed(self, sha256: str, run_id: str) -> bool:
        """Whether a job may still send this file: one whose create is being sent, is held
        (a replay resends its body) or whose task is unfinished, in any run; or one of
        ``run_id`` still to send."""
        states = (SUBMITTING, UNKNOWN, SUBMITTED, RUNNING)
        row = self.conn.execute(
            "SELECT 1 FROM jobs WHERE body_json LIKE ? AND (state IN (?, ?, ?, ?)"
            " OR (state = ? AND run_id = ?)) LIMIT 1",
            (f"%{REF_PREFIX}{sha256}%", *states, PENDING, run_id),
        ).fetchone()
        return row is not None


@dataclass(frozen=True, slots=True)
class Money:
    charged: float  # created tasks: final charge, else the provider's reservation
    refunded: float  # refunds the provider's billing proved
    held: float  # estimates of creates in flight or with an unknown outcome
    refunds_pending: int  # failed tasks whose refund is not proven yet

    @property
    def spent(self) -> float:
        return self.charged - self.refunded + self.held


class Ledger(Store):
    """The writer's handle. Use `Ledger.open` (takes the lock) as a context manager."""

    def __init__(self, workspace: Path, conn: sqlite3.Connection, lock: Any) -> None:
        super().__init__(workspace, conn)
        self._lock = lock
        self._spent: dict[str, float] = {}  # run id -> spent, kept up to date by _cost

    def spent(self, run_id: str) -> float:
        if run_id not in self._spent:
            self._spent[run_id] = spent(self.conn, run_id)
        return self._spent[run_id]

    def _cost(
        self, db: sqlite3.Connection, run_id: str, attempt_id: int, sets: Mapping[str, Any]
    ) -> None:
        """Update an attempt's columns and carry its change of cost to ``jobs.credits`` and
        the cached spent figure of its run."""
        cols = "outcome, est_credits, reserved, charged, refunded, job_id"
        old = db.execute(
            f"SELECT {cols} FROM attempts WHERE attempt_id = ?",  # noqa: S608 - fixed names
            (attempt_id,),
        ).fetchone()
        assignments = ", ".join(f"{k} = ?" for k in sets)
        db.execute(
            f"UPDATE attempts SET {assignments} WHERE attempt_id = ?",  # noqa: S608 - callers' names
            (*sets.values(), attempt_id),
        )
        new = db.execute(
            f"SELECT {cols} FROM attempts WHERE attempt_id = ?",  # noqa: S608 - fixed names
            (attempt_id,),
        ).fetchone()
        delta = attempt_cost(*tuple(new)[:5]) - attempt_cost(*tuple(old)[:5])
        if delta:
            db.execute(
                "UPDATE jobs SET credits = COALESCE(credits, 0) + ? WHERE job_id = ?",
                (delta, new["job_id"]),
            )
            if run_id in self._spent:
                self._spent[run_id] += delta

    # ------------------------------------------------------------------ opening

    @classmethod
    @contextlib.contextmanager
    def open(cls, workspace: Path) -> Iterator[Ledger]:
        check_workspace(workspace)
        workspace.mkdir(parents=True, exist_ok=True)
        lock = _take_lock(workspace / "ledger.lock")
        try:
            conn = connect(workspace / "ledger.sqlite")
            migrate(conn)
            ledger = cls(workspace, conn, lock)
            ledger.settle_orphans()
            try:
                yield ledger
            finally:
                with contextlib.suppress(sqlite3.Error):
                    # every page copied into the database, then the WAL reset
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    failpoint("during_checkpoint")
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.close()
        finally:
            lock.close()

    @contextlib.contextmanager
    def write(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One immediate (write-locked) transaction, committed with a full sync.

        ``durable=False`` (a state a free re-read of the task gives back: progress, a
        completed task's link, a saved download's ``done``): committed without its own sync
        (``synchronous=NORMAL``). It survives ``kill -9`` at once (the WAL is in the page
        cache) and power loss at the next durable commit, whose sync covers every WAL frame
        before it; a power cut loses only a suffix of such commits (the WAL is replayed up
        to its first bad frame), never a durable one after them (docs/reliability.md §4.2)."""
        if not durable:
            self.conn.execute("PRAGMA synchronous=NORMAL")
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            self._durable_again(durable)
            raise _unavailable(exc, self.workspace) from exc
        try:
            yield self.conn
            if disk_full("ledger_commit"):  # a durability test's full disk, as SQLite says it
                raise sqlite3.OperationalError("database or disk is full")
            self.conn.execute("COMMIT")
            self._durable_again(durable)
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):  # a full disk may refuse this too
                self.conn.execute("ROLLBACK")
            # after the rollback: SQLite keeps the safety level inside a transaction, and a
            # connection left at NORMAL would commit the next intents unsynced
            self._durable_again(durable)
            self._spent.clear()  # the cached figures may hold the rolled-back change
            if isinstance(exc, sqlite3.OperationalError):
                raise _unavailable(exc, self.workspace) from exc
            raise

    def _durable_again(self, durable: bool) -> None:
        if not durable:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("PRAGMA synchronous=FULL")

    # ------------------------------------------------------------------ runs

    def create_run(
        self,
        run: Mapping[str, Any],
        jobs: Iterable[NewJob],
        reuse: bool = True,
        files: Iterable[LocalFile] = (),
    ) -> int:
        """Record a run and its jobs (and the local files they name) in one transaction;
        returns how many jobs were reused from finished jobs of the workspace (same
        ``job_key``, file still on disk)."""
        now = _now()
        with self.write() as db:
            db.executemany(
                "INSERT INTO local_files (sha256, path, kind, mime, bytes, seen_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO UPDATE SET"
                " path = excluded.path, kind = excluded.kind, seen_at = excluded.seen_at",
                ((f.sha256, str(f.path), f.kind, f.mime, f.size, now) for f in files),
            )
            db.execute(
                "INSERT INTO runs (run_id, name, experiment, tier, backend, base_url, parent_run,"
                " config_json, dimensions_json, budget, state, created_at)"
                " VALUES (:run_id, :name, :experiment, :tier, :backend, :base_url, :parent_run,"
                " :config_json, :dimensions_json, :budget, 'created', :now)",
                {**run, "now": now},
            )
            db.executemany(
                "INSERT INTO jobs (run_id, job_key, variant_key, tier, sample, model, mode,"
                " body_json, values_json, source, row, name, parent_job_key, est_credits,"
                " state, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        run["run_id"],
                        j.job_key,
                        j.variant_key,
                        j.tier,
                        j.sample,
                        j.model,
                        j.mode,
                        json.dumps(j.body, sort_keys=True, ensure_ascii=False),
                        json.dumps(list(j.values), ensure_ascii=False),
                        j.source,
                        j.row,
                        j.name,
                        j.parent_job_key,
                        j.est_credits,
                        PENDING,
                        now,
                    )
                    for j in jobs
                ),
            )
            if run.get("parent_run"):  # a promotion carries its parent's tags
                db.execute(
                    "INSERT INTO run_tags (run_id, key, value)"
                    " SELECT ?, key, value FROM run_tags WHERE run_id = ?",
                    (run["run_id"], run["parent_run"]),
                )
            reused = self._reuse(db, run["run_id"], now) if reuse else 0
            _event(db, run["run_id"], None, "run_created", None)
        return reused

    def _reuse(self, db: sqlite3.Connection, run_id: str, now: float) -> int:
        """Pending jobs of the run whose video the workspace holds, from any earlier done job
        of the same key whose file is still there (`reusable_keys` decides the same way)."""
        rows = db.execute(
            "SELECT j.job_id, j.job_key, d.run_id, d.file_path, d.file_bytes, d.file_sha256,"
            " d.media_json FROM jobs j JOIN jobs d"
            " ON d.job_key = j.job_key AND d.state = 'done' AND d.run_id != j.run_id"
            " AND d.reused_from IS NULL"
            " WHERE j.run_id = ? AND j.state = 'pending' ORDER BY j.job_id, d.job_id",
            (run_id,),
        ).fetchall()
        count = 0
        taken: set[int] = set()
        for job_id, key, src_run, path, size, sha, media in rows:
            if job_id in taken or not path or not (self.workspace / path).is_file():
                continue
            taken.add(job_id)
            db.execute(
                "UPDATE jobs SET state = 'done', file_path = ?, file_bytes = ?, file_sha256 = ?,"
                " media_json = ?, reused_from = ?, credits = 0, updated_at = ? WHERE job_id = ?",
                (path, size, sha, media, src_run, now, job_id),
            )
            _event(db, run_id, job_id, "reused", f"{key} from run {src_run}")
            count += 1
        return count

    def set_run_state(
        self,
        run_id: str,
        state: str,
        *,
        exit_code: int | None = None,
        stop_reason: str | None = None,
    ) -> None:
        now = _now()
        with self.write() as db:
            db.execute(
                "UPDATE runs SET state = ?, exit_code = COALESCE(?, exit_code),"
                " stop_reason = ?, started_at = COALESCE(started_at, ?),"
                " finished_at = CASE WHEN ? IN ('finished', 'stopped') THEN ? ELSE NULL END"
                " WHERE run_id = ?",
                (state, exit_code, clip(stop_reason), now, state, now, run_id),
            )
            _event(db, run_id, None, f"run_{state}", stop_reason)

    def tag(self, run_id: str, tags: Iterable[tuple[str, str]]) -> None:
        """Set the run's tags (a key given again takes the new value)."""
        tags = list(tags)
        if not tags:
            return
        with self.write() as db:
            db.executemany(
                "INSERT INTO run_tags (run_id, key, value) VALUES (?, ?, ?)"
                " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                ((run_id, k, v) for k, v in tags),
            )
            _event(db, run_id, None, "tags", ", ".join(f"{k}={v}" for k, v in tags))

    def mark_pruned(self, run_id: str, notes: Mapping[int, str]) -> None:
        """`runner prune`: these jobs' videos are (about to be) removed or archived; each
        job's media record keeps what became of its video (``pruned``), so the report shows
        its poster with that note. Committed before a file is touched."""
        with self.write() as db:
            db.executemany(
                "UPDATE jobs SET media_json = json_set(COALESCE(media_json, '{}'),"
                " '$.pruned', ?) WHERE job_id = ? AND run_id = ?",
                ((note, job_id, run_id) for job_id, note in notes.items()),
            )
            _event(db, run_id, None, "pruned", f"{len(notes)} video(s)")

    def save_settings(self, run_id: str, settings: Any) -> None:
        """The dispatcher settings now in force for a run (a resume that changed them)."""
        with self.write() as db:
            (config_json,) = db.execute(
                "SELECT config_json FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            config = json.loads(config_json)
            config["settings"] = dataclasses.asdict(settings)
            db.execute(
                "UPDATE runs SET config_json = ?, budget = ? WHERE run_id = ?",
                (json.dumps(config), settings.budget, run_id),
            )
            _event(db, run_id, None, "settings", f"budget {settings.budget}")

    def settle_orphans(self) -> None:
        """Runs still recorded "running" while this process holds the lock were ended without
        a clean stop (kill -9, crash, power loss): record them stopped, with that reason.
        Their jobs need nothing: resume classifies what was in flight."""
        with self.write() as db:
            for (run_id,) in db.execute("SELECT run_id FROM runs WHERE state = 'running'"):
                db.execute(
                    "UPDATE runs SET state = 'stopped', stop_reason = ?, finished_at = ?"
                    " WHERE run_id = ?",
                    (orphan_reason(run_id), _now(), run_id),
                )
                _event(db, run_id, None, "run_stopped", "ended without a clean stop")

    def uploaded(
        self,
        run_id: str,
        sha256: str,
        service: str,
        file_id: str,
        url: str,
        name: str,
        uploaded_at: float,
        expires_at: float,
    ) -> UploadRecord:
        """A file the service now holds (times: wall clock)."""
        with self.write() as db:
            cur = db.execute(
                "INSERT INTO uploads (sha256, service, file_id, url, name, run_id, uploaded_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (sha256, service, file_id, url, name, run_id, uploaded_at, expires_at),
            )
            _event(db, run_id, None, "uploaded", f"{name} as {file_id}")
            row = db.execute(
                "SELECT * FROM uploads WHERE upload_id = ?", (cur.lastrowid,)
            ).fetchone()
        return UploadRecord.from_row(row)

    def upload_deleted(self, run_id: str, upload: UploadRecord, why: str) -> None:
        with self.write() as db:
            db.execute(
                "UPDATE uploads SET deleted_at = ? WHERE upload_id = ?", (_now(), upload.upload_id)
            )
            _event(db, run_id, None, "upload_deleted", f"{upload.name} ({upload.file_id}): {why}")

    def event(self, run_id: str | None, job_id: int | None, kind: str, detail: str | None) -> None:
        with self.write() as db:
            _event(db, run_id, job_id, kind, detail)

    # ------------------------------------------------------------------ resume

    def recover(self, run_id: str) -> list[int]:
        """After a crash: every job caught mid-create becomes ``unknown`` (its create may or
        may not have reached the provider). Returns those job ids."""
        now = _now()
        with self.write() as db:
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT job_id FROM jobs WHERE run_id = ? AND state = ?", (run_id, SUBMITTING)
                )
            ]
            for job_id in ids:
                db.execute(
                    "UPDATE attempts SET outcome = 'unknown', finished_at = ?,"
                    " detail = 'the runner stopped while this create was being sent'"
                    " WHERE job_id = ? AND outcome = 'in_flight'",
                    (now, job_id),
                )
                db.execute(
                    "UPDATE jobs SET state = ?, error_code = 'create_outcome_unknown',"
                    " error_message = ?, updated_at = ? WHERE job_id = ?",
                    (
                        UNKNOWN,
                        "the runner stopped while this create was being sent; "
                        "settle it with `runner resolve`",
                        now,
                        job_id,
                    ),
                )
                _event(db, run_id, job_id, "held_unknown", "found submitting after a restart")
        return ids

    # ------------------------------------------------------------------ creates

    def begin_attempt(
        self,
        run_id: str,
        job_id: int,
        job_key: str,
        reserve: float,
        budget: float | None,
        *,
        replay: bool = False,
        body: Mapping[str, Any] | None = None,
    ) -> Attempt:
        """Commit the intent to create (attempt ``in_flight``, job ``submitting``) with its
        estimate reserved against the budget and the body to send, before anything is sent.
        Raises BudgetExceeded.

        The job's last attempt is sent again under its own Idempotency-Key when it provably
        did not go out (408, 429, a connect error), or, with ``replay``, when its outcome is
        unknown (the one replay of docs/evolink.md §17); otherwise a new attempt gets a new
        key. A replay sends the body its attempt recorded, byte for byte; any other send
        records ``body`` (the job's own when None). The returned attempt carries the body."""
        now = _now()
        with self.write() as db:
            last = db.execute(
                "SELECT attempt_id, n, idempotency_key, outcome, started_at, replays, body_json"
                " FROM attempts WHERE job_id = ? ORDER BY attempt_id DESC LIMIT 1",
                (job_id,),
            ).fetchone()
            if body is None:
                body = json.loads(
                    db.execute("SELECT body_json FROM jobs WHERE job_id = ?", (job_id,)).fetchone()[
                        0
                    ]
                )
            text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
            reopen = last is not None and (
                last["outcome"] == "not_sent" or (replay and last["outcome"] == UNKNOWN)
            )
            counted = reopen and last["outcome"] == UNKNOWN  # its estimate is already spent
            if budget is not None and not counted:
                spent = self.spent(run_id)
                if spent + reserve > budget + 1e-9:
                    raise BudgetExceeded(
                        f"the budget of {budget:,.2f} credits is reached: {spent:,.2f} spent or "
                        f"reserved (creates of unknown outcome included), {budget - spent:,.2f} "
                        f"left, the next job needs about {reserve:,.2f}. Raise --budget and run "
                        "`runner resume` to continue."
                    )
            if reopen:
                replays = last["replays"] + int(last["outcome"] == UNKNOWN)
                if last["outcome"] == UNKNOWN and last["body_json"] is not None:
                    text = last["body_json"]  # the replay: exactly what was sent
                self._cost(
                    db,
                    run_id,
                    last["attempt_id"],
                    {
                        "outcome": "in_flight",
                        "est_credits": reserve,
                        "finished_at": None,
                        "replays": replays,
                        "body_json": text,
                    },
                )
                attempt = Attempt(
                    last["attempt_id"],
                    job_id,
                    last["n"],
                    last["idempotency_key"],
                    reserve,
                    last["started_at"],
                    replays,
                    reopened=True,
                    body=json.loads(text),
                )
            else:
                # numbered across the workspace, so a --no-reuse run or a resubmit never sends
                # an Idempotency-Key the provider has seen (it would answer with the old task)
                n = db.execute(
                    "SELECT COUNT(*) + 1 FROM attempts JOIN jobs USING (job_id)"
                    " WHERE jobs.job_key = ?",
                    (job_key,),
                ).fetchone()[0]
                key = f"{job_key}-{n}"
                cur = db.execute(
                    "INSERT INTO attempts (job_id, n, idempotency_key, outcome, started_at,"
                    " est_credits, body_json) VALUES (?, ?, ?, 'in_flight', ?, ?, ?)",
                    (job_id, n, key, now, reserve, text),
                )
                attempt = Attempt(
                    int(cur.lastrowid or 0), job_id, n, key, reserve, now, 0, body=json.loads(text)
                )
                db.execute(
                    "UPDATE jobs SET credits = COALESCE(credits, 0) + ? WHERE job_id = ?",
                    (reserve, job_id),
                )
                if run_id in self._spent:
                    self._spent[run_id] += reserve
            db.execute(
                "UPDATE jobs SET state = ?, attempts = attempts + ?, updated_at = ?"
                " WHERE job_id = ?",
                (SUBMITTING, int(not reopen), now, job_id),
            )
        return attempt

    def created(
        self,
        run_id: str,
        a: Attempt,
        task_id: str,
        credits: float | None,
        estimated_time: float | None,
        replayed: bool,
        http_status: int,
    ) -> None:
        """The create answered with a task: its reservation (``credits``, when the provider
        gave one) replaces the estimate."""
        now = _now()
        with self.write() as db:
            self._cost(
                db,
                run_id,
                a.attempt_id,
                {
                    "outcome": "created",
                    "finished_at": now,
                    "http_status": http_status,
                    "task_id": task_id,
                    "replayed": int(replayed),
                    "reserved": credits,
                },
            )
            db.execute(
                "UPDATE jobs SET state = ?, task_id = ?, estimated_time = ?, submitted_at = ?,"
                " progress = 0, error_code = NULL, error_message = NULL, updated_at = ?"
                " WHERE job_id = ?",
                (SUBMITTED, task_id, estimated_time, now, now, a.job_id),
            )

    def not_sent(self, run_id: str, a: Attempt, detail: str, http_status: int | None) -> None:
        """The create provably did not reach the provider: released, the job back to
        pending; the next send reuses the attempt and its key."""
        self._close_attempt(run_id, a, "not_sent", PENDING, http_status, detail, None)

    def rejected(
        self, run_id: str, a: Attempt, code: str, message: str, http_status: int | None
    ) -> None:
        self._close_attempt(run_id, a, "rejected", REJECTED, http_status, message, code)

    def unknown(
        self,
        run_id: str,
        a: Attempt,
        detail: str,
        http_status: int | None,
        *,
        replay_sent: bool = True,
    ) -> None:
        """The create may have been processed: its estimate stays spent, the job is held.
        ``replay_sent`` False: this send was a replay the provider provably turned away (429,
        no connection); it does not count as the attempt's replay, so a resume after a kill
        still replays it."""
        self._close_attempt(
            run_id,
            a,
            "unknown",
            UNKNOWN,
            http_status,
            detail,
            "create_outcome_unknown",
            {} if replay_sent else {"replays": max(0, a.replays - 1)},
        )

    def _close_attempt(
        self,
        run_id: str,
        a: Attempt,
        outcome: str,
        state: str,
        http_status: int | None,
        detail: str,
        code: str | None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        now = _now()
        with self.write() as db:
            self._cost(
                db,
                run_id,
                a.attempt_id,
                {
                    "outcome": outcome,
                    "finished_at": now,
                    "http_status": http_status,
                    "detail": clip(detail),
                    **(extra or {}),
                },
            )
            db.execute(
                "UPDATE jobs SET state = ?, error_code = ?, error_message = ?, updated_at = ?"
                " WHERE job_id = ?",
                (state, code, clip(detail) if state != PENDING else None, now, a.job_id),
            )
            _event(db, run_id, a.job_id, f"create_{outcome}", clip(detail, 300))

    def _task_attempt(self, db: sqlite3.Connection, job_id: int) -> int | None:
        row = db.execute(
            "SELECT attempt_id FROM attempts WHERE job_id = ? AND outcome = 'created'"
            " ORDER BY attempt_id DESC LIMIT 1",
            (job_id,),
        ).fetchone()
        return None if row is None else int(row[0])

    def task_ended(
        self,
        run_id: str,
        job_id: int,
        status: str,
        *,
        charged: float | None = None,
        refunded: float | None = None,
        reserved: float | None = None,
    ) -> None:
        """The provider ended the job's task (completed, failed, cancelled): its final
        charge (completed only), its reservation as the provider states it, and its proven
        refund."""
        with self.write() as db:
            attempt_id = self._task_attempt(db, job_id)
            if attempt_id is not None:
                sets: dict[str, Any] = {"ended": status}
                if charged is not None:
                    sets["charged"] = charged
                if reserved is not None:
                    sets["reserved"] = reserved
                if refunded is not None:
                    sets["refunded"] = refunded
                self._cost(db, run_id, attempt_id, _reserve_refund(db, attempt_id, sets))

    def refund(self, run_id: str, task_id: str, refunded: float) -> bool:
        """A failed task's refund, proven by a later read. Returns whether it was new."""
        with self.write() as db:
            row = db.execute(
                "SELECT a.attempt_id FROM attempts a JOIN jobs j USING (job_id)"
                " WHERE a.task_id = ? AND j.run_id = ? AND a.refunded IS NULL",
                (task_id, run_id),
            ).fetchone()
            if row is None:
                return False
            sets = _reserve_refund(db, int(row[0]), {"refunded": refunded})
            self._cost(db, run_id, int(row[0]), sets)
            return True

    # ------------------------------------------------------------------ tasks

    def progress(self, job_id: int, progress: int | None) -> None:
        with self.write(durable=False) as db:  # a re-read gives it back
            db.execute(
                "UPDATE jobs SET state = ?, progress = ?, updated_at = ? WHERE job_id = ?",
                (RUNNING, progress, _now(), job_id),
            )

    def completed(
        self, job_id: int, url: str, expires_at: float, run_id: str, charged: float | None = None
    ) -> None:
        """The task completed: its link, and its final charge when the provider gave one.
        Not synced on its own: a re-read of the task gives both back, for free."""
        now = _now()
        with self.write(durable=False) as db:
            attempt_id = self._task_attempt(db, job_id)
            if attempt_id is not None:
                sets: dict[str, Any] = {"ended": "completed"}
                if charged is not None:
                    sets["charged"] = charged
                self._cost(db, run_id, attempt_id, sets)
            db.execute(
                "UPDATE jobs SET state = ?, progress = 100, result_url = ?, result_expires_at = ?,"
                " completed_at = ?, updated_at = ? WHERE job_id = ?",
                (COMPLETED, url, expires_at, now, now, job_id),
            )

    def finish(
        self,
        run_id: str,
        job_id: int,
        state: str,
        code: str | None,
        message: str | None,
        durable: bool = True,
        **extra: Any,
    ) -> None:
        """Move a job to ``state`` (failed, lost, expired, result_error, done...).
        ``durable=False``: see `write` (a saved download's ``done``: the file is found again
        at its final path)."""
        unknown = set(extra) - _FINISH_COLUMNS
        if unknown:
            raise ValueError(f"not job columns: {sorted(unknown)}")
        sets = "".join(f", {k} = ?" for k in extra)
        # column names are checked against _FINISH_COLUMNS above
        query = f"UPDATE jobs SET state = ?, error_code = ?, error_message = ?, updated_at = ?{sets} WHERE job_id = ?"  # noqa: E501, S608
        with self.write(durable) as db:
            db.execute(query, (state, code, clip(message), _now(), *extra.values(), job_id))
            _event(db, run_id, job_id, state, clip(f"{code}: {message}", 300) if code else None)

    def resubmit(self, run_id: str, job_id: int, reason: str) -> None:
        """Back to pending for a new attempt (retryable task failure, or an operator). A held
        create (unknown outcome) the operator sends again was never made: released."""
        with self.write() as db:
            for (attempt_id,) in db.execute(
                "SELECT attempt_id FROM attempts WHERE job_id = ?"
                " AND outcome IN ('unknown', 'in_flight')",
                (job_id,),
            ).fetchall():
                self._cost(db, run_id, attempt_id, {"outcome": "released"})
            db.execute(
                "UPDATE jobs SET state = ?, resubmits = resubmits + 1, task_id = NULL,"
                " result_url = NULL, progress = NULL, rechecks = 0, updated_at = ?"
                " WHERE job_id = ?",
                (PENDING, _now(), job_id),
            )
            _event(db, run_id, job_id, "resubmit", reason)

    def recheck(self, run_id: str, job_id: int, reason: str) -> None:
        """A paid task whose result was not saved (``result_error``, ``lost``) is read again
        for free: back to ``submitted`` with its task id, so the dispatcher re-reads it, takes
        a fresh result link and downloads it. Counted, so the next failure is known to be one
        a re-read did not fix."""
        with self.write() as db:
            db.execute(
                "UPDATE jobs SET state = ?, rechecks = rechecks + 1, result_url = NULL,"
                " result_expires_at = NULL, error_code = NULL, error_message = NULL,"
                " updated_at = ? WHERE job_id = ? AND task_id IS NOT NULL",
                (SUBMITTED, _now(), job_id),
            )
            _event(db, run_id, job_id, "recheck", reason)

    def mark_created(self, run_id: str, job_id: int, task_id: str) -> None:
        """Operator: the held create did reach the provider, as task ``task_id``."""
        now = _now()
        with self.write() as db:
            owner = db.execute(
                "SELECT job_key, run_id FROM jobs WHERE task_id = ? AND job_id != ?",
                (task_id, job_id),
            ).fetchone()
            if owner is not None:
                raise InputError(
                    f"task {task_id} is already recorded for job {owner[0]} (run {owner[1]}): "
                    "a task makes one video for one job. Check the dashboard again for this "
                    "job's own task (same prompt, sent at the time `runner resolve` lists)."
                )
            row = db.execute(
                "SELECT attempt_id FROM attempts WHERE job_id = ?"
                " AND outcome IN ('unknown', 'in_flight') ORDER BY attempt_id DESC LIMIT 1",
                (job_id,),
            ).fetchone()
            if row is not None:  # its estimate stands for the charge until the task is read
                self._cost(db, run_id, int(row[0]), {"outcome": "created", "task_id": task_id})
            db.execute(
                "UPDATE jobs SET state = ?, task_id = ?, submitted_at = COALESCE(submitted_at, ?),"
                " error_code = NULL, error_message = NULL, updated_at = ? WHERE job_id = ?",
                (SUBMITTED, task_id, now, now, job_id),
            )
            _event(db, run_id, job_id, "operator_mark_created", task_id)


def _reserve_refund(
    db: sqlite3.Connection, attempt_id: int, sets: dict[str, Any]
) -> dict[str, Any]:
    """A proven refund is of the whole reservation: where none was recorded (a create
    answered without ``usage``, a held create marked created), the refund stands for it, so a
    refunded task costs nothing rather than less than nothing."""
    if sets.get("refunded") is not None and sets.get("reserved") is None:
        row = db.execute(
            "SELECT reserved FROM attempts WHERE attempt_id = ?", (attempt_id,)
        ).fetchone()
        if row is not None and row[0] is None:
            return {**sets, "reserved": sets["refunded"]}
    return sets


def spent(conn: sqlite3.Connection, run_id: str) -> float:
    """Final charges, reservations of tasks unfinished or failed without a proven refund, and
    estimates held for creates in flight or with an unknown outcome (`attempt_cost`)."""
    row = conn.execute(
        f"SELECT COALESCE(SUM({_COST_SQL}), 0)"  # noqa: S608 - a constant expression
        " FROM attempts a JOIN jobs j USING (job_id) WHERE j.run_id = ?",
        (run_id,),
    ).fetchone()
    return float(row[0])


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=10)
    else:
        conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
    conn.row_factory = sqlite3.Row
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    done = {r[0] for r in conn.execute("SELECT name FROM migrations")}
    for name, sql in MIGRATIONS:
        if name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in sql.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO migrations VALUES (?, ?)", (name, _now()))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


@contextlib.contextmanager
def reader(workspace: Path) -> Iterator[Store]:
    """A read-only store for reports and status: never blocks the running writer."""
    path = workspace / "ledger.sqlite"
    if not path.is_file():
        raise InputError(
            f"no runs yet in {workspace} (no ledger.sqlite there); "
            "start one with `runner run EXPERIMENT`"
        )
    conn = connect(path, readonly=True)
    try:
        done = {r[0] for r in conn.execute("SELECT name FROM migrations")}
    except sqlite3.OperationalError:
        done = set()
    if any(name not in done for name, _ in MIGRATIONS):
        # a ledger written by an older runner: brought up to date first (a writer would do
        # the same at once; a running writer has already done it)
        conn.close()
        writer = connect(path)
        try:
            migrate(writer)
        finally:
            writer.close()
        conn = connect(path, readonly=True)
    try:
        yield Store(workspace, conn, live=lock_holder(workspace) is not None)
    finally:
        conn.close()


def orphan_reason(run_id: str) -> str:
    return (
        "the runner ended without a clean stop (killed, crashed or the machine lost power); "
        f"nothing recorded is lost: `runner resume {run_id}` continues"
    )


def lock_holder(workspace: Path) -> str | None:
    """Who holds the ledger's write lock ("pid 12 on host, since ..."), or None when no
    process does (a run recorded "running" then was not stopped cleanly)."""
    path = workspace / "ledger.lock"
    if not path.is_file():
        return None
    with open(path) as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "another process"
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return None


def _event(
    db: sqlite3.Connection, run_id: str | None, job_id: int | None, kind: str, detail: str | None
) -> None:
    db.execute(
        "INSERT INTO events (run_id, job_id, at, kind, detail) VALUES (?, ?, ?, ?, ?)",
        (run_id, job_id, _now(), kind, clip(detail)),
    )


LOCK_TRIES = 10  # 0.5 s: longer than any reader holds the lock to look at it


def _take_lock(path: Path) -> Any:
    handle = open(path, "a+")  # noqa: SIM115 - held for the life of the ledger
    try:
        # a reader's look at the lock (`lock_holder`: status, report) holds it for an instant
        for _ in range(LOCK_TRIES - 1):
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(0.05)
        else:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise LedgerBusy(
            f"another runner ({holder}) is using {path.parent}/ledger.sqlite. Wait for it to "
            "finish, or stop it (Ctrl-C) and continue with `runner resume`."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(
        f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}"
    )
    handle.flush()
    return handle
