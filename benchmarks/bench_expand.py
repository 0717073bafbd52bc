"""Expand a 1,000,000-job grid and report wall time and peak memory.

Target (issue 2): <= 10 s and <= 1 GB on the 2-core CI machine.
The grid: one row per product (10 rows) with a prompt template using 3 variables, crossed
(sidecar [axes] and multi-valued cells) to 10 x 10 x 10 x 10 x 10 = 100,000 variants x 10
repeats... no: repeats do not multiply work per variant, so the grid has 1,000,000 distinct
variants (10 rows x 100 x 10 x 10 x 10) and 1 sample each.

Run:  python benchmarks/bench_expand.py [--jobs 1000000]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from runner.grid.plan import make_plan


def write_grid(folder: Path, rows: int) -> Path:
    scenes = " | ".join(f"scene {i}" for i in range(100))
    moods = " | ".join(f"mood {i}" for i in range(10))
    lines = ["name,prompt,product,scene,mood,duration"]
    for r in range(rows):
        lines.append(
            f'row{r},"A {{{{ mood }}}} shot of the {{{{ product }}}} in {{{{ scene }}}}, '
            f'take {{{{ take }}}}",product {r},{scenes},{moods},4 | 5 | 6 | 7 | 8 | 9 | 10 | 11 '
            f"| 12 | 13"
        )
    path = folder / "million.csv"
    path.write_text("\n".join(lines) + "\n")
    (folder / "million.toml").write_text(
        "[axes]\ntake = [" + ", ".join(f'"t{i}"' for i in range(10)) + "]\n"
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1_000_000)
    args = parser.parse_args()
    rows = max(1, args.jobs // (100 * 10 * 10 * 10))
    with tempfile.TemporaryDirectory() as tmp:
        path = write_grid(Path(tmp), rows)
        start = time.perf_counter()
        plan = make_plan(path, "fast")
        elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"jobs={plan.job_count:,} variants={len(plan.expansion.variants):,} "
        f"expand+plan={elapsed:.2f}s peak_rss={peak_mb:.0f}MB python={sys.version.split()[0]}"
    )


if __name__ == "__main__":
    main()
