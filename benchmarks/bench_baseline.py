"""Baseline benchmark (issue 13): runner against the script a developer would write
(`naive.py`), each on a fresh simulator of the same kind: speed 40, at most 10 creates a
second (runner is not told), the same 100 jobs and 20 in flight at most.

Measures, from the simulators' ground truth:
- runner wall / script wall                                        target <= 0.8
- runner API requests / script's (creates with retries + task reads; downloads apart)
                                                                    target <= 1/3
- bodies paid twice by runner                                       target 0

Run:
  python benchmarks/bench_baseline.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simserve import experiment, simulator, truth

HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--limit", type=float, default=10.0, help="the simulator's creates/s")
    parser.add_argument("--speed", type=float, default=40.0)
    parser.add_argument("--in-flight", type=int, default=20)
    parser.add_argument("--log", type=Path, help="keep runner's output here")
    args = parser.parse_args()
    load = os.getloadavg()

    with simulator(args.speed, args.limit) as url, tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, str(HERE / "naive.py"), "--base-url", url]
        cmd += ["--jobs", str(args.jobs), "--out", str(Path(tmp) / "videos")]
        start = time.monotonic()
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        script_wall = time.monotonic() - start
        script = {**json.loads(out), **truth(url)}

    with simulator(args.speed, args.limit) as url, tempfile.TemporaryDirectory() as tmp:
        exp = Path(tmp) / "bench.csv"
        experiment(exp, args.jobs)
        cmd = [sys.executable, "-m", "runner", "run", str(exp), "--base-url", url]
        cmd += ["--workspace", str(Path(tmp) / "ws"), "--concurrency", str(args.in_flight)]
        log = open(args.log, "wb") if args.log else subprocess.DEVNULL  # noqa: SIM115
        start = time.monotonic()
        code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
        runner_wall = time.monotonic() - start
        ours = truth(url)

    def side(seen: dict[str, object], wall: float) -> dict[str, object]:
        return {
            "wall_s": round(wall, 1),
            "api_requests": seen["api_requests"],
            "creates": seen["creates"],
            "creates_429": seen["creates_429"],
            "task_reads": seen["task_reads"],
            "tasks": seen["tasks"],
            "bodies_paid_twice": seen["bodies_paid_twice"],
        }

    result = {
        "jobs": args.jobs,
        "speed": args.speed,
        "limit_per_s": args.limit,
        "in_flight": args.in_flight,
        "median_generation_wall_s": round(float(ours["median_generation_sim_s"]) / args.speed, 2),
        "script": side(script, script_wall),
        "runner": {**side(ours, runner_wall), "exit": code},
        "wall_ratio": round(runner_wall / script_wall, 3),
        "requests_ratio": round(int(ours["api_requests"]) / max(int(script["api_requests"]), 1), 3),
        "loadavg_before": load,
        "loadavg_after": os.getloadavg(),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
