"""The report in a real browser: Debian's Chromium driven by Playwright, from file://, offline.

One browser for the module, a fresh context (empty localStorage) per test. The runs are
synthetic ledger rows with real videos (see test_report_support). Screenshots of the main
views land in tests/artifacts/ (git-ignored) for a human to look at.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from runner.review import report
from runner.run import ledger as L
from tests.test_report_support import HOSTILE, FakeJob, grid_jobs, media_pool, write_run

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Four reports: a sweep with repeats and failures, hostile text, and a promoted pair."""
    ws = tmp_path_factory.mktemp("ws")
    pool = media_pool(ws / "_pool", 4)
    sweep = grid_jobs(
        ["Headphones", "Smartwatch", "E-bike"], ["cinematic", "playful"], ["16:9", "9:16"], media=2
    )
    sweep[1] = FakeJob(
        values=sweep[1].values,
        prompt="a celebrity wearing headphones",
        name="Headphones",
        state=L.FAILED,
        error_code="content_policy_violation",
        error_message="Blocked: the prompt names a real person.",
        media=None,
    )
    sweep[2].state, sweep[2].error_code, sweep[2].media = L.UNKNOWN, "create_outcome_unknown", None
    sweep += [
        FakeJob(
            values={"name": "E-bike", "style": "noir", "aspect_ratio": "1:1"},
            prompt="noir shot of an e-bike",
            name="E-bike",
            sample=s,
            media=s % 2,
            variant_key="00000000000000aa",
        )
        for s in (1, 2, 3)
    ]
    write_run(ws, "sweep", sweep, pool_dir=ws / "_pool", pool=pool, name="Spring sweep")
    hostile = [
        FakeJob(
            values={"name": text, "style": HOSTILE[(i + 3) % len(HOSTILE)]},
            prompt=f"{text} shot",
            name=text,
            media=i % 2,
            state=L.DONE if i % 2 else L.FAILED,
            error_code=None if i % 2 else "content_policy_violation",
            error_message=None if i % 2 else text,
        )
        for i, text in enumerate(HOSTILE)
    ]
    write_run(
        ws,
        "hostile",
        hostile,
        pool_dir=ws / "_pool",
        pool=pool,
        name=HOSTILE[1],
        experiment=HOSTILE[0],
        stop_reason=HOSTILE[2],
    )
    parents = grid_jobs(
        ["Headphones", "Lamp", "Kettle"], ["cinematic", "playful"], ["16:9", "9:16"], media=2
    )
    write_run(ws, "fast", parents, pool_dir=ws / "_pool", pool=pool)
    children = [
        FakeJob(
            values=p.values,
            prompt=p.prompt,
            name=p.name,
            media=2 + i % 2,
            variant_key=p.variant(),
            parent_job_key=p.job_key("fast"),
        )
        for i, p in enumerate(parents[:3])
    ]
    write_run(
        ws,
        "standard",
        children,
        pool_dir=ws / "_pool",
        pool=pool,
        tier="standard",
        parent_run="fast",
    )
    with L.reader(ws) as store:
        return {run: report.build(store, ws, run) for run in ("sweep", "hostile", "standard")}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


