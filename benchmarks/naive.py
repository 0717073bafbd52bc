"""The script a developer would write to render a batch (the baseline of issue 13).

httpx and anyio, a semaphore of 20 jobs in flight; each job creates its task (retrying
anything that is not a 200 after a short sleep), reads GET /v1/tasks/{id} every 5 s until
it ends, and downloads the video. No ledger, no idempotency key, no rate limit of its own.

Run:
  python benchmarks/naive.py --base-url http://127.0.0.1:8787 --jobs 100 --out /tmp/videos
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

MODEL = "seedance-2.0-fast-text-to-video"
POLL_SECONDS = 5.0
RETRY_SLEEP = 0.5
IN_FLIGHT = 20


async def render(
    http: httpx.AsyncClient, i: int, out: Path, sem: anyio.Semaphore, tally: dict[str, int]
) -> None:
    body = {"model": MODEL, "prompt": f"A lamp: take {i}", "duration": 4, "quality": "480p"}
    async with sem:
        while True:  # retry anything
            tally["creates"] += 1
            try:
                r = await http.post("/v1/videos/generations", json=body)
            except httpx.HTTPError:
                await anyio.sleep(RETRY_SLEEP)
                continue
            if r.status_code == 200:
                task_id = r.json()["id"]
                break
            await anyio.sleep(RETRY_SLEEP)
        while True:
            await anyio.sleep(POLL_SECONDS)
            tally["reads"] += 1
            try:
                task = (await http.get(f"/v1/tasks/{task_id}")).json()
            except (httpx.HTTPError, ValueError):
                continue
            if task.get("status") in ("completed", "failed", "cancelled"):
                break
        if task.get("status") != "completed":
            tally["failed"] += 1
            return
        video = await http.get(task["results"][0])
        (out / f"{i}.mp4").write_bytes(video.content)
        tally["done"] += 1


async def main_async(base_url: str, jobs: int, out: Path, key: str) -> dict[str, Any]:
    tally = {"creates": 0, "reads": 0, "done": 0, "failed": 0}
    sem = anyio.Semaphore(IN_FLIGHT)
    limits = httpx.Limits(max_connections=IN_FLIGHT * 2)
    headers = {"Authorization": f"Bearer {key}"}
    start = time.monotonic()
    async with (
        httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60, limits=limits) as http,
        anyio.create_task_group() as tg,
    ):
        for i in range(jobs):
            tg.start_soon(render, http, i, out, sem, tally)
    return {**tally, "wall_s": round(time.monotonic() - start, 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    key = os.environ.get("EVOLINK_API_KEY", "sk-naive-script")
    args.out.mkdir(parents=True, exist_ok=True)
    print(json.dumps(anyio.run(main_async, args.base_url, args.jobs, args.out, key)))


if __name__ == "__main__":
    main()
