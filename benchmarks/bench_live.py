"""The live report's cost (issue 14): a synthetic run of N jobs (as bench_report.py makes
it), then live builds (`report.build(..., live=...)`, the page only) timed in CPU and wall,
and the share of one CPU the live writer takes with its rule (runner/review/live.py: wait
``max(interval(N), 9 × build CPU)`` between builds). Target: at most a tenth.

    python benchmarks/bench_live.py [--jobs 10000 50000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_report import synthetic_jobs  # noqa: E402

from runner.review import live, report  # noqa: E402
from runner.run import ledger as L  # noqa: E402
from tests.test_report_support import media_pool, write_run  # noqa: E402


def measure(count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        pool = media_pool(ws / "_pool", 12)
        write_run(ws, "bench", synthetic_jobs(count), pool_dir=ws / "_pool", pool=pool)
        cpu, wall = [], []
        for _ in range(3):
            with L.reader(ws) as store:
                c, w = time.process_time(), time.perf_counter()
                report.build(store, ws, "bench", live={"every": 30, "written": "now"})
                cpu.append(time.process_time() - c)
                wall.append(time.perf_counter() - w)
    build_cpu, build_wall = min(cpu), min(wall)
    wait = live.next_wait(live.interval(count), build_cpu)
    return {
        "jobs": count,
        "build_cpu": build_cpu,
        "build_wall": build_wall,
        "interval": live.interval(count),
        "wait": wait,
        "share": build_cpu / (wait + build_wall),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, nargs="+", default=[1000, 10000, 50000])
    for count in parser.parse_args().jobs:
        m = measure(count)
        print(
            f"{m['jobs']:>7,} jobs: live build {m['build_cpu']:.2f} s CPU ({m['build_wall']:.2f}"
            f" s wall), interval {m['interval']:.0f} s, wait {m['wait']:.0f} s,"
            f" share of one CPU {100 * m['share']:.1f} %"
        )


if __name__ == "__main__":
    main()
