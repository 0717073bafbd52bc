"""The report's look and density in Chromium (file://): cards as wide as their video, the sticky
toolbar, the list inside 1280 px, compare titles naming what differs, promoted pairs in sync."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests import test_browser_print as prints
from tests import test_browser_report as base
from tests.test_browser_report import CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium"),
]

# the fixtures of the report's and the print's browser tests
browser = base.browser
open_page = base.open_page
site = base.site
sweep200 = prints.sweep200

MEDIA = """Array.from(document.querySelectorAll('.card .media[data-k]'), m => {
  const r = m.getBoundingClientRect(), v = m.closest('.card').getBoundingClientRect();
  return {w: r.width, h: r.height, card: v.width, src: m.querySelector('img').getAttribute('src')};
})"""


def test_cards_are_as_wide_as_their_video(site, open_page):
    o = open_page(site["sweep"])
    boxes = o.js(MEDIA)
    wide = [b for b in boxes if b["src"].endswith("pool-0.jpg")]  # 16:9
    tall = [b for b in boxes if b["src"].endswith("pool-1.jpg")]  # 9:16
    assert wide and tall
    for b in wide:
        assert abs(b["w"] / b["h"] - 16 / 9) < 0.03, b
        assert abs(b["card"] - b["w"]) < 3  # the picture fills the card's width
    for b in tall:
        assert abs(b["w"] / b["h"] - 9 / 16) < 0.03, b
    # the size slider sets the picture's area: a 9:16 card is as large, and narrower
    w, t = wide[0], tall[0]
    assert abs(w["w"] * w["h"] - t["w"] * t["h"]) / (w["w"] * w["h"]) < 0.1
    assert t["card"] < 0.7 * w["card"]
    before = w["w"]
    o.page.locator("#size").fill("330")
    o.page.wait_for_function(
        "b => document.querySelector('.card .media[data-k]').getBoundingClientRect().width"
        " > b * 1.2",
        arg=before,
    )
    o.clean()


@pytest.mark.slow
def test_more_than_a_row_and_a_third_fits_above_the_fold_with_the_toolbar_in_reach(
    sweep200, open_page
):
    o = open_page(sweep200)
    o.page.set_viewport_size({"width": 1440, "height": 900})
    o.goto()
    rows = o.js(
        "(() => { const g = document.querySelector('.grow').getBoundingClientRect();"
        " return (innerHeight - g.top) / g.height; })()"
    )
    assert rows > 1.3, rows
    assert o.js("document.getElementById('toolbar').offsetHeight") < 90  # two rows at most
    assert o.page.locator(".more:visible").count() == 0  # 10 cards a row: none hidden
    o.page.mouse.wheel(0, 6000)
    o.page.wait_for_function("() => scrollY > 3000")
    for button in ("#export-btn", "#print-btn", "#picks-btn"):
        box = o.page.locator(button).bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] < 120, button
        hit = o.js(
            "b => { const r = document.querySelector(b).getBoundingClientRect();"
            " return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2)"
            ".closest(b) !== null; }",
            button,
        )
        assert hit, f"{button} is covered"
    o.page.click("#export-btn")  # still works from down the page: nothing picked yet
    o.clean()


def test_the_list_fits_1280_px_with_credits_and_latency(sweep200, open_page):
    o = open_page(sweep200)  # 1280 × 860
    o.page.click("[data-view='list']")
    o.page.wait_for_selector("table.list tr.card")
    rights = o.js(
        "Array.from(document.querySelectorAll('table.list th'),"
        " th => [th.textContent, th.getBoundingClientRect().right])"
    )
    assert [name for name, _ in rights][-4:] == ["credits", "latency", "compare", "note"]
    assert all(right <= 1280 for _, right in rights), rights
    assert o.js("document.documentElement.scrollWidth") <= 1280
    first = o.page.locator("table.list tr.card").first
    assert first.locator("td.num").all_inner_texts() == [
        "41.0",
        first.locator("td.num").nth(1).inner_text(),
    ]
    assert first.locator("td.num").nth(1).inner_text().endswith("s")
    prompt = o.js("document.querySelector('table.list tr.card td .prompt').parentElement.title")
    assert prompt == "cinematic shot of Product 01 on a walnut desk, soft light"
    o.clean()


def test_compare_titles_name_what_differs(site, open_page):
    o = open_page(site["sweep"])
    o.page.click("[data-view='list']")
    o.page.select_option("#filters select[data-dim='0']", label="Smartwatch")  # name
    rows = o.page.locator("table.list tr.card")
    o.page.wait_for_function("() => document.querySelectorAll('table.list tr.card').length === 4")
    picked = []
    for i in range(4):
        dims = rows.nth(i).locator("td.dim").all_inner_texts()
        if dims != ["playful", "9:16"]:
            rows.nth(i).locator(".cmp input").check()
            picked.append(" · ".join(dims))
    expect(o.page.locator("#tray-count")).to_have_text("3")
    o.page.click("#tray-open")
    labels = [t.strip() for t in o.page.locator("#cmp-stage .slot-label").all_inner_texts()]
    assert labels == [f"{ab}{name}" for ab, name in zip("ABC", picked, strict=True)], labels
    assert len(set(picked)) == 3
    expect(o.page.locator("#cmp-title")).to_have_text(re.compile("^3 videos of Smartwatch · fast"))
    o.page.keyboard.press("Escape")
    o.clean()


def test_a_promoted_card_plays_fast_and_standard_together(site, open_page):
    o = open_page(site["standard"])
    card = o.page.locator(".card").first
    card.locator(".media[data-k]").nth(1).hover()  # the standard side
    o.page.wait_for_function(
        "() => { const v = document.querySelectorAll('.card')[0].querySelectorAll('video');"
        " return v.length === 2 && [...v].every(x => !x.paused && x.currentTime > 0.8); }",
        timeout=6000,
    )
    times = o.js(
        "Array.from(document.querySelectorAll('.card')[0].querySelectorAll('video'),"
        " v => v.currentTime)"
    )
    assert abs(times[0] - times[1]) < 0.3, times
    o.page.mouse.move(5, 5)
    o.page.wait_for_function("() => document.querySelectorAll('#grid video').length === 0")
    card.locator(".media[data-k]").first.click()  # a click plays both, and keeps them playing
    o.page.wait_for_function(
        "() => [...document.querySelectorAll('.card')[0].querySelectorAll('video')]"
        ".filter(x => !x.paused).length === 2"
    )
    o.page.mouse.move(5, 5)
    o.page.wait_for_timeout(300)
    assert o.js("[...document.querySelectorAll('#grid video')].filter(v => !v.paused).length") == 2
    o.clean()
