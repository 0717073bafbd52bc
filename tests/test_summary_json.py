"""Every run leaves ``summary.json`` beside its report: counts, credits as the provider's books
say, wall time, stop reason and the command that goes on for each kind of unfinished job."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from .runhelp import grid, simulator, truth


def summary(ws: Path) -> dict:  # type: ignore[type-arg]
    (path,) = ws.glob("2*/summary.json")
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_a_run_stopped_by_its_budget_says_what_it_spent_and_how_to_go_on(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    exp, ws = grid(tmp_path / "g.csv", 6), tmp_path / "ws"
    with simulator(speed=50.0) as url:
        run = cli("run", exp, "--base-url", url, "--workspace", ws, "--budget", "90")
        books = truth(url)["accounts"].values()
        status = cli("status", "latest", "--workspace", ws).output

    data = summary(ws)
    charged = sum(a["charged"] for a in books)
    assert run.exit_code == 3
    assert data["state"] == "stopped" and data["exit_code"] == 3
    assert data["stop_reason"] and "budget" in data["stop_reason"]
    done = data["counts"]["done"]
    assert data["counts"] == {"done": done, "pending": 6 - done}
    assert abs(data["credits"]["charged"] - charged) < 0.01  # the simulator's own books
    assert data["credits"]["budget"] == 90
    assert f"{data['credits']['spent']:,.2f} credits" in status  # one figure everywhere
    assert data["next"] == [
        {
            "jobs": 6 - done,
            "states": ["pending"],
            "what": "not finished yet",
            "command": f"runner resume {data['run']}",
        }
    ]
    assert data["wall_seconds"] is not None and data["wall_seconds"] >= 0


def test_a_finished_run_has_nothing_next(cli: Callable[..., Result], tmp_path: Path) -> None:
    exp, ws = grid(tmp_path / "g.csv", 2), tmp_path / "ws"
    cli("run", exp, "--workspace", ws)

    data = summary(ws)
    assert data["state"] == "finished" and data["counts"] == {"done": 2}
    assert data["next"] == [] and data["report"] == "index.html"