class Opened:
    """A page of one report with everything it logged, requested and tried to pop up."""

    def __init__(self, browser: Any, path: Path, reviewer: str | None = "Tester") -> None:
        self.context = browser.new_context(
            viewport={"width": 1280, "height": 860}, accept_downloads=True
        )
        self.context.set_default_timeout(8000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on(
            "console",
            lambda m: self.errors.append(m.text) if m.type in ("error", "warning") else None,
        )
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", self._dialog)
        self.page.add_init_script(WATCH)
        if reviewer:  # a returning reviewer: the page does not ask for a name (85-picks.js)
            # on the first load only (window.name survives reloads)
            self.page.add_init_script(
                "if (!window.name) { window.name = 'runner-test';"
                f" localStorage.setItem('runner-reviewer', {json.dumps(reviewer)}); }}"
            )
        self.path = path
        self.goto()

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def goto(self) -> None:
        """Open the report, or reload it as a reviewer would (F5) once it is open.

        A reload checks that what the page kept in localStorage is still there. About once in
        three full runs on two busy cores, Chromium's test context (off the record: storage
        in memory) started the reloaded page without some or all of it (the reviewer's name,
        20 duels, a star), never a key the page itself had removed (it removes none). The
        test puts back the snapshot the page wrote and reloads again, rather than failing on
        the test browser's storage; a page that stopped saving still fails its test."""
        if self.page.url != self.path.as_uri():
            self.page.goto(self.path.as_uri())
            self._ready()
            return
        kept = self.js("Object.assign({}, localStorage)")
        for _ in range(3):
            self.page.reload()
            self._ready()
            lost = sorted(set(kept) - set(self.js("Object.keys(localStorage)")))
            if not lost:
                return
            print(f"Chromium reloaded {self.path.name} without {lost}", file=sys.stderr)
            self.js("s => { for (const k in s) localStorage.setItem(k, s[k]); }", kept)
        raise AssertionError(f"localStorage lost on every reload of {self.path.name}")

    def _ready(self) -> None:
        self.page.wait_for_selector("html[data-ready='1']", timeout=15_000)
        self.settle()

    def settle(self) -> None:
        """Let the rows that came into view render (IntersectionObserver, next frames)."""
        self.page.evaluate(
            "new Promise(r => requestAnimationFrame(() =>"
            " requestAnimationFrame(() => setTimeout(r, 50))))"
        )

    def texts(self, selector: str) -> list[str]:
        """The elements' text, spaces collapsed. textContent, not innerText: a row scrolled
        out of view is skipped by content-visibility and has no innerText."""
        return [" ".join(t.split()) for t in self.page.locator(selector).all_text_contents()]

    def js(self, expression: str, arg: Any = None) -> Any:
        return self.page.evaluate(expression, arg)

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))

    def clean(self) -> None:
        assert self.errors == []
        assert self.js("window.__csp") == []
        assert self.dialogs == []
        assert all(u.startswith(("file://", "blob:", "data:")) for u in self.requests), (
            self.requests
        )

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    pages: list[Opened] = []

    def _open(path: Path, reviewer: str | None = "Tester") -> Opened:
        pages.append(Opened(browser, path, reviewer))
        return pages[-1]

    yield _open
    for p in pages:
        p.close()


@pytest.mark.fault("B3")
def test_pages_load_offline_without_errors_or_csp_violations(site, open_page):
    for name, path in site.items():
        o = open_page(path)
        o.page.mouse.move(300, 420)  # a hover plays a video: media is allowed by the policy
        o.page.wait_for_timeout(300)
        o.clean()
        assert o.page.locator(".card").count() > 0, name
        assert any(u.endswith(".jpg") for u in o.requests), "posters load from media/"


def expect_state(locator: Any) -> Any:
    """Playwright's `expect`: waits for the page's state (never read the DOM right after an
    action: on two busy cores the page may not have drawn it yet)."""
    from playwright.sync_api import expect

    return expect(locator)


def test_grid_has_the_varied_dimensions_on_its_axes_and_switching_them_regroups(site, open_page):
    from playwright.sync_api import expect

    # every check waits for the page's state: reading the DOM right after an action failed
    # on two busy cores
    o = open_page(site["sweep"])
    rows, cols = o.page.locator(".rhead bdi"), o.page.locator(".chead bdi")
    expect(rows).to_have_text(["Headphones", "Smartwatch", "E-bike"])
    o.shot("grid")
    o.page.select_option("#rows-sel", label="style (3)")
    o.page.select_option("#cols-sel", label="name (3)")
    expect(rows).to_have_text(["cinematic", "playful", "noir"])
    expect(cols).to_have_text(["Headphones", "Smartwatch", "E-bike"])
    o.page.click("#swap-axes")
    expect(rows).to_have_text(["Headphones", "Smartwatch", "E-bike"])
    o.page.select_option("#rows-sel", label="(none)")
    expect(o.page.locator(".rhead")).to_have_count(0)
    o.goto()  # the choice of axes is remembered for this run
    expect(cols).to_have_text(["cinematic", "playful", "noir"])
    o.clean()


def test_failed_and_held_jobs_are_cards_with_the_providers_message(site, open_page):
    o = open_page(site["sweep"])
    problems = o.texts(".problem")
    assert any("content_policy_violation" in p and "names a real person" in p for p in problems)
    assert any("HELD" in p.upper() and "runner resolve sweep" in p for p in problems)
    o.page.select_option("#status-sel", "failed")
    expect_state(o.page.locator(".card")).to_have_count(1)
    o.clean()


