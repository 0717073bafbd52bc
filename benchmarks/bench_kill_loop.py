"""P1 (docs/reliability.md §7.2): kill -9 at random instants, over and over, then resume.

The simulator is served by uvicorn on 127.0.0.1 (in a thread of this process; it renders
every task's own video). A 300-job experiment: `runner run`, then `runner resume` again and
again, each process killed with SIGKILL after a random U(0.1, 3) s, until ``--kills`` kills;
then one last resume to its end. The create rate (1/s by default) spreads the work over
the kills, so most of them land while jobs are still being created, polled or downloaded.
After every kill the ledger's ``PRAGMA integrity_check`` (read-only) must be ok; at the
end the simulator's ground truth must show at most one task per job (nothing paid twice),
every job done or reported (nothing lost), and every done file's sha256 equal to the
simulator's video.

Run:
  python benchmarks/bench_kill_loop.py                 # 300 jobs, 200 kills
  python benchmarks/bench_kill_loop.py --kills 20      # a quick check
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from killruns import experiment, has_run, integrity, jobs, machine, spawn, verdict

from runner.simulator.app import SimConfig, create_app
from runner.simulator.testing import serve


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--speed", type=float, default=50.0, help="simulated s per wall s")
    parser.add_argument("--rate", type=float, default=1.0, help="the runner's creates per s")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(machine())

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        exp, ws = experiment(folder / "kill.csv", args.jobs), folder / "ws"
        app = create_app(
            SimConfig(
                speed=args.speed,
                accept_any_key=True,
                seed=args.seed,
                video_cache_dir=folder / "videos",
            )
        )
        with serve(app) as url:
            common: list[str | Path] = [
                "--workspace",
                ws,
                "--base-url",
                url,
                "--rate",
                str(args.rate),
            ]
            started = time.monotonic()
            proc = spawn("run", exp, *common)
            kills = 0
            exits: Counter[int | None] = Counter()  # exit codes of those that ended first
            busy = 0  # kills while some job was not done yet
            bad: list[str] = []
            while kills < args.kills:
                wait = rng.uniform(0.1, 3.0)
                try:
                    proc.wait(wait)
                    exits[proc.returncode] += 1  # ended by itself before its kill
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    kills += 1
                    busy += has_run(ws) and any(j["state"] != "done" for j in jobs(ws))
                check = integrity(ws)
                if check != "ok":
                    bad.append(check)
                if proc.returncode == -signal.SIGKILL and kills % 20 == 0:
                    print(f"  {kills} kills, {time.monotonic() - started:.0f} s", flush=True)
                # killed before the run was recorded: `runner run` again, else resume it
                proc = (
                    spawn("resume", "latest", *common)
                    if has_run(ws)
                    else spawn("run", exp, *common)
                )
            loop_wall = time.monotonic() - started
            proc.wait()  # the last resume, to its end
            final = spawn("resume", "latest", *common)  # and one more: held creates settle
            final.wait()
            wall = time.monotonic() - started
            result = verdict(ws, app)

    summary = {
        "jobs": args.jobs,
        "kills": kills,
        "kills_with_work_left": busy,
        "exited_before_kill": dict(exits),
        "integrity_failures": len(bad),
        "loop_wall_s": round(loop_wall, 1),
        "total_wall_s": round(wall, 1),
        "last_exit_codes": [proc.returncode, final.returncode],
        "ok": result.ok and not bad,
    }
    print(json.dumps(summary))
    print(result.line())
    for problem in result.problems[:20]:
        print("  problem:", problem)


if __name__ == "__main__":
    main()
