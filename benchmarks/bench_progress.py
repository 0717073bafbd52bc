"""What the one truth for progress costs at scale: a synthetic run of N jobs (ledger rows
written directly: one attempt per job, a mix of states), then

- ``figures`` (the display's refresh: the count by state and the cached spent figure),
- ``Store.tally`` (status, summary.json, the end summary: the count and the money query),
- ``active_seconds`` (wall time over 200 stops and resumes, 5 events per job in the table),
- the display's cost per event in log mode and on a terminal (its refresh from the ledger at
  most once a second; output to /dev/null).

    python benchmarks/bench_progress.py [--jobs 100000]
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

from runner.review.summary import active_seconds  # noqa: E402
from runner.run import ledger as L  # noqa: E402
from runner.run.events import Event, figures  # noqa: E402
from runner.run.progress import Display  # noqa: E402

STATES = [L.DONE] * 90 + [L.FAILED] * 4 + [L.RUNNING] * 3 + [L.UNKNOWN, L.PENDING, L.EXPIRED]


def synthetic(ledger: L.Ledger, jobs: int) -> str:
    run_id = "bench-progress"
    now = time.time()
    with ledger.write() as db:
        db.execute(
            "INSERT INTO runs (run_id, name, experiment, tier, backend, config_json,"
            " dimensions_json, state, created_at, started_at) VALUES (?, 'b', 'b.csv', 'fast',"
            " 'sim', '{}', '{}', 'finished', ?, ?)",
            (run_id, now, now),
        )
        db.executemany(
            "INSERT INTO jobs (job_id, run_id, job_key, variant_key, tier, sample, model, mode,"
            " body_json, values_json, source, row, name, est_credits, state, credits,"
            " updated_at) VALUES (?, ?, ?, 'v', 'fast', 1, 'm', 't2v', '{}', '{}', 'b.csv', 1,"
            " 'n', 32.8, ?, 32.8, ?)",
            ((i, run_id, f"k{i}", STATES[i % len(STATES)], now) for i in range(1, jobs + 1)),
        )
        db.executemany(
            "INSERT INTO attempts (job_id, n, idempotency_key, outcome, started_at, est_credits,"
            " reserved, charged) VALUES (?, 1, ?, ?, ?, 32.8, 32.8, ?)",
            (
                (i, f"k{i}-1", "unknown" if i % 100 == 97 else "created", now, 32.8)
                for i in range(1, jobs + 1)
            ),
        )
        kinds = ["create_created", "note", "note", "note", "note"]
        db.executemany(
            "INSERT INTO events (run_id, job_id, at, kind, detail) VALUES (?, ?, ?, ?, NULL)",
            (
                (run_id, i // 5 + 1, now + i * 0.001, kinds[i % 5] if i % 2500 else "")
                for i in range(jobs * 5)
            ),
        )
        # 200 stretches at work: a start and a stop every 2,500 events
        db.execute(
            "UPDATE events SET kind = CASE WHEN (event_id / 2500) % 2 = 0 THEN 'run_running'"
            " ELSE 'run_stopped' END WHERE kind = ''"
        )
    return run_id


def best(fn: object, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, L.Ledger.open(Path(tmp)) as ledger:
        t = time.perf_counter()
        run_id = synthetic(ledger, args.jobs)
        print(f"ledger of {args.jobs:,} jobs written in {time.perf_counter() - t:.1f} s")
        fig = figures(ledger, run_id)
        print(f"figures: {fig.finished:,}/{fig.total:,} {fig.text()} {fig.credits:,.2f} credits")
        print(f"figures()        {best(lambda: figures(ledger, run_id)) * 1000:8.1f} ms")
        print(f"Store.tally()    {best(lambda: ledger.tally(run_id)) * 1000:8.1f} ms")
        print(f"active_seconds() {best(lambda: active_seconds(ledger, run_id)) * 1000:8.1f} ms")
        events = [Event("done", f"k{i}", "", 1.0) for i in range(args.jobs)]
        with open(os.devnull, "w") as null:
            display = Display(functools.partial(figures, ledger, run_id), null)
            t = time.perf_counter()
            with display:
                for event in events:
                    display(event)
            per = (time.perf_counter() - t) / len(events)
        print(f"display, log mode: {per * 1e6:.1f} us per event ({len(events):,} events)")
        with open(os.devnull, "w") as null:
            console = Console(file=null, force_terminal=True, width=80)
            display = Display(functools.partial(figures, ledger, run_id), console=console)
            t = time.perf_counter()
            with display:
                for event in events:
                    display(event)
            per = (time.perf_counter() - t) / len(events)
        print(f"display, terminal: {per * 1e6:.1f} us per event ({len(events):,} events)")


if __name__ == "__main__":
    main()
