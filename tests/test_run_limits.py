"""Limits measured on the server side (the simulator's ground truth): the create rate, the
in-flight cap, and a 429's Retry-After pausing every worker."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from .runhelp import grid, install_faults, simulator, truth


@pytest.mark.slow
def test_creates_never_arrive_faster_than_the_rate(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    exp = grid(tmp_path / "g.csv", 10)
    with simulator() as url:
        result = cli("run", exp, "--base-url", url, "--workspace", tmp_path / "ws", "--rate", "5")
        arrivals = [a["wall"] for a in truth(url)["create_arrivals"]]

    assert result.exit_code == 0, result.output
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(arrivals) == 10
    assert min(gaps) >= 0.2 * 0.9  # 5/s; 10 % for timer granularity


@pytest.mark.slow
def test_tasks_in_flight_never_exceed_the_cap(cli: Callable[..., Result], tmp_path: Path) -> None:
    exp = grid(tmp_path / "g.csv", 9)
    with simulator(speed=100.0) as url:  # each task takes about a second
        result = cli(
            "run",
            exp,
            "--base-url",
            url,
            "--workspace",
            tmp_path / "ws",
            "--rate",
            "50",
            "--concurrency",
            "3",
        )
        state = truth(url)

    assert result.exit_code == 0, result.output
    tasks = state["tasks"]
    ends = sorted(t["created"] + t["generation_seconds"] for t in tasks)
    for task in tasks:
        # tasks created earlier that the provider had not finished when this one arrived
        open_before = sum(
            1
            for t in tasks
            if t["created"] < task["created"]
            and t["created"] + t["generation_seconds"] > task["created"]
        )
        assert open_before < 3
    assert state["peak_generating"] <= 3
    assert len(ends) == 9


@pytest.mark.slow
def test_retry_after_pauses_every_worker(cli: Callable[..., Result], tmp_path: Path) -> None:
    exp = grid(tmp_path / "g.csv", 6)
    with simulator() as url:
        install_faults(
            url, {"endpoint": "create", "kind": "rate_limit", "calls": [2], "retry_after": 1.5}
        )
        result = cli("run", exp, "--base-url", url, "--workspace", tmp_path / "ws", "--rate", "50")
        arrivals = truth(url)["create_arrivals"]

    assert result.exit_code == 0, result.output
    limited = [a["wall"] for a in arrivals if a["status"] == "429"]
    assert len(limited) == 1
    # creates already on their way when the 429 came back may arrive just after it;
    # after that, nothing until Retry-After has passed
    later = [a["wall"] - limited[0] for a in arrivals if a["wall"] - limited[0] > 0.1]
    assert later and min(later) >= 1.5 * 0.95
    assert len([a for a in arrivals if a["status"] == "200"]) == 6
