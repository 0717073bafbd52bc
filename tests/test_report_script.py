"""The report page's script: the feature files of templates/static/report/, concatenated in
order inside one function, and an agency's override of one of them (docs/report-page.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.cli import main
from runner.review import report
from tests.test_browser_report import CHROMIUM, Opened, browser  # noqa: F401 - fixtures
from tests.test_report import Page, build, mixed_jobs, pool, pool_dir, sha  # noqa: F401 - fixtures
from tests.test_report_support import grid_jobs, media_pool, write_run

SHIPPED = report.SHIPPED_TEMPLATES / "static" / "report"


def shipped_files() -> list[Path]:
    return sorted(SHIPPED.glob("*.js"), key=lambda p: p.name)


def concatenated(files: list[tuple[str, str]]) -> str:
    """The script as the page must carry it: each file after a comment naming it, in order."""
    body = "".join(f"/* static/report/{name} */\n{text}" for name, text in files)
    return "(function () {\n'use strict';\n" + body + "})();\n"


def page_script(page: Page) -> str:
    code = [text for attrs, text in page.scripts if "type" not in attrs]
    assert len(code) == 1
    return code[0]


def test_the_shipped_script_is_split_into_ordered_feature_files():
    names = [p.name for p in shipped_files()]
    assert len(names) >= 10 and names[0] == "00-core.js" and names[-1] == "99-start.js"
    assert all(n[:2].isdigit() and n[2] == "-" for n in names)
    assert not (report.SHIPPED_TEMPLATES / "static" / "report.js").exists()


def test_the_pages_script_is_the_feature_files_concatenated_in_order(build):  # noqa: F811 - the fixture
    _, page = build(mixed_jobs())
    script = page_script(page)
    assert script == concatenated([(p.name, p.read_text("utf-8")) for p in shipped_files()])
    # the policy admits exactly this script, by its hash
    csp = page.find("meta", http_equiv="Content-Security-Policy")[0]["content"]
    assert f"script-src '{sha(script)}';" in csp


def test_an_override_of_one_feature_file_replaces_that_file_only(build, tmp_path):  # noqa: F811 - the fixture
    mine = tmp_path / "mine"
    (mine / "static" / "report").mkdir(parents=True)
    text = "// ACME-OVERRIDE\n" + (SHIPPED / "82-notes.js").read_text("utf-8")
    (mine / "static" / "report" / "82-notes.js").write_text(text)
    (mine / "static" / "report" / "55-acme.js").write_text("// ACME-NEW-FILE\n")
    _, page = build(mixed_jobs(), templates=mine)
    files = [(p.name, p.read_text("utf-8")) for p in shipped_files()]
    files = [(n, text if n == "82-notes.js" else t) for n, t in files]
    files.insert([n for n, _ in files].index("60-toolbar.js"), ("55-acme.js", "// ACME-NEW-FILE\n"))
    script = page_script(page)
    assert script == concatenated(files)
    assert script.count("ACME-OVERRIDE") == 1
    csp = page.find("meta", http_equiv="Content-Security-Policy")[0]["content"]
    assert f"script-src '{sha(script)}';" in csp


def test_a_feature_file_that_would_end_the_script_block_is_refused(build, tmp_path):  # noqa: F811 - the fixture
    mine = tmp_path / "bad"
    (mine / "static" / "report").mkdir(parents=True)
    (mine / "static" / "report" / "20-store.js").write_text("var a = '</SCRIPT>';\n")
    with pytest.raises(ValueError, match=r"static/report/20-store\.js contains '</script'"):
        build(mixed_jobs(), templates=mine)


# The list view, overridden through the registry: it draws the shipped list, then marks it.
LIST_OVERRIDE = """
// ACME-LIST-OVERRIDE
Report.views.register('list', Object.assign({}, Report.views.get('list'), {
  render() { renderList(); grid.dataset.agency = 'ACME list'; },
}));
"""


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium")
def test_an_overridden_feature_file_works_in_chromium(browser, tmp_path):  # noqa: F811
    ws = tmp_path / "ws"
    media = media_pool(ws / "_pool", 2)
    jobs = grid_jobs(["Headphones", "Lamp"], ["cinematic", "playful"], ["16:9"], media=2)
    write_run(ws, "run-1", jobs, pool_dir=ws / "_pool", pool=media)
    mine = tmp_path / "acme"
    (mine / "static" / "report").mkdir(parents=True)
    shipped_list = (SHIPPED / "52-list.js").read_text("utf-8")
    (mine / "static" / "report" / "52-list.js").write_text(shipped_list + LIST_OVERRIDE)
    result = CliRunner().invoke(
        main,
        ["report", "run-1", "--workspace", str(ws), "--templates", str(mine)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    index = ws / "run-1" / "index.html"
    assert index.read_text("utf-8").count("ACME-LIST-OVERRIDE") == 1

    o = Opened(browser, index)
    try:
        assert o.page.locator(".card").count() == len(jobs)  # the shipped grid, unchanged
        assert o.js("document.getElementById('grid').dataset.agency") is None
        o.page.click("[data-view='list']")
        o.settle()
        assert o.js("document.getElementById('grid').dataset.agency") == "ACME list"
        assert o.page.locator("table.list tbody tr").count() == len(jobs)
        o.page.click("[data-view='grid']")
        o.settle()
        assert o.page.locator(".card").count() == len(jobs)
        o.clean()
    finally:
        o.close()
