"""Several reviewers, end to end in Chromium (file://): two reviewers star the demo's report,
one file is saved as European Excel would (semicolons, BOM); a third browser imports both at
once and sees each card's votes; `runner promote --min-votes 2` renders exactly what both
starred (checked against the ledger and the simulator's tasks); a note holding a formula is
neutralised on disk and comes back exactly, in "Import picks" and in the promoted report."""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.runhelp import DEMO, runner, simulator, truth
from tests.test_browser_report import CHROMIUM, Opened, browser, open_page  # noqa: F401
from tests.test_report import Page, jobs_of

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium"),
]

FORMULA = '=HYPERLINK("http://example.com","x")'


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, str]]:
    """The demo rendered on fast against a served simulator: (url, workspace, run id)."""
    from click.testing import CliRunner

    from runner.cli import main

    ws = tmp_path_factory.mktemp("reviewers") / "ws"
    with simulator() as url:
        result = CliRunner().invoke(
            main, ["run", str(DEMO), "--base-url", url, "--workspace", str(ws), "--rate", "50"]
        )
        assert result.exit_code == 0, result.output
        with sqlite3.connect(ws / "ledger.sqlite") as db:
            (run_id,) = db.execute("SELECT run_id FROM runs").fetchone()
        yield url, ws, str(run_id)


def card(o: Opened, key: str) -> Any:
    return o.page.locator(f'.card[data-key="{key}"]')


def star(o: Opened, keys: list[str]) -> None:
    from playwright.sync_api import expect

    for key in keys:
        card(o, key).locator(".tog.star").click()
        expect(card(o, key)).to_have_class("card starred")


def export(o: Opened, path: Path) -> Path:
    if o.page.locator("#picks").is_hidden():
        o.page.click("#picks-btn")
    with o.page.expect_download() as download:
        o.page.click("#picks-export")
    download.value.save_as(path)
    return path