def test_filters_and_search_narrow_the_grid_and_repeats_stack(site, open_page):
    o = open_page(site["sweep"])
    total = o.page.locator(".card").count()
    assert total == 13  # 12 variants + one stack of 3 repeats
    stack = o.page.locator(".card", has=o.page.locator(".stack"))
    assert stack.locator(".stack button").all_inner_texts() == ["1/3", "2/3", "3/3"]
    stack.locator(".stack button").nth(1).click()
    expect_state(stack.locator(".stack button[aria-pressed='true']")).to_have_text("2/3")
    o.page.select_option("#filters select[data-dim='1']", label="cinematic")  # style
    expect_state(o.page.locator(".card")).to_have_count(6)
    expect(o.page.locator("#active-filters")).to_contain_text("style=cinematic")
    o.page.click("#active-filters .fchip button")
    expect_state(o.page.locator(".card")).to_have_count(total)
    o.page.fill("#search", "celebrity")
    o.page.wait_for_function("() => document.querySelectorAll('.card').length === 1")
    o.page.fill("#search", "")
    o.page.wait_for_function("() => document.querySelectorAll('.card').length === 13")
    o.page.click("[data-view='sheet']")
    assert o.page.locator(".card img.strip").count() >= 10
    o.shot("contact-sheet")
    o.page.click("[data-view='list']")
    expect_state(o.page.locator("table.list tr.card")).to_have_count(total)
    o.shot("list")
    o.clean()


def test_a_card_plays_its_video_on_hover_and_videos_load_only_when_played(site, open_page):
    o = open_page(site["sweep"])
    assert o.page.locator("#grid video").count() == 0  # posters only until played
    first = o.page.locator(".card .media[data-k]").first
    first.hover()
    o.page.wait_for_function(
        "() => { const v = document.querySelector('#grid video');"
        " return v && v.currentTime > 0.4; }",
        timeout=5000,
    )
    assert o.js("document.querySelector('#grid video').getAttribute('preload')") == "none"
    first.locator("xpath=..").focus()
    o.page.keyboard.press("s")  # starring a playing card leaves it playing
    t = o.js("document.querySelector('#grid video').currentTime")
    o.page.wait_for_timeout(400)
    assert o.js("document.querySelector('#grid video').currentTime") > t
    expect_state(o.page.locator(".card.starred video")).to_have_count(1)
    o.page.mouse.move(5, 5)
    o.page.wait_for_function("() => document.querySelectorAll('#grid video').length === 0")
    o.clean()


def test_compare_two_cards_plays_them_in_sync_with_one_transport(site, open_page):
    o = open_page(site["sweep"])
    playable = o.page.locator(".card:has(.media[data-k])")
    for i in (0, 3):
        playable.nth(i).focus()
        o.page.keyboard.press("c")
    expect(o.page.locator("#tray-count")).to_have_text("2")
    o.page.click("#tray-open")
    expect_state(o.page.locator("#cmp-stage video")).to_have_count(2)
    o.page.click("#t-play")
    o.page.wait_for_function(  # the page's state, not a fixed wait (a busy machine is slow)
        "() => Array.from(document.querySelectorAll('#cmp-stage video'))"
        ".every(v => v.currentTime > 0.6)"
    )
    times = o.js("Array.from(document.querySelectorAll('#cmp-stage video'), v => v.currentTime)")
    assert max(times) - min(times) < 0.15, times
    o.page.select_option("#t-speed", "0.5")
    assert o.js(
        "Array.from(document.querySelectorAll('#cmp-stage video'), v => v.playbackRate)"
    ) == [0.5, 0.5]
    o.shot("compare")
    o.page.keyboard.press(" ")
    o.page.wait_for_function(
        "() => Array.from(document.querySelectorAll('#cmp-stage video')).every(v => v.paused)"
    )
    before = o.js("document.querySelector('#cmp-stage video').currentTime")
    o.page.keyboard.press(".")
    o.page.wait_for_function(
        "b => Array.from(document.querySelectorAll('#cmp-stage video'))"
        ".every(v => Math.abs(v.currentTime - b) > 0.05 && !v.seeking)",
        arg=before,
    )
    stepped = o.js("Array.from(document.querySelectorAll('#cmp-stage video'), v => v.currentTime)")
    assert abs(stepped[0] - (before + 1 / 8)) < 0.02 and abs(stepped[1] - stepped[0]) < 0.03
    o.page.keyboard.press("Tab")  # A/B flip: one at a time, same frame
    assert o.js("document.getElementById('cmp-stage').classList.contains('flip')")

    def shown() -> object:
        return o.js(
            "Array.from(document.querySelectorAll('#cmp-stage .slot'),"
            " s => getComputedStyle(s).display !== 'none')"
        )

    assert shown() == [True, False]
    o.page.keyboard.press("Tab")
    assert shown() == [False, True]
    o.page.keyboard.press("Escape")
    expect(o.page.locator("#compare")).to_be_hidden()
    o.clean()


