"""One truth for progress (issue 13): after a run with resubmits, a hard stop, a resume and a
held job, every surface (the log lines, the end summary, ``status``, ``status --json``,
``summary.json`` and the report header) shows the counts and credits of the simulator's own
books; and the progress line's shape: 80 columns on a terminal, elapsed/percent/ETA in logs."""

from __future__ import annotations

import functools
import io
import json
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from rich.console import Console

from runner.review.summary import active_seconds, summary_data
from runner.run import ledger as L
from runner.run.clock import VirtualClock
from runner.run.dispatch import Dispatcher
from runner.run.events import GROUPS, Event, Figures, figures
from runner.run.progress import Display

from .dispatchhelp import Sim, dispatch, new_run
from .faulthelp import CREATE, Watch
from .runhelp import grid, install_faults, runner, simulator, spawn, truth

LOG_LINE = re.compile(
    r"^\d\d:\d\d:\d\d (?P<finished>[\d,]+)/(?P<total>[\d,]+) (?P<pct>\d+)% "
    r"ETA (?P<eta>\S+) (?P<credits>[\d,.]+) credits \| elapsed (?P<elapsed>\S+) \| (?P<groups>.*)$"
)


def groups(text: str) -> dict[str, int]:
    """``submitted 6 | running 0 | done 4`` -> {"submitted": 6, ...}; absent groups are 0."""
    found = {k: int(v.replace(",", "")) for k, v in re.findall(r"(\w+) ([\d,]+)", text)}
    return {k: found.get(k, 0) for k in ("submitted", "running", *GROUPS)} | found


def assert_replays_all_faulted(state: dict[str, Any]) -> None:
    """Only a faulted answer makes runner replay a create, once at most; so when the faults
    that fired are twice the keys replayed, each replayed key had both its answers faulted:
    runner never learned its task, and the job is held (what `ground_truth` counts)."""
    replayed = state["replays_by_idempotency_key"]
    assert set(replayed.values()) == {1}
    assert len(state["faults_fired"]) == 2 * len(replayed)


def ground_truth(state: dict[str, Any], jobs: int, held_keys: set[str]) -> dict[str, Any]:
    """Per job (one body each), what the simulator's task table says: a job whose every create
    answer was a fault (``held_keys``: its idempotency keys) is held (runner cannot know its
    task); otherwise its last task decides done or failed. Credits: the task table's charges
    and refunds (and the account's total)."""
    last: dict[str, dict[str, Any]] = {}
    held: set[str] = set()
    for task in sorted(state["tasks"], key=lambda t: t["n"]):
        last[task["body_hash"]] = task
        if task["idempotency_key"] in held_keys:
            held.add(task["body_hash"])
    done = sum(1 for b, t in last.items() if b not in held and t["status"] == "completed")
    failed = sum(1 for b, t in last.items() if b not in held and t["status"] == "failed")
    (account,) = state["accounts"].values()
    tasks = state["tasks"]
    held_credits = sum(t["reserved"] for t in tasks if t["body_hash"] in held)
    return {
        "submitted": len(last),
        "running": 0,
        "done": done,
        "failed": failed,
        "held": len(held),
        "rejected": 0,
        "expired": 0,
        "waiting": jobs - len(last),
        "charged": account["charged"],
        # what was charged and not refunded for the tasks runner knows of, plus the held
        # jobs' charges (runner cannot know whether those were refunded: it counts them spent)
        "spent": sum(t["reserved"] - t["refunded"] for t in tasks if t["body_hash"] not in held)
        + held_credits,
        "held_task_credits": held_credits,
    }


