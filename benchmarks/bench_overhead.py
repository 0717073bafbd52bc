"""Overhead benchmark (issue 13): what runner itself costs per job, against a zero-latency
simulator, and how big its main process gets.

Targets: runner CPU <= 5 ms per job, excluding video probing (which runs in a worker
process and is measured apart); main-process peak RSS <= 200 MB for a 100,000-job run.

The simulator runs in its own process (uvicorn, as in bench_run.py) with one pre-rendered
clip for every task and a very high speed, so generations finish at once: what is left is
runner's own work (plan into the ledger, creates, reads, downloads, ledger writes, report).

Measured:
- main-process CPU: /proc/<pid>/stat of the `runner run` process, sampled every 0.1 s
  (the last sample before it exits; the last < 0.1 s is lost, negligible at 10,000 jobs);
- all of runner's CPU: the runner process and its children (the probing worker) from
  getrusage; "excl. media" subtracts the measured cost of probing the clip, as bench_run.py;
- main-process peak RSS: VmHWM of /proc/<pid>/status (the kernel's high-water mark);
- with --profile, py-spy samples the main thread (100 a second, idle time left out; a
  SQLite commit's fsync counts as busy: it holds the event loop): the functions with the
  largest share of its busy samples, own and cumulative.

Run:
  python benchmarks/bench_overhead.py --jobs 10000
  python benchmarks/bench_overhead.py --jobs 100000 --stop-after 180   # dispatch, memory
  python benchmarks/bench_overhead.py --jobs 10000 --profile           # where the time goes
  python benchmarks/bench_overhead.py --report 100000                  # report and exports
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_run import CHILD, free_port, media_cpu_per_job  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float | None:
    """User + system CPU seconds of one process (not its children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def proc_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def write_experiment(path: Path, jobs: int) -> None:
    """A grid as users write them: one row whose prompt crosses three axes of the sidecar
    (10 moods x 100 scenes x jobs/1,000 takes), every job a distinct 4 s 480p text job."""
    takes = max(1, jobs // 1000)
    path.write_text(
        'prompt,duration,quality\n"A {{ mood }} desk lamp in {{ scene }}, take {{ take }}",4,480p\n'
    )

    def axis(name: str, n: int) -> str:
        return f"{name} = [" + ", ".join(f'"{name} {i}"' for i in range(n)) + "]\n"

    path.with_suffix(".toml").write_text(
        "[axes]\n" + axis("mood", 10) + axis("scene", 100) + axis("take", takes)
    )


def run_once(
    url: str, tmp: Path, jobs: int, stop_after: float, profile: Path | None
) -> dict[str, float]:
    exp = tmp / "bench.csv"
    write_experiment(exp, jobs)
    ws = tmp / "ws"
    cmd = [
        sys.executable,
        "-m",
        "runner",
        "run",
        str(exp),
        "--yes",
        "--base-url",
        url,
        "--workspace",
        str(ws),
        "--rate",
        "2000",
        "--concurrency",
        "500",
        "--poll-rate",
        "4000",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    spy = None
    if profile:
        spy = subprocess.Popen(
            [
                *("py-spy", "record", "--threads", "--pid", str(proc.pid)),
                *("--format", "raw", "-o", str(profile)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    main_cpu = hwm = 0.0
    interrupted = False
    while proc.poll() is None:
        cpu, peak = proc_cpu(proc.pid), proc_hwm_mb(proc.pid)
        main_cpu = cpu if cpu is not None else main_cpu
        hwm = peak if peak is not None else hwm
        if stop_after and not interrupted and time.monotonic() - start > stop_after:
            proc.send_signal(signal.SIGINT)
            interrupted = True
        time.sleep(0.1)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if spy is not None:
        spy.wait(60)
    state = httpx.get(f"{url}/_sim/state", timeout=120).json()
    created = len(state["tasks"])
    clip = next(ws.glob("2*/media/*.mp4"), None)
    media = media_cpu_per_job(clip) if clip else 0.0
    total = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    done = len(list(ws.glob("2*/media/*.mp4")))
    states = ledger_states(ws)
    return {
        "jobs": jobs,
        "created": created,
        "downloaded": done,
        "exit": proc.returncode,
        "wall_s": round(wall, 2),
        "main_cpu_s": round(main_cpu, 2),
        "main_cpu_ms_per_job": round(main_cpu / max(created, 1) * 1000, 3),
        "all_cpu_ms_per_job": round(total / max(created, 1) * 1000, 3),
        "media_cpu_ms_per_job": round(media * 1000, 2),
        "all_cpu_ms_per_job_excl_media": round((total - media * done) / max(created, 1) * 1000, 3),
        "states": states,
        "main_peak_rss_mb": round(hwm, 1),
        "children_peak_rss_mb": round(after.ru_maxrss / 1024, 1),
        "loadavg": Path("/proc/loadavg").read_text().split()[0],
    }


def ledger_states(ws: Path) -> dict[str, int]:
    import sqlite3

    db = sqlite3.connect(f"file:{ws / 'ledger.sqlite'}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())
    finally:
        db.close()


def profile_summary(path: Path, top: int = 25) -> None:
    """py-spy's collapsed stacks as the share of busy samples per function: own (the
    function itself on top of the stack) and cumulative (anywhere on it)."""
    own: dict[str, int] = {}
    cumulative: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        if "MainThread" not in frames[0] or len(frames) < 2:  # workers wait on queues
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in frames[1:]]
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            cumulative[frame] = cumulative.get(frame, 0) + n
    print(f"\n{total:,} busy samples of the main thread (waits on fsync included)")
    for title, table in (("own", own), ("cumulative", cumulative)):
        print(f"-- top {top} by {title} share --")
        for name, n in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
            print(f"{100 * n / total:5.1f} %  {name}")


def _short(frame: str) -> str:
    """``func (path/to/module.py:123)`` as ``func (module.py)``."""
    name, _, where = frame.partition(" (")
    return f"{name} ({Path(where.split(':')[0]).name})"


def serve(speed: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    sim = subprocess.Popen([sys.executable, "-c", CHILD, str(port), str(speed)])
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(f"{url}/_sim/state", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return sim, url


def report_figures(count: int) -> None:
    """report.build on a synthetic ledger of ``count`` jobs (bench_report.py's), in a child
    process so that peak RSS is the report's own (VmHWM: ru_maxrss would carry over the
    forking parent's, which built the synthetic jobs). The tables worker's peak is not
    comparable for the same reason (it is at least the child's)."""
    from benchmarks.bench_report import synthetic_jobs
    from tests.test_report_support import media_pool, write_run

    ws = Path(tempfile.mkdtemp(prefix="bench-overhead-report-"))
    try:
        pool = media_pool(ws / "_pool", 12)
        t = time.perf_counter()
        write_run(ws, "bench", synthetic_jobs(count), pool_dir=ws / "_pool", pool=pool)
        print(f"synthetic ledger of {count:,} jobs written in {time.perf_counter() - t:.1f} s")
        code = (
            "import resource, sys, time\n"
            "from pathlib import Path\n"
            "from runner.review import report\n"
            "from runner.run import ledger as L\n"
            "ws = Path(sys.argv[1])\n"
            "t = time.perf_counter(); c = time.process_time()\n"
            "with L.reader(ws) as store:\n"
            "    report.build(store, ws, 'bench')\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
            "worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
            "print(f'report.build: {time.perf_counter() - t:.2f} s wall, '\n"
            "      f'{time.process_time() - c:.2f} s CPU, main-process peak RSS '\n"
            "      f'{int(hwm.split()[1]) / 1024:.0f} MB (tables worker: {worker:.0f} MB)')\n"
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, "-c", code, str(ws)], check=True, env=env)
        for f in sorted((ws / "bench").glob("*.*")):
            print(f"  {f.name}: {f.stat().st_size / 1e6:.1f} MB")
    finally:
        shutil.rmtree(ws, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument(
        "--speed",
        type=float,
        default=100.0,
        help="simulator speed (results expire after 86,400 simulated s)",
    )
    parser.add_argument("--stop-after", type=float, default=0.0, help="Ctrl-C after seconds")
    parser.add_argument(
        "--profile", action="store_true", help="sample the main process with py-spy"
    )
    parser.add_argument("--report", type=int, default=0, help="only the report, N jobs")
    args = parser.parse_args()
    if args.report:
        report_figures(args.report)
        return
    sim, url = serve(args.speed)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            prof = (
                Path(tempfile.gettempdir()) / "bench_overhead.pyspy.txt" if args.profile else None
            )
            result = run_once(url, Path(tmp), args.jobs, args.stop_after, prof)
            print(json.dumps(result, indent=1))
            if prof and prof.exists():
                profile_summary(prof)
    finally:
        sim.terminate()
        sim.wait()


if __name__ == "__main__":
    main()
