"""The run's report folder: ``index.html`` beside ``media/``, ``results.parquet`` and
``results.csv``. Built from a read-only ledger connection; opens from ``file://`` offline.

The page is one file: the header is rendered by Jinja (autoescaped, `StrictUndefined`), the
cards' data is embedded once as JSON (``|tojson``) and drawn by the page's own script, and the
stylesheet and script are inlined. A Content-Security-Policy ``<meta>`` allows exactly those
inline blocks (by their SHA-256, computed after rendering), images and videos from the report's
own folder, and nothing else: no network, no inline event handlers, no ``eval``.

Templates come from a `jinja2.ChoiceLoader`: a user folder first (``runner report RUN
--templates DIR``: any file of ``templates/`` can be overridden, a partial as well as
``static/report.css`` or one feature file of the script), then the shipped ones.

The script is the feature files of ``static/report/`` (``00-core.js`` ... ``99-start.js``),
concatenated in the order of their names inside one function, so they share its scope; a user
folder's file replaces the shipped file of the same name, and a new name joins in its place
in the order (docs/report-page.md).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import jinja2
from markupsafe import Markup

from ..errors import ExperimentError, InputError
from ..grid.pricing import PriceTable, default_prices, prices_for
from ..run.ledger import Store
from ..run.records import RunRecord
from .performance import performance_for_report
from .report_data import Cards, Parents, SlimRow, Summary, safe_name, summarize, winner_notes
from .results import iter_result_rows, iter_results
from .summary import write_summary
from .tables import ColumnTypes, replaced, write_tables

# The templates ship in the wheel as runner/_templates; an editable install reads the
# repository's templates/ folder. Exactly one of the two is the shipped set.
_PACKAGE = Path(__file__).resolve().parents[1]
SHIPPED_TEMPLATES = next(
    (d for d in (_PACKAGE / "_templates", _PACKAGE.parent / "templates") if d.is_dir()),
    _PACKAGE.parent / "templates",
)
STYLESHEET = "static/report.css"
# The page's script: the .js files of this folder, in the order of their names.
SCRIPT_DIR = "static/report"
# A user folder's whole-script override, as before the split: used alone when present.
WHOLE_SCRIPT = "static/report.js"
SCRIPT_HEAD = "(function () {\n'use strict';\n"
SCRIPT_TAIL = "})();\n"
# Inline blocks the browser would execute or apply (JSON data blocks are neither).
_INLINE = re.compile(r"<(script|style)(\s[^>]*)?>(.*?)</\1\s*>", re.IGNORECASE | re.DOTALL)
_DATA_TYPE = re.compile(r"""\btype\s*=\s*["']?application/json""", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Page:
    """Everything ``report.html`` renders: the header summary, the cards' data, and the
    inlined assets (trusted: they come from the template folders, never from a run)."""

    summary: Summary
    data: dict[str, Any]
    css: Markup
    js: Markup
    share: bool = False  # a copy for a client (`runner export --share`): see share.py


def template_dirs(extra: Path | None = None) -> list[Path]:
    """User templates first (agency overrides), then the shipped ones."""
    return [d for d in (extra, SHIPPED_TEMPLATES) if d is not None and d.is_dir()]


@functools.lru_cache(maxsize=8)
def environment(extra: Path | None = None) -> jinja2.Environment:
    """The report's Jinja environment, built once per template folder."""
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(d) for d in template_dirs(extra)]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        credits=lambda v: f"{float(v):,.1f}" if abs(float(v)) < 1000 else f"{float(v):,.0f}",
        usd=lambda v: f"${float(v):,.2f}" if float(v) >= 0 else f"−${-float(v):,.2f}",
        count=lambda v: f"{int(v):,}",
    )
    # |tojson: compact, UTF-8 kept, and U+2028/U+2029 escaped as well as < > & '
    env.policies["json.dumps_function"] = _dumps
    env.policies["json.dumps_kwargs"] = {}
    return env


