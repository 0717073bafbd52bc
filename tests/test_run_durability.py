"""Crash safety, checked against the simulator's ground truth (docs/reliability.md §7.2):
kill -9 at each named boundary and at random instants, then `runner resume`: no task is
created twice, no paid result is lost. Also: one runner per ledger, and Ctrl-C."""

from __future__ import annotations

import functools
import hashlib
import os
import random
import re
import signal
import socket
import sqlite3
import struct
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.run.ledger import Ledger

from .runhelp import grid, install_faults, runner, simulator, spawn, truth


def job_states(ws: Path) -> dict[str, str]:
    with sqlite3.connect(ws / "ledger.sqlite") as db:
        return dict(db.execute("SELECT job_key, state FROM jobs").fetchall())


@dataclass(frozen=True)
class Kill:
    """What a kill at ``point`` leaves, and what `runner resume` makes of it."""

    point: str
    killed: dict[str, int]  # job states right after the kill
    sent: int  # creates the simulator had made by then
    final: dict[str, int]  # job states after the resume
    replays: int = 0  # creates the simulator answered as same-key replays of the original
    files: int = 3  # file requests the simulator served in all
    jobs: int = 3
    replay: bool = True
    nth: int = 1  # the failpoint's hit that kills


KILLS = [
    # intent committed, never sent: the resume's "replay" of its key is its first send
    Kill("after_intent_commit", {"submitting": 1, "pending": 2}, 0, {"done": 3}),
    # sent in full, answer never read: the gateway made the task; the replay gets it back
    Kill(
        "after_post_sent_before_response",
        {"submitting": 1, "pending": 2},
        1,
        {"done": 3},
        replays=1,
    ),
    Kill("after_response_before_commit", {"submitting": 1, "pending": 2}, 1, {"done": 3}, 1),
    # without the replay each is held for `runner resolve`, and nothing is sent again
    Kill(
        "after_intent_commit",
        {"submitting": 1, "pending": 2},
        0,
        {"done": 2, "unknown": 1},
        files=2,
        replay=False,
    ),
    Kill(
        "after_post_sent_before_response",
        {"submitting": 1, "pending": 2},
        1,
        {"done": 2, "unknown": 1},
        files=2,
        replay=False,
    ),
    Kill(
        "after_response_before_commit",
        {"submitting": 1, "pending": 2},
        1,
        {"done": 2, "unknown": 1},
        files=2,
        replay=False,
    ),
    Kill("after_task_id_commit", {"submitted": 1, "pending": 2}, 1, {"done": 3}),
    # downloads: one job, so no create can be under way beside it
    Kill("before_download", {"completed": 1}, 1, {"done": 1}, files=1, jobs=1),
    Kill("mid_download", {"completed": 1}, 1, {"done": 1}, files=2, jobs=1),
    Kill("after_rename_before_done_commit", {"completed": 1}, 1, {"done": 1}, files=1, jobs=1),
    # the last checkpoint, at the very end of the run
    Kill("during_checkpoint", {"done": 3}, 3, {"done": 3}),
]


def big_video(**_: object) -> bytes:
    """Every result: a real 4 s 16:9 video padded past runner's 1 MiB write block with an MP4
    ``free`` box, so a kill after the first block leaves a partial ``.part``."""
    return _padded_video()


@functools.cache
def _padded_video() -> bytes:
    from runner.simulator.video import VideoCache

    video = VideoCache().get(
        prompt="a lamp", duration=4, aspect_ratio="16:9", tier="fast", generate_audio=True, seed=0
    )
    pad = 1_500_000
    return video + struct.pack(">I4s", pad + 8, b"free") + bytes(pad)


def wal_size(ws: Path) -> int:
    wal = ws / "ledger.sqlite-wal"
    return wal.stat().st_size if wal.exists() else 0


