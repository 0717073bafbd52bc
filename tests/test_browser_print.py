"""Printing the report in Chromium (file://): the current view as a contact sheet on A4 and
Letter, every card with its poster, counted in the PDF the browser prints.

The PDF is read with pypdf: the images drawn on each page (walking the content streams and the
form XObjects they call, keeping the transformation matrix) are the posters and frame strips
that were loaded when the page was printed; an image not loaded yet is not drawn at all.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from runner.review import report
from runner.run import ledger as L
from tests import test_browser_report as base
from tests.test_browser_report import CHROMIUM, Opened
from tests.test_report_support import grid_jobs, media_pool, write_run

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium"),
]

NAMES = [f"Product {i:02d}" for i in range(1, 21)]
STYLES = ["cinematic", "playful", "noir", "pastel", "macro"]
browser = base.browser  # the fixtures of the report's browser tests
open_page = base.open_page
STUB_PRINT = "window.print = () => { window.__printed = (window.__printed || 0) + 1; };"


@pytest.fixture(scope="module")
def sweep200(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 200-job sweep a new user printed: 20 products × 5 styles × 16:9 and 9:16."""
    ws = tmp_path_factory.mktemp("ws200")
    pool = media_pool(ws / "_pool", 2)
    jobs = grid_jobs(NAMES, STYLES, ["16:9", "9:16"], media=2)
    assert len(jobs) == 200
    write_run(ws, "big", jobs, pool_dir=ws / "_pool", pool=pool, name="200-job sweep")
    with L.reader(ws) as store:
        return report.build(store, ws, "big")


def _mul(a: list[float], b: list[float]) -> list[float]:
    return [
        a[0] * b[0] + a[1] * b[2],
        a[0] * b[1] + a[1] * b[3],
        a[2] * b[0] + a[3] * b[2],
        a[2] * b[1] + a[3] * b[3],
        a[4] * b[0] + a[5] * b[2] + b[4],
        a[4] * b[1] + a[5] * b[3] + b[5],
    ]


def _images(reader: Any, contents: Any, resources: Any, ctm: list[float], out: list[Any]) -> None:
    """Every image drawn by a content stream: (pixel width, height, left x, right x) in points."""
    from pypdf.generic import ContentStream

    stack: list[list[float]] = []
    xobjects = resources.get("/XObject", {}) if resources else {}
    xobjects = xobjects.get_object() if hasattr(xobjects, "get_object") else xobjects
    for operands, op in ContentStream(contents, reader).operations:
        if op == b"q":
            stack.append(ctm)
        elif op == b"Q":
            ctm = stack.pop()
        elif op == b"cm":
            ctm = _mul([float(x) for x in operands], ctm)
        elif op == b"Do":
            x = xobjects[operands[0]].get_object()
            if x["/Subtype"] == "/Image":
                left, right = sorted((ctm[4], ctm[4] + ctm[0]))
                out.append((int(x["/Width"]), int(x["/Height"]), left, right))
            elif x["/Subtype"] == "/Form":
                m = [float(v) for v in x.get("/Matrix", [1, 0, 0, 1, 0, 0])]
                _images(reader, x, x.get("/Resources", resources), _mul(m, ctm), out)


def printed(o: Opened, fmt: str) -> tuple[Counter[tuple[int, int]], float, str, int]:
    """The page printed as the browser does (print media; `beforeprint` fires): the images
    drawn, by pixel size; the largest overshoot past the page's right margin (points); the
    text; the page count."""
    from pypdf import PdfReader

    o.page.emulate_media(media="print")
    pdf = PdfReader(io.BytesIO(o.page.pdf(format=fmt, print_background=True)))
    sizes: Counter[tuple[int, int]] = Counter()
    over = -1e9
    margin = 10 / 25.4 * 72  # @page margin: 10mm
    for page in pdf.pages:
        drawn: list[Any] = []
        _images(pdf, page.get_contents(), page["/Resources"], [1, 0, 0, 1, 0, 0], drawn)
        width = float(page.mediabox.width)
        for w, h, _left, right in drawn:
            sizes[(w, h)] += 1
            over = max(over, right - (width - margin))
    text = "\n".join(p.extract_text() for p in pdf.pages)
    return sizes, over, text, len(pdf.pages)


POSTERS = {(160, 90), (90, 160)}  # the pool's posters (the strips are wider)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["A4", "Letter"])
def test_print_button_prints_every_card_with_its_poster_inside_the_page(sweep200, open_page, fmt):
    o = open_page(sweep200)
    o.page.add_init_script(STUB_PRINT)
    o.page.set_viewport_size({"width": 1440, "height": 900})
    o.goto()
    assert o.page.locator(".card").count() < 200  # the screen draws the rows in view only
    o.page.click("#print-btn")
    o.page.wait_for_function("() => window.__printed === 1")
    assert o.page.locator(".card").count() == 200
    assert o.js("Array.from(document.querySelectorAll('#grid img')).every(i => i.complete)")
    sizes, over, text, pages = printed(o, fmt)
    assert sum(n for size, n in sizes.items() if size in POSTERS) == 200, sizes
    assert text.count("41.0 cr") == 200  # each card's foot, once
    assert over <= 0.5, f"a card passes the right margin by {over:.1f} pt"
    assert pages > 1
    o.clean()


@pytest.mark.slow
def test_the_browsers_own_print_draws_every_card_too(sweep200, open_page):
    """Ctrl+P (no button): `beforeprint` draws every card of the view with eager posters."""
    o = open_page(sweep200)
    o.page.select_option("#filters select[data-dim='1']", label="noir")  # style: the view's 40
    sizes, over, text, _ = printed(o, "A4")
    assert sum(n for size, n in sizes.items() if size in POSTERS) == 40, sizes
    assert text.count("41.0 cr") == 40 and "cinematic" not in text
    assert over <= 0.5
    o.clean()


@pytest.mark.slow
def test_above_500_cards_the_print_button_asks_to_filter(open_page, tmp_path):
    ws = tmp_path / "ws"
    pool = media_pool(ws / "_pool", 1)
    jobs = grid_jobs([f"P{i}" for i in range(51)], STYLES, ["16:9", "9:16"], media=1)
    write_run(ws, "huge", jobs, pool_dir=ws / "_pool", pool=pool)
    with L.reader(ws) as store:
        path = report.build(store, ws, "huge")
    o = open_page(path)
    o.page.add_init_script(STUB_PRINT)
    o.goto()
    o.page.click("#print-btn")
    o.page.wait_for_function("() => !document.getElementById('toast').hidden")
    expect(o.page.locator("#toast")).to_contain_text(
        "510 cards in this view: filter it to 500 or fewer"
    )
    assert o.js("window.__printed") is None
    o.page.emulate_media(media="print")
    o.js("window.dispatchEvent(new Event('beforeprint'))")  # what Ctrl+P does first
    expect(o.page.locator("#print-note")).to_contain_text("Printed the first 500 of 510 cards")
    shown = o.js(
        "Array.from(document.querySelectorAll('.card')).filter("
        "e => getComputedStyle(e).display !== 'none').length"
    )
    assert shown == 500
    o.js("window.dispatchEvent(new Event('afterprint'))")
    o.page.emulate_media(media="screen")
    assert o.page.locator("#print-note").count() == 0
    assert o.page.locator("[data-view='grid'][aria-pressed='true']").count() == 1
    o.clean()
