"""Adaptive throughput benchmark (issue 13): `runner run` with default flags (``--rate auto``)
against a simulator that takes at most 10 creates per second and does not say so.

Measures, in one run of N distinct jobs (simulator ground truth):
- wall / (N / limit + one generation)       target <= 1.25
- 429s / creates                             target <= 5 %
- bodies paid twice                          target 0

Run:
  python benchmarks/bench_adaptive.py                  # 2,000 jobs, speed 100, 10/s
  python benchmarks/bench_adaptive.py --jobs 300       # a quick look
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


def write_arrivals(path: Path, arrivals: list[tuple[float, str]]) -> None:
    """Creates per wall second as the simulator saw them: second, accepted, turned away."""
    if not arrivals:
        return
    t0 = arrivals[0][0]
    per: dict[int, list[int]] = {}
    for wall, status in arrivals:
        row = per.setdefault(int(wall - t0), [0, 0])
        row[status == "429"] += 1
    lines = [f"{sec}\t{ok}\t{no}" for sec, (ok, no) in sorted(per.items())]
    path.write_text("second\taccepted\t429\n" + "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--limit", type=float, default=10.0, help="the simulator's creates/s")
    parser.add_argument("--speed", type=float, default=100.0)
    parser.add_argument("--burst", type=int, default=1, help="creates the limit lets come at once")
    parser.add_argument("--log", type=Path, help="keep runner's output here")
    parser.add_argument("--arrivals", type=Path, help="write create arrivals per second here")
    args = parser.parse_args()

    with simulator(args.speed, args.limit, args.burst) as url, tempfile.TemporaryDirectory() as tmp:
        exp = Path(tmp) / "bench.csv"
        experiment(exp, args.jobs)
        cmd = [sys.executable, "-m", "runner", "run", str(exp), "--base-url", url]
        cmd += ["--workspace", str(Path(tmp) / "ws")]
        out = open(args.log, "wb") if args.log else subprocess.DEVNULL  # noqa: SIM115
        load = os.getloadavg()
        start = time.monotonic()
        code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
        wall = time.monotonic() - start
        seen = truth(url)
    if args.arrivals:
        write_arrivals(args.arrivals, seen["arrivals"])
    gen = seen["median_generation_sim_s"] / args.speed
    bound = args.jobs / args.limit + gen
    result = {
        "jobs": args.jobs,
        "limit_per_s": args.limit,
        "burst": args.burst,
        "speed": args.speed,
        "exit": code,
        "wall_s": round(wall, 1),
        "bound_s": round(bound, 1),
        "wall_over_bound": round(wall / bound, 3),
        "creates": seen["creates"],
        "creates_429": seen["creates_429"],
        "share_429": round(seen["creates_429"] / max(seen["creates"], 1), 4),
        "tasks": seen["tasks"],
        "bodies_paid_twice": seen["bodies_paid_twice"],
        "task_reads": seen["task_reads"],
        "loadavg_before": load,
        "loadavg_after": os.getloadavg(),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
