"""The journal: a simulator started on the journal of an earlier one (another process, or one
killed with SIGKILL) has the same tasks, fates, replays and balances, and its simulated time has
run on meanwhile; a line torn by a crash is ignored."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from runner.simulator.app import DEFAULT_KEY, SimConfig, create_app
from runner.simulator.testing import ManualClock, asgi_client, serve_process

from .simhelp import BODY, CREATE, FAKE_MP4

IDEM = "0123456789abcdef-journal-1"
T0 = 1_800_000_000.0


def body(i: int, **extra: Any) -> dict[str, Any]:
    return {**BODY, "prompt": f"A red kite #{i}", **extra}


def config(tmp_path: Path, **overrides: Any) -> SimConfig:
    settings: dict[str, Any] = {
        "speed": 100.0,
        "video_source": lambda **_: FAKE_MP4,
        "journal": tmp_path / "simulator" / "journal.jsonl",
    }
    return SimConfig(**(settings | overrides))


def lines(tmp_path: Path) -> list[dict[str, Any]]:
    """The journal's complete lines (one being written meanwhile has no newline yet)."""
    text = (tmp_path / "simulator" / "journal.jsonl").read_text()
    return [json.loads(line) for line in text.split("\n")[:-1]]


def restart(tmp_path: Path, clock: ManualClock, **overrides: Any) -> Any:
    """A new simulator on the same journal, as a new process would build it."""
    return create_app(config(tmp_path, **overrides), clock=clock, wall=clock)


async def views(client: httpx.AsyncClient, ids: list[str]) -> list[dict[str, Any]]:
    return [(await client.get(f"/v1/tasks/{i}")).json() for i in ids]


@pytest.mark.anyio
async def test_a_restarted_simulator_shows_the_same_tasks_progressing_the_same_way(
    tmp_path: Path,
) -> None:
    clock = ManualClock(T0)  # one clock for both "processes": the wall and monotonic time
    first = create_app(
        config(tmp_path, concurrency=2, fail_rates={"service_error": 0.3}), clock=clock, wall=clock
    )
    async with asgi_client(first) as client:
        ids = [(await client.post(CREATE, json=body(i))).json()["id"] for i in range(6)]
        ids.append((await client.post(CREATE, json=body(9, prompt="a celebrity"))).json()["id"])
        clock.advance(0.5)
        await client.post(f"/_sim/cancel/{ids[3]}")  # waiting for a slot: cancelled
        await client.post("/_sim/advance", json={"seconds": 30})
        clock.advance(0.2)
        before = await views(client, ids)

    second = restart(tmp_path, clock, concurrency=2, fail_rates={"service_error": 0.3})
    async with asgi_client(first) as old, asgi_client(second) as new:
        assert await views(new, ids) == before
        seen: set[str] = set()
        for _ in range(12):  # both answer alike at every step, to the end of every task
            clock.advance(0.5)
            now_old, now_new = await views(old, ids), await views(new, ids)
            assert now_new == now_old
            seen |= {v["status"] for v in now_new}
        credits = [(await c.get("/v1/credits")).json() for c in (old, new)]
    assert seen == {"pending", "processing", "completed", "failed", "cancelled"}
    assert {v["status"] for v in now_new} == {"completed", "failed", "cancelled"}
    assert credits[0] == credits[1]
    state_old, state_new = first.state.sim.snapshot(), second.state.sim.snapshot()
    assert state_new["accounts"] == state_old["accounts"]
    assert state_new["creates_by_body"] == state_old["creates_by_body"]
    strip = ("created_wall",)  # the monotonic clock of each process
    assert [{k: v for k, v in t.items() if k not in strip} for t in state_new["tasks"]] == [
        {k: v for k, v in t.items() if k not in strip} for t in state_old["tasks"]
    ]


@pytest.mark.anyio
async def test_results_download_and_idempotent_replays_work_after_a_restart(
    tmp_path: Path,
) -> None:
    clock = ManualClock(T0)
    async with asgi_client(restart(tmp_path, clock)) as client:
        first = await client.post(CREATE, json=BODY, headers={"Idempotency-Key": IDEM})
    clock.advance(2.0)  # 200 simulated seconds: done
    app = restart(tmp_path, clock)
    async with asgi_client(app) as client:
        again = await client.post(CREATE, json=BODY, headers={"Idempotency-Key": IDEM})
        conflict = await client.post(CREATE, json=body(1), headers={"Idempotency-Key": IDEM})
        done = (await client.get(f"/v1/tasks/{first.json()['id']}")).json()
        video = await client.get(done["results"][0])
    assert again.json() == first.json()
    assert again.headers["idempotency-replayed"] == "true"
    assert conflict.status_code == 409
    assert done["status"] == "completed"
    assert video.content == FAKE_MP4
    state = app.state.sim.snapshot()
    assert len(state["tasks"]) == 1 and state["replays_by_idempotency_key"] == {IDEM: 1}


