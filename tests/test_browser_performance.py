"""The Performance view in a real browser (Chromium, file://): a simulated demo run whose
videos got ad figures (written into the ledger as `runner metrics import` writes them), the
report built by `runner report`, and the audience's verdict read off the page
(templates/static/report/78-performance.js, docs/report-page.md "Performance")."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from runner.cli import main
from runner.review import report
from runner.run.ledger import reader
from tests.runhelp import DEMO, simulator
from tests.test_browser_report import CHROMIUM, Opened, browser  # noqa: F401 - fixtures

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium"),
]


def figures(ws: Path, ctr: dict[str, float], impressions: int, *, split_test: bool) -> None:
    """One import: each video of the demo shown ``impressions`` times with the CTR of its
    aspect ratio (the figures replace any earlier ones; no CTRs: no figures at all)."""
    with sqlite3.connect(ws / "ledger.sqlite") as db:
        db.execute("DELETE FROM ad_metrics")
        db.execute("DELETE FROM metric_imports")
        if not ctr:
            return
        db.execute(
            "INSERT INTO metric_imports VALUES"
            " (1, 'meta-week-1.csv', 'x', 'meta', ?, ?, 12, 12, 0)",
            (1_790_000_000.0, int(split_test)),
        )
        rows = []
        for key, values in db.execute("SELECT job_key, values_json FROM jobs"):
            rate = ctr[dict(json.loads(values))["aspect_ratio"]]
            clicks = round(rate * impressions)
            rows.append((key, impressions, clicks, impressions // 4, 50.0, clicks // 10))
        db.executemany(
            "INSERT INTO ad_metrics VALUES (1, ?, 'ad', '2026-11-01', '2026-11-07', ?, ?, ?, ?,"
            " 'USD', ?)",
            rows,
        )


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo's report three times: 9:16 at 3 % CTR against 1 % over 20,000 impressions
    per video, 1.1 % against 1.0 % over 2,000 (both pages beside index.html, so the media
    paths hold), and without figures (index.html)."""
    ws = tmp_path_factory.mktemp("ws")
    cli = CliRunner()
    with simulator(speed=1000.0) as url:
        done = cli.invoke(main, ["run", str(DEMO), "--base-url", url, "--workspace", str(ws)])
    assert done.exit_code == 0, done.output
    out = {}
    cases = {
        "strong": ({"9:16": 0.03, "16:9": 0.01}, 20_000, False),
        "weak": ({"9:16": 0.011, "16:9": 0.010}, 2_000, True),
    }
    for name, (ctr, impressions, split) in cases.items():
        figures(ws, ctr, impressions, split_test=split)
        built = cli.invoke(main, ["report", "latest", "--workspace", str(ws)])
        assert built.exit_code == 0, built.output
        page = Path(built.output.strip().removeprefix("Report: "))
        out[name] = page.with_name(f"{name}.html")
        shutil.copy(page, out[name])
    with reader(ws) as store:  # the weak page as a live build (runner/review/live.py) makes it
        run_id = store.run("latest").run_id
        live = report.build(store, ws, run_id, live={"every": 5, "written": "2026-11-30"})
    out["live"] = live.with_name("live.html")
    shutil.copy(live, out["live"])
    figures(ws, {}, 0, split_test=False)
    built = cli.invoke(main, ["report", "latest", "--workspace", str(ws)])
    out["none"] = Path(built.output.strip().removeprefix("Report: "))
    return out


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:  # noqa: F811 - the shared browser fixture
    opened: list[Opened] = []

    def _open(path: Path) -> Opened:
        opened.append(Opened(browser, path))
        return opened[-1]

    yield _open
    for p in opened:
        p.close()


def performance_view(o: Opened) -> Any:
    from playwright.sync_api import expect

    o.page.click(".seg [data-view='performance']")
    expect(o.page.locator(".perf-dim[data-dim='aspect_ratio']")).to_be_visible()
    return expect


def keys_of(page: Path, ratio: str) -> list[str]:
    """The job keys of the demo's videos in that aspect ratio (the ledger beside the page)."""
    with sqlite3.connect(page.parents[1] / "ledger.sqlite") as db:
        rows = db.execute("SELECT job_key, values_json FROM jobs ORDER BY job_id").fetchall()
    return [k for k, v in rows if dict(json.loads(v))["aspect_ratio"] == ratio]


def p_best(text: str) -> float:
    return 99.95 if text.startswith(">") else float(text.removesuffix(" %").lstrip("<"))


