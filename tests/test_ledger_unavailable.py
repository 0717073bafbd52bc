"""A ledger that cannot be written (another program holding its lock, a full disk) stops the
run with a plain reason and exit 3, never a traceback; what was committed stays for resume."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.cli import main
from runner.run import ledger as L
from runner.run.clock import VirtualClock

from .dispatchhelp import Sim, dispatch, new_run
from .runhelp import grid


@pytest.fixture(autouse=True)
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(L, "BUSY_TIMEOUT", 0.2)


@pytest.mark.anyio
@pytest.mark.fault("P6")
async def test_a_ledger_locked_by_another_program_stops_creates_with_the_reason(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    sim = Sim(clock)
    async with new_run(tmp_path, 3) as run:
        other = sqlite3.connect(run.ledger.workspace / "ledger.sqlite", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # e.g. a database browser with a pending write
        try:
            with pytest.raises(BaseExceptionGroup) as caught:
                await dispatch(run, clock=clock, sim=sim)
        finally:
            other.execute("ROLLBACK")
            other.close()
        errors = caught.value.subgroup(L.LedgerUnavailable)
        assert errors is not None
        message = str(errors.exceptions[0])
        assert "locked" in message and "runner resume" in message
        assert run.counts() == {"pending": 3}  # nothing half-recorded
    assert sim.truth()["tasks"] == []  # no create went out without its intent recorded


@pytest.mark.fault("P6")
def test_the_command_line_says_why_and_exits_3_without_a_traceback(tmp_path: Path) -> None:
    exp, ws = grid(tmp_path / "g.csv", 2), tmp_path / "ws"
    ws.mkdir()
    with L.Ledger.open(ws):
        pass  # the ledger exists
    other = sqlite3.connect(ws / "ledger.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        result = CliRunner().invoke(main, ["run", str(exp), "--workspace", str(ws)])
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert result.exit_code == 3, result.output
    assert "could not be written" in result.output and "Traceback" not in result.output
