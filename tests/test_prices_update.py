"""`runner prices update` and the quotes it feeds: fetched from the simulator's public price
rules (served on 127.0.0.1 or in process), checked against what the simulator charges (its
own price book and its ground truth), with the quote day fixed."""

from __future__ import annotations

import datetime as dt
import json
import socket
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from runner.grid import pricing
from runner.grid.plan import make_plan
from runner.simulator.app import Fault
from runner.simulator.prices import DEFAULT_PRICES, PriceBook, TierRates

from .runhelp import DEMO, ROOT, simulator, truth

IMAGE = ROOT / "experiments" / "image.csv"
FAST = TierRates(
    per_second_720p=Decimal("9.1234"),
    minimum=Decimal("20"),
    factor={"480p": Decimal("0.5"), "720p": Decimal(1)},
    factor_with_video={"480p": Decimal("0.3"), "720p": Decimal("0.7")},
)
BOOK = PriceBook(tiers={**DEFAULT_PRICES.tiers, "fast": FAST})  # fast: 9.1234 credits/s


@pytest.fixture(autouse=True)
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the machine's environment holds, nothing here reaches the real EvoLink."""
    monkeypatch.delenv("EVOLINK_API_KEY", raising=False)


def on(monkeypatch: pytest.MonkeyPatch, day: str) -> None:
    """Fix the quote clock at noon UTC of ``day``."""
    moment = dt.datetime.fromisoformat(f"{day}T12:00:00+00:00")
    monkeypatch.setattr(pricing, "now", lambda: moment)