def _dumps(value: Any, **_: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def build(
    store: Store,
    workspace: Path,
    run_id: str,
    templates: Path | None = None,
    *,
    live: dict[str, Any] | None = None,
) -> Path:
    """Write the report of ``run_id``; returns the path of its index.html.

    The ledger is read twice, a chunk at a time: once for the page (the cards' JSON written
    as it goes) and the header's figures, once for results.parquet and results.csv. No pass
    holds every job's full row, so a 100,000-job report stays small.

    ``live``: a build made while the run goes (runner/review/live.py): the page only (no
    tables, no summary.json), its data marked ``run.live = live`` so the page reloads itself."""
    with snapshot(store):  # both passes see the same ledger, even while a run writes it
        return _build(store, workspace, run_id, templates, live=live)


@contextlib.contextmanager
def snapshot(store: Store) -> Iterator[None]:
    """One read transaction on the store's connection (unless one is open already): every
    read inside sees the ledger as it was at the first."""
    conn = store.conn
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def build_share(
    store: Store,
    workspace: Path,
    run_id: str,
    folder: Path,
    shown: Callable[[dict[str, Any]], dict[str, Any]],
    templates: Path | None = None,
) -> Path:
    """The page alone, written to ``folder`` for a client (runner/review/share.py copies
    the media): each result row goes through ``shown`` first (the share marks the videos
    it leaves out, as `runner prune` marks removed ones). No results tables, no summary,
    and no fast parents of a promoted run (their videos are not the client's)."""
    with snapshot(store):
        return _build(store, workspace, run_id, templates, share_folder=folder, shown=shown)


def _build(
    store: Store,
    workspace: Path,
    run_id: str,
    templates: Path | None,
    *,
    share_folder: Path | None = None,
    shown: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    live: dict[str, Any] | None = None,
) -> Path:
    run = store.run(run_id)
    folder = share_folder or workspace / run_id
    (folder / "media").mkdir(parents=True, exist_ok=True)
    prices = _prices(workspace)
    parents = (
        _parents(store, workspace, folder, run) if run.parent_run and not share_folder else None
    )
    env = environment(templates)
    cards = Cards(run, prices, parents, winner_notes(folder))
    types = ColumnTypes()
    slim: list[SlimRow] = []
    out = folder / "index.html"
    with replaced(out) as tmp, tmp.open("w", encoding="utf-8") as page_file:

        def jobs_json() -> Iterator[str]:
            chunk: list[list[Any]] = []
            first = True
            for job, row in iter_results(store, run_id):
                if shown is not None:
                    row = shown(row)
                types.observe(row)
                slim.append(SlimRow(row))
                fps = job.media.get("fps")
                rate = float(fps) if isinstance(fps, int | float) and fps > 0 else None
                chunk.append(cards.job(row, rate))
                if len(chunk) >= 1000:
                    yield ("" if first else ",") + page_json(chunk)[1:-1]
                    first, chunk = False, []
            if chunk:
                yield ("" if first else ",") + page_json(chunk)[1:-1]

        _write_page(
            page_file, env, store, run, cards, jobs_json, slim, prices, parents, share_folder, live
        )
    if share_folder is not None or live is not None:
        return out
    if slim:
        tables = [folder / "results.parquet", folder / "results.csv"]
        if len(slim) >= TABLES_APART:
            # Arrow's Parquet libraries alone take ~90 MB: a large run's process stays small
            _in_worker(write_results, workspace, run_id, tables, types.seen)
        else:
            write_tables(iter_result_rows(store, run_id), tables, types=types)
    write_summary(store, workspace, run_id)
    return out


# From this many jobs, results.parquet and results.csv are written by a worker process.
TABLES_APART = 20_000


def write_results(
    workspace: Path, run_id: str, paths: list[Path], seen: dict[str, set[type]]
) -> None:
    """The run's results tables, from a read-only ledger connection of its own (a worker
    process runs this for large runs)."""
    from ..run.ledger import reader

    types = ColumnTypes()
    types.seen = seen
    with reader(workspace) as store:
        write_tables(iter_result_rows(store, run_id), paths, types=types)


def _in_worker(func: Callable[..., None], *args: Any) -> None:
    """``func(*args)`` in a fresh (spawned, not forked: the caller may hold threads) worker
    process; its errors are raised here."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(func, *args).result()


def _write_page(
    handle: TextIO,
    env: jinja2.Environment,
    store: Store,
    run: RunRecord,
    cards: Cards,
    jobs_json: Callable[[], Iterator[str]],
    slim: list[SlimRow],
    prices: PriceTable,
    parents: Parents | None,
    share: Path | None = None,
    live: dict[str, Any] | None = None,
) -> None:
    """The page written in three parts: the HTML before the cards' data, the data (its jobs
    streamed from the ledger), the HTML after it. The header's figures need every job, and
    the header comes first in the page: so the jobs' JSON goes to a temporary file first."""
    marker = f"runner-data-{secrets.token_hex(8)}"
    with tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
        head = cards.head()
        if live is not None:
            head["run"]["live"] = live
        if share:  # a client's page: no credits, costs or operators' alerts (40-cards.js...)
            head["run"]["share"] = True
        spool.write(page_json(head)[:-1] + ',"jobs":[')
        for text in jobs_json():
            spool.write(text)
        # the audience's figures (runner metrics import); a client's share has none
        cards.performance = None if share else performance_for_report(store, run.run_id)
        spool.write("]," + page_json(cards.tail())[1:])
        css, js = _asset(env, STYLESHEET, "style"), script(env)
        summary = summarize(store, run, slim, prices, parents)
        html = render(env, Page(summary=summary, data=marker, css=css, js=js, share=bool(share)))  # type: ignore[arg-type]
        quoted = page_json(marker)
        if html.count(quoted) != 1:  # a user template without the data block, or twice
            spool.seek(0)
            data = json.loads(spool.read())
            handle.write(
                render(env, Page(summary=summary, data=data, css=css, js=js, share=bool(share)))
            )
            return
        before, after = html.split(quoted)
        handle.write(before)
        spool.seek(0)
        shutil.copyfileobj(spool, handle, 1 << 20)
        handle.write(after)


