"""The run's report folder: ``index.html`` (Jinja templates, autoescaped), ``results.parquet``
and ``results.csv`` beside ``media/``. Built from a read-only ledger connection."""

from __future__ import annotations

import json
import sqlite3
import statistics
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from . import ledger as L
from .pricing import default_prices
from .results import result_rows
from .tables import write_table

_REPO_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def template_dirs(extra: Path | None = None) -> list[Path]:
    """User templates first (agency overrides), then the shipped ones."""
    shipped = Path(str(resources.files("runner").joinpath("_templates")))
    dirs = [d for d in (extra, shipped, _REPO_TEMPLATES) if d is not None and d.is_dir()]
    return dirs


def environment(extra: Path | None = None) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(d) for d in template_dirs(extra)]),
        autoescape=True, undefined=jinja2.StrictUndefined,
    )


def build(conn: sqlite3.Connection, workspace: Path, run_id: str,
          templates: Path | None = None) -> Path:
    """Write the report of ``run_id``; returns the path of its index.html."""
    folder = workspace / run_id
    folder.mkdir(parents=True, exist_ok=True)
    rows = result_rows(conn, run_id)
    if rows:
        write_table(rows, folder / "results.parquet")
        write_table(rows, folder / "results.csv")
    context = summary(conn, run_id, rows)
    html = environment(templates).get_template("report.html").render(r=context)
    out = folder / "index.html"
    tmp = out.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    return out


def summary(conn: sqlite3.Connection, run_id: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    run = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    latencies = sorted(r["latency_s"] for r in rows if r["latency_s"] is not None)
    credits = L.spent(conn, run_id)
    held = [r for r in rows if r["state"] == L.UNKNOWN]
    started, ended = run["started_at"], run["finished_at"]
    return {
        "run_id": run_id, "name": run["name"], "experiment": run["experiment"],
        "tier": run["tier"], "backend": run["backend"], "simulated": run["backend"] == "sim",
        "total": len(rows), "counts": counts, "credits": credits,
        "usd": default_prices().usd(credits),
        "wall": _duration(ended - started) if started and ended else "-",
        "p50": _duration(_quantile(latencies, 0.5)), "p95": _duration(_quantile(latencies, 0.95)),
        "stop_reason": run["stop_reason"], "held": len(held),
        "held_credits": sum(r["estimated_credits"] for r in held),
        "dimensions": [d for d in json.loads(run["dimensions_json"]) if d != "name"],
        "jobs": [_card(r) for r in rows],
    }


def _card(row: dict[str, Any]) -> dict[str, Any]:
    media = "media/"
    return {
        "name": row["name"], "prompt": row["prompt"], "state": row["state"],
        "error": f"{row['error_code']}: {row['error_message']}" if row["error_code"] else "",
        "credits": f"{row['credits']:.2f}" if row["credits"] is not None else "-",
        "latency": _duration(row["latency_s"]),
        "dims": {k[4:]: v for k, v in row.items() if k.startswith("dim_")},
        "video": media + Path(row["file"]).name if row["file"] else None,
        "poster": media + row["poster"] if row["poster"] else None,
    }


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m {secs:02d}s" if minutes < 90 else f"{minutes // 60}h {minutes % 60:02d}m"
