"""Which ledger commits are synced on their own (issue 13: fewer durable transactions per
job). The create's intent and its answer are (docs/reliability.md §4.1, I1 and I2); what a
free re-read of the task or the saved file gives back (progress, the completed task's link,
``done``) is committed without its own sync, and made durable by the next synced commit.
Observed on the real SQLite connection through its statement trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.run import ledger as L
from runner.run.clock import VirtualClock

from .dispatchhelp import Sim, dispatch, new_run


def transactions(statements: list[str]) -> list[tuple[bool, list[str]]]:
    """(synced on its own, statements) for every committed transaction of the trace."""
    out: list[tuple[bool, list[str]]] = []
    synced, current = True, None
    for text in statements:
        head = " ".join(text.split()).upper()
        if head == "PRAGMA SYNCHRONOUS=NORMAL":
            synced = False
        elif head == "PRAGMA SYNCHRONOUS=FULL":
            synced = True
        elif head.startswith("BEGIN"):
            current = []
        elif head == "COMMIT" and current is not None:
            out.append((synced, current))
            current = None
        elif current is not None:
            current.append(head)
    return out


@pytest.mark.anyio
async def test_intent_and_answer_are_synced_and_the_rest_waits_for_the_next_sync(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    sim = Sim(clock)
    jobs = 6
    async with new_run(tmp_path, jobs) as run:
        trace: list[str] = []
        run.ledger.conn.set_trace_callback(trace.append)
        try:
            await dispatch(run, clock=clock, sim=sim)
        finally:
            run.ledger.conn.set_trace_callback(None)
        assert run.counts() == {L.DONE: jobs}
        level = run.ledger.conn.execute("PRAGMA synchronous").fetchone()[0]
    assert level == 2  # FULL again after the lazy commits
    assert len(sim.truth()["tasks"]) == jobs
    commits = transactions(trace)

    def where(text: str) -> list[bool]:
        return [synced for synced, body in commits if any(text in q for q in body)]

    intents = where("INSERT INTO ATTEMPTS")
    answers = where("UPDATE JOBS SET STATE = 'SUBMITTED', TASK_ID")
    links = where("UPDATE JOBS SET STATE = 'COMPLETED'")
    dones = where("UPDATE JOBS SET STATE = 'DONE'")
    assert len(intents) == len(answers) == len(links) == len(dones) == jobs
    assert all(intents) and all(answers)  # I1, I2: synced before anything else happens
    assert not any(links) and not any(dones)
    synced = sum(1 for s, _ in commits if s)
    lazy = len(commits) - synced
    assert lazy >= 2 * jobs  # the completed link and done
    assert synced <= 2 * jobs + 4  # the intent, the answer, and a few per run


def test_a_failed_unsynced_commit_leaves_the_next_commits_synced(tmp_path: Path) -> None:
    """SQLite keeps its safety level while a transaction is open: the level must be put back
    after the rollback, or every intent committed afterwards would go unsynced."""
    with L.Ledger.open(tmp_path) as ledger:
        with pytest.raises(RuntimeError), ledger.write(durable=False) as db:
            db.execute("SELECT 1")
            raise RuntimeError("the disk filled while saving a download")
        assert ledger.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        with ledger.write() as db:
            assert db.execute("PRAGMA synchronous").fetchone()[0] == 2
