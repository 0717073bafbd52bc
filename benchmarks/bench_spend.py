"""`runner spend` over a synthetic ledger: 10 runs of 10,000 jobs (100,000 paid attempts),
tagged with 3 clients; wall time of each grouping (it reads the ledger with one grouped query).

Run:  python benchmarks/bench_spend.py [--runs 10] [--jobs 10000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from runner.grid.pricing import prices_for
from runner.review.spend import BY, spend
from runner.run.ledger import connect, migrate, reader


def synthetic(ws: Path, runs: int, jobs: int) -> None:
    conn = connect(ws / "ledger.sqlite")
    migrate(conn)
    conn.execute("BEGIN")
    for r in range(runs):
        run_id = f"run{r}"
        conn.execute(
            "INSERT INTO runs (run_id, name, experiment, tier, backend, config_json,"
            " dimensions_json, state, created_at) VALUES (?, ?, 'x', 'fast', 'sim', '{}', '{}',"
            " 'finished', 0)",
            (run_id, run_id),
        )
        conn.execute("INSERT INTO run_tags VALUES (?, 'client', ?)", (run_id, f"c{r % 3}"))
        for j in range(jobs):
            cur = conn.execute(
                "INSERT INTO jobs (run_id, job_key, variant_key, tier, sample, model, mode,"
                " body_json, values_json, source, row, name, est_credits, state, updated_at)"
                " VALUES (?, ?, 'v', 'fast', 1, 'm', 't', '{}', '[]', 's', 1, 'n', 10, 'done', 0)",
                (run_id, f"k{j}"),
            )
            conn.execute(
                "INSERT INTO attempts (job_id, n, idempotency_key, outcome, started_at,"
                " est_credits, reserved, charged) VALUES (?, 1, 'k', 'created', ?, 10, 10, 9.5)",
                (cur.lastrowid, 1.79e9 + j * 30),
            )
    conn.execute("COMMIT")
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        ws = Path(folder)
        synthetic(ws, args.runs, args.jobs)
        prices = prices_for(ws)
        with reader(ws) as store:
            for by in BY:
                start = time.perf_counter()
                result = spend(store, prices, by)
                took = time.perf_counter() - start
                print(f"--by {by:<6} {took:6.3f} s  {result.total.attempts:,} attempts")


if __name__ == "__main__":
    main()
