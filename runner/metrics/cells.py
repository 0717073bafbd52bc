"""Figures and dates as ad platforms write them, in the account's locale
(docs/ad-platforms.md, "The file itself"): thousands separators, decimal commas, currency
symbols and codes, percentages, ``--`` for none; ISO, day-first, month-first and spelled-out
dates."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence

MISSING = frozenset({"", "-", "--", "—", "–", "n/a", "na", "none", "null", "nan", "(not set)"})
_CODE = re.compile(r"^[A-Z]{3}\s+|\s+[A-Z]{3}$")
_SYMBOLS = re.compile(r"R\$|[$€£¥₹]")
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    )
}


def parse_number(text: str, decimal_comma: bool = False, *, whole: bool = False) -> float | None:
    """A figure as the platform wrote it; None when it says none (blank, ``--``).
    ``decimal_comma``: how to read a lone ``1,234`` / ``1.234`` (the file's locale);
    ``whole``: a count (impressions, clicks), so ``1,234`` and ``1.234`` are thousands in
    any locale."""
    t = text.replace("\u00a0", " ").replace("\u202f", " ").strip()
    t = _SYMBOLS.sub("", _CODE.sub("", t)).replace("%", "").strip()
    if t.lower() in MISSING:
        return None
    negative = t.startswith("(") and t.endswith(")")
    t = t.strip("()").replace(" ", "").replace("'", "").replace("’", "")
    if "," in t and "." in t:
        if t.rfind(",") > t.rfind("."):
            t = t.replace(".", "").replace(",", ".")
        else:
            t = t.replace(",", "")
    elif "," in t:
        thousands = re.fullmatch(r"[-+]?\d{1,3}(,\d{3})+", t)
        if t.count(",") > 1 or (thousands and (whole or not decimal_comma)):
            t = t.replace(",", "")
        else:
            t = t.replace(",", ".")
    elif "." in t:
        thousands = re.fullmatch(r"[-+]?\d{1,3}(\.\d{3})+", t)
        if t.count(".") > 1 or (thousands and (whole or decimal_comma)):
            t = t.replace(".", "")
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)", t):
        raise ValueError(text)
    value = float(t)
    return -value if negative else value


def uses_decimal_comma(cells: Iterable[str]) -> bool:
    """Whether the file writes decimals with a comma (``454,06``, ``1.234,5``), by a vote
    over its unambiguous figures."""
    comma = point = 0
    for c in cells:
        t = re.sub(r"[^\d.,]", "", c)
        if "," in t and "." in t:
            comma += t.rfind(",") > t.rfind(".")
            point += t.rfind(".") > t.rfind(",")
        elif re.search(r",(\d{1,2}|\d{4,})$", t):
            comma += 1
        elif re.search(r"\.(\d{1,2}|\d{4,})$", t):
            point += 1
    return comma > point


_NUMERIC_DATE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})")


def dayfirst_of(cells: Iterable[str], default: bool) -> bool:
    for c in cells:
        found = _NUMERIC_DATE.match(c.strip())
        if found:
            a, b = int(found.group(1)), int(found.group(2))
            if a > 12:
                return True
            if b > 12:
                return False
    return default


def parse_date(text: str, dayfirst: bool = False) -> str | None:
    """An ISO date from ``2025-03-01``, ``2025/03/01``, ``01/03/2025``, ``March 1, 2025``,
    ``1 Mar 2025`` or ``20250301`` (a time after it is ignored); None when blank."""
    t = text.strip()
    if t.lower() in MISSING:
        return None
    iso = re.match(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", t) or re.fullmatch(
        r"(\d{4})(\d{2})(\d{2})", t
    )
    if found := iso:
        y, m, d = (int(g) for g in found.groups())
    elif found := _NUMERIC_DATE.match(t):
        a, b, y = (int(g) for g in found.groups())
        d, m = (a, b) if (dayfirst or a > 12) and b <= 12 else (b, a)
    elif found := re.match(r"^([A-Za-z]{3,})\.?\s+(\d{1,2}),?\s+(\d{4})", t):
        m, d, y = _month(found.group(1)), int(found.group(2)), int(found.group(3))
    elif found := re.match(r"^(\d{1,2})\.?\s+([A-Za-z]{3,})\.?,?\s+(\d{4})", t):
        d, m, y = int(found.group(1)), _month(found.group(2)), int(found.group(3))
    else:
        raise ValueError(text)
    return dt.date(y, m, d).isoformat()


def _month(word: str) -> int:
    month = _MONTHS.get(word[:3].lower())
    if month is None:
        raise ValueError(word)
    return month


def preamble_period(lines: Sequence[list[str]], dayfirst: bool) -> tuple[str, str] | None:
    """The report's date range from a title line above the header (Google Ads writes
    ``"March 1, 2025 - March 31, 2025"``), or None."""
    for cells in lines:
        text = " ".join(c for c in cells if c.strip())
        parts = re.split(r"\s+[-–—]\s+|\s+to\s+", text)
        if len(parts) == 2:
            try:
                start, end = parse_date(parts[0], dayfirst), parse_date(parts[1], dayfirst)
            except ValueError:
                continue
            if start and end:
                return start, end
    return None
