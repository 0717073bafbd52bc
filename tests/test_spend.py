"""`runner spend`: credits as charged (refunds taken off) across runs, by tag, run, tier and
month, checked against the simulator's own books; readable while a run holds the ledger."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from runner.cli import main
from runner.run.ledger import Ledger

from .runhelp import grid, simulator, truth

CREDITS_PER_USD = 68  # the built-in table's rate


def books(url: str) -> float:
    """Charged minus refunded over the simulator's accounts."""
    accounts = truth(url)["accounts"].values()
    return sum(a["charged"] - a["refunded"] for a in accounts)


@dataclass
class Swept:
    ws: Path
    runs: dict[str, str]  # "acme", "globex", "promoted" -> run id
    net: dict[str, float]  # the same -> charged minus refunded, by the simulator's books
    tasks: list[dict[str, Any]]  # the simulator's tasks


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swept]:
    """Two tagged runs and a promotion of the first, with task failures (refunded, sent
    again within the run), against one served simulator."""
    tmp = tmp_path_factory.mktemp("spend")
    ws = tmp / "ws"

    def run(*args: str | Path) -> str:
        result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code in (0, 1), result.output  # 1: a job may end failed
        with sqlite3.connect(ws / "ledger.sqlite") as db:
            (run_id,) = db.execute(
                "SELECT run_id FROM runs ORDER BY created_at DESC, rowid DESC LIMIT 1"
            ).fetchone()
        return str(run_id)

    runs, net = {}, {}
    with simulator(fail_rates={"service_error": 0.3}, seed=5) as url:
        common = ("--base-url", url, "--workspace", ws, "--rate", "50")
        before = books(url)
        a = grid(tmp / "a.csv", 4, prompt="A lamp")
        runs["acme"] = run("run", a, "--tag", "client=acme", "--tag", "campaign=spring", *common)
        net["acme"], before = books(url) - before, books(url)
        b = grid(tmp / "b.csv", 3, prompt="A chair")
        runs["globex"] = run("run", b, "--tag", "client=globex", *common)
        net["globex"], before = books(url) - before, books(url)
        with sqlite3.connect(ws / "ledger.sqlite") as db:
            keys = [
                k
                for (k,) in db.execute(
                    "SELECT job_key FROM jobs WHERE run_id = ? AND state = 'done' LIMIT 2",
                    (runs["acme"],),
                )
            ]
        runs["promoted"] = run(
            "promote", runs["acme"], "--pick", ",".join(keys), "--tag", "round=2", *common
        )
        net["promoted"] = books(url) - before
        tasks = truth(url)["tasks"]
    assert any(t["refunded"] for t in tasks)  # refunds happened, so they are tested
    yield Swept(ws, runs, net, tasks)


