"""The simulator's journal: an append-only JSON-lines file a new process rebuilds its state from.

With ``SimConfig(journal=path)`` every change of state that matters is one line, written with
one ``write(2)`` on an ``O_APPEND`` descriptor while the simulator holds its lock, and
``fsync``-ed before the answer that reports it leaves (so a task id a client received is on
disk; concurrent creates share their fsyncs). Lines, each a JSON object, ``type`` first::

    {"type":"start","v":1,"wall":1760000000.5,"sim":1760000000.5,"speed":100.0,
     "concurrency":null,"pending_seconds":3.0}
    {"type":"create","wall":…,"sim":…,"id":"task-unified-…","key":"sk-sim-…1a2b3c",
     "key_sha256":"…","model":"…","tier":"fast","body":{…},"body_hash":"…","n":1,
     "idempotency_key":null,"run_id":null,"credits_reserved":15.2544,"base_seconds":110.0,
     "generation_seconds":104.2,"run_seconds":104.2,"outcome":null}
    {"type":"cancel","wall":…,"sim":…,"id":"task-unified-…"}
    {"type":"advance","wall":…,"sim":<after>,"seconds":500.0}
    {"type":"balance","wall":…,"sim":…,"key":"…","key_sha256":"…","balance":12.5,
     "models":["…"] | null | "keep","limits":[total, daily, "Asia/Shanghai"] | "keep"}
    {"type":"upload","wall":…,"sim":…,"key":"…","key_sha256":"…","file":{"file_id":…,
     "file_name":…,"size":…,"mime":…,"sha256":…,"uploaded":…,"expires":…,"file_url":…,
     "mark":[r,g,b] | null,…},"upload_id":"…" | null}
    {"type":"delete_file","wall":…,"sim":…,"key":"…","key_sha256":"…","file_id":"file_…"}

``start`` is always the first line: the anchor of simulated time (the wall clock and the
simulated time at the same instant; ``SimConfig.start_time`` only sets it for a new journal)
and the settings replay depends on (``refunds`` and ``refund_delay`` too), which a later
process must share. ``wall`` is the wall clock (unix seconds) and ``sim`` the simulated time of
each event. A ``create`` holds all that was decided when the task was made (its fate and its
``X-Evo-Run-Id`` included), so a replay never draws again. Lines of older journals lack
``run_id``, ``limits`` and the refund settings: none, unchanged and the defaults. Uploaded
files keep their bytes beside the journal, in ``<journal stem>-uploads/<file_id>``. Not written,
because replay derives it or it belongs to one process: settlement (slots are played forward
from the creates and cancels; refunds and daily use follow from the tasks' ends and the refund
settings), idempotency memory (rebuilt from the creates), reads, fault plans, rate-limit
buckets, request counts, User-Agents seen, video bytes. ``POST /_sim/reset`` cuts the journal
back to a new ``start`` line.

API keys are secrets and never written: a line names its key by `key_label` and the SHA-256 of
the key. Replay maps the digest back to a configured key; an unconfigured one (``accept_any_key``,
``/_sim/keys``) lives on under an `alias` until a request brings the key itself again.

A line without its newline, or an unreadable last line, is what a process that died mid-write
leaves: it is ignored and cut off when the journal is opened. Any other unreadable line is an
error naming the file and line. One process at a time may write a journal.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from .tasks import UNITS_PER_CREDIT, Task, key_label, units

VERSION: Final = 1
log = logging.getLogger(__name__)


class Journal:
    """The open journal file: `open` reads what is there, `append` and `sync` add to it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd
        self._closer = weakref.finalize(self, os.close, fd)

    def __repr__(self) -> str:
        return f"<Journal {str(self.path)!r}>"

    @classmethod
    def open(cls, path: Path) -> tuple[Journal, list[dict[str, Any]]]:
        """Open (or create) the journal at ``path``; returns it and the records already in it.

        Raises ValueError naming the line when a line before the last is not a JSON object.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            with open(fd, "rb", closefd=False) as file:
                data = file.read()
            records, good = _parse(data, path)
            if good < len(data):
                log.warning(
                    "%s: ignored a torn last line (%d bytes) left by a process that "
                    "died while writing it",
                    path,
                    len(data) - good,
                )
                os.ftruncate(fd, good)
                os.fsync(fd)
            if not data:
                _sync_dir(path.parent)  # the new file's name must survive a crash too
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd), records

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one line (not yet durable: `sync` makes it so). Raises OSError."""
        view = memoryview((json.dumps(record, separators=(",", ":")) + "\n").encode())
        while view:
            view = view[os.write(self._fd, view) :]

    def sync(self) -> None:
        """Make every line appended so far durable. Raises OSError."""
        os.fsync(self._fd)

    def restart(self, record: Mapping[str, Any]) -> None:
        """Cut the journal back to ``record`` alone (durably)."""
        os.ftruncate(self._fd, 0)
        self.append(record)
        self.sync()

    def close(self) -> None:
        self._closer()


