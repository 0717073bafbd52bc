"""The share folder of `runner export --share` in a real browser (Chromium, file://, offline):
only the starred videos are in it, the page asks for nothing outside it, starred cards play,
the others show their poster and "video not included in this share". The run is rendered by
the built-in simulator; which videos are starred comes from the ledger."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
from click.testing import Result

from runner.review.share import NOT_SHARED

from .test_browser_report import CHROMIUM, Opened
from .test_browser_report import browser as browser  # the fixture
from .test_promote import write_winners
from .test_prune import jobs
from .test_prune import swept as swept  # the fixture: four jobs rendered by the simulator

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium"),
]


def test_share_folder_opens_offline_with_only_the_starred_videos(
    swept: Path,  # before the browser: a run cannot start inside Playwright's event loop
    cli: Callable[..., Result],
    tmp_path: Path,
    browser: Any,
) -> None:
    from playwright.sync_api import expect

    every = jobs(swept)
    run_id = every[0]["run_id"]
    starred = [every[0], every[2]]
    winners = write_winners(tmp_path / "winners.csv", starred)
    out, archive = tmp_path / "client" / "share", tmp_path / "client.zip"
    base = ("export", run_id, "--share", "--winners", winners, "--workspace", swept, "--out")
    assert cli(*base, out).exit_code == 0
    assert cli(*base, archive).exit_code == 0

    starred_videos = sorted(Path(j["file_path"]).name for j in starred)
    assert sorted(p.name for p in (out / "media").glob("*.mp4")) == starred_videos
    with zipfile.ZipFile(archive) as z:
        z.extractall(tmp_path / "unzipped")
    unzipped = tmp_path / "unzipped" / "client"
    assert sorted(p.relative_to(unzipped) for p in unzipped.rglob("*")) == sorted(
        p.relative_to(out) for p in out.rglob("*")
    )

    for folder in (out, unzipped):
        o = Opened(browser, folder / "index.html")
        failed: list[str] = []
        o.page.on("requestfailed", lambda r: failed.append(r.url))  # noqa: B023 - one page each
        try:
            left_out = o.page.locator(".media.pruned")
            expect(left_out).to_have_count(2)
            expect(left_out.locator(".badge-b")).to_have_text([NOT_SHARED, NOT_SHARED])
            posters = left_out.locator("img")
            expect(posters).to_have_count(2)
            for i in range(2):
                expect(posters.nth(i)).to_have_js_property("complete", True)
                assert posters.nth(i).evaluate("img => img.naturalWidth") > 0
            left_out.first.hover()
            left_out.first.click()
            o.settle()
            expect(o.page.locator("video")).to_have_count(0)  # no player for a left-out video

            playable = o.page.locator(".media[data-k]")
            expect(playable).to_have_count(2)
            for i in range(2):
                playable.nth(i).hover()
                video = playable.nth(i).locator("video")
                expect(video).to_have_count(1)
                o.page.wait_for_function(
                    "v => v.currentTime > 0.3", arg=video.element_handle(), timeout=8000
                )
                source = unquote(urlparse(video.evaluate("v => v.currentSrc")).path)
                assert Path(source).name in starred_videos
                o.page.mouse.move(5, 5)
                expect(o.page.locator("#grid video")).to_have_count(0)

            # a client's page shows no credits: not on the cards, the list or the header
            expect(o.page.locator("#grid .card")).to_have_count(len(every))
            assert not any(" cr" in t for t in o.texts("#grid .card .foot"))
            expect(o.page.locator("#money")).to_have_count(0)
            o.page.click("[data-view='list']")
            expect(o.page.locator("table.list thead th").first).to_be_visible()
            assert "latency" in o.texts("table.list thead th")  # the list is drawn
            assert "credits" not in o.texts("table.list thead th")
            o.page.click("[data-view='grid']")
            o.clean()  # no errors, no CSP violation, nothing but file:// asked for
            inside = folder.resolve().as_uri() + "/"
            outside = [u for u in o.requests if u.startswith("file:") and not u.startswith(inside)]
            assert outside == [] and failed == []
            assert any(u.endswith(".jpg") for u in o.requests)
        finally:
            o.close()