def plan_json(cli: Callable[..., Result], *args: str | Path) -> dict[str, Any]:
    result = cli("plan", *args, "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def closed_port() -> str:
    """A loopback address nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.slow
def test_update_from_the_served_simulator_quotes_the_demo_within_a_hundredth_of_its_charge(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on(monkeypatch, "2026-11-29")
    ws = tmp_path / "ws"
    with simulator(prices=BOOK) as url:
        update = cli("prices", "update", "--base-url", url, "--workspace", ws)
        plan = plan_json(cli, DEMO, "--workspace", ws)
        before_run = truth(url)["requests"]
        run = cli("run", DEMO, "--base-url", url, "--workspace", ws, "--rate", "20")
        state = truth(url)

    assert update.exit_code == 0, update.output
    assert f"Fetching the price rules of the simulator at {url}" in update.stdout
    assert before_run == {"pricing": {"200": 1}}  # planning used no network
    assert run.exit_code == 0, run.output
    charged = sum(t["credits_used"] for t in state["tasks"])
    assert len(state["tasks"]) == 12
    assert plan["quotes"]["fast"]["credits"] == pytest.approx(charged, abs=0.01)
    assert charged == pytest.approx(12 * float(BOOK.charge("fast", "720p", 5)))  # 547.404
    built_in = make_plan(DEMO, "fast", prices=pricing.default_prices()).quote.credits
    assert abs(built_in - charged) > 50  # the built-in table (492.08) would be wrong here
    source = "simulator price rules fetched 2026-11-29 over built-in table of 2026-10-10"
    assert plan["prices"] == source and plan["prices_date"] == "2026-11-29"
    lines = run.stdout.splitlines()
    assert lines[1] == (
        "To send: 12 of 12 job(s) on the fast tier, about 547.40 credits ($8.05) (simulated)"
    )
    assert f"Prices: {source} (68 credits = 1 USD)." in lines


def test_plan_and_run_state_the_source_and_date_of_their_prices(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on(monkeypatch, "2026-10-25")
    ws = tmp_path / "ws"

    before = cli("plan", DEMO, "--workspace", ws)
    update = cli("prices", "update", "--workspace", ws)
    after = cli("plan", DEMO, "--workspace", ws)
    run = cli("run", DEMO, "--workspace", ws)

    assert "Prices: built-in table of 2026-10-10 (68 credits = 1 USD)." in before.stdout
    assert update.exit_code == 0, update.output
    assert update.stdout.startswith("Backend: built-in simulator (EVOLINK_API_KEY is not set)")
    assert "not EvoLink's" in update.stdout
    assert "Quotes now say: Prices: simulator price rules fetched 2026-10-25" in update.stdout
    fetched = "Prices: simulator price rules fetched 2026-10-25 over built-in table of 2026-10-10"
    assert f"{fetched} (68 credits = 1 USD)." in after.stdout
    assert run.exit_code == 0, run.output
    assert f"{fetched} (68 credits = 1 USD)." in run.stdout.splitlines()
    assert "Warning" not in after.stdout + run.stdout
    cache = json.loads((ws / "prices-cache.json").read_text())
    assert cache["fetched_at"] == "2026-10-25T12:00:00Z"
    assert cache["source_url"] == "http://simulator.local/v1/catalog/pricing-rules"


def test_prices_flag_beats_the_workspace_file_which_beats_the_fetched_rules_and_the_built_in(
    cli: Callable[..., Result], tmp_path: Path, write: Callable[..., Path]
) -> None:
    ws = tmp_path / "ws"
    charge = float(BOOK.charge("fast", "720p", 5))  # the simulator's own price of a demo job

    built_in = plan_json(cli, DEMO, "--workspace", ws)
    with simulator(prices=BOOK) as url:
        assert cli("prices", "update", "--base-url", url, "--workspace", ws).exit_code == 0
    fetched = plan_json(cli, DEMO, "--workspace", ws)
    write("ws/prices.toml", "as_of = 2026-10-18\n[tiers.fast]\ncredits_per_second_720p = 10\n")
    own = plan_json(cli, DEMO, "--workspace", ws)
    flag = write("other.toml", "as_of = 2026-10-19\n[tiers.fast]\nminimum_credits = 70\n")
    flagged = plan_json(cli, DEMO, "--workspace", ws, "--prices", flag)

    assert built_in["quotes"]["fast"]["credits"] == 492.078  # 12 x 41.0065
    assert fetched["quotes"]["fast"]["credits"] == pytest.approx(12 * charge)
    assert own["quotes"]["fast"]["credits"] == 600.0  # its rate beats the fetched per-mode one
    assert own["quotes"]["mini"] == fetched["quotes"]["mini"]  # the rest: the fetched rules
    assert own["prices"] == (
        f"your price file {ws / 'prices.toml'} of 2026-10-18 over simulator price rules "
        "fetched 2026-10-20 over built-in table of 2026-10-10"
    )
    assert flagged["quotes"]["fast"]["credits"] == 12 * 70.0  # instead of prices.toml
    assert flagged["prices"].startswith(f"your price file {flag} of 2026-10-19 over simulator")
    assert [s["kind"] for s in flagged["prices_sources"]] == ["file", "rules", "built-in"]


def test_a_quote_warns_when_its_prices_are_more_than_30_days_old(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = tmp_path / "ws"
    on(monkeypatch, "2026-11-09")  # the built-in table is 30 days old
    fresh_built_in = cli("plan", DEMO, "--workspace", ws)
    on(monkeypatch, "2026-11-10")
    old_built_in = plan_json(cli, DEMO, "--workspace", ws)
    cli("prices", "update", "--workspace", ws)
    on(monkeypatch, "2026-12-10")  # fetched 30 days ago
    fresh_rules = cli("plan", DEMO, "--workspace", ws)
    on(monkeypatch, "2026-12-11")
    old_rules = cli("plan", DEMO, "--workspace", ws)
    run = cli("run", DEMO, "--workspace", ws)

    assert "Warning" not in fresh_built_in.stdout + fresh_rules.stdout
    assert old_built_in["prices_age_days"] == 31 and old_built_in["prices_stale"] is True
    assert old_built_in["warnings"] == [
        "prices from the built-in table of 2026-10-10 are 31 days old and EvoLink's may have "
        "changed: `runner prices update` fetches the current ones (free, no API key needed)."
    ]
    warning = (
        "Warning: simulator price rules fetched 2026-11-10 are 31 days old: "
        "`runner prices update` fetches them again."
    )
    assert warning in old_rules.stdout.splitlines()
    assert warning in run.stdout.splitlines()


def test_update_with_no_reachable_endpoint_fails_with_exit_4_and_keeps_the_cache(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    assert cli("prices", "update", "--workspace", ws).exit_code == 0
    cache = (ws / "prices-cache.json").read_bytes()
    nowhere = closed_port()

    result = cli(
        "prices", "update", "--backend", "evolink", "--base-url", nowhere, "--workspace", ws
    )
    plan = plan_json(cli, DEMO, "--workspace", ws)

    assert result.exit_code == 4
    assert result.stderr.startswith(f"Error: could not reach {nowhere}/v1/catalog/pricing-rules (")
    assert result.stderr.rstrip().endswith(
        "Nothing changed: quotes keep using the simulator price rules fetched 2026-10-20 "
        "over built-in table of 2026-10-10."
    )
    assert (ws / "prices-cache.json").read_bytes() == cache
    assert plan["prices"].startswith("simulator price rules fetched 2026-10-20")


def test_an_error_answer_fails_with_exit_4_and_no_cache_is_written(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    fault = Fault.from_json({"endpoint": "pricing", "kind": "respond", "status": 503})
    with simulator(faults=[fault]) as url:
        result = cli("prices", "update", "--base-url", url, "--workspace", ws)
        state = truth(url)

    assert result.exit_code == 4
    assert f"{url}/v1/catalog/pricing-rules answered HTTP 503" in result.stderr
    assert "try again later. Nothing changed: quotes keep using the built-in table" in (
        result.stderr
    )
    assert not (ws / "prices-cache.json").exists()
    assert state["requests"] == {"pricing": {"503": 1}}


def test_the_fetched_minimum_charge_applies_as_the_simulator_charges_it(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    dear = TierRates(FAST.per_second_720p, Decimal("60"), FAST.factor, FAST.factor_with_video)
    book = PriceBook(tiers={**DEFAULT_PRICES.tiers, "fast": dear})
    with simulator(prices=book) as url:
        cli("prices", "update", "--base-url", url, "--workspace", ws)

    plan = plan_json(cli, DEMO, "--workspace", ws)
    long = plan_json(cli, DEMO, "--workspace", ws, "--set", "duration=15")

    assert book.charge("fast", "720p", 5) == Decimal(60)  # 5 s x 9.1234 = 45.617 < 60
    assert plan["quotes"]["fast"]["credits"] == 12 * 60.0
    assert long["quotes"]["fast"]["credits"] == pytest.approx(
        12 * float(book.charge("fast", "720p", 15))  # 136.851: above the minimum
    )


def test_a_model_settled_on_actual_use_is_quoted_with_a_final_charge_may_differ_line(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    book = PriceBook(settled_on_actual=frozenset({("fast", "image")}))  # the other way round
    built_in_text = cli("plan", DEMO, "--workspace", ws).stdout
    with simulator(prices=book) as url:
        cli("prices", "update", "--base-url", url, "--workspace", ws)

    text = cli("plan", DEMO, "--workspace", ws).stdout
    image = cli("plan", IMAGE, "--workspace", ws).stdout
    image_json = plan_json(cli, IMAGE, "--workspace", ws)

    line = "The final charge may differ from this quote for"
    assert f"{line} fast text-to-video: EvoLink bills it on the request" in built_in_text
    assert line not in text
    assert f"{line} fast image-to-video: EvoLink bills it on the request, then settles" in image
    assert image_json["final_charge_may_differ"] == ["seedance-2.0-fast-image-to-video"]


def test_the_content_filter_surcharge_stays_with_fetched_prices(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    with simulator(prices=BOOK) as url:
        update = cli("prices", "update", "--base-url", url, "--workspace", ws)

    plan = plan_json(cli, DEMO, "--workspace", ws, "--set", "content_filter=false")

    assert "The rules leave out the 1.1x EvoLink charges when content_filter is false" in (
        update.stdout
    )
    expected = 12 * float(BOOK.charge("fast", "720p", 5, content_filter=False))  # 50.1787 each
    assert plan["quotes"]["fast"]["credits"] == pytest.approx(expected, abs=0.01)


def test_a_real_run_quoted_with_a_simulators_prices_says_so_before_asking_to_spend(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = tmp_path / "ws"
    cli("prices", "update", "--workspace", ws)
    monkeypatch.setenv("EVOLINK_API_KEY", "sk-test-not-a-real-key")

    # stdin is not a terminal and there is no --yes: refused before anything is sent
    result = cli(
        "run", DEMO, "--backend", "evolink", "--base-url", closed_port(), "--workspace", ws
    )

    assert result.exit_code == 2
    assert (
        "Warning: these prices were fetched from a simulator, not from EvoLink: "
        "`runner prices update --backend evolink` fetches EvoLink's."
    ) in result.stdout.splitlines()
    assert "this run spends real credits: add --yes" in result.stderr


def test_a_damaged_cache_is_left_out_with_a_warning_and_planning_goes_on(
    cli: Callable[..., Result], write: Callable[..., Path], tmp_path: Path
) -> None:
    write("ws/prices-cache.json", "{not json")

    plan = plan_json(cli, DEMO, "--workspace", tmp_path / "ws")

    assert plan["prices"] == "built-in table of 2026-10-10"
    assert plan["warnings"] == [
        f"the fetched prices in {tmp_path / 'ws' / 'prices-cache.json'} cannot be used (it is "
        "not JSON), so they are left out: `runner prices update` fetches them again."
    ]


def test_prices_show_prints_the_table_in_force_and_its_source(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    with simulator(prices=BOOK) as url:
        cli("prices", "update", "--base-url", url, "--workspace", ws)

    shown = cli("prices", "show", "--workspace", ws)

    assert shown.exit_code == 0
    lines = shown.stdout.splitlines()
    assert lines[0] == (
        "Prices: simulator price rules fetched 2026-10-20 over built-in table of 2026-10-10 "
        "(68 credits = 1 USD)."
    )
    fast_text = next(x for x in lines if x.strip().startswith("fast text-to-video"))
    assert fast_text.split() == [
        "fast",
        "text-to-video",
        "480p",
        "4.5617",
        "720p",
        "9.1234",
        "20.0000",
        "final",
        "charge",
        "may",
        "differ",
    ]
    assert "x1.1 (EvoLink's rules leave this out)" in shown.stdout


def test_a_price_file_that_sets_only_the_dollar_rate_does_not_hide_old_prices(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "prices.toml").write_text("credits_per_usd = 70\n")  # new today, no prices in it
    on(monkeypatch, "2026-11-30")

    data = plan_json(cli, DEMO, "--workspace", ws)

    assert data["prices_date"] == "2026-10-10" and data["prices_stale"] is True
    assert any("built-in table of 2026-10-10 are 51 days old" in w for w in data["warnings"])