@pytest.mark.slow
@pytest.mark.fault("P2")
@pytest.mark.parametrize(
    "kill", KILLS, ids=[f"{k.point}{'' if k.replay else '-no-replay'}" for k in KILLS]
)
def test_kill_at_a_named_point_leaves_its_exact_state_and_resume_settles_it(
    kill: Kill, tmp_path: Path
) -> None:
    exp, ws = grid(tmp_path / "g.csv", kill.jobs), tmp_path / "ws"
    flags = [] if kill.replay else ["--no-replay"]
    with simulator(video_source=big_video) as url:
        killed = runner(
            "run",
            exp,
            "--base-url",
            url,
            "--workspace",
            ws,
            "--rate",
            "5",
            "--concurrency",
            "1",  # one task at a time: the order of creates is the order of the jobs
            *flags,
            env={"RUNNER_FAILPOINT": f"{kill.point}:{kill.nth}"},
        )
        at_kill = truth(url)
        wal_at_kill = wal_size(ws)  # before anything opens the ledger again
        at_kill_ledger = Ledgered(ws)
        files_at_kill = {p.name: p.stat().st_size for p in ws.glob("*/media/*")}
        resumed = runner("resume", "latest", "--workspace", ws, "--base-url", url, *flags)
        state = truth(url)

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert at_kill_ledger.integrity == "ok"
    assert at_kill_ledger.counts() == kill.killed
    assert len(at_kill["tasks"]) == kill.sent
    # every task the simulator made was asked for by a committed intent, with its key
    assert {t["idempotency_key"] for t in at_kill["tasks"]} <= at_kill_ledger.keys()
    target = at_kill_ledger.target()
    if kill.killed.get("submitting"):
        assert target.outcome == "in_flight"  # unknown until the resume settles it
    final = f"{target.job_key}.mp4"
    if kill.point == "mid_download":
        assert final not in files_at_kill  # never a partial file at the final path
        assert 0 < files_at_kill[final + ".part"] < len(big_video())
    if kill.point == "after_rename_before_done_commit":
        assert files_at_kill[final] == len(big_video())  # renamed, its done not committed
    if kill.point == "during_checkpoint":
        assert wal_at_kill > 0  # the WAL was not reset

    after = Ledgered(ws)
    assert resumed.returncode == (1 if kill.final.get("unknown") else 0), resumed.stderr
    assert after.integrity == "ok"
    assert after.counts() == kill.final
    assert max(truth_counts(state)) == 1  # nothing was created twice
    held = {k for k, s in after.states().items() if s == "unknown"}
    made = {t["idempotency_key"].rsplit("-", 1)[0] for t in state["tasks"]}
    assert len(state["tasks"]) == kill.jobs - (0 if kill.sent else len(held))
    assert made | held == set(after.states())
    assert sum(state["replays_by_idempotency_key"].values()) == kill.replays
    assert sum(state["requests"]["file"].values()) == kill.files
    media = next(ws.glob("2*")) / "media"
    for key, sha in after.files().items():  # every done job: its whole file, as served
        assert sha == hashlib.sha256(big_video()).hexdigest()
        assert (media / f"{key}.mp4").read_bytes() == big_video()
    assert list(media.glob("*.part")) == []
    if kill.point == "during_checkpoint":
        assert wal_size(ws) == 0  # reset by the resume


@dataclass
class Attempted:
    job_key: str
    outcome: str