def test_keyboard_star_counts_in_the_header_and_survives_a_reload(site, open_page):
    o = open_page(site["sweep"])
    o.page.keyboard.press("l")
    o.page.keyboard.press("s")
    expect_state(o.page.locator("#pick-count")).to_have_text("1")
    expect_state(o.page.locator(".card.starred")).to_have_count(1)
    first = o.page.locator(".card.starred").get_attribute("data-u")
    # a re-render (here a resize) replaces every card: the keys still act on the card the
    # reviewer chose (once, the grid was redrawn between two keys and "l" went back to the
    # first card, so "x" turned its star into a reject), here with the focus gone elsewhere
    o.js("document.activeElement.blur(); document.querySelector('.card').oldCard = true")
    o.page.set_viewport_size({"width": 1300, "height": 900})
    o.page.wait_for_function("() => !document.querySelector('.card').oldCard")  # redrawn
    o.page.keyboard.press("l")
    o.page.keyboard.press("x")
    expect_state(o.page.locator(".card.rejected")).to_have_count(1)
    expect_state(o.page.locator(".card.starred")).to_have_count(1)
    second = o.page.locator(".card.rejected").get_attribute("data-u")
    assert second != first
    # and a re-render while a card has the focus gives it back to that card's new element
    o.js("document.activeElement.oldCard = true")
    o.page.set_viewport_size({"width": 1280, "height": 860})
    o.page.wait_for_function(
        "u => !document.activeElement.oldCard && document.activeElement.dataset.u === u",
        arg=second,
    )
    o.goto()
    # both picks come back (told apart: a lost write, or a star turned into a reject)
    expect_state(o.page.locator(f'.card.rejected[data-u="{second}"]')).to_have_count(1)
    expect_state(o.page.locator(f'.card.starred[data-u="{first}"]')).to_have_count(1)
    expect_state(o.page.locator("#pick-count")).to_have_text("1")
    expect_state(o.page.locator("#export-btn")).to_have_text("Export winners (1)")
    o.page.keyboard.press("?")
    expect(o.page.locator("#help")).to_be_visible()
    o.page.keyboard.press("Escape")
    o.page.keyboard.press("ArrowRight")
    o.page.keyboard.press("Enter")  # full view; arrows step through the neighbours
    expect(o.page.locator("#view-pos")).to_have_text(re.compile("^1 / 13"))
    o.page.keyboard.press("ArrowRight")
    expect(o.page.locator("#view-pos")).to_have_text(re.compile("^2 / 13"))
    o.shot("full-view")
    o.page.keyboard.press("Escape")
    o.clean()


NOTE = 'great hook, "warm" light\nsecond line: café ☕'


def star_two_with_notes(o: Opened) -> list[str]:
    keys = []
    for move in ("ArrowRight", "l"):  # the first card, then its right-hand neighbour
        o.page.keyboard.press(move)
        o.page.keyboard.press("s")
        o.page.keyboard.press("n")
        o.page.fill("#note-text", NOTE)
        o.page.keyboard.press("Control+Enter")
        keys.append(o.js("document.activeElement.dataset.key"))
    return keys


def test_export_winners_downloads_the_csv_that_promote_reads(site, open_page, tmp_path):
    o = open_page(site["sweep"])
    keys = star_two_with_notes(o)
    o.page.click("#picks-btn")
    tally = o.page.inner_text("#tally")
    assert "Headphones" in tally and "2 of 2" in tally
    o.shot("picks")
    with o.page.expect_download() as download:
        o.page.click("#picks-export")
    assert download.value.suggested_filename == "winners.csv"
    path = tmp_path / "winners.csv"
    download.value.save_as(path)
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert rows[0] == [
        "run_id",
        "job_key",
        "variant_key",
        "tier",
        "name",
        "style",
        "aspect_ratio",
        "reviewer",
        "note",
        "prompt",
    ]
    winners = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert sorted(w["job_key"] for w in winners) == sorted(keys)
    for w in winners:
        assert w["run_id"] == "sweep" and w["tier"] == "fast" and w["name"] == "Headphones"
        assert w["job_key"].startswith(w["variant_key"] + "-fast-")
        assert w["style"] in ("cinematic", "playful") and w["aspect_ratio"] in ("16:9", "9:16")
        assert w["note"] == NOTE and w["reviewer"] == "Tester"
        assert "headphones" in w["prompt"].lower()
    from runner.review.promote import read_winners  # the reader of `runner promote --winners`

    assert sorted(key for _, key in read_winners(path, "sweep")) == sorted(keys)
    o.clean()