def test_two_reviewers_merged_into_votes_and_promoted_with_min_votes(
    demo: tuple[str, Path, str],
    open_page: Callable[..., Opened],  # noqa: F811
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    url, ws, run_id = demo
    page = ws / run_id / "index.html"

    # Ann has no name in this browser yet: her first star asks for it, then applies
    ann = open_page(page, reviewer=None)
    keys = ann.js("Array.from(document.querySelectorAll('.card'), e => e.dataset.key)")[:4]
    a, b, c, d = keys
    card(ann, a).locator(".tog.star").click()
    expect(ann.page.locator("#reviewer")).to_be_visible()
    expect(ann.page.locator("#reviewer-name")).to_be_focused()
    ann.page.keyboard.type("Ann")
    ann.page.keyboard.press("Enter")
    expect(ann.page.locator("#reviewer")).to_be_hidden()
    expect(card(ann, a)).to_have_class("card starred")
    star(ann, [b, c])
    card(ann, b).focus()
    ann.page.keyboard.press("n")
    ann.page.fill("#note-text", FORMULA)
    ann.page.keyboard.press("Control+Enter")
    expect(card(ann, b).locator(".note-line")).to_have_text(FORMULA)
    ann.page.click("#picks-btn")
    expect(ann.page.locator("#reviewer-line")).to_contain_text("Reviewing as Ann")
    ann_csv = export(ann, tmp_path / "ann.csv")
    rows = list(csv.DictReader(io.StringIO(ann_csv.read_text("utf-8"), newline="")))
    assert {r["job_key"] for r in rows} == {a, b, c} and {r["reviewer"] for r in rows} == {"Ann"}
    # neutralised on disk: Excel shows the text instead of running the formula
    assert next(r["note"] for r in rows if r["job_key"] == b) == "'" + FORMULA
    assert all(r["prompt"] for r in rows)
    ann.clean()

    bob = open_page(page, reviewer="Bob")
    star(bob, [b, c, d])
    plain = export(bob, tmp_path / "plain.csv")
    bob.clean()
    # Bob opened it in European Excel and saved it again: semicolons and a BOM
    table = list(csv.reader(io.StringIO(plain.read_text("utf-8"), newline="")))
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerows(table)
    bob_csv = tmp_path / "bob.csv"
    bob_csv.write_bytes(b"\xef\xbb\xbf" + out.getvalue().encode("utf-8"))

    cleo = open_page(page, reviewer="Cleo")
    cleo.page.click("#picks-btn")
    cleo.page.set_input_files("#import-file", [str(ann_csv), str(bob_csv)])
    expect(cleo.page.locator("#pick-count")).to_have_text("4")
    for key, votes in ((a, 1), (b, 2), (c, 2), (d, 1)):
        expect(card(cleo, key).locator(".votes-count")).to_have_text(f"{votes} of 3 starred")
    expect(card(cleo, b).locator(".votes-notes .note-text")).to_have_text(FORMULA)
    assert cleo.js(f"document.querySelector('.card[data-key=\"{b}\"] .note-text').textContent") == (
        FORMULA
    )
    expect(cleo.page.locator("#picks-summary")).to_contain_text("3 reviewers")
    cleo.page.keyboard.press("Escape")
    # the picks filter: her own stars (none yet), anyone's, or at least two reviewers'
    shown = cleo.page.locator("#grid .card")
    for value, keys in (("voted2", {b, c}), ("voted", {a, b, c, d}), ("star", set())):
        cleo.page.select_option("#picks-sel", value)
        expect(shown).to_have_count(len(keys))
        assert set(shown.evaluate_all("cs => cs.map(c => c.dataset.key)")) == keys
    expect(cleo.page.locator("#active-filters")).to_contain_text("picks: ★ starred by me")
    cleo.page.select_option("#picks-sel", "all")
    cleo.clean()

    before = {t["id"] for t in truth(url)["tasks"]}
    result = runner(  # its own process: Playwright's loop runs in this one
        "promote", run_id, "--winners", ann_csv, "--winners", bob_csv, "--min-votes", "2",
        "--workspace", ws, "--rate", "50", "--base-url", url,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    with sqlite3.connect(ws / "ledger.sqlite") as db:
        child, parents = db.execute(
            "SELECT run_id, group_concat(parent_job_key) FROM jobs WHERE run_id != ? "
            "GROUP BY run_id",
            (run_id,),
        ).fetchone()
        bodies = {k: t for k, t in db.execute("SELECT job_key, task_id FROM jobs")}
    assert sorted(parents.split(",")) == sorted([b, c])
    new = [t for t in truth(url)["tasks"] if t["id"] not in before]
    assert len(new) == 2 and {t["id"] for t in new} <= set(bodies.values())

    # the promoted run's report shows Ann's note exactly, on the card of b's standard render
    report = ws / child / "index.html"
    data = Page(report.read_text("utf-8")).data
    by_parent = {r["parent"]["key"]: r["key"] for r in jobs_of(data) if r["parent"]}
    assert data["winnerNotes"] == {by_parent[b]: [["Ann", FORMULA]]}
    promoted = open_page(report)
    expect(card(promoted, by_parent[b]).locator(".votes-notes li")).to_have_text(f"Ann: {FORMULA}")
    promoted.clean()


def test_a_file_of_this_browsers_own_reviewer_joins_its_own_picks(
    demo: tuple[str, Path, str],
    open_page: Callable[..., Opened],  # noqa: F811
    tmp_path: Path,
) -> None:
    """Picks exported on another computer by the same reviewer become this browser's own: an
    un-star here then takes the vote away (it did not when the file stayed an import)."""
    from playwright.sync_api import expect

    _, ws, run_id = demo
    page = ws / run_id / "index.html"
    key = jobs_of(Page(page.read_text("utf-8")).data)[-1]["key"]
    laptop = open_page(page, reviewer="Dana")
    star(laptop, [key])
    saved = export(laptop, tmp_path / "dana.csv")

    desk = open_page(page, reviewer="Dana")
    desk.page.set_input_files("#import-file", [str(saved)])
    expect(card(desk, key)).to_have_class("card starred")  # her own star now, not a vote
    card(desk, key).locator(".tog.star").click()
    expect(card(desk, key)).not_to_have_class("card starred")
    expect(desk.page.locator("#pick-count")).to_have_text("0")
