"""Refusals before a run is created: a person who answers no at the spend prompt, and a
budget that cannot pay for a single job. Exit 2, nothing recorded, nothing sent.

The real-API backend is chosen (EVOLINK_API_KEY set) with its base URL on a closed loopback
port: the prompt and the budget check come before any request, and if one went out anyway
it could only reach this machine."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.cli import base, main

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "experiments" / "demo.csv"


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def real_api(monkeypatch: pytest.MonkeyPatch, closed_port: int) -> Iterator[list[str]]:
    """Options for the EvoLink backend at a closed loopback port, with a key set."""
    monkeypatch.setenv("EVOLINK_API_KEY", "sk-test-never-sent")
    yield ["--backend", "evolink", "--base-url", f"http://127.0.0.1:{closed_port}"]


def test_answering_no_at_the_spend_prompt_exits_2_with_nothing_spent(
    real_api: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "stdin_is_terminal", lambda: True)
    ws = tmp_path / "ws"

    result = CliRunner().invoke(
        main, ["run", str(DEMO), *real_api, "--workspace", str(ws)], input="n\n"
    )

    assert result.exit_code == 2, result.output
    assert "Spend these credits?" in result.stdout
    assert "Not confirmed: nothing spent" in result.stderr
    assert "Aborted" not in result.output and "Traceback" not in result.output
    assert not (ws / "ledger.sqlite").exists()


def test_end_of_input_at_the_spend_prompt_is_a_no(
    real_api: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "stdin_is_terminal", lambda: True)

    result = CliRunner().invoke(
        main, ["run", str(DEMO), *real_api, "--workspace", str(tmp_path / "ws")], input=""
    )

    assert result.exit_code == 2
    assert "nothing spent" in result.stderr


def test_a_budget_below_any_job_is_refused_before_a_run_is_created(
    real_api: list[str], tmp_path: Path
) -> None:
    ws = tmp_path / "ws"

    result = CliRunner().invoke(
        main, ["run", str(DEMO), *real_api, "--workspace", str(ws), "--budget", "10", "--yes"]
    )

    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        "Error: --budget 10.00 is below the cost of any job: the cheapest costs about 41.01 "
        "credits, so nothing would be made. Raise --budget to at least 41.01, or leave it out."
    )
    assert not (ws / "ledger.sqlite").exists()


def test_a_budget_below_the_first_job_names_it_and_the_cheapest(
    real_api: list[str], tmp_path: Path
) -> None:
    # jobs go in order: a 10-second job first (about 82.01 credits), then a 4-second one
    exp = tmp_path / "two.csv"
    exp.write_text("prompt,duration\nA long cat,10\nA short dog,4\n")

    result = CliRunner().invoke(
        main, ["run", str(exp), *real_api, "--workspace", str(tmp_path / "ws"), "--budget", "50"]
    )

    assert result.exit_code == 2
    assert (
        "below the first job's cost (about 82.01 credits; the cheapest job costs about 32.81)"
        in (result.stderr)
    )
    assert "Raise --budget to at least 82.01" in result.stderr


def test_a_budget_is_measured_against_the_jobs_left_to_pay_not_reused_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVOLINK_API_KEY", raising=False)  # the built-in simulator: free
    exp, ws = tmp_path / "one.csv", tmp_path / "ws"
    exp.write_text("prompt,duration\nA cat,4\n")
    first = CliRunner().invoke(main, ["run", str(exp), "--workspace", str(ws)])

    again = CliRunner().invoke(main, ["run", str(exp), "--workspace", str(ws), "--budget", "0"])

    assert first.exit_code == 0, first.output
    assert again.exit_code == 0, again.output
    assert "1 job(s) reused" in again.stdout
