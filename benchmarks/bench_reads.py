"""Task reads per job: how many HTTP requests to task-read endpoints a run makes, with
EvoLink's batch read and without it (single ``GET /v1/tasks/{id}``).

Target (issue 10): <= 0.3 task-read requests per job with batch reads, <= 2.5 without, on a
2,000-job run. The run is the real dispatcher against the simulator in process, on a virtual
clock (no real sleeping: simulated generation times of about two minutes, the default create
50 tasks in flight); the counts are the simulator's, not the runner's.

Run:  python benchmarks/bench_reads.py [--jobs 2000]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import stamina

from runner.grid.plan import make_plan
from runner.providers.evolink import EvoLink
from runner.run import ledger as L
from runner.run import runs
from runner.run.backend import choose
from runner.run.clock import VirtualClock
from runner.run.dispatch import Dispatcher, Settings
from runner.simulator.app import SimConfig, create_app
from runner.simulator.config import DEFAULT_KEY
from runner.simulator.faults import parse_plan
from runner.simulator.video import render_video

API = "http://sim.bench"
FILES = "http://files.sim.bench"


async def one_run(folder: Path, jobs: int, batch: bool) -> dict[str, Any]:
    grid = folder / "grid.csv"
    takes = " | ".join(f"take {i}" for i in range(jobs))
    grid.write_text(f'prompt,take,duration\n"A lamp on a desk: {{{{ take }}}}",{takes},4\n')
    video = render_video(
        prompt="bench", duration=4, aspect_ratio="16:9", tier="fast", generate_audio=True
    )
    clock = VirtualClock()
    app = create_app(
        SimConfig(accept_any_key=True, video_source=lambda **_: video, file_origin=FILES),
        clock=clock,
    )
    if not batch:  # a gateway without the batch read: the runner falls back to single reads
        app.sim.set_faults(parse_plan([{"endpoint": "batch", "kind": "respond", "status": 404}]))
    transport = httpx.ASGITransport(app=app)
    ws = folder / "ws"
    plan = make_plan(grid)
    with L.Ledger.open(ws) as ledger:
        run_id, _ = runs.create(
            ledger, plan, choose("sim", None, ws), Settings(), name="bench", reuse=False
        )
        # The rate limiters sleep in real time (aiolimiter), not on the virtual clock, which
        # would run ahead while they sleep: rates too high to ever sleep keep the two apart.
        # 50 tasks in flight is then what bounds the reads, as at the default 2 creates/s
        # against 2-minute tasks (they fill the 50 slots in 25 s either way).
        settings = Settings(trusted_origins=(API, FILES), rate=1e6, poll_rate=1e6)
        async with (
            httpx.AsyncClient(base_url=API, transport=transport) as http,
            httpx.AsyncClient(transport=transport) as files,
        ):
            dispatcher = Dispatcher(
                ledger,
                run_id,
                EvoLink(http, DEFAULT_KEY),
                files,
                ws / run_id / "media",
                settings,
                clock=clock,
            )
            started = time.perf_counter()
            with stamina.set_testing(True, attempts=20):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(clock.drive)
                    await dispatcher.run()
                    tg.cancel_scope.cancel()
            wall = time.perf_counter() - started
        counts = dict(ledger.tally(run_id).states)
    requests = app.sim.snapshot()["requests"]
    reads = sum(sum(requests.get(e, {}).values()) for e in ("task", "batch"))
    return {
        "counts": counts,
        "reads": reads,
        "per_job": reads / jobs,
        "wall": wall,
        "requests": requests,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d')} {platform.processor() or platform.machine()}")
    for batch in (True, False):
        with tempfile.TemporaryDirectory() as tmp:
            result = anyio.run(one_run, Path(tmp), args.jobs, batch)
        label = "batch reads" if batch else "single reads"
        print(
            f"{label}: {args.jobs} jobs {result['counts']}; {result['reads']} task-read "
            f"requests = {result['per_job']:.3f} per job; {result['wall']:.1f} s wall"
        )
        print("  requests by endpoint:", result["requests"])


if __name__ == "__main__":
    main()