def page_json(value: Any) -> str:
    """JSON as the template's ``|tojson`` writes it: compact, and safe inside a <script>."""
    return (
        _dumps(value)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("'", "\\u0027")
    )


def render(env: jinja2.Environment, page: Page) -> str:
    """The page as HTML, with a CSP that admits its own inline script and style only."""
    marker = f"runner-csp-{secrets.token_hex(8)}"
    html = env.get_template("report.html").render(page=page, s=page.summary, csp=marker)
    scripts, styles = inline_hashes(html)
    policy = content_security_policy(scripts, styles)
    if html.count(marker) != 1:
        raise ValueError(
            "report.html must put {{ csp }} in exactly one place: the "
            "Content-Security-Policy <meta> (see templates/base.html)"
        )
    return html.replace(marker, policy)


def content_security_policy(scripts: list[str], styles: list[str]) -> str:
    def sources(hashes: list[str]) -> str:
        return " ".join(f"'{h}'" for h in dict.fromkeys(hashes)) or "'none'"

    return (
        f"default-src 'none'; script-src {sources(scripts)}; style-src {sources(styles)}; "
        "img-src 'self'; media-src 'self'; base-uri 'none'; form-action 'none'"
    )


def inline_hashes(html: str) -> tuple[list[str], list[str]]:
    """``sha256-…`` of every inline script (not JSON data blocks) and style in ``html``."""
    scripts: list[str] = []
    styles: list[str] = []
    for match in _INLINE.finditer(html):
        tag, attrs, body = match.group(1).lower(), match.group(2) or "", match.group(3)
        if tag == "script" and (_DATA_TYPE.search(attrs) or "src=" in attrs.lower()):
            continue
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
        (scripts if tag == "script" else styles).append(f"sha256-{digest}")
    return scripts, styles


def script_files(env: jinja2.Environment) -> list[str]:
    """The feature files of the page's script, by name (``static/report/NN-name.js``), over
    every template folder: a user folder's file wins over the shipped one of the same name."""
    prefix = SCRIPT_DIR + "/"
    return sorted(
        name
        for name in env.list_templates(extensions=["js"])
        if name.startswith(prefix) and "/" not in name[len(prefix) :] and name[len(prefix)] != "."
    )


def script(env: jinja2.Environment) -> Markup:
    """The page's script: its feature files concatenated in order inside one function (one
    scope, strict mode), each after a comment naming it. A user folder's ``static/report.js``
    (a whole-script override) is used alone instead."""
    assert env.loader is not None
    try:
        return _asset(env, WHOLE_SCRIPT, "script")
    except jinja2.TemplateNotFound:
        pass
    parts = [SCRIPT_HEAD]
    for name in script_files(env):
        text = str(_asset(env, name, "script"))
        parts += [f"/* {name} */\n", text if text.endswith("\n") else text + "\n"]
    parts.append(SCRIPT_TAIL)
    return Markup("".join(parts))  # noqa: S704 - our own asset files, never run data


def _asset(env: jinja2.Environment, name: str, tag: str) -> Markup:
    """A static file of the template folders, inlined verbatim (it is ours, not user data)."""
    assert env.loader is not None
    text, _, _ = env.loader.get_source(env, name)
    if f"</{tag}" in text.lower():
        raise ValueError(f"{name} contains '</{tag}', which would end its inline block early")
    return Markup(text)  # noqa: S704 - our own asset file, never run data


def _prices(workspace: Path) -> PriceTable:
    """The workspace's table in force (`prices_for`); the built-in one if its file is broken."""
    try:
        return prices_for(workspace)
    except ExperimentError:
        return default_prices()


def _parents(store: Store, workspace: Path, folder: Path, run: RunRecord) -> Parents | None:
    """The fast parents of a promoted run, their media linked into ``media/parent/``."""
    assert run.parent_run is not None
    try:
        parent_run = store.run(run.parent_run)
    except InputError:
        return None
    wanted = {
        key
        for (key,) in store.conn.execute(
            "SELECT DISTINCT parent_job_key FROM jobs WHERE run_id = ?"
            " AND parent_job_key IS NOT NULL",
            (run.run_id,),
        )
    }
    found = {
        r["job_key"]: r
        for r in iter_result_rows(store, parent_run.run_id)
        if r["job_key"] in wanted
    }
    parents = Parents(parent_run, found)
    target = folder / "media" / "parent"
    for key, row in found.items():
        video = safe_name(row["file"])
        if video is None:
            continue
        source = (workspace / str(row["file"])).parent
        linked = {}
        for kind, name in (
            ("video", video),
            ("poster", safe_name(row["poster"])),
            ("strip", safe_name(row["strip"])),
        ):
            if name and link_file(source / name, target / name):
                linked[kind] = name
        if "video" in linked:
            parents.linked[key] = linked
    return parents


def link_file(src: Path, dest: Path) -> bool:
    """Hard-link ``src`` to ``dest`` (a copy across file systems); True when dest exists."""
    if dest.is_file():
        return True
    if not src.is_file():
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)
    return True
