"""The simulator served by uvicorn in a process of its own, for the throughput benchmarks
(`bench_adaptive.py`, `bench_baseline.py`): one pre-rendered clip for every task (the
renderer would otherwise be the bottleneck of a 2-core machine), a create limit runner is
not told, and the ground truth (``GET /_sim/state``) read at the end."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx

CHILD = """
import sys, uvicorn
from runner.simulator.app import SimConfig, create_app
from runner.simulator.video import render_video
clip = render_video(prompt="benchmark clip", duration=4, aspect_ratio="16:9", tier="fast",
                    generate_audio=True)
app = create_app(SimConfig(speed=float(sys.argv[2]), create_rate=float(sys.argv[3]),
                           create_burst=int(sys.argv[4]), accept_any_key=True,
                           video_source=lambda **kw: clip))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", http="h11",
            loop="asyncio")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def simulator(speed: float, create_rate: float, burst: int = 1) -> Iterator[str]:
    """A simulator at ``speed`` turning away creates above ``create_rate`` per second (429
    with Retry-After; ``burst`` creates may come at once); yields its base URL."""
    port = free_port()
    args = [str(port), str(speed), str(create_rate), str(burst)]
    proc = subprocess.Popen([sys.executable, "-c", CHILD, *args])
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{url}/_sim/state", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait()


def truth(url: str) -> dict[str, Any]:
    """What the simulator saw: creates by answer, task reads, tasks, bodies paid twice."""
    state = httpx.get(f"{url}/_sim/state", timeout=120).json()
    requests = state["requests"]
    creates = requests.get("create", {})
    reads = sum(sum(requests.get(e, {}).values()) for e in ("task", "batch", "list"))
    tasks = state["tasks"]
    gen = sorted(t["generation_seconds"] for t in tasks)[len(tasks) // 2] if tasks else 0.0
    return {
        "creates": sum(creates.values()),
        "creates_429": creates.get("429", 0),
        "task_reads": reads,
        "api_requests": sum(creates.values()) + reads,
        "tasks": len(tasks),
        "bodies_paid_twice": sum(1 for n in state["creates_by_body"].values() if n > 1),
        "median_generation_sim_s": gen,
        "speed": state["speed"],
        "arrivals": [(a["wall"], a["status"]) for a in state["create_arrivals"]],
    }


def experiment(path: Any, jobs: int) -> None:
    """A CSV of ``jobs`` distinct 4 s 480p jobs on the fast tier."""
    takes = " | ".join(f"take {i}" for i in range(jobs))
    path.write_text(f'prompt,take,duration,quality\n"A lamp: {{{{ take }}}}",{takes},4,480p\n')
