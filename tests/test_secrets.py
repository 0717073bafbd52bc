"""The API key never lands anywhere (docs/reliability.md §7.3 B8): a whole run with a sentinel key
and every log line on, then every artifact is searched for it."""

from __future__ import annotations

import logging
import secrets
import sqlite3
from pathlib import Path

import pytest

from runner.logs import RedactKey

from .runhelp import grid, runner, simulator


@pytest.mark.slow
@pytest.mark.fault("B8")
def test_the_key_is_in_no_output_log_ledger_report_or_table(tmp_path: Path) -> None:
    key = f"sk-LEAKCHECK-{secrets.token_hex(8)}"
    exp, ws = grid(tmp_path / "g.csv", 3), tmp_path / "ws"
    exp.write_text(exp.read_text().replace("A lamp", "A celebrity lamp", 1))  # a failure too
    with simulator() as url:
        result = runner(
            "-vv",
            "run",
            exp,
            "--backend",
            "evolink",
            "--base-url",
            url,
            "--yes",
            "--workspace",
            ws,
            "--rate",
            "20",
            env={"EVOLINK_API_KEY": key},
        )

    assert result.returncode == 1, result.stderr  # the celebrity job fails
    assert "HTTP Request" in result.stderr  # httpx's debug lines were on
    with sqlite3.connect(ws / "ledger.sqlite") as db:
        dump = "\n".join(db.iterdump())
    texts = [result.stdout, result.stderr, dump]
    texts += [
        p.read_text(errors="replace")
        for p in ws.rglob("*")
        if p.is_file() and p.suffix in {".html", ".csv", ".json", ".jsonl", ".lock"}
    ]
    assert len(texts) >= 5
    for text in texts:
        assert key not in text
        assert key[-16:] not in text


@pytest.mark.fault("B8")
def test_the_filter_redacts_the_key_and_bearer_tokens_in_messages_and_tracebacks() -> None:
    key = "sk-secret-123"
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "sent %s with Bearer abc.def", (key,), None
    )
    try:
        raise ValueError(f"bad key {key}")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()

    RedactKey(key).filter(record)

    assert record.getMessage() == "sent *** with Bearer ***"
    assert key not in (record.exc_text or "") and "bad key ***" in (record.exc_text or "")
