"""Synthetic runs for the report's tests and benchmark (no test functions here).

Writing ledger rows directly is much faster than rendering: a 10,000-job run takes about a
second. The videos are real (the simulator's renderer, then our poster and strip
extraction), a small pool of them shared by every job of a run, so that browsers really
play and seek them.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from runner.grid.pricing import default_prices
from runner.models import text_hash
from runner.run import ledger as L
from runner.run.probe import make_poster, make_strip
from runner.simulator.video import render_video

# A corpus of hostile text: markup, attribute breaking, script ends, line separators,
# bidi overrides, template syntax and a long string.
HOSTILE = [
    "<script>window.__xss=1;alert(1)</script>",
    '"><img src=x onerror="window.__xss=2;alert(2)">',
    "</script><script>window.__xss=3</script>",
    "'><svg/onload=alert(4)>",
    "line\u2028separator\u2029paragraph",
    "\u202egnp.exe evil RTL override",
    "{{ 7*7 }} {% raw %}jinja{% endraw %}",
    "javascript:alert(5)",
    "A & B < C > D \" ' `",
    "x" * 10_000,
]


@dataclass
class FakeJob:
    """One job row; everything not given gets a plausible value."""

    values: dict[str, str]
    prompt: str
    name: str = "row"
    state: str = L.DONE
    sample: int = 1
    error_code: str | None = None
    error_message: str | None = None
    credits: float | None = None
    latency: float = 110.0
    media: int | None = 0  # index into the media pool; None: no file
    parent_job_key: str | None = None
    variant_key: str | None = None
    duration: int = 5
    quality: str = "720p"
    aspect_ratio: str = "16:9"
    mismatches: list[str] = field(default_factory=list)

    def variant(self) -> str:
        return self.variant_key or text_hash(
            json.dumps([self.prompt, sorted(self.values.items()), self.duration, self.quality])
        )

    def job_key(self, tier: str) -> str:
        return f"{self.variant()}-{tier}-{self.sample}"


def media_pool(cache: Path, count: int = 4) -> list[dict[str, object]]:
    """``count`` real MP4s with posters and strips in ``cache`` (made once per folder)."""
    cache.mkdir(parents=True, exist_ok=True)
    looks = [("16:9", "fast"), ("9:16", "fast"), ("1:1", "standard"), ("16:9", "standard")]
    pool = []
    for i in range(count):
        aspect, tier = looks[i % len(looks)]
        stem = f"pool-{i}"
        video = cache / f"{stem}.mp4"
        if not video.is_file():
            video.write_bytes(
                render_video(
                    prompt=f"pool video {i}",
                    duration=4,
                    aspect_ratio=aspect,
                    tier=tier,
                    generate_audio=True,
                )
            )
            make_poster(video, cache / f"{stem}.jpg")
            make_strip(video, cache / f"{stem}.strip.jpg")
        w, h = {"16:9": (160, 90), "9:16": (90, 160), "1:1": (128, 128)}[aspect]
        pool.append({"stem": stem, "width": w, "height": h, "fps": 8.0 if tier == "fast" else 12.0})
    return pool


def write_run(
    workspace: Path,
    run_id: str,
    jobs: Sequence[FakeJob],
    *,
    pool_dir: Path,
    pool: Sequence[dict[str, object]],
    tier: str = "fast",
    backend: str = "sim",
    name: str | None = None,
    experiment: str = "experiments/demo.csv",
    dimensions: dict[str, list[str]] | None = None,
    parent_run: str | None = None,
    stop_reason: str | None = None,
    state: str = "finished",
) -> None:
    """Record a finished run and its jobs in ``workspace``'s ledger, the way the pipeline
    leaves them (states, credits, money entries, media files and their probe)."""
    media = workspace / run_id / "media"
    media.mkdir(parents=True, exist_ok=True)
    used = {j.media for j in jobs if j.media is not None}
    for i in used:
        stem = str(pool[i]["stem"])
        for suffix in (".mp4", ".jpg", ".strip.jpg"):
            if not (media / f"{stem}{suffix}").exists():
                shutil.copy2(pool_dir / f"{stem}{suffix}", media / f"{stem}{suffix}")
    if dimensions is None:
        dimensions = {}
        for job in jobs:
            for k, v in job.values.items():
                seen = dimensions.setdefault(k, [])
                if v not in seen:
                    seen.append(v)
        dimensions = {k: v for k, v in dimensions.items() if len(v) > 1}
    prices = default_prices()
    now = time.time()
    with L.Ledger.open(workspace) as ledger, ledger.write() as db:
        db.execute(
            "INSERT INTO runs (run_id, name, experiment, tier, backend, base_url, parent_run,"
            " config_json, dimensions_json, budget, state, created_at, started_at, finished_at,"
            " exit_code, stop_reason) VALUES (?, ?, ?, ?, ?, NULL, ?, '{}', ?, NULL, ?, ?, ?, ?,"
            " 0, ?)",
            (
                run_id,
                name or run_id,
                experiment,
                tier,
                backend,
                parent_run,
                json.dumps(dimensions, ensure_ascii=False),
                state,
                now - 900,
                now - 880,
                now - 20,
                stop_reason,
            ),
        )
        rows = []
        money = []
        for n, job in enumerate(jobs, start=1):
            key = job.job_key(tier)
            body = {
                "prompt": job.prompt,
                "duration": job.duration,
                "quality": job.quality,
                "aspect_ratio": job.aspect_ratio,
                "generate_audio": True,
                "content_filter": True,
                "model_params": {"web_search": False},
                "model": f"seedance-2.0-{'' if tier == 'standard' else tier + '-'}text-to-video",
            }
            estimate = prices.estimate(tier, job.quality, job.duration)
            paid = job.state not in (L.REJECTED, L.PENDING)
            credits = job.credits if job.credits is not None else (estimate if paid else None)
            file_path = media_json = None
            if job.media is not None and job.state == L.DONE:
                info = pool[job.media]
                stem = str(info["stem"])
                file_path = f"{run_id}/media/{stem}.mp4"
                media_json = json.dumps(
                    {
                        "duration": 4.0,
                        "width": info["width"],
                        "height": info["height"],
                        "fps": info["fps"],
                        "has_audio": True,
                        "codec": "h264",
                        "poster": f"{stem}.jpg",
                        "strip": f"{stem}.strip.jpg",
                        "mismatches": job.mismatches,
                    }
                )
            submitted = now - 800 + n * 0.01
            completed = submitted + job.latency if job.state in (L.DONE, L.EXPIRED) else None
            rows.append(
                (
                    run_id,
                    key,
                    job.variant(),
                    tier,
                    job.sample,
                    body["model"],
                    "text",
                    json.dumps(body, ensure_ascii=False),
                    json.dumps(list(job.values.items()), ensure_ascii=False),
                    "demo.csv",
                    n,
                    job.name,
                    job.parent_job_key,
                    estimate,
                    job.state,
                    f"task-{run_id}-{n}" if paid else None,
                    credits,
                    1,
                    submitted,
                    completed,
                    file_path,
                    media_json,
                    job.error_code,
                    job.error_message,
                    now,
                )
            )
            if job.state == L.UNKNOWN:
                money.append((run_id, n, "unknown", estimate, None, now))
            elif credits:
                money.append((run_id, n, "created", estimate, credits, now))
        db.executemany(
            "INSERT INTO jobs (run_id, job_key, variant_key, tier, sample, model, mode,"
            " body_json, values_json, source, row, name, parent_job_key, est_credits, state,"
            " task_id, credits, attempts, submitted_at, completed_at, file_path, media_json,"
            " error_code, error_message, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        first = db.execute("SELECT MIN(job_id) FROM jobs WHERE run_id = ?", (run_id,)).fetchone()[0]
        db.executemany(
            "INSERT INTO attempts (job_id, n, idempotency_key, outcome, started_at,"
            " est_credits, reserved) VALUES (?, 1, ?, ?, ?, ?, ?)",
            [
                (first + n - 1, f"{r}-{n}-1", outcome, at, est, reserved)
                for r, n, outcome, est, reserved, at in money
            ],
        )


def grid_jobs(
    names: Iterable[str],
    styles: Iterable[str],
    ratios: Iterable[str],
    *,
    repeats: int = 1,
    media: int = 4,
) -> list[FakeJob]:
    """Every combination of name × style × aspect_ratio, ``repeats`` samples each."""
    out = []
    i = 0
    for name in names:
        for style in styles:
            for ratio in ratios:
                for sample in range(1, repeats + 1):
                    prompt = f"{style} shot of {name} on a walnut desk, soft light"
                    out.append(
                        FakeJob(
                            values={"name": name, "style": style, "aspect_ratio": ratio},
                            prompt=prompt,
                            name=name,
                            sample=sample,
                            aspect_ratio=ratio,
                            media=i % media,
                            latency=90 + (i * 7) % 80,
                        )
                    )
                    i += 1
    return out
