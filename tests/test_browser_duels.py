"""Duels in a real browser (Chromium, file://): two variants that differ in one dimension,
judged with the keyboard; the side panel's Bradley–Terry ranking, its "not yet", and
duels.csv out and back in (templates/static/report/77-duels.js, docs/report-page.md).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from runner.review import report
from runner.run import ledger as L
from tests.test_browser_report import CHROMIUM, Opened, browser  # noqa: F401 - fixtures
from tests.test_report_support import grid_jobs, media_pool, write_run

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium"),
]

FAVOURED = "9:16"
STYLE = "@handheld"  # a value a spreadsheet would run as a formula: the CSV neutralises it


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any]]:
    """2 names × 2 styles × 2 aspect ratios, 2 samples each; the first sample of the first
    variant failed (that variant plays its second sample)."""
    ws = tmp_path_factory.mktemp("ws")
    pool = media_pool(ws / "_pool", 2)
    jobs = grid_jobs(
        ["Headphones", "Smartwatch"], ["cinematic", STYLE], ["16:9", FAVOURED], repeats=2, media=2
    )
    jobs[0].state, jobs[0].error_code, jobs[0].media = L.FAILED, "content_policy_violation", None
    write_run(ws, "duels", jobs, pool_dir=ws / "_pool", pool=pool, name="Duel sweep")
    with L.reader(ws) as store:
        return report.build(store, ws, "duels"), jobs


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:  # noqa: F811 - the shared browser fixture
    pages: list[Opened] = []

    def _open(path: Path) -> Opened:
        pages.append(Opened(browser, path))
        return pages[-1]

    yield _open
    for p in pages:
        p.close()


def duel_view(o: Opened) -> Any:

    o.page.click("[data-view='duels']")
    expect(o.page.locator(".duel-slot")).to_have_count(2)
    return expect


def judge(o: Opened, n: int, favour: str = FAVOURED) -> dict[str, int]:
    """Make n duels with the keyboard: the favoured value always wins, anything else ties.
    Returns how many duels each dimension got."""
    expect = duel_view(o)
    done = int(o.page.inner_text(".duel-count").split()[0])
    per: dict[str, int] = {}
    keys = [("1", "2", "0"), ("ArrowLeft", "ArrowRight", "ArrowDown")]
    for i in range(n):
        a, b = o.page.locator(".duel-slot").evaluate_all("s => s.map(e => e.dataset.value)")
        dim = o.page.inner_text(".duel-about").split(":")[0]
        per[dim] = per.get(dim, 0) + 1
        left, right, tie = keys[i % 2]
        o.page.keyboard.press(left if a == favour else right if b == favour else tie)
        done += 1
        expect(o.page.locator(".duel-count")).to_contain_text(f"{done} duel")
    return per


def test_twenty_keyboard_duels_rank_the_favoured_value_first_with_its_interval(sweep, open_page):
    path, _ = sweep
    o = open_page(path)
    per = judge(o, 20)
    assert per == {"style": 10, "aspect_ratio": 10}  # the least judged dimension goes next
    expect = duel_view(o)
    aspect = o.page.locator(".duel-rank[data-dim='aspect_ratio']")
    expect(aspect.locator(".verdict")).to_have_attribute("data-state", "lead")
    verdict = aspect.locator(".verdict").inner_text()
    assert verdict.startswith(f"{FAVOURED} wins, 10 of 10 duels"), verdict
    assert "95 % interval" in verdict
    rows = aspect.locator("tbody tr")
    assert rows.evaluate_all("r => r.map(e => e.dataset.value)") == [FAVOURED, "16:9"]
    assert "10 of 10" in rows.first.inner_text() and "0 of 10" in rows.nth(1).inner_text()
    style = o.page.locator(".duel-rank[data-dim='style'] .verdict")
    expect(style).to_have_attribute("data-state", "not-yet")  # ten ties say nothing
    o.shot("duels")
    o.goto()  # kept in this browser for the run
    duel_view(o)
    expect(aspect.locator(".verdict")).to_have_attribute("data-state", "lead")
    o.clean()


def test_few_or_balanced_duels_say_not_yet(sweep, open_page):
    path, _ = sweep
    o = open_page(path)
    judge(o, 6)  # three aspect-ratio duels, all won by 9:16: not enough
    expect = duel_view(o)
    verdict = o.page.locator(".duel-rank[data-dim='aspect_ratio'] .verdict")
    expect(verdict).to_have_attribute("data-state", "not-yet")
    assert verdict.inner_text().startswith("Not yet:") and "wins," not in verdict.inner_text()
    judge(o, 6, favour="16:9")  # now 3 : 3
    expect(o.page.locator(".duel-count")).to_contain_text("12 duels")
    expect(verdict).to_have_attribute("data-state", "not-yet")
    o.clean()


def test_duels_csv_round_trip_restores_the_ranking(sweep, open_page, tmp_path):
    path, _ = sweep
    o = open_page(path)
    judge(o, 20)
    expect = duel_view(o)
    side = o.page.locator(".duel-side")
    before = [r.inner_text() for r in o.page.locator(".duel-rank").all()]
    with o.page.expect_download() as download:
        o.page.click("[data-act='export']")
    assert download.value.suggested_filename == "duels.csv"
    saved = tmp_path / "duels.csv"
    download.value.save_as(saved)
    raw = saved.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    head = ["run_id", "reviewer", "dimension", "a_job_key", "b_job_key", "a_value", "b_value"]
    assert rows[0] == [*head, "winner", "at"]
    assert len(rows) == 21 and all(r[0] == "duels" and r[7] in ("a", "b", "tie") for r in rows[1:])
    style_cells = {c for r in rows[1:] if r[2] == "style" for c in r[5:7]}
    assert style_cells == {"cinematic", "'" + STYLE}  # the formula rule of runner/review/csvsafe.py
    o.page.click("[data-act='clear']")
    o.page.click("[data-act='clear']")  # the second click clears
    expect(o.page.locator(".duel-count")).to_contain_text("0 duels")
    expect(side.locator(".verdict[data-state='lead']")).to_have_count(0)
    o.page.set_input_files("#import-file", str(saved))  # what "Import picks" hands on
    # one "Imported" per toast (importFiles says it, the importer names its file)
    expect(o.page.locator("#toast")).to_have_text("Imported duels.csv: 20 duels")
    expect(o.page.locator(".duel-count")).to_contain_text("20 duels")
    assert [r.inner_text() for r in o.page.locator(".duel-rank").all()] == before
    assert STYLE in o.page.locator(".duel-rank[data-dim='style']").inner_text()
    o.page.set_input_files("#import-file", str(saved))  # the same file twice adds nothing
    expect(o.page.locator("#toast")).to_have_text("Imported duels.csv: 0 duels; 20 already here")
    expect(o.page.locator(".duel-count")).to_contain_text("20 duels")
    expect(o.page.locator("#pick-count")).to_have_text("0")  # not taken for a winners.csv
    o.clean()


def test_a_duel_plays_in_sync_and_a_repeat_plays_its_first_finished_sample(sweep, open_page):
    path, jobs = sweep
    o = open_page(path)
    expect = duel_view(o)
    o.page.select_option("#filters select[data-dim='0']", label="Headphones")  # name
    o.page.select_option("#filters select[data-dim='1']", label="cinematic")  # style
    expect(o.page.locator(".duel-about")).to_contain_text("aspect_ratio")
    slot = {
        v: o.page.locator(f".duel-slot[data-value='{v}']") for v in ("16:9", FAVOURED)
    }  # jobs[0] (16:9, sample 1) failed: its variant plays sample 2
    expect(slot["16:9"]).to_have_attribute("data-key", jobs[1].job_key("fast"))
    assert slot["16:9"].locator(".duel-samples").count() == 0  # one finished sample only
    expect(slot[FAVOURED]).to_have_attribute("data-key", jobs[2].job_key("fast"))
    expect(slot[FAVOURED].locator(".duel-samples")).to_contain_text("sample 1 of 2")
    slot[FAVOURED].locator("button[title='Next sample']").click()
    expect(slot[FAVOURED]).to_have_attribute("data-key", jobs[3].job_key("fast"))
    expect(slot[FAVOURED].locator(".duel-samples")).to_contain_text("sample 2 of 2")
    o.page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.duel-slot video'))"
        ".every(v => v.currentTime > 0.6)"
    )
    times = o.js("Array.from(document.querySelectorAll('.duel-slot video'), v => v.currentTime)")
    assert max(times) - min(times) < 0.15, times
    o.page.click("[data-judge='tie']")  # the mouse works too, and the duel names the sample
    expect(o.page.locator(".duel-count")).to_contain_text("1 duel")
    with o.page.expect_download() as download:
        o.page.click("[data-act='export']")
    saved = Path(download.value.path())
    row = list(csv.reader(io.StringIO(saved.read_text("utf-8"), newline="")))[1]
    assert {row[3], row[4]} == {jobs[1].job_key("fast"), jobs[3].job_key("fast")}
    assert row[7] == "tie"
    o.page.keyboard.press("u")  # take it back
    expect(o.page.locator(".duel-count")).to_contain_text("0 duels")
    o.page.click("[data-view='grid']")  # the duel keys belong to the duel view only
    o.page.keyboard.press("ArrowRight")
    o.page.keyboard.press("s")
    expect(o.page.locator("#pick-count")).to_have_text("1")
    duel_view(o)  # the star tally sits beside the ranking
    starred = o.page.locator(".duel-rank[data-dim='aspect_ratio'] tbody tr")
    expect(starred).to_have_count(1)
    expect(starred).to_contain_text("★ 1")
    o.clean()


@pytest.mark.slow
def test_a_live_reload_keeps_the_duel_view_and_its_duel_on(tmp_path, open_page):
    """A live page (95-live.js) reloading while the reviewer duels on one dimension comes
    back on the duel view, still on that dimension."""

    ws = tmp_path / "ws"
    pool = media_pool(ws / "_pool", 2)
    jobs = grid_jobs(
        ["Headphones", "Smartwatch"], ["cinematic", "moody"], ["16:9", "9:16"], media=2
    )
    write_run(ws, "live-duels", jobs, pool_dir=ws / "_pool", pool=pool)
    with L.reader(ws) as store:
        path = report.build(
            store, ws, "live-duels", live={"every": 3, "written": "2026-11-30T10:00:00+00:00"}
        )
    o = open_page(path)
    o.page.uncheck("#loop-chk")  # the duel's videos end, so the reviewer is idle again
    duel_view(o)
    o.page.select_option(".duel-only", "style")
    expect(o.page.locator(".duel-about")).to_contain_text("style:")
    o.js("window.__same = 1")
    o.page.wait_for_function("() => window.__same === undefined", timeout=30_000)
    o.page.wait_for_selector("html[data-ready='1']")
    expect(o.page.locator(".duel-only")).to_have_value("style")
    expect(o.page.locator(".duel-about")).to_contain_text("style:")


def test_duel_keys_wait_while_the_name_dialog_is_open(sweep, open_page, browser):  # noqa: F811
    """A first judgement asks the reviewer's name; keys pressed while that dialog is open (its
    buttons focused) neither skip nor judge the duel on screen."""

    path, _ = sweep
    o = Opened(browser, path, reviewer=None)
    try:
        duel_view(o)
        before = o.page.locator(".duel-slot").evaluate_all("s => s.map(e => e.dataset.key)")
        o.page.keyboard.press("1")
        expect(o.page.locator("#reviewer")).to_be_visible()
        expect(o.page.locator("#reviewer-name")).to_be_focused()
        o.page.focus("#reviewer-cancel")
        for key in ("n", "2", "ArrowRight"):
            o.page.keyboard.press(key)
        assert o.page.locator(".duel-slot").evaluate_all("s => s.map(e => e.dataset.key)") == before
        o.page.fill("#reviewer-name", "Dee")
        o.page.click("#reviewer-save")
        expect(o.page.locator(".duel-count")).to_contain_text("1 duel (1 yours)")
        rows = o.js("JSON.parse(localStorage.getItem('runner-duels:duels')).duels")
        assert [(r["r"], r["a"], r["b"], r["w"]) for r in rows] == [("Dee", *before, "a")]
    finally:
        o.close()
