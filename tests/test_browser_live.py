"""The live report in a real browser: a run against the simulator rewrites its page while it
goes, and the page, opened from file:// mid-run, reloads itself onto the new results keeping
the reviewer's filter and scroll position, waits while the reviewer types, and stops
reloading once the final report is written (docs/report-page.md, "Live report")."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from runner.review.live import ENV
from tests.runhelp import simulator, spawn, truth
from tests.test_browser_report import CHROMIUM, Opened, browser  # noqa: F401 - fixtures
from tests.test_live_report import page_data

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium"),
]

JOBS = 16
EXPERIMENT = (
    "prompt,style,light,take,duration\n"
    '"A lamp on a desk, {{ style }}, {{ light }}, {{ take }}",calm | bold,day | night,'
    "t0 | t1 | t2 | t3,4\n"
)


def live_page(ws: Path, deadline: float) -> Path:
    """The run's index.html once its first live build is there."""
    while time.monotonic() < deadline:
        for page in ws.glob("*/index.html"):
            if "live" in page_data(page)["run"]:
                return page
        time.sleep(0.1)
    raise AssertionError("no live report was written")


def done_count(text: str) -> int:
    match = re.search(r"· (\d+) of (\d+) done", text)
    assert match is not None, text
    assert int(match.group(2)) == JOBS
    return int(match.group(1))


def more_than(n: int) -> re.Pattern[str]:
    return re.compile(rf"· ({'|'.join(str(k) for k in range(n + 1, JOBS + 1))}) of {JOBS} done")


def test_a_live_report_picks_up_new_results_keeping_filter_and_scroll(
    tmp_path: Path,
    browser: Any,  # noqa: F811 - the fixture
) -> None:
    exp = tmp_path / "lamps.csv"
    exp.write_text(EXPERIMENT, encoding="utf-8")
    ws = tmp_path / "ws"
    # one generation at a time, about 1.5 s each: the results come in over ~25 s
    with simulator(speed=100.0, concurrency=1) as url:
        proc = spawn("run", exp, "--base-url", url, "--workspace", ws, env={ENV: "1.5"}, quiet=True)
        try:
            path = live_page(ws, time.monotonic() + 60)
            o = Opened(browser, path)
            page = o.page
            badge = page.locator("#live-badge")
            expect(badge).to_have_text(
                re.compile(r"^live · updated \d\d:\d\d:\d\d · \d+ of 16 done$")
            )
            assert o.js("document.documentElement.dataset.live") == "1"
            o.shot("live")

            # the reviewer filters, then types in the search box (busy: no reload) and scrolls
            page.select_option("#filters select[aria-label='Filter light']", label="night")
            expect(page.locator(".card")).to_have_count(8)
            page.focus("#search")
            o.js("window.scrollTo(0, 260)")
            page.wait_for_function("() => Math.abs(window.scrollY - 260) <= 1")
            o.js("window.__same = 1")
            page.wait_for_timeout(4000)  # over twice the interval: postponed, not reloaded
            assert o.js("window.__same") == 1
            first = done_count(badge.inner_text())
            assert first < JOBS, "the run ended before the test could look: slow it down"
            o.js("document.activeElement.blur()")  # idle again: the next reload may come

            expect(badge).to_have_text(more_than(first), timeout=40_000)
            assert o.js("window.__same") is None  # a new page, not the same one redrawn
            sel = page.locator("#filters select[aria-label='Filter light']")
            expect(sel.locator("option:checked")).to_have_text("night")
            expect(page.locator("#active-filters")).to_contain_text("light=night")
            expect(page.locator(".card")).to_have_count(8)
            page.wait_for_function("() => Math.abs(window.scrollY - 260) <= 1")

            assert proc.wait(120) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert len(truth(url)["tasks"]) == JOBS

    # the final report has no marker: the page reloads onto it once, then stays
    assert "live" not in page_data(path)["run"]
    expect(page.locator("#live-badge")).to_have_count(0, timeout=30_000)
    page.wait_for_selector("html[data-ready='1']")
    assert o.js("document.documentElement.dataset.live") is None
    expect(page.locator(".card")).to_have_count(8)  # the filter survived that reload too
    page.wait_for_function("() => Math.abs(window.scrollY - 260) <= 1")
    o.js("window.__final = 1")
    page.wait_for_timeout(3500)
    assert o.js("window.__final") == 1  # no more reloading
    o.clean()
    o.close()
