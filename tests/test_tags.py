"""Run tags: ``--tag key=value`` on run, promote, resume and retry, kept in the ledger, shown
by ``status`` and in ``summary.json``; a promotion inherits its parent's tags."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from .runhelp import grid


def latest(ws: Path) -> str:
    with sqlite3.connect(ws / "ledger.sqlite") as db:
        (run_id,) = db.execute(
            "SELECT run_id FROM runs ORDER BY created_at DESC, rowid DESC LIMIT 1"
        ).fetchone()
    return str(run_id)


def summary_tags(ws: Path, run_id: str) -> dict[str, str]:
    data = json.loads((ws / run_id / "summary.json").read_text(encoding="utf-8"))
    tags: dict[str, str] = data["tags"]
    return tags


def test_tags_are_kept_shown_and_added_to_by_resume_and_promote(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    exp, ws = grid(tmp_path / "g.csv", 2), tmp_path / "ws"
    ran = cli("run", exp, "--workspace", ws, "--tag", "client=acme", "--tag", "campaign=spring")
    assert ran.exit_code == 0, ran.output
    parent = latest(ws)
    assert summary_tags(ws, parent) == {"campaign": "spring", "client": "acme"}
    assert "Tags: campaign=spring, client=acme" in cli("status", parent, "--workspace", ws).output

    resumed = cli("resume", parent, "--workspace", ws, "--tag", "campaign=summer")
    assert resumed.exit_code == 0, resumed.output
    assert latest(ws) == parent  # the same run
    assert summary_tags(ws, parent) == {"campaign": "summer", "client": "acme"}

    with sqlite3.connect(ws / "ledger.sqlite") as db:
        (key,) = db.execute(
            "SELECT job_key FROM jobs WHERE run_id = ? LIMIT 1", (parent,)
        ).fetchone()
    promoted = cli("promote", parent, "--pick", key, "--workspace", ws, "--tag", "round=2")
    assert promoted.exit_code == 0, promoted.output
    child = latest(ws)
    assert child != parent
    assert summary_tags(ws, child) == {"campaign": "summer", "client": "acme", "round": "2"}
    assert summary_tags(ws, parent) == {"campaign": "summer", "client": "acme"}


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ("client", "--tag 'client': write KEY=VALUE, e.g. --tag client=acme"),
        ("client=", "the value not empty"),
        ("cli ent=acme", "the key letters, digits, _ and - only"),
        ("=acme", "write KEY=VALUE"),
    ],
)
def test_a_bad_tag_is_refused_before_anything_is_made(
    cli: Callable[..., Result], tmp_path: Path, tag: str, message: str
) -> None:
    exp, ws = grid(tmp_path / "g.csv", 1), tmp_path / "ws"
    result = cli("run", exp, "--workspace", ws, "--tag", tag)
    assert result.exit_code == 2
    assert message in result.output
    assert not (ws / "ledger.sqlite").exists()
