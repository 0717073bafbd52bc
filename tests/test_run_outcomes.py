"""Each create outcome behaves as docs/design.md §6 says, checked against the simulator's ground
truth:
rejected (final), stop (401/402/403: no new creates, paid work finishes), unknown (held,
never re-sent; settled by `runner resolve`), not sent (retried), the soft breaker, the
budget, and task failures (retryable ones resubmitted once)."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from .runhelp import creates_per_body, grid, install_faults, simulator, truth


def states(ws: Path) -> dict[str, int]:
    with sqlite3.connect(ws / "ledger.sqlite") as db:
        return dict(
            db.execute(
                "SELECT state, COUNT(*) FROM jobs WHERE run_id = "
                "(SELECT run_id FROM runs ORDER BY created_at DESC LIMIT 1) "
                "GROUP BY state"
            ).fetchall()
        )


@pytest.mark.slow
def test_a_rejected_create_is_final_and_shown_with_its_row(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    exp, ws = grid(tmp_path / "g.csv", 4), tmp_path / "ws"
    with simulator() as url:
        install_faults(
            url,
            {
                "endpoint": "create",
                "kind": "respond",
                "calls": [2],
                "status": 400,
                "json_body": {
                    "error": {
                        "code": "invalid_request",
                        "type": "invalid_request_error",
                        "message": "Prompt contains a real person's name",
                    }
                },
            },
        )
        result = cli("run", exp, "--base-url", url, "--workspace", ws, "--rate", "50")
        state = truth(url)

    assert result.exit_code == 1
    assert states(ws) == {"done": 3, "rejected": 1}
    assert len(state["tasks"]) == 3
    assert "rejected" in result.stderr and "Prompt contains a real person's name" in (result.stderr)


@pytest.mark.slow
@pytest.mark.fault("B7")
def test_a_wrong_key_stops_before_anything_is_created(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp = grid(tmp_path / "g.csv", 3)
    monkeypatch.setenv("EVOLINK_API_KEY", "sk-wrong")
    with simulator(accept_any_key=False) as url:
        result = cli(
            "run",
            exp,
            "--base-url",
            url,
            "--backend",
            "evolink",
            "--yes",
            "--workspace",
            tmp_path / "ws",
        )
        state = truth(url)

    assert result.exit_code == 3
    assert "the API key was refused" in result.stderr and "EVOLINK_API_KEY" in result.stderr
    assert state["tasks"] == []
    # only the free preflight calls went out, and were refused: not one create
    assert set(state["requests"]) <= {"models", "credits"}
    assert {status for calls in state["requests"].values() for status in calls} == {"401"}


@pytest.mark.slow
def test_a_balance_short_of_the_quote_stops_creates_before_the_shortfall_with_yes(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp, ws = grid(tmp_path / "g.csv", 5), tmp_path / "ws"
    monkeypatch.setenv("EVOLINK_API_KEY", "sk-poor")
    # 4 s at 720p on fast is 32.8052 credits: room for two
    with simulator(accept_any_key=False, keys={"sk-poor": _key(70.0)}) as url:
        result = cli(
            "run",
            exp,
            "--base-url",
            url,
            "--backend",
            "evolink",
            "--yes",
            "--workspace",
            ws,
            "--rate",
            "50",
        )
        state = truth(url)

    assert result.exit_code == 3
    assert "the account allows 70.00 more credits; the jobs still to send need about 164.03" in (
        result.stderr
    )  # the free preflight said so before anything was spent
    assert "budget" in result.stdout + result.stderr
    assert "402" not in str(state["requests"]["create"])  # stopped before the provider refused
    assert len(state["tasks"]) == 2
    assert states(ws) == {"done": 2, "pending": 3}


@pytest.mark.slow
def test_a_model_the_key_may_not_use_ends_the_run_before_any_create(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp, ws = grid(tmp_path / "g.csv", 2), tmp_path / "ws"
    monkeypatch.setenv("EVOLINK_API_KEY", "sk-std")
    key = _key(1000.0, models=frozenset({"seedance-2.0-text-to-video"}))
    with simulator(accept_any_key=False, keys={"sk-std": key}) as url:
        result = cli(
            "run", exp, "--base-url", url, "--backend", "evolink", "--yes", "--workspace", ws
        )
        state = truth(url)

    assert result.exit_code == 2  # found by the free model list, before anything was sent
    assert "this API key may not use seedance-2.0-fast-text-to-video" in (
        result.stdout + result.stderr
    )
    assert "create" not in state["requests"]
    assert states(ws) == {"pending": 2}
    shown = cli("status", "latest", "--workspace", ws).output
    assert ": stopped" in shown and "Stopped: this API key may not use" in shown


@pytest.mark.slow
def test_an_unknown_outcome_is_held_never_resent_and_settled_by_resolve(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    exp, ws = grid(tmp_path / "g.csv", 3), tmp_path / "ws"
    with simulator() as url:
        install_faults(
            url,
            {
                "endpoint": "create",
                "kind": "respond",
                "calls": [2],
                "status": 502,
                "processed": True,
                "body": "Bad gateway",
            },
        )
        # --no-replay: held at once (the replay's own tests are in test_dispatch_inprocess.py)
        first = cli("run", exp, "--base-url", url, "--workspace", ws, "--rate", "50", "--no-replay")
        held_task = [t for t in truth(url)["tasks"]][1]
        listing = cli("resolve", "latest", "--workspace", ws)
        job_key = next(
            line.split()[0] for line in listing.stdout.splitlines() if line.startswith("  ")
        )
        again = cli("resume", "latest", "--workspace", ws, "--base-url", url, "--no-replay")
        still_held = states(ws)
        cli(
            "resolve", "latest", "--workspace", ws, "--mark-created", f"{job_key}={held_task['id']}"
        )
        settled = cli("resume", "latest", "--workspace", ws, "--base-url", url)
        state = truth(url)

    assert first.exit_code == 1
    assert "1 job(s) have an unknown create outcome: `runner resolve" in first.stdout
    assert "up to 32.81 credits may have been charged" in listing.stdout
    # what an operator matches on the dashboard: the prompt, the model and when it was sent
    assert "prompt: A lamp on a desk: take 1" in listing.stdout
    assert "seedance-2.0-fast-text-to-video" in listing.stdout
    assert re.search(r"sent 20\d\d-\d\d-\d\d \d\d:\d\d:\d\d", listing.stdout)
    assert again.exit_code == 1 and still_held == {"done": 2, "unknown": 1}
    assert settled.exit_code == 0 and states(ws) == {"done": 3}
    assert creates_per_body(state) == [1, 1, 1]  # the held job was never created twice


@pytest.mark.slow
def test_resolve_resubmit_sends_a_held_job_again(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    exp, ws = grid(tmp_path / "g.csv", 2), tmp_path / "ws"
    with simulator() as url:
        install_faults(
            url,
            {
                "endpoint": "create",
                "kind": "respond",
                "calls": [1],
                "status": 500,
                "processed": False,
                "body": "oops",
            },
        )
        cli("run", exp, "--base-url", url, "--workspace", ws, "--rate", "50", "--no-replay")
        with sqlite3.connect(ws / "ledger.sqlite") as db:
            (key,) = db.execute("SELECT job_key FROM jobs WHERE state = 'unknown'").fetchone()
        cli("resolve", "latest", "--workspace", ws, "--resubmit", key)
        result = cli("resume", "latest", "--workspace", ws, "--base-url", url)
        state = truth(url)

    assert result.exit_code == 0
    assert sorted(creates_per_body(state)) == [1, 1]
    assert set(state["creates_by_idempotency_key"]) >= {f"{key}-2"}


@pytest.mark.slow
def test_not_sent_creates_are_retried(cli: Callable[..., Result], tmp_path: Path) -> None:
    exp, ws = grid(tmp_path / "g.csv", 2), tmp_path / "ws"
    with simulator() as url:
        install_faults(
            url,
            {
                "endpoint": "create",
                "kind": "respond",
                "calls": [1, 2],
                "status": 408,
                "body": "timeout",
            },
        )
        result = cli("run", exp, "--base-url", url, "--workspace", ws, "--rate", "50")
        state = truth(url)

    assert result.exit_code == 0
    assert creates_per_body(state) == [1, 1]


@pytest.mark.slow
def test_three_unknowns_in_a_row_open_the_breaker_probed_with_credits(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    exp, ws = grid(tmp_path / "g.csv", 5), tmp_path / "ws"
    with simulator() as url:
        install_faults(
            url,
            {
                "endpoint": "create",
                "kind": "respond",
                "calls": [1, 2, 3],
                "status": 503,
                "body": "busy",
            },
        )
        result = cli(
            "run",
            exp,
            "--base-url",
            url,
            "--workspace",
            ws,
            "--rate",
            "50",
            "--concurrency",
            "1",
            "--no-replay",
        )
        state = truth(url)

    assert "breaker" in result.stderr
    assert states(ws) == {"unknown": 3, "done": 2}
    credits_calls = sum(state["requests"]["credits"].values())
    assert credits_calls >= 2  # the preflight and at least one probe
    assert len(state["tasks"]) == 2


@pytest.mark.slow
@pytest.mark.fault("P11")
def test_the_budget_is_never_exceeded(cli: Callable[..., Result], tmp_path: Path) -> None:
    exp, ws = grid(tmp_path / "g.csv", 30), tmp_path / "ws"
    per_job = 32.8052  # fast, 720p, 4 s
    with simulator() as url:
        result = cli(
            "run",
            exp,
            "--base-url",
            url,
            "--workspace",
            ws,
            "--rate",
            "50",
            "--budget",
            str(per_job * 10 + 1),
        )
        state = truth(url)

    assert result.exit_code == 3
    assert len(state["tasks"]) == 10
    charged = sum(t["credits_reserved"] for t in state["tasks"])
    assert charged <= per_job * 10 + 1
    assert "the budget of 329.05 credits is reached" in result.stdout + result.stderr
    assert states(ws) == {"done": 10, "pending": 20}


@pytest.mark.slow
def test_retryable_task_failures_are_resubmitted_once_policy_ones_never(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    exp = tmp_path / "f.csv"
    exp.write_text("prompt\nA quiet lake at dawn\nA celebrity waving on a red carpet\n")
    with simulator(
        fail_rates={"service_error": 1.0}, trigger_words={"celebrity": "content_policy_violation"}
    ) as url:
        result = cli("run", exp, "--base-url", url, "--workspace", ws, "--rate", "50")
        state = truth(url)

    assert result.exit_code == 1
    by_prompt = {t["body"]["prompt"]: 0 for t in state["tasks"]}
    for t in state["tasks"]:
        by_prompt[t["body"]["prompt"]] += 1
    assert by_prompt == {"A quiet lake at dawn": 2, "A celebrity waving on a red carpet": 1}
    with sqlite3.connect(ws / "ledger.sqlite") as db:
        codes = dict(
            db.execute(
                "SELECT json_extract(body_json, '$.prompt'), error_code FROM jobs"
            ).fetchall()
        )
    assert codes == {
        "A quiet lake at dawn": "service_error",
        "A celebrity waving on a red carpet": "content_policy_violation",
    }


def _key(balance: float, models: frozenset[str] | None = None) -> object:
    from runner.simulator.config import KeyConfig

    return KeyConfig(balance=balance, models=models)


@pytest.mark.slow
def test_export_writes_one_row_per_job(cli: Callable[..., Result], tmp_path: Path) -> None:
    exp, ws = grid(tmp_path / "g.csv", 3), tmp_path / "ws"
    with simulator() as url:
        cli("run", exp, "--base-url", url, "--workspace", ws, "--rate", "50")
    result = cli("export", "latest", "--workspace", ws, "--format", "json")

    path = Path(result.stdout.split("Wrote ", 1)[1].strip())
    rows = json.loads(path.read_text())
    assert [r["state"] for r in rows] == ["done"] * 3
    assert {r["dim_take"] for r in rows} == {"take 0", "take 1", "take 2"}