def test_a_clear_winner_is_named_with_its_chance_and_the_delivery_notice(pages, open_page):
    o = open_page(pages["strong"])
    expect = performance_view(o)
    aspect = o.page.locator(".perf-dim[data-dim='aspect_ratio']")
    verdict = aspect.locator(".verdict")
    expect(verdict).to_have_attribute("data-state", "winner")
    assert verdict.inner_text().startswith("9:16 is ahead"), verdict.inner_text()
    rows = aspect.locator("tbody tr")
    assert rows.evaluate_all("r => r.map(e => e.dataset.value)") == ["9:16", "16:9"]
    first = rows.first
    assert p_best(first.locator("[data-col='p-best']").inner_text()) > 95
    assert first.locator("[data-col='metric']").inner_text().startswith("3.00 %")
    assert "120,000" in first.inner_text()  # 6 videos × 20,000 impressions
    # the interval's whisker sits around the bar's end, inside the cell
    bar = first.locator(".perf-fill").bounding_box()
    whisker = first.locator(".perf-whisker").bounding_box()
    assert whisker["x"] < bar["x"] + bar["width"] < whisker["x"] + whisker["width"]
    notice = o.page.locator(".perf-notice")
    expect(notice).to_have_attribute("data-randomised", "no")
    assert "not randomised" in notice.inner_text() and "split test" in notice.inner_text()
    imports = o.texts(".perf-imports li")
    assert (
        len(imports) == 1 and "meta-week-1.csv" in imports[0] and "not a split test" in imports[0]
    )
    # ranked by another metric: the selector offers what the figures hold
    options = o.page.locator(".perf-metric option").evaluate_all("os => os.map(x => x.value)")
    assert options == ["ctr", "completion", "cost_per_result"]
    o.page.select_option(".perf-metric", "cost_per_result")
    expect(o.page.locator(".perf-dim[data-dim='aspect_ratio'] thead")).to_contain_text(
        "cost per result"
    )
    # 9:16 has three times the results for the same spend: the lower cost comes first
    cost = o.page.locator(".perf-dim[data-dim='aspect_ratio'] tbody tr")
    assert cost.first.get_attribute("data-value") == "9:16"
    assert cost.first.locator("[data-col='metric']").inner_text().startswith("USD ")
    o.shot("performance")
    o.clean()


def test_reviewers_stars_beside_the_audience_and_a_row_leads_to_its_card(pages, open_page):
    from playwright.sync_api import expect

    o = open_page(pages["strong"])
    for key in keys_of(pages["strong"], "16:9")[:2]:  # the reviewer stars two 16:9 videos
        o.page.locator(f'.card[data-key="{key}"]').focus()
        o.page.keyboard.press("s")
    performance_view(o)
    aspect = o.page.locator(".perf-dim[data-dim='aspect_ratio']")
    taste = aspect.locator(".perf-taste")
    expect(taste).to_have_attribute("data-agree", "no")
    assert taste.inner_text() == "Reviewers preferred 16:9 (★ 2), the audience 9:16."
    stars = aspect.locator("tbody tr[data-value='16:9'] [data-col='stars']")
    assert stars.inner_text() == "★ 2"
    # the per-video table: twelve videos, best CTR first; a row shows its card in the grid
    rows = o.page.locator(".perf-variants tbody tr")
    expect(rows).to_have_count(12)
    key = rows.nth(7).get_attribute("data-key")
    rows.nth(7).click()
    expect(o.page.locator("body")).to_have_attribute("data-view", "grid")
    card = o.page.locator(f'.card[data-key="{key}"]')
    expect(card).to_be_focused()
    expect(card).to_be_in_viewport()
    o.clean()


def test_a_small_difference_says_not_yet_with_the_impressions_needed(pages, open_page):
    o = open_page(pages["weak"])
    expect = performance_view(o)
    verdict = o.page.locator(".perf-dim[data-dim='aspect_ratio'] .verdict")
    expect(verdict).to_have_attribute("data-state", "not_yet")
    text = verdict.inner_text()
    assert text.startswith("Not yet:") and "more impressions per value" in text, text
    notice = o.page.locator(".perf-notice")
    expect(notice).to_have_attribute("data-randomised", "yes")  # the only import: a split test
    assert "split test" in o.texts(".perf-imports li")[0]
    o.clean()


def test_a_live_reload_keeps_the_performance_view_and_its_metric(pages, open_page):
    o = open_page(pages["live"])
    expect = performance_view(o)
    o.page.select_option(".perf-metric", "cost_per_result")
    expect(o.page.locator(".perf-dim[data-dim='aspect_ratio'] thead")).to_contain_text(
        "cost per result"
    )
    o.js("document.activeElement.blur(); window.__before_reload = true")  # not busy now
    o.page.wait_for_function("() => !window.__before_reload", timeout=20_000)  # its reload
    o.page.wait_for_selector("html[data-ready='1']")
    o.js("document.getElementById('search').focus()")  # typing: no further reload
    expect(o.page.locator("body")).to_have_attribute("data-view", "performance")
    expect(o.page.locator(".perf-metric")).to_have_value("cost_per_result")
    expect(o.page.locator(".perf-dim[data-dim='aspect_ratio'] thead")).to_contain_text(
        "cost per result"
    )
    o.clean()


def test_without_figures_there_is_no_performance_button(pages, open_page):
    from playwright.sync_api import expect

    o = open_page(pages["none"])
    expect(o.page.locator(".seg [data-view='performance']")).to_be_hidden()
    expect(o.page.locator(".seg [data-view='grid']")).to_be_visible()
    data = o.js("JSON.parse(document.getElementById('report-data').textContent)")
    assert data["performance"] is None
    # a view remembered from a page that had figures falls back to the grid
    o.js(
        "localStorage.setItem('runner-ui:' + JSON.parse(document.getElementById('report-data')"
        ".textContent).run.id, JSON.stringify({view: 'performance'}))"
    )
    o.goto()
    expect(o.page.locator("body")).to_have_attribute("data-view", "grid")
    expect(o.page.locator(".card").first).to_be_visible()
    o.clean()