def spend_json(ws: Path, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        main, ["spend", "--json", "--workspace", str(ws), *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def by_group(data: dict[str, Any], key: str | None = None) -> dict[str, float]:
    return {g["group"]: g["credits"] for g in data["groups"] if g.get("key") == key}


@pytest.mark.slow
def test_spend_by_tag_is_what_the_simulator_charged_less_refunds(swept: Swept) -> None:
    data = spend_json(swept.ws, "--by", "tag")
    net = swept.net
    client = by_group(data, "client")
    assert client.keys() == {"client=acme", "client=globex"}
    # the promotion carries its parent's client tag
    assert client["client=acme"] == pytest.approx(net["acme"] + net["promoted"], abs=0.01)
    assert client["client=globex"] == pytest.approx(net["globex"], abs=0.01)
    assert by_group(data, "campaign") == pytest.approx(
        {"campaign=spring": net["acme"] + net["promoted"], "(untagged)": net["globex"]}, abs=0.01
    )
    assert by_group(data, "round") == pytest.approx(
        {"round=2": net["promoted"], "(untagged)": net["acme"] + net["globex"]}, abs=0.01
    )
    total = sum(net.values())
    assert data["total"]["credits"] == pytest.approx(total, abs=0.01)
    assert data["total"]["usd"] == pytest.approx(total / CREDITS_PER_USD, abs=0.001)
    assert data["total"]["runs"] == 3


@pytest.mark.slow
def test_spend_by_run_tier_and_a_tag_filter(swept: Swept) -> None:
    net, runs = swept.net, swept.runs
    per_run = by_group(spend_json(swept.ws, "--by", "run"))
    assert per_run == pytest.approx({runs[k]: v for k, v in net.items()}, abs=0.01)
    tiers = by_group(spend_json(swept.ws, "--by", "tier"))
    assert tiers == pytest.approx(
        {"fast": net["acme"] + net["globex"], "standard": net["promoted"]}, abs=0.01
    )
    acme = spend_json(swept.ws, "--by", "run", "--tag", "client=acme")
    assert by_group(acme) == pytest.approx(
        {runs["acme"]: net["acme"], runs["promoted"]: net["promoted"]}, abs=0.01
    )
    text = CliRunner().invoke(main, ["spend", "--by", "tag", "--workspace", str(swept.ws)])
    assert "client=globex" in text.output and "(untagged)" in text.output
    assert f"{sum(net.values()):,.2f} credits" in text.output.splitlines()[-1]


@pytest.mark.slow
def test_spend_by_month_splits_a_run_at_the_month_s_end(swept: Swept, tmp_path: Path) -> None:
    """The first run's creates sent on the evening of 31 October and its retries after
    midnight: each month gets the money of the attempts sent in it."""
    ws = tmp_path / "ws"
    shutil.copytree(swept.ws, ws)
    october = dt.datetime(2026, 10, 31, 23, 50).timestamp()
    november = dt.datetime(2026, 11, 1, 0, 10).timestamp()
    with sqlite3.connect(ws / "ledger.sqlite") as db:
        rows = db.execute("SELECT attempt_id, task_id, n FROM attempts ORDER BY attempt_id")
        sent: dict[str, float] = {}
        for attempt_id, task_id, n in rows.fetchall():
            # first attempts of every job in October, the resends in November
            at = october if n == 1 else november
            db.execute("UPDATE attempts SET started_at = ? WHERE attempt_id = ?", (at, attempt_id))
            if task_id:
                sent[task_id] = at
    want: dict[str, float] = {}
    for task in swept.tasks:
        month = dt.datetime.fromtimestamp(sent[task["id"]]).strftime("%Y-%m")
        cost = (task["credits_used"] or task["reserved"]) - (task["refunded"] or 0)
        want[month] = want.get(month, 0.0) + cost
    assert len(want) == 2  # some resends happened, so both months have money

    months = by_group(spend_json(ws, "--by", "month"))
    assert months == pytest.approx(want, abs=0.01)
    since = spend_json(ws, "--by", "month", "--since", "2026-11-01")
    assert by_group(since) == pytest.approx({"2026-11": want["2026-11"]}, abs=0.01)


def test_spend_reads_while_a_run_holds_the_ledger(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    exp, ws = grid(tmp_path / "g.csv", 2), tmp_path / "ws"
    assert cli("run", exp, "--workspace", ws, "--tag", "client=acme").exit_code == 0
    with Ledger.open(ws) as ledger:  # what a running `runner run` holds
        (run,) = ledger.runs()
        charged = ledger.money(run.run_id)
        result = cli("spend", "--by", "tag", "--json", "--workspace", ws)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["groups"] == [
        {
            "key": "client",
            "group": "client=acme",
            "credits": pytest.approx(charged.charged - charged.refunded, abs=1e-4),
            "usd": pytest.approx((charged.charged - charged.refunded) / CREDITS_PER_USD, abs=1e-3),
            "held": 0.0,
            "runs": 1,
            "attempts": 2,
        }
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tag", "client"], "--tag 'client': write KEY=VALUE"),
        (["--tag", "cli ent=acme"], "the key letters, digits, _ and - only"),
        (["--since", "yesterday"], "--since 'yesterday': write a date as YYYY-MM-DD"),
    ],
)
def test_bad_options_are_named(
    cli: Callable[..., Result], tmp_path: Path, args: list[str], message: str
) -> None:
    exp, ws = grid(tmp_path / "g.csv", 1), tmp_path / "ws"
    assert cli("run", exp, "--workspace", ws).exit_code == 0
    result = cli("spend", *args, "--workspace", ws)
    assert result.exit_code == 2 and message in result.output