@pytest.mark.slow
def test_every_surface_shows_the_simulators_counts_after_resubmits_a_stop_a_resume_and_a_held_job(
    tmp_path: Path,
) -> None:
    jobs = 6
    exp, ws = grid(tmp_path / "g.csv", jobs), tmp_path / "ws"
    with simulator(speed=40.0, fail_rates={"service_error": 0.4}, seed=5) as url:
        # the first two creates and their replays (same keys) answer 500 after the tasks were
        # made: those two jobs are held; one job in flight keeps the next ones waiting meanwhile
        install_faults(
            url, {"endpoint": "create", "status": 500, "processed": True, "calls": [1, 2, 3, 4]}
        )
        began = time.monotonic()
        proc = spawn(
            "run", exp, "--base-url", url, "--workspace", ws, "--rate", "4", "--concurrency", "1"
        )
        while len(truth(url)["tasks"]) < 3:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)  # twice: the runner quits at once, no clean stop
        proc.communicate(timeout=30)
        after_stop = runner("status", "latest", "--workspace", ws).stdout
        listed = runner("status", "--workspace", ws).stdout
        time.sleep(3.0)  # a gap between the stop and the resume: not wall time
        resumed = runner(
            "resume", "latest", "--workspace", ws, "--base-url", url, "--concurrency", "6"
        )
        elapsed = time.monotonic() - began
        state = truth(url)
        status = runner("status", "latest", "--workspace", ws).stdout
        as_json = json.loads(runner("status", "latest", "--workspace", ws, "--json").stdout)

    assert proc.returncode == 3
    # after a double Ctrl-C no process holds the ledger: never "running"
    assert ": stopped," in after_stop and "running," not in after_stop, after_stop
    assert " stopped " in listed and " running " not in listed, listed
    assert resumed.returncode == 1, resumed.stderr  # the held job: not a clean finish
    assert_replays_all_faulted(state)
    want = ground_truth(state, jobs, set(state["replays_by_idempotency_key"]))
    assert want["held"] == 2 and want["waiting"] == 0
    assert sum(1 for t in state["tasks"] if t["status"] == "failed") >= 1  # resubmits happened
    finished = want["done"] + want["failed"] + want["held"]
    counts = {k: want[k] for k in ("submitted", "running", "done", "failed", "held")}

    # the log lines of the resume: it starts from what the first run did (cumulative), ends
    # on the simulator's figures, and says its last line once
    lines = [m for m in map(LOG_LINE.match, resumed.stderr.splitlines()) if m]
    first, last = lines[0], lines[-1]
    stopped_at = re.search(r"Jobs: (\d+)/6 finished: (.*)", after_stop)
    assert stopped_at is not None
    assert int(first["finished"]) == int(stopped_at[1])
    assert groups(first["groups"])["submitted"] == groups(stopped_at[2])["submitted"] >= 3
    assert (int(last["finished"]), int(last["total"]), last["pct"]) == (finished, 6, "100")
    assert {k: groups(last["groups"])[k] for k in counts} == counts
    assert float(last["credits"].replace(",", "")) == pytest.approx(want["spent"], abs=0.01)
    assert resumed.stderr.count(last.group(0)) == 1
    key_lines = [ln for ln in resumed.stderr.splitlines() if " retrying " in ln]
    assert key_lines and all(
        re.match(r"^\d\d:\d\d:\d\d retrying \w+-fast-1: ", ln) for ln in key_lines
    )

    # the end summary, status and status --json
    summary_line = re.search(
        r"Run \S+: (\d+)/6 finished: (.*); spent ([\d,.]+) credits", resumed.stdout
    )
    assert summary_line is not None, resumed.stdout
    assert int(summary_line[1]) == finished
    assert {k: groups(summary_line[2])[k] for k in counts} == counts
    assert float(summary_line[3].replace(",", "")) == pytest.approx(want["spent"], abs=0.01)
    assert "`runner resolve" in resumed.stdout and "Next:" in resumed.stdout
    jobs_line = re.search(r"Jobs: (\d+)/6 finished: (.*)", status)
    spent_line = re.search(r"Spent: ([\d,.]+) credits", status)
    assert jobs_line is not None and spent_line is not None, status
    assert int(jobs_line[1]) == finished
    assert {k: groups(jobs_line[2])[k] for k in counts} == counts
    assert float(spent_line[1].replace(",", "")) == pytest.approx(want["spent"], abs=0.01)

    # summary.json (and status --json, the same figures)
    (path,) = ws.glob("2*/summary.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert as_json["progress"] == data["progress"]
    assert {k: data["progress"][k] for k in counts} == counts
    assert data["progress"]["finished"] == finished
    assert data["credits"]["spent"] == pytest.approx(want["spent"], abs=0.01)
    # runner's charges: the tasks it knows of; the held one's is its estimate, held apart
    assert data["credits"]["charged"] + data["credits"]["held"] == pytest.approx(
        want["charged"], abs=0.01
    )
    assert data["credits"]["held"] == pytest.approx(want["held_task_credits"], abs=0.01)
    # wall time: the stretches at work, not the three seconds stopped in between
    assert 0 < data["wall_seconds"] < elapsed - 3.0

    # the report header
    html = (path.parent / "index.html").read_text(encoding="utf-8")
    pills = {
        state: int(n.replace(",", ""))
        for state, n in re.findall(r'data-state="(\w+)">([\d,]+) ', html.split("</header>")[0])
    }
    shown = Figures.of(pills, 0.0).counts()
    assert {k: shown[k] for k in counts} == counts
    money = re.search(r'id="money"[^>]*><span class="money"><b>([\d,.]+)</b>', html)
    assert money is not None
    # the report shows credits to one decimal
    assert float(money[1].replace(",", "")) == pytest.approx(want["spent"], abs=0.05)


# ---------------------------------------------------------------------- the line's shape


def _figures(credits: float = 0.0, **n: int) -> Figures:
    zero = {k: 0 for k in ("waiting", "running", "done", "failed", "held", "rejected", "expired")}
    return Figures(credits=credits, **(zero | n))


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_the_terminal_line_fits_80_columns_with_x_of_y_percent_eta_and_credits_first() -> None:
    now = Clock()
    steps = [
        Figures(100_000, 60_000, 200, 39_000, 500, 250, 40, 10, 1_234_567.89),
        Figures(100_000, 50_000, 200, 49_000, 500, 250, 40, 10, 1_534_567.89),
    ]
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=True, color_system=None)
    display = Display(lambda: steps[0], console=console, now=now)
    with display:
        now.t += 100.0
        steps.pop(0)
        display(Event("done", "k1", "", 1_534_567.89))
    # what the terminal shows last: the final frame of the live line, control codes removed
    frames = re.split(r"[\r\n]", re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue()))
    last = [f for f in frames if f.strip()][-1]
    assert len(last) <= 80, last
    # 10,000 finished in 100 s; 50,000 left: 500 s
    # 10,000 finished in 100 s; 50,200 left: 502 s
    assert last.startswith("49,800/100,000  50% ETA 0:08:22 1,534,567.89 credits"), last
    assert "done 49,000" in last  # the rest as room allows, done first


