"""Reading ad-platform reports as the platforms export them, and keeping their rows.

A report is a CSV (or TSV) in whatever shape its platform writes (docs/ad-platforms.md):
UTF-8 with or without a BOM or UTF-16 with one; commas, semicolons or tabs; title and date
lines above the header; a totals row; numbers in the account's locale (``1,234.5``,
``1.234,5``, ``1 234``, ``12.5%``, ``$3.20``, ``--`` for none). `read_report` turns one into
`AdRow` values; `keep` matches them to videos by the job key in the ad name and writes them
to the ledger (migration 007), refusing a file already imported and skipping rows of a
video, platform and period already imported, so nothing is counted twice.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError, Problem
from ..run.ledger import Ledger
from .cells import (
    MISSING,
    dayfirst_of,
    parse_date,
    parse_number,
    preamble_period,
    uses_decimal_comma,
)
from .model import key_in_name
from .platforms import (
    FIELDS,
    PLATFORMS,
    Platform,
    currency_suffix,
    guess,
    normal,
    resolve,
)

HEADER_WITHIN = 30  # rows searched for the header (Google puts two title lines above it)
DELIMITERS = (",", ";", "\t")
_TOTAL = re.compile(r"^\s*(totals?|grand total|summe|gesamt|total geral)\b", re.IGNORECASE)
NUMERIC = ("impressions", "clicks", "completions", "completion_rate", "spend", "results")
WHOLE = frozenset({"impressions", "clicks", "completions"})  # counts: never a fraction


@dataclass(frozen=True)
class AdRow:
    """One row of a report: an ad's figures over a period (a day, or the report's range)."""

    row: int  # as a spreadsheet shows it (the first line of the file is row 1)
    name: str
    key: str | None
    impressions: int
    clicks: int
    completions: int | None
    spend: float | None
    results: int | None
    currency: str | None
    start: str | None  # ISO dates; None: the report did not say
    end: str | None


@dataclass(frozen=True)
class Report:
    path: Path
    sha256: str
    platform: Platform
    rows: tuple[AdRow, ...]
    totals: tuple[int, ...]  # row numbers of totals rows, dropped
    columns: dict[str, str]  # field -> the report's column it was read from
    mapped_used: frozenset[str] = frozenset()  # --map columns found in this report

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def row_count(self) -> int:
        return len(self.rows) + len(self.totals)


def parse_maps(maps: Iterable[str]) -> dict[str, str]:
    """``--map 'Video title=ad_name'`` -> {normalised column: field}."""
    out: dict[str, str] = {}
    for text in maps:
        column, sep, name = text.rpartition("=")
        name = name.strip().lower()
        if not sep or not column.strip():
            raise InputError(
                f"--map {text!r}: write it as COLUMN=FIELD, e.g. 'Video title=ad_name'"
            )
        if name not in FIELDS:
            raise InputError(
                f"--map {text!r}: {name!r} is not a field runner reads; use one of "
                + ", ".join(FIELDS)
            )
        out[normal(column)] = name
    return out


# ---------------------------------------------------------------------------- reading


def read_report(path: Path, platform: str = "auto", mapped: dict[str, str] | None = None) -> Report:
    """One report read and checked; an `InputError` naming the file, row and column (and
    what to do) when it cannot be read."""
    mapped = mapped or {}
    data = path.read_bytes()
    text = _decode(data, path.name)
    rows, header_at, fields = _find_header(text, path.name, platform, mapped)
    header = rows[header_at]
    chosen = PLATFORMS[platform] if platform in PLATFORMS else guess(header)
    fields = resolve(header, chosen, mapped)
    where = f"{path.name}:row {header_at + 1}"
    _require(fields, header, chosen, where)
    columns = {f: header[i].strip() for f, i in fields.items()}
    body = [(n + 1, r) for n, r in enumerate(rows) if n > header_at]
    decimal_comma = uses_decimal_comma(
        r[i] for _, r in body for f, i in fields.items() if f in NUMERIC and i < len(r)
    )
    dayfirst = dayfirst_of(
        (
            r[fields[f]]
            for _, r in body
            for f in ("day", "start", "end")
            if f in fields and fields[f] < len(r)
        ),
        default=decimal_comma,
    )
    period = preamble_period(rows[:header_at], dayfirst)
    header_currency = currency_suffix(header[fields["spend"]]) if "spend" in fields else None
    ads: list[AdRow] = []
    totals: list[int] = []
    problems: list[Problem] = []
    for number, cells in body:
        if not any(c.strip() for c in cells):
            continue
        got = _row(number, cells, fields, columns, decimal_comma, dayfirst, path.name, problems)
        if got is None:
            continue
        nums, dates, name, key = got
        if key is None and _is_total(cells, name, nums):
            totals.append(number)
            continue
        if key is None and name.lower() in MISSING:
            continue  # no ad, no figures: a note line under the table
        start, end = _period(dates, period)
        for fld in ("completions", "completion_rate", "spend", "results"):
            if fld in fields and nums.get(fld) is None:
                nums[fld] = 0.0  # the report has the column: a blank (Meta's '—') is none
        impressions = round(nums.get("impressions") or 0)
        clicks = round(nums.get("clicks") or 0)
        completions = nums.get("completions")
        rate = nums.get("completion_rate")
        if completions is None and rate is not None:
            completions = rate / 100 * impressions
        results = nums.get("results")
        for fld, count in (("clicks", clicks), ("completions", completions)):
            if count is not None and round(count) > impressions:
                problems.append(
                    _more_than_shown(path.name, number, columns, fld, count, impressions)
                )
        ads.append(
            AdRow(
                row=number,
                name=name,
                key=key,
                impressions=impressions,
                clicks=clicks,
                completions=None if completions is None else round(completions),
                spend=nums.get("spend"),
                results=None if results is None else round(results),
                currency=_currency(cells, fields, header_currency),
                start=start,
                end=end,
            )
        )
    if problems:
        shown = [str(p) for p in problems[:10]]
        more = f"\n... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise InputError(
            f"{path.name}: {len(problems)} cell(s) could not be read; nothing was imported:\n"
            + "\n".join(shown)
            + more
        )
    used = frozenset(c for c in mapped if c in {normal(h) for h in header})
    return Report(
        path,
        hashlib.sha256(data).hexdigest(),
        chosen,
        tuple(ads),
        tuple(totals),
        columns,
        used,
    )


def _decode(data: bytes, name: str) -> str:
    if data.startswith(b"PK\x03\x04") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise InputError(
            f"{name} is an Excel workbook: export the report as CSV instead (every platform "
            "offers it), or open it and save it as 'CSV UTF-8'"
        )
    try:
        if data.startswith(b"\xef\xbb\xbf"):
            return data[3:].decode("utf-8")
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return data.decode("utf-16")
        if len(data) >= 4 and data[1] == 0 and data[3] == 0:
            return data.decode("utf-16-le")
        if len(data) >= 4 and data[0] == 0 and data[2] == 0:
            return data.decode("utf-16-be")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{name}: unreadable text ({exc.reason} at byte {exc.start}); export the report "
            "again as CSV"
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # Excel's "CSV" on Windows


def _find_header(
    text: str, name: str, platform: str, mapped: dict[str, str]
) -> tuple[list[list[str]], int, dict[str, int]]:
    """The rows (parsed with the delimiter that gives the best header) and the header's
    index: the first row within `HEADER_WITHIN` naming an ad-name or impressions column and
    at least one more field."""
    best: tuple[int, list[list[str]], int, dict[str, int]] | None = None
    for delimiter in DELIMITERS:
        try:
            rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
        except csv.Error as exc:
            if best is None and delimiter == DELIMITERS[-1]:
                raise InputError(f"{name}: not a readable CSV ({exc})") from None
            continue
        for i, row in enumerate(rows[:HEADER_WITHIN]):
            chosen = PLATFORMS[platform] if platform in PLATFORMS else guess(row)
            fields = resolve(row, chosen, mapped)
            if ("ad_name" in fields or "impressions" in fields) and len(fields) >= 2:
                if best is None or len(fields) > best[0]:
                    best = (len(fields), rows, i, fields)
                break
    if best is None:
        raise InputError(
            f"{name}: no header row found in its first {HEADER_WITHIN} rows (looked for "
            "columns such as 'Ad name' and 'Impressions'). Export the ad-level report (one row "
            "per ad) as CSV, or name your columns with --map, e.g. --map 'Video title=ad_name'"
        )
    return best[1], best[2], best[3]


def _require(fields: dict[str, int], header: list[str], platform: Platform, where: str) -> None:
    have = ", ".join(repr(h.strip()) for h in header if h.strip())
    for fld, label in (
        ("ad_name", platform.ad_name_hint),
        ("impressions", "Impressions"),
        ("clicks", "Clicks"),
    ):
        if fld not in fields:
            what = "ad name" if fld == "ad_name" else fld
            raise InputError(
                f"{where}: no {what} column (columns: {have}). Add the '{label}' column to the "
                f"report in {platform.where}, or name yours with --map, e.g. "
                f"--map 'Your column={fld}'"
            )


def _row(
    number: int,
    cells: list[str],
    fields: dict[str, int],
    columns: dict[str, str],
    decimal_comma: bool,
    dayfirst: bool,
    file: str,
    problems: list[Problem],
) -> tuple[dict[str, float | None], dict[str, str | None], str, str | None] | None:
    def cell(fld: str) -> str:
        i = fields.get(fld)
        return cells[i] if i is not None and i < len(cells) else ""

    nums: dict[str, float | None] = {}
    dates: dict[str, str | None] = {}
    bad = False
    for fld in NUMERIC:
        if fld not in fields:
            continue
        try:
            nums[fld] = parse_number(cell(fld), decimal_comma, whole=fld in WHOLE)
        except ValueError:
            problems.append(
                Problem(file, number, columns[fld], f"{cell(fld)!r} is not a number; fix the cell")
            )
            bad = True
    for fld in ("day", "start", "end"):
        if fld not in fields:
            continue
        try:
            dates[fld] = parse_date(cell(fld), dayfirst)
        except ValueError:
            problems.append(
                Problem(
                    file,
                    number,
                    columns[fld],
                    f"{cell(fld)!r} is not a date (YYYY-MM-DD, DD/MM/YYYY or 'Mar 1, 2025')",
                )
            )
            bad = True
    if bad:
        return None
    name = cell("ad_name").strip()
    key = key_in_name(name) or next((k for c in cells if (k := key_in_name(c))), None)
    return nums, dates, name, key


def _more_than_shown(
    file: str, row: int, columns: dict[str, str], fld: str, count: float, impressions: int
) -> Problem:
    """A row with more clicks (or completed views) than impressions: its columns are not
    what runner took them for, and no rate can be worked out of it."""
    column = columns.get(fld) or columns.get("completion_rate") or fld
    what = "clicks" if fld == "clicks" else "completed views"
    return Problem(
        file,
        row,
        column,
        f"{round(count):,} {what} but {impressions:,} impressions ({columns['impressions']!r}):"
        f" a {what[:-1]} needs an impression; check that these columns hold the ad's "
        "impressions and its clicks to your site (Meta: 'Link clicks'), or name the right "
        "ones with --map",
    )


def _is_total(cells: list[str], name: str, nums: dict[str, float | None]) -> bool:
    """A totals or summary row: named 'Total…', or no ad name but a 'Total…' cell or
    figures."""
    if _TOTAL.match(name):
        return True
    return name.lower() in MISSING and (
        any(_TOTAL.match(c) for c in cells) or any(nums.get(f) for f in NUMERIC)
    )


def _period(
    dates: dict[str, str | None], preamble: tuple[str, str] | None
) -> tuple[str | None, str | None]:
    day = dates.get("day")
    if day:
        return day, day
    start, end = dates.get("start"), dates.get("end")
    if start:
        return start, end or start
    return preamble if preamble else (None, None)


def _currency(cells: list[str], fields: dict[str, int], header: str | None) -> str | None:
    i = fields.get("currency")
    if i is not None and i < len(cells):
        code = cells[i].strip().upper()
        if re.fullmatch(r"[A-Z]{3}", code):
            return code
    if header:
        return header
    i = fields.get("spend")
    if i is not None and i < len(cells):
        text = cells[i].strip()
        found = re.search(r"\b[A-Z]{3}\b", text)
        if found:
            return found.group(0)
        for symbol, code in (("€", "EUR"), ("£", "GBP"), ("₹", "INR"), ("R$", "BRL")):
            if symbol in text:
                return code
    return None


# ---------------------------------------------------------------------------- keeping


@dataclass
class Outcome:
    """What one report's import did, told in `lines`."""

    report: Report
    split_test: bool = False
    import_id: int | None = None
    refused: str | None = None  # why the whole file was not imported
    kept: list[AdRow] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    no_key: list[AdRow] = field(default_factory=list)
    unknown: list[AdRow] = field(default_factory=list)
    already: dict[int, list[AdRow]] = field(default_factory=dict)  # import id -> rows

    def lines(self) -> list[str]:
        r = self.report
        head = f"{r.name} ({r.platform.label})"
        if self.refused:
            return [f"{head}: {self.refused}"]
        videos = len({a.key for a in self.kept})
        parts = [
            f"{r.row_count} row{_s(r.row_count)}, {len(self.kept)} matched to {videos} "
            f"video{_s(videos)}"
            + (f" of run{_s(len(self.runs))} {_few(self.runs)}" if self.runs else "")
        ]
        unmatched = len(self.no_key) + len(self.unknown)
        if unmatched:
            why = []
            if self.no_key:
                why.append(
                    f"{_rows(self.no_key)}: names without a runner key{_examples(self.no_key)}"
                    " — export with `runner export --for-ads`"
                )
            if self.unknown:
                why.append(
                    f"{_rows(self.unknown)}: keys of no video in this workspace"
                    f"{_examples(self.unknown)} — another --workspace?"
                )
            parts.append(f"{unmatched} unmatched ({'; '.join(why)})")
        for import_id, rows in sorted(self.already.items()):
            parts.append(
                f"{len(rows)} already imported by import {import_id} (same videos, platform "
                f"and dates; {_rows(rows)}): skipped, not counted twice"
            )
        if r.totals:
            parts.append(f"{len(r.totals)} totals row{_s(len(r.totals))} skipped")
        line = f"{head}: " + "; ".join(parts) + "."
        if self.import_id is None:
            line += " Nothing new to import."
        else:
            line += f" Kept as import {self.import_id}"
            line += ", marked as the platform's split test." if self.split_test else "."
        return [line]


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _few(items: Sequence[str], n: int = 5) -> str:
    shown = ", ".join(items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def _rows(rows: Sequence[AdRow], n: int = 8) -> str:
    numbers = [str(a.row) for a in rows]
    return f"row{_s(len(numbers))} " + _few(numbers, n)


def _examples(rows: Sequence[AdRow], n: int = 2) -> str:
    names = list(dict.fromkeys(a.name for a in rows if a.name))[:n]
    return (", e.g. " + ", ".join(repr(x[:60]) for x in names)) if names else ""


def refused_file(ledger: Ledger, sha256: str) -> str | None:
    """'already imported on <date> as import N' when this very file was imported."""
    row = ledger.conn.execute(
        "SELECT import_id, imported_at FROM metric_imports WHERE sha256 = ? ORDER BY import_id",
        (sha256,),
    ).fetchone()
    if row is None:
        return None
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(float(row[1])))
    return f"already imported on {when} as import {int(row[0])}; nothing added"


