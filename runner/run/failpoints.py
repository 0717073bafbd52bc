"""Named crash and fault points for the durability tests (docs/reliability.md §7.2, P2, P7, P8).

``RUNNER_FAILPOINT=NAME[:N][:ACTION]`` acts at the N-th time (default the first) the runner
passes the point NAME:

- ``kill`` (the default): the runner kills itself with SIGKILL, exactly as a power cut or
  ``kill -9`` would (`failpoint`);
- ``full``: the disk is full from then on: every later pass finds it full too (`disk_full`).

Kill points, in a job's order:

- creates: ``after_intent_commit``; ``after_post_sent_before_response`` (the create's body
  handed to the connection in full, its answer not read; `runner.run.backend`);
  ``after_response_before_commit``; ``after_task_id_commit``;
- downloads: ``before_download``; ``mid_download`` (the first block of a result file written
  to its ``.part``; `runner.run.media`); ``after_rename_before_done_commit``;
- the end: ``during_checkpoint`` (the ledger's last checkpoint: its pages copied into the
  database, its WAL not yet reset; `runner.run.ledger`).

Disk points: ``media_write`` (a result file's ``.part``), ``ledger_commit`` (the commit of a
ledger transaction).

Unset, each check is one environment look-up.
"""

from __future__ import annotations

import os
import signal

_hits: dict[str, int] = {}


def _spec() -> tuple[str, int, str] | None:
    spec = os.environ.get("RUNNER_FAILPOINT")
    if not spec:
        return None
    name, *rest = spec.split(":")
    nth, action = 1, "kill"
    for part in rest:
        if part.isdigit():
            nth = int(part)
        elif part:
            action = part
    return name, nth, action


def armed(name: str) -> bool:
    """Whether RUNNER_FAILPOINT names this point (for a point that needs setting up)."""
    spec = _spec()
    return spec is not None and spec[0] == name


def _reached(name: str, action: str) -> bool:
    spec = _spec()
    if spec is None or spec[0] != name or spec[2] != action:
        return False
    _hits[name] = _hits.get(name, 0) + 1
    return _hits[name] >= spec[1]


def failpoint(name: str) -> None:
    """Kill the process here when RUNNER_FAILPOINT says so."""
    if _reached(name, "kill"):
        os.kill(os.getpid(), signal.SIGKILL)


def disk_full(name: str) -> bool:
    """Whether the disk behind this point is to be taken as full (from the N-th pass on);
    the caller raises the error its disk would."""
    return _reached(name, "full")