def test_import_picks_reads_a_colleagues_winners_csv(site, open_page, tmp_path):
    first = open_page(site["sweep"], reviewer="Colleague")
    keys = star_two_with_notes(first)
    with first.page.expect_download() as download:
        first.page.click("#export-btn")
    path = tmp_path / "colleague.csv"
    download.value.save_as(path)
    path.write_text(
        path.read_text("utf-8") + "other-run,ffffffffffffffff-fast-1,ffff,fast,X,a,b,,,\n", "utf-8"
    )
    o = open_page(site["sweep"])  # another browser profile: nothing picked yet
    expect(o.page.locator("#pick-count")).to_have_text("0")
    o.page.click("#picks-btn")
    o.page.set_input_files("#import-file", str(path))
    o.page.wait_for_function("() => document.getElementById('pick-count').textContent === '2'")
    expect(o.page.locator("#toast")).to_contain_text("1 row not in this run")
    # kept as the colleague's votes, apart from this browser's own stars
    expect_state(o.page.locator(".card.starred")).to_have_count(0)
    voted = o.js(
        "Array.from(document.querySelectorAll('.card .votes-count'),"
        " e => [e.closest('.card').dataset.key, e.textContent])"
    )
    assert sorted(voted) == sorted([k, "1 of 2 starred"] for k in keys)
    # the text as written (expect reads textContent: a card scrolled out of view, skipped by
    # content-visibility, has no innerText)
    expect_state(o.page.locator(".card .votes-notes li")).to_have_text([f"Colleague: {NOTE}"] * 2)
    expect_state(o.page.locator(".card .votes-notes .note-text")).to_have_text([NOTE, NOTE])
    o.clean()


@pytest.mark.fault("B3")
def test_hostile_text_shows_inertly(site, open_page):
    o = open_page(site["hostile"])
    for box in o.page.locator(".card .media[data-k]").all()[:3]:
        box.hover()
    o.page.keyboard.press("ArrowRight")
    o.page.keyboard.press("Enter")
    o.page.keyboard.press("Escape")
    o.page.click("[data-view='list']")
    o.page.click("#picks-btn")
    o.page.fill("#search", "<script>")
    o.page.wait_for_timeout(300)
    assert o.js("window.__xss") is None
    injected = "img[src='x'], svg, iframe, object, embed"
    assert o.js(f"document.querySelectorAll({injected!r}).length") == 0
    assert o.js("document.querySelectorAll('script').length") == 2
    assert (
        o.js(
            "Array.from(document.querySelectorAll('*')).some("
            "e => Array.from(e.attributes).some(a => a.name.startsWith('on')))"
        )
        is False
    )
    o.page.fill("#search", "")
    o.page.wait_for_function(
        "() => document.getElementById('active-filters').children.length === 0"
    )
    o.page.click("[data-view='grid']")
    o.page.click("#picks-close")
    assert HOSTILE[0] in o.page.inner_text("#top")
    assert HOSTILE[1] in o.page.inner_text("h1")
    assert HOSTILE[1] in o.texts(".rhead bdi")
    o.shot("hostile")
    o.clean()


def test_promoted_run_shows_fast_and_standard_side_by_side_with_ab_flip(site, open_page):
    o = open_page(site["standard"])
    cards = o.page.locator(".card")
    assert cards.count() == 3
    for card in cards.all():
        labels = card.locator(".pair-label").all_inner_texts()
        assert [label.split(" · ")[0] for label in labels] == ["fast", "standard"]
        assert all(label.endswith(" cr") for label in labels)
    expect(o.page.locator("#promotion")).to_contain_text("Saved")
    o.shot("promoted")
    cards.first.locator(".abflip").click()
    expect_state(o.page.locator("#cmp-stage video")).to_have_count(2)
    srcs = o.js(
        "Array.from(document.querySelectorAll('#cmp-stage video'), v => v.getAttribute('src'))"
    )
    assert srcs[0].startswith("media/parent/") and not srcs[1].startswith("media/parent/")
    assert o.js("document.getElementById('cmp-stage').classList.contains('flip')")
    o.page.keyboard.press("Tab")
    assert (
        o.js("document.querySelector('#cmp-stage .slot.shown video').getAttribute('src')")
        == srcs[1]
    )
    o.clean()