def test_log_mode_prints_elapsed_percent_eta_and_one_line_per_job_event() -> None:
    now = Clock()
    figs = [_figures(total=4, waiting=4)]
    out = io.StringIO()
    display = Display(lambda: figs[-1], out, interval=10.0, now=now, heartbeat=None)
    with display:
        figs.append(_figures(total=4, waiting=2, running=1, done=1, credits=30))
        now.t += 5.0
        display(Event("done", "abc-fast-1", "", 30.0))
        display(Event("failed", "def-fast-1", "service_error: it broke\n  on two lines", 30.0))
        figs.append(_figures(total=4, done=2, failed=1, held=1, credits=40))
        now.t += 6.0
        display(Event("held", "ghi-fast-1", "the create's outcome is unknown", 40.0))
    lines = out.getvalue().splitlines()
    stamp = r"^\d\d:\d\d:\d\d "
    assert re.match(stamp + r"0/4 0% ETA -:--:-- 0\.00 credits \| elapsed 0:00:00 \|", lines[0])
    assert re.match(stamp + r"done abc-fast-1$", lines[1]), lines
    assert re.match(stamp + r"failed def-fast-1: service_error: it broke on two lines$", lines[2])
    assert re.match(stamp + r"held ghi-fast-1: the create's outcome is unknown$", lines[3])
    # 11 s on: the periodic line, its figures refreshed from the source (held is not failed)
    assert re.match(
        stamp + r"4/4 100% ETA 0:00:00 40\.00 credits \| elapsed 0:00:11 \| submitted 4 \| "
        r"running 0 \| done 2 \| failed 1 \| held 1$",
        lines[4],
    ), lines
    assert len(lines) == 5  # the closing line is not said twice


def test_log_mode_says_where_the_run_is_while_no_job_changes() -> None:
    out = io.StringIO()
    fig = _figures(total=2, running=2, credits=10)
    with Display(lambda: fig, out, interval=0.2, heartbeat=0.02):
        time.sleep(0.7)  # a video generating: no event
    beats = [m for m in map(LOG_LINE.match, out.getvalue().splitlines()) if m]
    assert len(beats) >= 3, out.getvalue()
    assert {b["groups"] for b in beats} == {"submitted 2 | running 2 | done 0"}


# ---------------------------------------------------------------------- in process


