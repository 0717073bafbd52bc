"""Bad input and hostile text of the fault matrix (docs/reliability.md §7.3: B1, B5–B7, B9),
checked end to end against the simulator's ground truth: bad grids send nothing, hostile task
ids and result links never pick a file name, an empty key means the simulator, and a huge
hostile error body is stored clipped and shown escaped."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from .runhelp import grid, install_faults, runner, simulator, truth

CORPUS = Path(__file__).parent / "corpus" / "bad"


def ledger_rows(ws: Path, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(ws / "ledger.sqlite")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


# ---------------------------------------------------------------------- B9: hostile error text


HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>\u202e\u2028é\"'&"


@pytest.mark.slow
@pytest.mark.fault("B9")
def test_a_megabyte_of_hostile_error_text_is_stored_clipped_and_shown_escaped(
    tmp_path: Path,
) -> None:
    exp, ws = grid(tmp_path / "g.csv", 4), tmp_path / "ws"
    huge = HOSTILE * (1_000_000 // len(HOSTILE))
    # with a lone surrogate, which a JSON answer may carry as "\ud800" and no database takes
    hostile_json = json.dumps({"error": {"code": "invalid_request", "message": huge}}).replace(
        "<script>", "\\ud800<script>", 1
    )
    with simulator() as url:
        install_faults(
            url,
            {  # a refusal whose message is a megabyte of markup
                "endpoint": "create",
                "kind": "respond",
                "calls": [1],
                "status": 400,
                "headers": {"content-type": "application/json"},
                "body": hostile_json,
            },
            {  # a gateway error page of a megabyte: the outcome is unknown
                "endpoint": "create",
                "kind": "respond",
                "calls": [2],
                "status": 502,
                "headers": {"content-type": "text/html"},
                "body": f"<html><body>{huge}</body></html>",
            },
            {  # the third is made; then no credits, said in the same megabyte
                "endpoint": "create",
                "kind": "respond",
                "calls": [4],
                "status": 402,
                "headers": {"content-type": "application/json"},
                "body": hostile_json,
            },
        )
        result = runner(
            "run", exp, "--base-url", url, "--workspace", ws, "--rate", "20", "--no-replay"
        )
        state = truth(url)

    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert "Stopped early: EvoLink refused for lack of credits" in result.stdout
    assert len(state["tasks"]) == 1  # the 400, the 502 and the 402 made nothing
    assert sorted(s for (s,) in ledger_rows(ws, "SELECT state FROM jobs")) == [
        "done",
        "pending",
        "rejected",
        "unknown",
    ]
    stored = [
        text
        for sql in (
            "SELECT error_message FROM jobs",
            "SELECT detail FROM attempts",
            "SELECT detail FROM events",
        )
        for (text,) in ledger_rows(ws, sql)
        if text
    ]
    assert any("<script>alert(1)</script>" in t for t in stored)  # kept, as text
    assert max(len(t.encode()) for t in stored) <= 2048
    html = (next(ws.glob("2*")) / "index.html").read_text()
    assert len(html) < 200_000
    assert html.lower().count("<script") == 2  # the page's own data and script blocks
    assert "<img src=x" not in html  # no tag of the provider's made it into the page
    assert len(result.stdout + result.stderr) < 20_000  # clipped in the output too
