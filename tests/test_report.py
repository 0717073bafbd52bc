"""The HTML report as files: structure, Content-Security-Policy, escaping of hostile text, the
embedded JSON, relative media, promoted runs and template overrides. The page is read back
through an HTML parser, never by string matching alone. (The browser tests drive it.)"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from runner.cli import main
from runner.grid.pricing import default_prices
from runner.review import report
from runner.run import ledger as L
from tests.test_report_support import HOSTILE, FakeJob, grid_jobs, media_pool, write_run


class Page(HTMLParser):
    """Elements with their attributes, the text of every element by id, scripts and styles."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.scripts: list[tuple[dict[str, str], str]] = []
        self.styles: list[str] = []
        self.text_by_id: dict[str, str] = {}
        self._open: list[tuple[str, dict[str, str], list[str]]] = []
        self._raw: list[str] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.elements.append((tag, a))
        if tag in ("script", "style"):
            self._raw = []
        if tag not in ("meta", "link", "input", "br", "img", "hr", "source"):
            self._open.append((tag, a, []))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._raw is not None:
            text = "".join(self._raw)
            if tag == "script":
                self.scripts.append((self._open[-1][1], text))
            else:
                self.styles.append(text)
            self._raw = None
        while self._open:
            name, attrs, parts = self._open.pop()
            if "id" in attrs:
                self.text_by_id[attrs["id"]] = "".join(parts)
            if self._open:
                self._open[-1][2].extend(parts)
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._raw is not None:
            self._raw.append(data)
        if self._open:
            self._open[-1][2].append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [
            a
            for t, a in self.elements
            if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    @property
    def data(self) -> dict[str, Any]:
        blocks = [t for a, t in self.scripts if a.get("type") == "application/json"]
        assert len(blocks) == 1, "the data is embedded exactly once"
        result: dict[str, Any] = json.loads(blocks[0])
        return result


def sha(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def jobs_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    fields = data["fields"]
    return [dict(zip(fields, row, strict=True)) for row in data["jobs"]]


@pytest.fixture(scope="module")
def pool_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pool")


@pytest.fixture(scope="module")
def pool(pool_dir: Path) -> list[dict[str, object]]:
    return media_pool(pool_dir, 3)


@pytest.fixture
def build(
    tmp_path: Path, pool_dir: Path, pool: list[dict[str, object]]
) -> Callable[..., tuple[Path, Page]]:
    """build(jobs, **run) -> (index.html path, parsed page) for a synthetic run."""

    def _build(
        jobs: list[FakeJob], run_id: str = "run-1", templates: Path | None = None, **run: Any
    ) -> tuple[Path, Page]:
        write_run(tmp_path, run_id, jobs, pool_dir=pool_dir, pool=pool, **run)
        with L.reader(tmp_path) as store:
            path = report.build(store, tmp_path, run_id, templates)
        return path, Page(path.read_text("utf-8"))

    return _build


def mixed_jobs() -> list[FakeJob]:
    jobs = grid_jobs(["Headphones", "E-bike"], ["cinematic", "playful"], ["16:9", "9:16"], media=3)
    jobs[1] = FakeJob(
        values=jobs[1].values,
        prompt="celebrity endorsement",
        name="Headphones",
        state=L.FAILED,
        error_code="content_policy_violation",
        error_message="Content blocked: depicts a real person.",
        media=None,
    )
    jobs[2].state, jobs[2].error_code, jobs[2].media = L.UNKNOWN, "create_outcome_unknown", None
    jobs[2].error_message = "read timeout after the request was sent"
    jobs[3].state, jobs[3].error_code, jobs[3].media = L.EXPIRED, "result_expired", None
    jobs[3].error_message = "the result URL answered 410"
    repeats = [
        FakeJob(
            values={"name": "E-bike", "style": "noir", "aspect_ratio": "1:1"},
            prompt="noir shot of an e-bike",
            name="E-bike",
            sample=s,
            media=s % 3,
            variant_key="0123456789abcdef",
        )
        for s in (1, 2, 3)
    ]
    return jobs + repeats


# ---------------------------------------------------------------------- structure


@pytest.mark.fault("B3")
def test_page_has_a_restrictive_csp_that_admits_exactly_its_own_script_and_style(build):
    _, page = build(mixed_jobs())
    metas = page.find("meta", http_equiv="Content-Security-Policy")
    assert len(metas) == 1
    policy = dict(p.strip().split(" ", 1) for p in metas[0]["content"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["img-src"] == "'self'" and policy["media-src"] == "'self'"
    assert policy["base-uri"] == "'none'" and policy["form-action"] == "'none'"
    code = [t for a, t in page.scripts if "type" not in a]
    assert len(code) == 1 and policy["script-src"] == f"'{sha(code[0])}'"
    assert len(page.styles) == 1 and policy["style-src"] == f"'{sha(page.styles[0])}'"
    assert "unsafe" not in metas[0]["content"]
    # no inline handlers, no style attributes, no external scripts or stylesheets
    for tag, attrs in page.elements:
        assert not [k for k in attrs if k.startswith("on")], (tag, attrs)
        assert "style" not in attrs, (tag, attrs)
        assert not (tag == "script" and "src" in attrs)
        assert tag != "link"


def test_header_summarises_the_run_for_a_reviewer(build):
    _, page = build(mixed_jobs(), name="Spring sweep", stop_reason="the budget was reached")
    header = page.text_by_id["top"]
    assert "Spring sweep" in header and "SIMULATED" in header
    assert re.search(r"11\s+jobs:", header)
    for pill in ("8 done", "1 failed", "1 held", "1 expired"):
        assert pill in " ".join(header.split()), pill
    assert "credits" in header and "$" in header and "p50" in header and "p95" in header
    failures = " ".join(page.text_by_id["failures"].split())
    assert "content_policy_violation ×1" in failures
    assert "Content blocked: depicts a real person." in failures
    held = " ".join(page.text_by_id["held"].split())
    assert "runner resolve run-1" in held and "credits may have been charged" in held
    assert "paid and lost" in page.text_by_id["expired"]
    assert "the budget was reached" in page.text_by_id["stop-reason"]


def test_real_backend_has_no_simulated_badge(build):
    _, page = build(mixed_jobs()[:2], backend="evolink")
    assert "SIMULATED" not in page.text_by_id["top"]


def test_embedded_json_round_trips_every_job(build):
    jobs = mixed_jobs()
    _, page = build(jobs)
    data = page.data
    assert data["run"]["id"] == "run-1" and data["run"]["tier"] == "fast"
    assert [d["name"] for d in data["dims"]] == ["name", "style", "aspect_ratio"]
    assert data["csvDims"] == ["style", "aspect_ratio"]
    assert data["csvColumns"] == [
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
    rows = jobs_of(data)
    assert len(rows) == len(jobs)
    by_key = {r["key"]: r for r in rows}
    for job in jobs:
        row = by_key[job.job_key("fast")]
        assert data["prompts"][row["prompt"]] == job.prompt
        assert row["state"] == job.state and row["sample"] == job.sample
        assert row["variant"] == job.variant()
        values = {d["name"]: d["values"][i] for d, i in zip(data["dims"], row["dims"], strict=True)}
        assert values == job.values
        assert (row["media"] is None) == (job.media is None or job.state != L.DONE)
    failed = next(r for r in rows if r["state"] == L.FAILED)
    assert failed["code"] == "content_policy_violation"
    assert failed["message"] == "Content blocked: depicts a real person."
    # repeats share a variant key: the page stacks them as one card
    assert sum(1 for r in rows if r["variant"] == "0123456789abcdef") == 3


def test_winners_columns_never_repeat_a_name():
    from runner.review.report_data import winners_columns

    assert winners_columns(["note", "tier", "dim_tier", "hook", "prompt", "reviewer"]) == [
        "run_id",
        "job_key",
        "variant_key",
        "tier",
        "name",
        "dim_note",
        "dim_tier",
        "dim_dim_tier",
        "hook",
        "dim_prompt",
        "dim_reviewer",
        "reviewer",
        "note",
        "prompt",
    ]


def test_media_urls_are_relative_and_point_at_files_in_the_report(build):
    path, page = build(mixed_jobs())
    data = page.data
    urls = []
    for row in jobs_of(data):
        if row["media"]:
            video, poster, strip = row["media"][:3]
            stem = video.rsplit(".", 1)[0]
            urls += [
                video,
                stem + ".jpg" if poster == 1 else poster,
                stem + ".strip.jpg" if strip == 1 else strip,
            ]
    assert urls
    for url in urls:
        assert re.fullmatch(r"media/[A-Za-z0-9._-]+", url), url
        assert (path.parent / url).is_file(), url
    html = path.read_text("utf-8")
    assert not re.search(
        r"""(src|href|poster)\s*=\s*["']?\s*(file|https?|javascript|data):""", html, re.IGNORECASE
    )
    assert "file://" not in html


def test_a_media_path_that_is_not_ours_is_dropped(build, tmp_path):
    build(mixed_jobs()[:1])
    with L.Ledger.open(tmp_path) as ledger, ledger.write() as db:
        db.execute(
            "UPDATE jobs SET file_path = 'run-1/media/../../etc/passwd', media_json ="
            " json_set(media_json, '$.poster', 'javascript:alert(1)')"
        )
    with L.reader(tmp_path) as store:
        path = report.build(store, tmp_path, "run-1")
    rows = jobs_of(Page(path.read_text("utf-8")).data)
    assert rows[0]["media"] is not None
    assert rows[0]["media"][0] == "media/passwd" and rows[0]["media"][1] is None


def test_results_tables_are_still_written(build):
    path, _ = build(mixed_jobs())
    assert (path.parent / "results.parquet").is_file()
    assert (path.parent / "results.csv").read_text("utf-8-sig").startswith("run_id,job_key")


@pytest.mark.parametrize("apart", [False, True], ids=["in-process", "worker"])
def test_streamed_tables_and_page_hold_every_row_across_chunks(build, tmp_path, monkeypatch, apart):
    """The report reads the ledger and writes the tables and the cards' JSON a chunk at a
    time: with chunks of 2 rows, every row still arrives once, typed, in order; a large
    run's tables come from a worker process, the same."""
    import csv

    import pandas as pd

    from runner.review import results, tables
    from runner.review.report_data import payload

    monkeypatch.setattr(results, "CHUNK", 2)
    monkeypatch.setattr(tables, "CHUNK", 3)
    monkeypatch.setattr(report, "TABLES_APART", 1 if apart else 10**9)
    path, page = build(mixed_jobs())
    with L.reader(tmp_path) as store:
        rows = results.result_rows(store, "run-1")
        run = store.run("run-1")
        fps = {j.job_key: float(j.media["fps"]) for j in store.jobs("run-1") if j.media.get("fps")}
    assert len(rows) == len(mixed_jobs()) > 3
    frame = pd.read_parquet(path.parent / "results.parquet")
    assert list(frame.columns) == list(rows[0])
    assert frame["job_key"].tolist() == [r["job_key"] for r in rows]
    assert frame["credits"].dtype == "float64" and frame["sample"].dtype == "int64"
    for column in ("state", "error_message", "latency_s", "video_width", "prompt"):
        expected = [r[column] for r in rows]
        assert [None if pd.isna(v) else v for v in frame[column]] == expected, column
    with (path.parent / "results.csv").open(encoding="utf-8-sig", newline="") as handle:
        read = list(csv.DictReader(handle))
    assert [r["job_key"] for r in read] == [r["job_key"] for r in rows]
    assert [r["error_message"] for r in read] == [r["error_message"] or "" for r in rows]
    # the page's JSON, streamed, is what payload() builds from all the rows at once
    expected = json.loads(json.dumps(payload(run, rows, fps, default_prices())))
    assert page.data == expected


def test_a_run_without_jobs_still_gets_a_page(build):
    _, page = build([])
    assert page.data["jobs"] == []
    assert re.search(r"0\s+jobs", page.text_by_id["top"])


# ---------------------------------------------------------------------- hostile text


def hostile_jobs() -> list[FakeJob]:
    jobs = []
    for i, text in enumerate(HOSTILE):
        jobs.append(
            FakeJob(
                values={"name": text, "style": HOSTILE[-1 - i], "aspect_ratio": "16:9"},
                prompt=f"{text} shot {i}",
                name=text,
                media=i % 3,
                state=L.DONE if i % 2 else L.FAILED,
                error_code=None if i % 2 else "content_policy_violation",
                error_message=None if i % 2 else text,
            )
        )
    return jobs


@pytest.mark.fault("B3")
def test_hostile_text_is_escaped_everywhere_and_survives_the_round_trip(build):
    jobs = hostile_jobs()
    path, page = build(jobs, name=HOSTILE[1], experiment=HOSTILE[0], stop_reason=HOSTILE[2])
    html = path.read_text("utf-8")
    # the parser sees our elements only: no injected tags or handlers
    assert not page.find("img") and not page.find("svg")
    assert len(page.scripts) == 2
    assert html.lower().count("<script") == 2 and html.lower().count("</script") == 2
    assert "onerror" not in " ".join(k for _, a in page.elements for k in a)
    # as text, exactly what the user wrote
    assert page.text_by_id["top"].count(HOSTILE[1]) >= 1
    assert HOSTILE[0] in page.text_by_id["top"]
    assert HOSTILE[2] in page.text_by_id["stop-reason"]
    # the JSON block: no raw <, >, &, ' or line separators, and every string intact
    block = next(t for a, t in page.scripts if a.get("type") == "application/json")
    assert not set(block) & {"<", ">", "&", "'", "\u2028", "\u2029"}
    rows = jobs_of(page.data)
    data = page.data
    for job, row in zip(jobs, rows, strict=True):
        assert row["name"] == job.name
        assert data["prompts"][row["prompt"]] == job.prompt
        if job.error_message:
            assert row["message"] == job.error_message
    assert HOSTILE[-1] in data["dims"][0]["values"]  # 10 kB, not clipped in the data
    assert "<title>" in html and "&lt;img src=x" in html.split("<title>")[1].split("</title>")[0]


@pytest.mark.fault("B3", "B4")
def test_jinja_syntax_in_user_text_is_never_rendered(build):
    path, page = build(hostile_jobs(), name="{{ 7*7 }}")
    assert '<h1 class="run-name">{{ 7*7 }}</h1>' in path.read_text()  # shown, not evaluated
    assert "{{ 7*7 }}" in page.text_by_id["top"]


# ---------------------------------------------------------------------- promoted runs


def test_promoted_run_shows_each_standard_render_beside_its_fast_parent(build, tmp_path):
    parents = grid_jobs(
        ["Headphones", "E-bike", "Lamp"], ["cinematic", "playful"], ["16:9", "9:16"], media=3
    )
    build(parents, run_id="sweep-fast")
    winners = parents[:3]
    children = [
        FakeJob(
            values=w.values,
            prompt=w.prompt,
            name=w.name,
            media=2,
            variant_key=w.variant(),
            parent_job_key=w.job_key("fast"),
        )
        for w in winners
    ]
    path, page = build(children, run_id="sweep-standard", tier="standard", parent_run="sweep-fast")
    rows = jobs_of(page.data)
    assert page.data["run"]["parentRun"] == "sweep-fast"
    assert page.data["run"]["parentTier"] == "fast"
    for child, row in zip(children, rows, strict=True):
        parent = row["parent"]
        assert parent["key"] == child.parent_job_key and parent["tier"] == "fast"
        assert parent["credits"] > 0 and row["credits"] > parent["credits"]
        video = parent["media"][0]
        assert video.startswith("media/parent/")
        linked = path.parent / video
        original = tmp_path / "sweep-fast" / "media" / Path(video).name
        assert linked.is_file() and os.path.samefile(linked, original)  # hard link
        stem = video.rsplit(".", 1)[0]
        assert (path.parent / f"{stem}.jpg").is_file()
        assert (path.parent / f"{stem}.strip.jpg").is_file()
    # the header: saved against rendering all 12 parents on standard
    prices = default_prices()
    all_standard = sum(prices.estimate("standard", p.quality, p.duration) for p in parents)
    fast = sum(prices.estimate("fast", p.quality, p.duration) for p in parents)
    child = sum(prices.estimate("standard", c.quality, c.duration) for c in children)
    promo = " ".join(page.text_by_id["promotion"].split())
    assert "Promoted from sweep-fast" in promo
    assert f"Saved {all_standard - fast - child:,.1f} credits" in promo
    assert f"rendering all 12 on standard ({all_standard:,.1f} credits)" in promo


def test_promoted_run_whose_parent_media_are_gone_still_builds(build, tmp_path):
    parents = grid_jobs(["A", "B"], ["x", "y"], ["16:9"], media=3)
    build(parents, run_id="p")
    for f in (tmp_path / "p" / "media").iterdir():
        f.unlink()
    children = [
        FakeJob(
            values=parents[0].values,
            prompt=parents[0].prompt,
            name="A",
            variant_key=parents[0].variant(),
            parent_job_key=parents[0].job_key("fast"),
        )
    ]
    _, page = build(children, run_id="c", tier="standard", parent_run="p")
    parent = jobs_of(page.data)[0]["parent"]
    assert parent["key"] == parents[0].job_key("fast") and parent["media"] is None


# ---------------------------------------------------------------------- templates


def test_user_templates_override_a_partial_and_the_stylesheet(build, tmp_path):
    mine = tmp_path / "mine"
    (mine / "_partials").mkdir(parents=True)
    (mine / "static").mkdir()
    (mine / "_partials" / "header.html").write_text(
        '<header class="top" id="top"><h1>ACME review: {{ s.name }}</h1>'
        '<span id="pick-count"></span><span id="export-count"></span>'
        '<button id="picks-btn"></button><button id="export-btn"></button></header>'
    )
    css = "body { background: #fafafa; }\n"
    (mine / "static" / "report.css").write_text(css)
    _, page = build(mixed_jobs(), name="<b>x</b>", templates=mine)
    assert page.text_by_id["top"] == "ACME review: <b>x</b>"
    assert page.styles == [css]
    assert (
        f"style-src '{sha(css)}'"
        in page.find("meta", http_equiv="Content-Security-Policy")[0]["content"]
    )
    assert page.find("main", id="grid")  # the rest is the shipped page


def test_an_asset_that_would_end_its_inline_block_is_refused(build, tmp_path):
    mine = tmp_path / "bad"
    (mine / "static").mkdir(parents=True)
    (mine / "static" / "report.js").write_text("var a = '</script><script>alert(1)';")
    with pytest.raises(ValueError, match="would end its inline block"):
        build(mixed_jobs(), templates=mine)


def test_report_command_takes_a_templates_folder(build, tmp_path):
    build(mixed_jobs())
    mine = tmp_path / "tpl"
    (mine / "_partials").mkdir(parents=True)
    (mine / "_partials" / "toolbar.html").write_text(
        (report.SHIPPED_TEMPLATES / "_partials" / "toolbar.html")
        .read_text()
        .replace("rows <select", "Zeilen <select")
    )
    result = CliRunner().invoke(
        main,
        ["report", "run-1", "--workspace", str(tmp_path), "--templates", str(mine)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    page = Page((tmp_path / "run-1" / "index.html").read_text("utf-8"))
    assert "Zeilen" in page.text_by_id["toolbar"]


# ---------------------------------------------------------------------- the real pipeline


def test_a_real_simulated_run_ends_with_the_report(tmp_path):
    exp = tmp_path / "exp.csv"
    exp.write_text(
        "name,prompt,style,duration\n"
        "Lamp,{{ style }} shot of a desk lamp,warm | cool,4\n"
        "Star,a celebrity holding a desk lamp,warm,4\n"
    )
    result = CliRunner().invoke(
        main,
        ["run", str(exp), "--workspace", str(tmp_path / "ws"), "--yes", "--rate", "20"],
        catch_exceptions=False,
    )
    assert result.exit_code == 1, result.output  # one job fails on purpose
    path = Path(result.output.strip().splitlines()[-1].removeprefix("Report: "))
    page = Page(path.read_text("utf-8"))
    rows = jobs_of(page.data)
    assert sorted(r["state"] for r in rows) == ["done", "done", "failed"]
    assert "content_policy_violation" in page.text_by_id["failures"]
    for row in rows:
        if row["media"]:
            assert (path.parent / row["media"][0]).is_file()
            assert row["media"][7] and row["media"][7] > 0  # fps, for frame stepping