class Ledgered:
    """The ledger as a crash left it (opened read-write, so SQLite recovers its WAL)."""

    def __init__(self, ws: Path) -> None:
        with sqlite3.connect(ws / "ledger.sqlite") as db:
            self.integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
            self.jobs = db.execute(
                "SELECT job_key, state, file_sha256 FROM jobs ORDER BY job_id"
            ).fetchall()
            self.attempts = db.execute(
                "SELECT j.job_key, a.outcome, a.idempotency_key FROM attempts a"
                " JOIN jobs j USING (job_id) ORDER BY a.attempt_id"
            ).fetchall()
        db.close()

    def states(self) -> dict[str, str]:
        return {key: state for key, state, _ in self.jobs}

    def counts(self) -> dict[str, int]:
        return dict(Counter(self.states().values()))

    def keys(self) -> set[str]:
        return {key for _, _, key in self.attempts}

    def files(self) -> dict[str, str]:
        return {key: sha for key, state, sha in self.jobs if state == "done"}

    def target(self) -> Attempted:
        """The job the kill hit: the first job that is neither pending nor done, else the
        first job."""
        for key, state, _ in self.jobs:
            if state not in ("pending", "done"):
                outcome = [o for k, o, _ in self.attempts if k == key]
                return Attempted(key, outcome[-1] if outcome else "")
        return Attempted(self.jobs[0][0], "")


def truth_counts(state: dict[str, object]) -> list[int]:
    return list(state["creates_by_body"].values())  # type: ignore[attr-defined]


@pytest.mark.slow
@pytest.mark.fault("P1")
def test_kill_9_at_random_instants_loses_nothing_and_pays_nothing_twice(tmp_path: Path) -> None:
    exp, ws = grid(tmp_path / "g.csv", 12), tmp_path / "ws"
    rng = random.Random(7)
    with simulator(speed=100.0) as url:
        proc = spawn("run", exp, "--base-url", url, "--workspace", ws, "--rate", "10", quiet=True)
        kills = 0
        for _ in range(6):
            time.sleep(rng.uniform(1.0, 3.0))  # start-up takes about a second
            if proc.poll() is not None:
                break
            proc.kill()
            proc.wait()
            kills += 1
            assert Ledgered(ws).integrity == "ok"
            proc = spawn(
                "resume", "latest", "--workspace", ws, "--base-url", url, "--rate", "10", quiet=True
            )
        proc.wait(120)
        final = runner("resume", "latest", "--workspace", ws, "--base-url", url)
        state = truth(url)

    states = job_states(ws)
    assert kills >= 2
    assert len(truth_counts(state)) >= 6 and max(truth_counts(state)) == 1
    assert set(states.values()) <= {"done", "unknown"}
    done = [k for k, s in states.items() if s == "done"]
    assert all((ws / next(ws.glob("2*")).name / "media" / f"{k}.mp4").exists() for k in done)
    assert final.returncode in (0, 1)


@pytest.mark.slow
@pytest.mark.fault("P4")
def test_a_second_runner_on_the_same_ledger_refuses_naming_pid_host_and_since(
    tmp_path: Path,
) -> None:
    exp, ws = grid(tmp_path / "g.csv", 1), tmp_path / "ws"
    with Ledger.open(ws):
        started = time.time()
        result = runner("run", exp, "--workspace", ws)

    assert result.returncode == 2
    holder = re.search(r"another runner \(pid (\d+) on (\S+), since ([\d: -]+)\)", result.stderr)
    assert holder is not None, result.stderr
    assert int(holder[1]) == os.getpid() and holder[2] == socket.gethostname()
    since = time.mktime(time.strptime(holder[3], "%Y-%m-%d %H:%M:%S"))
    assert started - 60 <= since <= started + 1
    assert "is using" in result.stderr and "runner resume" in result.stderr


@pytest.mark.slow
@pytest.mark.fault("P3")
def test_ctrl_c_once_stops_creates_and_finishes_what_is_paid(tmp_path: Path) -> None:
    exp, ws = grid(tmp_path / "g.csv", 20), tmp_path / "ws"
    with simulator(speed=50.0) as url:
        proc = spawn(
            "run", exp, "--base-url", url, "--workspace", ws, "--rate", "4", "--grace", "600"
        )
        time.sleep(2.5)
        proc.send_signal(signal.SIGINT)
        at_signal = len(truth(url)["tasks"])
        out, err = proc.communicate(timeout=60)  # the paid ones finish: no 600 s wait
        state = truth(url)

    assert proc.returncode == 3, err
    created = len(state["tasks"])
    assert 1 <= created <= at_signal + 1  # at most the create already on its way
    states = list(job_states(ws).values())
    assert states.count("done") == created  # every paid task was polled and downloaded
    assert states.count("pending") == 20 - created
    assert "Report:" in out