@pytest.mark.anyio
async def test_in_process_the_display_status_and_summary_show_the_simulators_figures(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    clock = VirtualClock()
    sim = Sim(
        clock,
        # the six first creates, then two more calls (the first replays) answer 500 after the
        # task was made: those jobs whose replay failed too are held
        {"endpoint": "create", "status": 500, "processed": True, "calls": list(range(1, 9))},
        fail_rates={"service_error": 0.4},
        seed=5,
    )
    watch = Watch(sim.transport, clock)
    sim.transport = watch
    fast = {"rate": 1e6, "poll_rate": 1e6}

    async def stop_after_three(d: Dispatcher) -> None:
        while len(sim.truth()["tasks"]) < 3:
            await clock.sleep(0.5)
        d.interrupt("Interrupted (test).")

    out = io.StringIO()
    async with new_run(tmp_path, 6) as run:
        first = await dispatch(
            run, clock=clock, sim=sim, concurrency=1, during=stop_after_three, **fast
        )
        at_stop = figures(run.ledger, run.run_id)
        display = Display(functools.partial(figures, run.ledger, run.run_id), out)
        with display:
            await dispatch(run, clock=clock, sim=sim, concurrency=6, emit=display, **fast)
        data = summary_data(run.ledger, run.run_id)
        status = cli("status", "latest", "--workspace", run.ledger.workspace).output
    state = sim.truth()

    assert first.stop_kind == "interrupted"
    answers: dict[str, list[int | None]] = {}
    for seen in watch.on(CREATE):
        answers.setdefault(seen.headers["idempotency-key"], []).append(seen.status)
    # held: every answer the simulator gave to the key's creates was a 500
    want = ground_truth(state, 6, {k for k, got in answers.items() if set(got) == {500}})
    assert want["held"] >= 1 and want["waiting"] == 0
    assert sum(1 for t in state["tasks"] if t["status"] == "failed") >= 1  # resubmits
    counts = {k: want[k] for k in ("submitted", "running", "done", "failed", "held")}
    finished = want["done"] + want["failed"] + want["held"]

    lines = [m for m in map(LOG_LINE.match, out.getvalue().splitlines()) if m]
    assert int(lines[0]["finished"]) == at_stop.finished > 0  # cumulative: not from 0
    last = lines[-1]
    assert int(last["finished"]) == finished and last["pct"] == "100"
    assert {k: groups(last["groups"])[k] for k in counts} == counts
    assert float(last["credits"].replace(",", "")) == pytest.approx(want["spent"], abs=0.01)
    assert {k: data["progress"][k] for k in counts} == counts
    assert data["credits"]["spent"] == pytest.approx(want["spent"], abs=0.01)
    jobs_line = re.search(r"Jobs: (\d+)/6 finished: (.*)", status)
    assert jobs_line is not None and int(jobs_line[1]) == finished, status
    assert {k: groups(jobs_line[2])[k] for k in counts} == counts


# ---------------------------------------------------------------------- wall time


@pytest.mark.anyio
async def test_wall_time_counts_the_stretches_at_work_not_the_gaps_between_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Result]
) -> None:
    now = [1000.0]
    monkeypatch.setattr(L, "_now", lambda: now[0])
    async with new_run(tmp_path, 1) as run:
        ledger, run_id = run.ledger, run.run_id

        def at(t: float) -> None:
            now[0] = t

        at(1000)
        ledger.set_run_state(run_id, "running")
        at(1010)
        ledger.event(run_id, None, "note", "a job did something")
        at(1020)
        ledger.set_run_state(run_id, "stopped", exit_code=3, stop_reason="test")  # 20 s
        at(2000)
        ledger.set_run_state(run_id, "running")
        at(2005)
        ledger.event(run_id, None, "note", "an event")
        at(2040)
        (job,) = ledger.jobs(run_id)
        ledger.progress(job.job_id, 50)  # the last thing recorded before a kill -9
        at(3000)
        ledger.settle_orphans()  # the next runner finds it "running": 40 s, not 1,000
        at(4000)
        ledger.set_run_state(run_id, "running")
        at(4030)
        ledger.set_run_state(run_id, "finished", exit_code=0)  # 30 s
        assert active_seconds(ledger, run_id) == pytest.approx(90.0)
        assert summary_data(ledger, run_id)["wall_seconds"] == 90.0
        status = cli("status", "latest", "--workspace", ledger.workspace).output
    assert "Wall time: 0:01:30" in status
