"""Dispatch benchmark (issue 4): `runner run` against the simulator served in its own process.

Measures, for N distinct jobs at create rate R:
- wall time / (N/R + one generation latency)          target <= 1.10 at N = 2,000
- task queries per job (simulator ground truth)       target <= 2.5
- runner CPU per job, excluding video probing          target <= 2 ms
- peak RSS of the runner process                       target <= 200 MB at N = 100,000

The simulator serves one pre-rendered clip for every task (its renderer would otherwise be
the bottleneck of this 2-core machine: this measures the runner, not the encoder). Video
probing (PyAV probe, poster, frame strip) is measured separately on that clip and subtracted.

Run:
  python benchmarks/bench_run.py --jobs 2000 --rate 40
  python benchmarks/bench_run.py --jobs 100000 --rate 200 --stop-after 90   # memory
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

CHILD = """
import sys, uvicorn
from runner.simulator.app import SimConfig, create_app
from runner.simulator.video import render_video
clip = render_video(prompt="benchmark clip", duration=4, aspect_ratio="16:9", tier="fast",
                    generate_audio=True)
app = create_app(SimConfig(speed=float(sys.argv[2]), accept_any_key=True,
                           video_source=lambda **kw: clip))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", http="h11",
            loop="asyncio")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def media_cpu_per_job(clip: Path, rounds: int = 20) -> float:
    from runner.run.probe import media_info

    start = time.process_time()
    for _ in range(rounds):
        media_info(str(clip), 4, "16:9", True)
    return (time.process_time() - start) / rounds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=40.0)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--speed", type=float, default=100.0)
    parser.add_argument(
        "--stop-after",
        type=float,
        default=0.0,
        help="send Ctrl-C after this many seconds (memory runs)",
    )
    args = parser.parse_args()

    port = free_port()
    sim = subprocess.Popen([sys.executable, "-c", CHILD, str(port), str(args.speed)])
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{url}/_sim/state", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        with tempfile.TemporaryDirectory() as tmp:
            exp = Path(tmp) / "bench.csv"
            takes = " | ".join(f"take {i}" for i in range(args.jobs))
            exp.write_text(
                f'prompt,take,duration,quality\n"A lamp: {{{{ take }}}}",{takes},4,480p\n'
            )
            cmd = [
                sys.executable,
                "-m",
                "runner",
                "run",
                str(exp),
                "--base-url",
                url,
                "--workspace",
                str(Path(tmp) / "ws"),
                "--rate",
                str(args.rate),
                "--concurrency",
                str(args.concurrency),
                "--poll-rate",
                str(args.rate * 2),
            ]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.monotonic()
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if args.stop_after:
                try:
                    proc.wait(args.stop_after)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGINT)
            proc.wait()
            wall = time.monotonic() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            state = httpx.get(f"{url}/_sim/state", timeout=60).json()
            clip = next((Path(tmp) / "ws").glob("2*/media/*.mp4"), None)
            media = media_cpu_per_job(clip) if clip else 0.0
    finally:
        sim.terminate()
        sim.wait()

    tasks = state["tasks"]
    created = len(tasks)
    gen = sorted(t["generation_seconds"] for t in tasks)[len(tasks) // 2] / args.speed
    bound = created / args.rate + gen
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    queries = sum(state["requests"].get("task", {}).values())
    result = {
        "jobs": args.jobs,
        "created": created,
        "rate": args.rate,
        "exit": proc.returncode,
        "wall_s": round(wall, 2),
        "bound_s": round(bound, 2),
        "wall_over_bound": round(wall / bound, 3),
        "queries_per_job": round(queries / max(created, 1), 3),
        "runner_cpu_ms_per_job": round(cpu / max(created, 1) * 1000, 3),
        "media_cpu_ms_per_job": round(media * 1000, 2),
        "runner_cpu_ms_per_job_excl_media": round((cpu / max(created, 1) - media) * 1000, 3),
        "peak_rss_mb": round(after.ru_maxrss / 1024, 1),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
