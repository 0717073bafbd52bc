"""P12 (docs/reliability.md §7.2): a soak. 5,000 jobs in compressed time with 5 % mixed
faults on the create, task-read and file endpoints, the runner killed with SIGKILL every
3-5 simulated minutes and resumed until the run finishes by itself.

The simulator is served by uvicorn on 127.0.0.1 (a thread of this process) at ``--speed``
simulated seconds per wall second, with one pre-rendered clip for every task (its renderer
would otherwise take this 2-core machine's CPU), a fault plan drawn with probabilities from
its seed, and 1 % of tasks failing with a retryable ``service_error`` (the runner resubmits
those once). Just before each kill the runner process's RSS and open file descriptors are
sampled (psutil, the ``bench`` extra), and after it the ledger's WAL size. At the end the
simulator's ground truth must show no job paid twice beyond its allowed resubmit and no
silent loss (`killruns.verdict`).

Run:
  python benchmarks/bench_soak.py                      # 5,000 jobs
  python benchmarks/bench_soak.py --jobs 300           # a quick check
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from killruns import experiment, has_run, integrity, machine, spawn, stats, verdict, wal_bytes

from runner.simulator.app import SimConfig, create_app
from runner.simulator.faults import parse_plan
from runner.simulator.testing import serve
from runner.simulator.video import render_video


def fault_plan(share: float) -> list[dict[str, Any]]:
    """About ``share`` of the calls of each endpoint faulted, mixed kinds."""

    def each(endpoint: str, kinds: list[tuple[float, dict[str, Any]]]) -> list[dict[str, Any]]:
        total = sum(w for w, _ in kinds)
        out, left = [], 1.0
        for weight, fault in kinds:
            p = share * weight / total
            out.append({"endpoint": endpoint, "probability": min(1.0, p / left), **fault})
            left -= p  # a later fault is drawn only when the earlier ones did not fire
        return out

    return [
        *each(
            "create",
            [
                (2, {"kind": "respond", "status": 500, "processed": True}),  # created, 500
                (1, {"kind": "respond", "status": 503}),  # not created, 503
                (1, {"kind": "reset", "processed": True}),  # created, connection reset
                (1, {"kind": "hang", "processed": True}),  # created, no answer (1 s, dropped)
                (1, {"kind": "rate_limit", "retry_after": 2}),
                (
                    1,
                    {
                        "kind": "respond",
                        "status": 200,
                        "body": "<html>oops</html>",
                        "content_type": "text/html",
                        "processed": True,
                    },
                ),
            ],
        ),
        *each(
            "batch",
            [(3, {"kind": "respond", "status": 500}), (1, {"kind": "reset"})],
        ),
        *each(
            "task",
            [
                (2, {"kind": "respond", "status": 500}),
                (1, {"kind": "respond", "status": 404}),
                (1, {"kind": "patch", "json_body": {"status": "mystery"}}),
            ],
        ),
        *each(
            "file",
            [
                (2, {"kind": "truncate"}),
                (1, {"kind": "respond", "status": 503}),
                (1, {"kind": "expire"}),
                (
                    1,
                    {
                        "kind": "respond",
                        "status": 200,
                        "body": "<html>Checking</html>",
                        "content_type": "text/html",
                    },
                ),
            ],
        ),
    ]


def sample(proc: subprocess.Popen[bytes]) -> tuple[dict[str, float], list[psutil.Process]]:
    """RSS (MB) and open fds of the runner process, the RSS of its worker processes (video
    decoding), and those workers."""
    try:
        p = psutil.Process(proc.pid)
        children = p.children(recursive=True)
        rss = p.memory_info().rss / 2**20
        fds = p.num_fds()
        workers = sum(c.memory_info().rss for c in children) / 2**20
    except psutil.Error:
        return {}, []
    return {"rss_mb": rss, "fds": fds, "workers_mb": workers}, children


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            continue
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--speed", type=float, default=60.0, help="simulated s per wall s")
    parser.add_argument("--faults", type=float, default=0.05, help="share of calls faulted")
    parser.add_argument(
        "--kill-every",
        type=float,
        nargs=2,
        default=(3.0, 5.0),
        metavar=("MIN", "MAX"),
        help="simulated minutes between kills",
    )
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-cycles", type=int, default=5000)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(machine())
    clip = render_video(
        prompt="soak", duration=4, aspect_ratio="16:9", tier="fast", generate_audio=True
    )

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        exp, ws = experiment(folder / "soak.csv", args.jobs), folder / "ws"
        app = create_app(
            SimConfig(
                speed=args.speed,
                accept_any_key=True,
                seed=args.seed,
                video_source=lambda **_: clip,
                fail_rates={"service_error": 0.01},
                max_hang_seconds=1.0,
            )
        )
        app.sim.set_faults(parse_plan(fault_plan(args.faults)))
        with serve(app) as url:
            common: list[str | Path] = [
                "--workspace",
                ws,
                "--base-url",
                url,
                "--rate",
                str(args.rate),
                "--concurrency",
                str(args.concurrency),
                "--poll-rate",
                str(args.rate),
            ]
            started = time.monotonic()
            samples: list[dict[str, float]] = []
            wal: list[float] = []
            left: list[psutil.Process] = []  # workers of killed runners still running
            children: list[psutil.Process] = []
            leftovers: list[float] = []
            kills = cycles = 0
            bad: list[str] = []
            finished = False
            while not finished and cycles < args.max_cycles:
                cycles += 1
                proc = (
                    spawn("resume", "latest", *common)
                    if has_run(ws)
                    else spawn("run", exp, *common)
                )
                wait = rng.uniform(*args.kill_every) * 60 / args.speed
                children = []
                try:
                    proc.wait(wait)
                    finished = proc.returncode in (0, 1)  # the run ended by itself
                except subprocess.TimeoutExpired:
                    got, children = sample(proc)
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    kills += 1
                    if got:
                        samples.append(got)
                left = alive(left)  # workers of runners killed a cycle or more ago
                leftovers.append(len(left))
                left.extend(children)
                wal.append(wal_bytes(ws) / 2**20)
                check = integrity(ws)
                if check != "ok":
                    bad.append(check)
                if cycles % 25 == 0:
                    done = app.sim.snapshot()["requests"].get("file", {}).get("200", 0)
                    print(
                        f"  {cycles} cycles, {kills} kills, {done} files served, "
                        f"{time.monotonic() - started:.0f} s",
                        flush=True,
                    )
            wall = time.monotonic() - started
            result = verdict(ws, app, sha_every=10)
            truth = app.sim.snapshot()

    rss = stats([s["rss_mb"] for s in samples])
    fds = stats([s["fds"] for s in samples])
    walst = stats(wal)
    summary = {
        "jobs": args.jobs,
        "speed": args.speed,
        "cycles": cycles,
        "kills": kills,
        "finished": finished,
        "wall_s": round(wall, 1),
        "integrity_failures": len(bad),
        "faults_fired": len(truth["faults_fired"]),
        "requests": {e: sum(c.values()) for e, c in truth["requests"].items()},
        "rss_mb": {k: round(v, 1) for k, v in rss.items()},
        "fds": fds,
        "worker_rss_mb": {
            k: round(v, 1) for k, v in stats([s["workers_mb"] for s in samples]).items()
        },
        "wal_mb": {k: round(v, 2) for k, v in walst.items()},
        "workers_left_by_killed_runners": stats(leftovers),
        "rss_stable": bool(rss)
        and rss["last_quarter_median"] <= 1.25 * rss["first_quarter_median"],
        "fds_stable": bool(fds) and fds["last_quarter_median"] <= fds["first_quarter_median"] + 10,
        "wal_stable": bool(walst) and walst["max"] <= 64,
        "ok": result.ok and finished and not bad,
    }
    print(json.dumps(summary))
    print(result.line())
    for problem in result.problems[:20]:
        print("  problem:", problem)


if __name__ == "__main__":
    main()
