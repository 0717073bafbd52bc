"""Shared parts of the kill -9 benchmarks (`bench_kill_loop.py`, `bench_soak.py`): the
runner as a subprocess, the ledger read from outside, and the end-of-run checks against the
simulator's ground truth (docs/reliability.md §6: "no dup", "nothing lost")."""

from __future__ import annotations

import hashlib
import os
import platform
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.simulator.app import SimApp

ROOT = Path(__file__).resolve().parents[1]
REPORTED = ("unknown", "failed", "lost", "expired", "result_error", "rejected")


def machine() -> str:
    """nproc, architecture, Python version and date, for BENCHMARKS.md."""
    return (
        f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}, load {os.getloadavg()[0]:.2f}"
    )


def experiment(path: Path, jobs: int) -> Path:
    """``jobs`` distinct 4-second fast text-to-video jobs (480p: the cheapest renders)."""
    takes = " | ".join(f"take {i}" for i in range(jobs))
    path.write_text(f'prompt,take,duration,quality\n"A lamp: {{{{ take }}}}",{takes},4,480p\n')
    return path


def spawn(*args: str | Path) -> subprocess.Popen[bytes]:
    """`runner ARGS` in its own process, output discarded, without an API key."""
    env = {k: v for k, v in os.environ.items() if k != "EVOLINK_API_KEY"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen(
        [sys.executable, "-m", "runner", *map(str, args)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def integrity(ws: Path) -> str:
    """``PRAGMA integrity_check`` of the workspace's ledger, opened read-only."""
    path = ws / "ledger.sqlite"
    if not path.exists():
        return "ok"  # killed before the ledger was made
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def has_run(ws: Path) -> bool:
    """Whether `runner run` got as far as recording its run."""
    path = ws / "ledger.sqlite"
    if not path.exists():
        return False
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return bool(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    except sqlite3.OperationalError:  # no table yet
        return False
    finally:
        conn.close()


def wal_bytes(ws: Path) -> int:
    path = ws / "ledger.sqlite-wal"
    return path.stat().st_size if path.exists() else 0


def jobs(ws: Path) -> list[dict[str, Any]]:
    """Every job of the workspace with its attempts' keys and task ids."""
    conn = sqlite3.connect(f"file:{ws / 'ledger.sqlite'}?mode=ro", uri=True, timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in conn.execute("SELECT * FROM jobs ORDER BY job_id")]
        attempts: dict[int, list[dict[str, Any]]] = {}
        for a in conn.execute("SELECT * FROM attempts ORDER BY attempt_id"):
            attempts.setdefault(a["job_id"], []).append(dict(a))
    finally:
        conn.close()
    for row in rows:
        row["attempt_rows"] = attempts.get(row["job_id"], [])
    return rows


@dataclass
class Verdict:
    """The end of a run checked against the simulator's ground truth."""

    states: Counter[str] = field(default_factory=Counter)
    tasks: int = 0
    max_tasks_per_job: int = 0
    duplicates: int = 0  # tasks beyond 1 + the job's failed tasks (the allowed resubmits)
    silent_losses: int = 0  # a job neither done nor reported, or a task the ledger lost
    sha_checked: int = 0
    sha_mismatches: int = 0
    replays: int = 0
    held: Counter[str] = field(default_factory=Counter)  # why jobs ended unknown
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.silent_losses or self.sha_mismatches)

    def line(self) -> str:
        return (
            f"states {dict(sorted(self.states.items()))}; {self.tasks} tasks, at most "
            f"{self.max_tasks_per_job} per job, {self.duplicates} paid twice beyond allowed "
            f"resubmits, {self.silent_losses} silently lost; sha256 {self.sha_checked} checked, "
            f"{self.sha_mismatches} different; {self.replays} same-key replays answered"
            + "".join(f"\n  held {n}: {why}" for why, n in self.held.most_common())
        )


def verdict(ws: Path, app: SimApp, *, sha_every: int = 1) -> Verdict:
    """No dup: tasks per job <= 1 + its failed tasks. Nothing lost: every job done (its file
    the simulator's bytes) or in a reported state; every task known to the ledger by id or
    its job held unknown. ``sha_every``: hash every n-th done file (1: all)."""
    v = Verdict()
    truth = app.sim.snapshot()
    v.replays = sum(truth["replays_by_idempotency_key"].values())
    by_job: dict[str, list[dict[str, Any]]] = {}
    for task in truth["tasks"]:
        by_job.setdefault(str(task["idempotency_key"]).rsplit("-", 1)[0], []).append(task)
    v.tasks = len(truth["tasks"])
    rows = jobs(ws)
    known = {a["task_id"] for r in rows for a in r["attempt_rows"] if a["task_id"]}
    held = {r["job_key"] for r in rows if r["state"] in ("unknown", "submitting")}
    done = 0
    for row in rows:
        key, state = row["job_key"], row["state"]
        v.states[state] += 1
        if state == "unknown":
            v.held[str(row["error_message"])[:120]] += 1
        made = by_job.get(key, [])
        failed = sum(t["status"] in ("failed", "cancelled") for t in made)
        v.max_tasks_per_job = max(v.max_tasks_per_job, len(made))
        if len(made) > 1 + failed:
            v.duplicates += len(made) - 1 - failed
            v.problems.append(f"{key}: {len(made)} tasks, {failed} failed")
        if state != "done" and state not in REPORTED:
            v.silent_losses += 1
            v.problems.append(f"{key} ended {state}")
        for task in made:
            if task["id"] not in known and key not in held:
                v.silent_losses += 1
                v.problems.append(f"{key}: task {task['id']} unknown to the ledger")
        if state == "done":
            done += 1
            if done % sha_every == 0:
                v.sha_checked += 1
                if not _same_file(ws / row["file_path"], app, row["task_id"], row["file_sha256"]):
                    v.sha_mismatches += 1
                    v.problems.append(f"{key}: the file is not the simulator's")
    return v


def _same_file(path: Path, app: SimApp, task_id: str, recorded: str) -> bool:
    if not path.is_file():
        return False
    mine = hashlib.sha256(path.read_bytes()).hexdigest()
    theirs = hashlib.sha256(app.sim.video_bytes(app.sim.task(task_id))).hexdigest()
    return mine == recorded == theirs


def stats(values: Sequence[float]) -> dict[str, float]:
    """first, last, max and the medians of the first and last quarter of a series."""
    if not values:
        return {}
    q = max(1, len(values) // 4)
    head, tail = sorted(values[:q]), sorted(values[-q:])
    return {
        "first": values[0],
        "last": values[-1],
        "max": max(values),
        "first_quarter_median": head[len(head) // 2],
        "last_quarter_median": tail[len(tail) // 2],
    }