@pytest.mark.slow
@pytest.mark.fault("P3")
def test_sigterm_lets_paid_work_go_on_for_the_grace_only_and_resume_finishes(
    tmp_path: Path,
) -> None:
    exp, ws = grid(tmp_path / "g.csv", 6), tmp_path / "ws"
    with simulator(speed=20.0) as url:  # videos take about six seconds
        proc = spawn(
            "run", exp, "--base-url", url, "--workspace", ws, "--rate", "4", "--grace", "1"
        )
        while not truth(url)["tasks"]:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        out, err = proc.communicate(timeout=30)
        stopped_in = time.monotonic() - started
        paid = len(truth(url)["tasks"])
        status = runner("status", "latest", "--workspace", ws).stdout
        resumed = runner("resume", "latest", "--workspace", ws, "--base-url", url)
        state = truth(url)

    assert proc.returncode == 3, err
    assert stopped_in < 4  # the grace and the answer of a create on its way, not six seconds
    assert "1 s grace ran out with" in out and "runner resume" in out
    assert ": stopped" in status
    assert resumed.returncode == 0, resumed.stderr
    assert len(state["tasks"]) == 6 and max(truth_counts(state)) == 1  # none paid twice
    assert set(job_states(ws).values()) == {"done"}
    assert paid < 6


@pytest.mark.slow
@pytest.mark.fault("P3")
def test_ctrl_c_twice_exits_at_once_and_resume_finishes(tmp_path: Path) -> None:
    exp, ws = grid(tmp_path / "g.csv", 10), tmp_path / "ws"
    with simulator(speed=20.0) as url:
        proc = spawn("run", exp, "--base-url", url, "--workspace", ws, "--rate", "4")
        time.sleep(2.0)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
        quit_in = time.monotonic() - started
        resumed = runner("resume", "latest", "--workspace", ws, "--base-url", url)
        state = truth(url)

    assert proc.returncode == 3 and quit_in < 2.0, err
    assert resumed.returncode == 0, resumed.stderr
    assert max(truth_counts(state)) == 1
    assert set(job_states(ws).values()) == {"done"}


@pytest.mark.slow
@pytest.mark.fault("P10")
def test_resume_after_the_result_links_expired_reports_them(tmp_path: Path) -> None:
    exp, ws = grid(tmp_path / "g.csv", 2), tmp_path / "ws"
    with simulator(speed=1.0) as url:
        killed = runner(
            "run",
            exp,
            "--base-url",
            url,
            "--workspace",
            ws,
            "--rate",
            "20",
            env={"RUNNER_FAILPOINT": "after_task_id_commit:2"},
        )
        at_kill = set(job_states(ws).values())
        httpx.post(f"{url}/_sim/advance", json={"seconds": 25 * 3600}).raise_for_status()
        install_faults(url)  # none
        before = truth(url)
        resumed = runner("resume", "latest", "--workspace", ws, "--base-url", url)
        state = truth(url)

    assert killed.returncode == -signal.SIGKILL
    assert at_kill <= {"submitted", "running"}  # both tasks still generating at the kill
    assert resumed.returncode == 1
    assert reads(state) > reads(before)  # the resume read both tasks again...
    assert len(state["tasks"]) == 2 and max(truth_counts(state)) == 1  # ...and sent nothing
    assert set(state["requests"]["file"]) == {"403"}  # each link tried: gone
    assert set(job_states(ws).values()) == {"expired"}
    assert "2 paid result(s) EXPIRED before they were downloaded." in resumed.stdout


def reads(state: dict[str, Any]) -> int:
    return sum(sum(state["requests"].get(e, {}).values()) for e in ("task", "batch"))