@pytest.mark.anyio
async def test_balances_and_keys_set_through_sim_keys_survive_and_no_key_is_written(
    tmp_path: Path,
) -> None:
    clock = ManualClock(T0)
    other = "sk-other-0123456789abcdef"
    app = restart(tmp_path, clock)
    async with asgi_client(app) as client, asgi_client(app, key=other) as client2:
        await client.post(
            "/_sim/keys",
            json={
                other: {"balance": 100.0, "models": ["seedance-2.0-fast-text-to-video"]},
                DEFAULT_KEY: {"balance": 500.0},
            },
        )
        await client.post(CREATE, json=BODY)
        theirs = (await client2.post(CREATE, json=body(1))).json()["id"]
        failing = (await client2.post(CREATE, json=body(2, prompt="a celebrity"))).json()["id"]
    clock.advance(0.5)  # the celebrity task fails and is refunded meanwhile
    journal_text = (tmp_path / "simulator" / "journal.jsonl").read_text()
    assert other not in journal_text and DEFAULT_KEY not in journal_text

    again = restart(tmp_path, clock)
    async with asgi_client(again) as client, asgi_client(again, key=other) as client2:
        mine = await client.get("/v1/credits")
        foreign = await client.get(f"/v1/tasks/{theirs}")
        own = await client2.get(f"/v1/tasks/{theirs}")
        refunded = await client2.get(f"/v1/tasks/{failing}")
        credits2 = await client2.get("/v1/credits")
        denied = await client2.post(CREATE, json={**BODY, "model": "seedance-2.0-text-to-video"})
    assert mine.json()["data"]["user"]["remaining_credits"] == pytest.approx(500.0 - 15.2544)
    assert foreign.status_code == 403 and own.status_code == 200
    assert refunded.json()["status"] == "failed"
    assert credits2.json()["data"]["user"]["remaining_credits"] == pytest.approx(100 - 15.2544)
    assert denied.status_code == 402  # the models allowed came back too
    assert again.state.sim.snapshot()["accounts"] == app.state.sim.snapshot()["accounts"]


@pytest.mark.anyio
async def test_simulated_time_runs_on_between_processes_by_the_wall_clock(
    tmp_path: Path,
) -> None:
    clock = ManualClock(T0)
    async with asgi_client(restart(tmp_path, clock, jitter=0.0)) as client:
        task = (await client.post(CREATE, json=BODY)).json()
        await client.post("/_sim/advance", json={"seconds": 20})
        clock.advance(0.1)
        stopped = (await client.get("/_sim/state")).json()["sim_time"]
    assert stopped == pytest.approx(T0 + 20 + 10)
    clock.advance(0.55)  # no simulator runs for 0.55 wall seconds: 55 simulated seconds
    app = restart(tmp_path, clock)
    async with asgi_client(app) as client:
        resumed = (await client.get("/_sim/state")).json()
        view = (await client.get(f"/v1/tasks/{task['id']}")).json()
    assert resumed["sim_time"] == pytest.approx(stopped + 55)
    assert resumed["advanced"] == 20
    assert view["status"] == "processing" and view["progress"] == 74  # (85 - 3) / 110

    clock.now = T0 - 3600  # the wall clock went back: time never runs back before an event
    async with asgi_client(restart(tmp_path, clock)) as client:
        assert (await client.get("/_sim/state")).json()["sim_time"] >= T0 + 20


@pytest.mark.anyio
async def test_real_wall_time_between_processes_counts(tmp_path: Path) -> None:
    cfg = config(tmp_path, speed=1000.0)
    async with asgi_client(create_app(cfg)) as client:
        before = (await client.get("/_sim/state")).json()["sim_time"]
    await anyio.sleep(0.05)
    async with asgi_client(create_app(cfg)) as client:
        after = (await client.get("/_sim/state")).json()["sim_time"]
    assert after - before >= 50


