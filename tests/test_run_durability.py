"""Crash safety, checked against the simulator's ground truth (docs/reliability.md §7.2):
kill -9 at each named boundary and at random instants, then `runner resume`: no task is
created twice, no paid result is lost. Also: one runner per ledger, and Ctrl-C."""

from __future__ import annotations

import random
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from runner.run.ledger import Ledger

from .runhelp import grid, install_faults, runner, simulator, spawn, truth


def job_states(ws: Path) -> dict[str, str]:
    with sqlite3.connect(ws / "ledger.sqlite") as db:
        return dict(db.execute("SELECT job_key, state FROM jobs").fetchall())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("point", "replay", "held"),
    [
        # intent committed, never sent: resume replays its key, which is its first send
        ("after_intent_commit", True, 0),
        # created but the id was lost: resume replays the key and gets the same task back
        ("after_response_before_commit", True, 0),
        # without the replay both are held for `runner resolve`
        ("after_intent_commit", False, 1),
        ("after_response_before_commit", False, 1),
        ("after_task_id_commit", True, 0),
        ("before_download", True, 0),
        ("after_rename_before_done_commit", True, 0),
    ],
)
def test_kill_at_a_named_point_then_resume(
    point: str, replay: bool, held: int, tmp_path: Path
) -> None:
    exp, ws = grid(tmp_path / "g.csv", 3), tmp_path / "ws"
    flags = [] if replay else ["--no-replay"]
    with simulator() as url:
        killed = runner(
            "run",
            exp,
            "--base-url",
            url,
            "--workspace",
            ws,
            "--rate",
            "5",
            # one task at a time: no other download can be in flight (and be fetched again
            # by the resume) when the second job reaches the named point
            "--concurrency",
            "1",
            *flags,
            env={"RUNNER_FAILPOINT": f"{point}:2"},
        )
        resumed = runner("resume", "latest", "--workspace", ws, "--base-url", url, *flags)
        state = truth(url)

    assert killed.returncode == -signal.SIGKILL
    states = job_states(ws)
    created = {t["idempotency_key"].rsplit("-", 1)[0]: 0 for t in state["tasks"]}
    for task in state["tasks"]:
        created[task["idempotency_key"].rsplit("-", 1)[0]] += 1
    assert max(truth_counts(state)) == 1  # nothing was created twice
    assert all(created.get(key) == 1 for key, s in states.items() if s == "done")
    assert sorted(states.values()) == ["done"] * (3 - held) + ["unknown"] * held
    replays = sum(state["replays_by_idempotency_key"].values())
    if point == "after_intent_commit" and held:
        (key,) = [k for k, s in states.items() if s == "unknown"]
        assert key not in created  # the held job really was never sent
    if point == "after_response_before_commit":
        if held:
            (key,) = [k for k, s in states.items() if s == "unknown"]
            assert created[key] == 1  # held, and it does exist: `runner resolve` settles it
        else:
            assert replays == 1  # the gateway answered the replay with the original task
    assert resumed.returncode == (1 if held else 0), resumed.stderr
    if point == "after_rename_before_done_commit":
        assert sum(state["requests"]["file"].values()) == 3  # verified, not downloaded again


def truth_counts(state: dict[str, object]) -> list[int]:
    return list(state["creates_by_body"].values())  # type: ignore[attr-defined]


@pytest.mark.slow
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
def test_a_second_runner_on_the_same_ledger_refuses(tmp_path: Path) -> None:
    exp, ws = grid(tmp_path / "g.csv", 1), tmp_path / "ws"
    with Ledger.open(ws):
        result = runner("run", exp, "--workspace", ws)

    assert result.returncode == 2
    assert "another runner (pid " in result.stderr
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
        httpx.post(f"{url}/_sim/advance", json={"seconds": 25 * 3600}).raise_for_status()
        install_faults(url)  # none
        resumed = runner("resume", "latest", "--workspace", ws, "--base-url", url)

    assert killed.returncode == -signal.SIGKILL
    assert resumed.returncode == 1
    assert set(job_states(ws).values()) == {"expired"}
    assert "2 paid result(s) EXPIRED before they were downloaded." in resumed.stdout