def keep(ledger: Ledger, report: Report, *, split_test: bool, now: float) -> Outcome:
    """Match the report's rows to videos and write them as one import (one transaction)."""
    out = Outcome(report, split_test)
    refused = refused_file(ledger, report.sha256)
    if refused:
        out.refused = refused
        return out
    keys = [a.key for a in report.rows if a.key]
    runs_of = _runs_of(ledger, keys)
    seen = _imported_periods(ledger, report.platform.name, list(runs_of))
    runs: set[str] = set()
    for ad in report.rows:
        if ad.key is None:
            out.no_key.append(ad)
        elif ad.key not in runs_of:
            out.unknown.append(ad)
        elif (hit := _overlap(ad, seen.get(ad.key, ()))) is not None:
            out.already.setdefault(hit, []).append(ad)
        else:
            out.kept.append(ad)
            runs.update(runs_of[ad.key])
    out.runs = sorted(runs)
    if not out.kept:
        return out
    with ledger.write() as db:
        cursor = db.execute(
            "INSERT INTO metric_imports (file_name, sha256, platform, imported_at, split_test,"
            " rows, matched, unmatched) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                report.name,
                report.sha256,
                report.platform.name,
                now,
                int(split_test),
                report.row_count,
                len(out.kept),
                len(out.no_key) + len(out.unknown),
            ),
        )
        out.import_id = int(cursor.lastrowid or 0)
        db.executemany(
            "INSERT INTO ad_metrics (import_id, job_key, ad_name, period_start, period_end,"
            " impressions, clicks, completions, spend, currency, results)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    out.import_id,
                    a.key,
                    a.name,
                    a.start,
                    a.end,
                    a.impressions,
                    a.clicks,
                    a.completions,
                    a.spend,
                    a.currency,
                    a.results,
                )
                for a in out.kept
            ],
        )
    return out