@pytest.mark.anyio
async def test_each_create_is_on_disk_when_its_answer_arrives_even_under_concurrency(
    tmp_path: Path,
) -> None:
    app = create_app(config(tmp_path))
    ids: list[str] = []
    async with asgi_client(app) as client, anyio.create_task_group() as tg:

        async def create(i: int) -> None:
            response = await client.post(CREATE, json=body(i))
            task_id = response.json()["id"]
            assert task_id in {r.get("id") for r in lines(tmp_path)}
            ids.append(task_id)

        for i in range(20):
            tg.start_soon(create, i)
    records = lines(tmp_path)
    assert records[0]["type"] == "start" and records[0]["speed"] == 100.0
    assert sorted(r["id"] for r in records if r["type"] == "create") == sorted(ids)
    assert all(len(json.dumps(r)) < 1000 for r in records)  # small: no video, no secrets
    again = create_app(config(tmp_path))
    assert sorted(t["id"] for t in again.state.sim.snapshot()["tasks"]) == sorted(ids)


@pytest.mark.anyio
async def test_a_line_torn_by_a_crash_is_ignored_and_cut_off(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    async with asgi_client(restart(tmp_path, clock)) as client:
        kept = (await client.post(CREATE, json=BODY)).json()["id"]
    path = tmp_path / "simulator" / "journal.jsonl"
    intact = path.read_bytes()
    with path.open("ab") as file:
        file.write(b'{"type":"create","wall":1800000000.0,"sim":18000')
    app = restart(tmp_path, clock)
    assert path.read_bytes() == intact
    async with asgi_client(app) as client:
        added = (await client.post(CREATE, json=body(1))).json()["id"]
    assert [r.get("id") for r in lines(tmp_path)][1:] == [kept, added]
    assert {t["id"] for t in restart(tmp_path, clock).state.sim.snapshot()["tasks"]} == {
        kept,
        added,
    }


def test_a_damaged_or_foreign_journal_is_refused_with_the_fix(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    restart(tmp_path, clock)
    with pytest.raises(ValueError, match=r"speed=100\.0: start the simulator with those"):
        restart(tmp_path, clock, speed=10.0)
    path = tmp_path / "simulator" / "journal.jsonl"
    path.write_text(path.read_text() + "garbage\n" + path.read_text())
    with pytest.raises(ValueError, match=r"journal.jsonl:2: not a journal record.*move it away"):
        restart(tmp_path, clock)


@pytest.mark.anyio
async def test_reset_starts_the_journal_afresh(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    async with asgi_client(restart(tmp_path, clock)) as client:
        await client.post(CREATE, json=BODY)
        await client.post("/_sim/reset")
    assert [r["type"] for r in lines(tmp_path)] == ["start"]
    assert restart(tmp_path, clock).state.sim.snapshot()["tasks"] == []


def test_from_json_takes_the_journal_as_a_path_string(tmp_path: Path) -> None:
    cfg = SimConfig.from_json({"speed": 100, "journal": str(tmp_path / "j.jsonl")})
    assert cfg.journal == tmp_path / "j.jsonl"


@pytest.mark.slow
def test_a_task_created_before_kill_9_is_there_in_the_next_process(tmp_path: Path) -> None:
    settings = {"speed": 1000, "journal": str(tmp_path / "journal.jsonl")}
    auth = {"Authorization": f"Bearer {DEFAULT_KEY}", "Idempotency-Key": IDEM}
    with serve_process(settings) as (url, proc):
        created = httpx.post(f"{url}{CREATE}", json=BODY, headers=auth, timeout=5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
    assert created.status_code == 200
    killed_at = time.monotonic()
    with serve_process(settings) as (url, _):
        task = httpx.get(f"{url}/v1/tasks/{created.json()['id']}", headers=auth, timeout=5)
        replay = httpx.post(f"{url}{CREATE}", json=BODY, headers=auth, timeout=5)
        state = httpx.get(f"{url}/_sim/state", timeout=5).json()
    assert time.monotonic() - killed_at > 0.113  # the 113 simulated seconds have passed
    assert task.status_code == 200 and task.json()["status"] == "completed"
    assert replay.json()["id"] == created.json()["id"]
    assert replay.headers["idempotency-replayed"] == "true"
    assert len(state["tasks"]) == 1