def _parse(data: bytes, path: Path) -> tuple[list[dict[str, Any]], int]:
    """The records in ``data`` and the length of its intact part."""
    records: list[dict[str, Any]] = []
    lines = data.split(b"\n")  # the last piece is what follows the last newline: b"" or torn
    good = 0
    for number, line in enumerate(lines[:-1], 1):
        try:
            record = json.loads(line) if line.strip() else None
            if record is not None and not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            if number == len(lines) - 1 and not lines[-1]:
                break  # the last line, unreadable: torn by a crash
            raise ValueError(
                f"{path}:{number}: not a journal record ({exc}); the journal is "
                "damaged: move it away to start the simulator afresh"
            ) from None
        if record is not None:
            records.append(record)
        good += len(line) + 1
    return records, good


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- keys -------------------------------------------------------------------------------------


def key_digest(key: str) -> str:
    """The SHA-256 of a key (of the original key, for an `alias`)."""
    _, newline, digest = key.partition("\n")
    return digest if newline else hashlib.sha256(key.encode()).hexdigest()


def key_ref(key: str) -> dict[str, str]:
    """How a journal line names a key: its label and digest, never the key."""
    return {"key": key_label(key), "key_sha256": key_digest(key)}


def alias(label: str, digest: str) -> str:
    """The stand-in for a key the journal knows only by label and digest.

    ``"<label>\\n<digest>"``: no request can bring it (header values hold no newline), and
    `key_label` shows the original label.
    """
    return f"{label}\n{digest}"


# --- tasks ------------------------------------------------------------------------------------


def task_record(task: Task) -> dict[str, Any]:
    """The ``create`` line of a task: everything decided when it was made."""
    return {
        "type": "create",
        "sim": task.created,
        "id": task.id,
        **key_ref(task.key),
        "model": task.model,
        "tier": task.tier,
        "body": task.body,
        "body_hash": task.body_hash,
        "n": task.n,
        "idempotency_key": task.idempotency_key,
        "run_id": task.run_id,
        "credits_reserved": task.credits / UNITS_PER_CREDIT,
        "base_seconds": task.base_seconds,
        "generation_seconds": task.gen_seconds,
        "run_seconds": task.run_seconds,
        "outcome": task.outcome,
        "mark": None if task.mark is None else list(task.mark),
    }


def task_from_record(record: Mapping[str, Any], key: str, created_wall: float) -> Task:
    """The task a ``create`` line describes, owned by ``key``, before it got a slot."""
    idempotency_key = record["idempotency_key"]
    outcome = record["outcome"]
    body = record["body"]
    if not isinstance(body, dict):
        raise TypeError(f"body must be a JSON object, got {body!r}")
    return Task(
        id=str(record["id"]),
        key=key,
        model=str(record["model"]),
        tier=str(record["tier"]),
        body=body,
        body_hash=str(record["body_hash"]),
        n=int(record["n"]),
        idempotency_key=None if idempotency_key is None else str(idempotency_key),
        created=float(record["sim"]),
        created_wall=created_wall,
        credits=units(float(record["credits_reserved"])),
        base_seconds=float(record["base_seconds"]),
        gen_seconds=float(record["generation_seconds"]),
        run_seconds=float(record["run_seconds"]),
        outcome=None if outcome is None else str(outcome),
        estimated_end=0.0,
        run_id=None if record.get("run_id") is None else str(record["run_id"]),
        mark=_mark(record.get("mark")),
    )


def _mark(value: object) -> tuple[int, int, int] | None:
    """A task's mark as a journal line keeps it (older lines have none)."""
    if not isinstance(value, list) or len(value) != 3:
        return None
    return int(value[0]), int(value[1]), int(value[2])


def limits_of(
    record: Mapping[str, Any],
) -> tuple[float | None, float | None, str] | Literal["keep"]:
    """The key limits a ``balance`` line sets (``"keep"``: unchanged, or an older line)."""
    limits = record.get("limits", "keep")
    if limits == "keep":
        return "keep"
    total, daily, zone = limits
    return (
        None if total is None else float(total),
        None if daily is None else float(daily),
        str(zone),
    )