def _runs_of(ledger: Ledger, keys: Sequence[str]) -> dict[str, list[str]]:
    """Job key -> the runs holding it (a reused video is in several)."""
    out: dict[str, list[str]] = {}
    unique = sorted(set(keys))
    for i in range(0, len(unique), 500):
        chunk = unique[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for key, run_id in ledger.conn.execute(
            f"SELECT DISTINCT job_key, run_id FROM jobs WHERE job_key IN ({marks})"  # noqa: S608 - placeholders
            " ORDER BY run_id",
            chunk,
        ):
            out.setdefault(str(key), []).append(str(run_id))
    return out


def _imported_periods(
    ledger: Ledger, platform: str, keys: Sequence[str]
) -> dict[str, list[tuple[str | None, str | None, int]]]:
    out: dict[str, list[tuple[str | None, str | None, int]]] = {}
    for i in range(0, len(keys), 500):
        chunk = list(keys[i : i + 500])
        marks = ",".join("?" * len(chunk))
        for key, start, end, import_id in ledger.conn.execute(
            "SELECT m.job_key, m.period_start, m.period_end, m.import_id FROM ad_metrics m"  # noqa: S608 - placeholders
            " JOIN metric_imports i ON i.import_id = m.import_id"
            f" WHERE i.platform = ? AND m.job_key IN ({marks})",
            (platform, *chunk),
        ):
            out.setdefault(str(key), []).append((start, end, int(import_id)))
    return out


def _overlap(ad: AdRow, periods: Iterable[tuple[str | None, str | None, int]]) -> int | None:
    """The import already holding this video's figures for a period meeting the row's
    (a period left unsaid meets every other: it may hold any day)."""
    for start, end, import_id in periods:
        if ad.start is None or start is None:
            return import_id
        if ad.start <= (end or start) and start <= (ad.end or ad.start):
            return import_id
    return None
