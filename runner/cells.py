"""Cells of an experiment: split multi-valued cells and parse each value into a `Choice`.

A cell ``a | b | c`` holds three values (``\\|`` is a literal pipe; pipes inside Jinja's
``{{ }}`` and ``{% %}`` are filters, not separators); a Parquet list cell likewise, except in
the URL columns where a list is one set of URLs. The free-text columns ``prompt`` and ``name``
are never split (real prompts contain ``|``: shot lists, JSON-style prompts), and neither is a
Parquet string. Parse errors are collected as `Problem`s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from . import rules
from .errors import Problem
from .sheet import URL_COLUMNS, Cell

BOOL_COLUMNS = ("generate_audio", "web_search", "content_filter")
RESERVED = (
    "prompt", "mode", "duration", "quality", "aspect_ratio", *BOOL_COLUMNS, *URL_COLUMNS,
    "repeats", "name",
)
DEFAULTS: dict[str, object] = {
    "duration": 5, "quality": "720p", "aspect_ratio": "16:9", "generate_audio": True,
    "web_search": False, "content_filter": True, "repeats": 1,
}
# Free text: a pipe in them is prose, never an axis (a prompt axis is rows or a variable).
LITERAL_COLUMNS = ("prompt", "name")
MAX_URL_CHARS = 2048
_TRUE = {"true", "yes", "1", "y", "t"}
_FALSE = {"false", "no", "0", "n", "f"}
_CELL_PART = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\\\||\||[^{|\\]+|.", re.DOTALL)
_EXCEL_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::00)?$")


class Choice(tuple[str, str]):
    """One value of a (possibly multi-valued) cell. It *is* the ``(column, shown)`` pair a
    variant records (so expansion copies no pairs), and carries the typed value and the JSON
    fragment it adds to a request body. Within a column, ``shown`` determines ``value``."""

    value: object
    fragment: str

    def __new__(cls, column: str, value: object, shown: str) -> Choice:
        self = super().__new__(cls, (column, shown))
        self.value = value
        self.fragment = json.dumps(
            list(value) if isinstance(value, tuple) else value, ensure_ascii=False
        )
        return self

    @property
    def column(self) -> str:
        return self[0]

    @property
    def shown(self) -> str:
        return self[1]

    def __repr__(self) -> str:
        return f"Choice({self[0]}={self[1]!r})"


class Cells:
    """Parses the cells of one source into lists of `Choice`s, collecting problems."""

    def __init__(self, file: str, problems: list[Problem], split_strings: bool = True) -> None:
        self.file = file
        self.problems = problems
        self.split_strings = split_strings  # False for Parquet: only list cells are axes

    def problem(self, row: int | None, column: str, message: str) -> None:
        self.problems.append(Problem(self.file, row, column, message))

    def choices(
        self, row: int | None, column: str, cell: Cell, label: str | None = None
    ) -> list[Choice]:
        """The choices of a cell; [] for an empty cell (meaning: use the default).
        ``label`` names the cell in messages when it is not the column (sidecar entries)."""
        label = label or column
        if cell is None:
            return []
        raw: list[object]
        if isinstance(cell, list):
            raw = [cell] if column in URL_COLUMNS else list(cell)
        elif isinstance(cell, str):
            if not cell.strip():
                return []
            if column in LITERAL_COLUMNS or not self.split_strings:
                return self._literal(row, column, cell, label)
            parts = split_cell(cell)
            if len(parts) > 1 and not all(parts):
                self.problem(row, label, f"{cell!r} has an empty value between the '|' signs")
                parts = [p for p in parts if p]
            raw = list(parts)
        else:
            raw = [cell]
        out: dict[str, Choice] = {}
        for item in raw:
            choice = self.parse(row, column, item, label)
            if choice is not None:
                out.setdefault(choice.shown, choice)
        return list(out.values())

    def _literal(self, row: int | None, column: str, cell: str, label: str) -> list[Choice]:
        """One value, never split; ``\\|`` still reads as ``|`` (sheets written when it had
        to be escaped keep working)."""
        choice = self.parse(row, column, unescape_pipes(cell).strip(), label)
        return [] if choice is None else [choice]

    def parse(self, row: int | None, column: str, item: object, label: str) -> Choice | None:
        parser = PARSERS.get(column)
        try:
            value, shown = parser(item) if parser else (_text(item), _text(item))
        except _Bad as bad:
            self.problem(row, label, str(bad))
            return None
        return Choice(column, value, shown)


def unique_choices(choices: Iterable[Choice]) -> list[Choice]:
    out: dict[str, Choice] = {}
    for c in choices:
        out.setdefault(c.shown, c)
    return list(out.values())


def split_cell(cell: str) -> list[str]:
    """``a | b | c`` -> [a, b, c]; ``\\|`` is a literal pipe; pipes inside ``{{ }}`` and
    ``{% %}`` are Jinja filters, not separators."""
    parts: list[str] = []
    current: list[str] = []
    for piece in _CELL_PART.findall(cell):
        if piece == "|":
            parts.append("".join(current).strip())
            current = []
        else:
            current.append("|" if piece == "\\|" else piece)
    parts.append("".join(current).strip())
    return parts


def unescape_pipes(cell: str) -> str:
    """``\\|`` -> ``|`` outside Jinja's ``{{ }}`` and ``{% %}``; everything else as written."""
    return "".join("|" if piece == "\\|" else piece for piece in _CELL_PART.findall(cell))


def pipe_outside_jinja(cell: str) -> bool:
    """Whether ``split_cell`` would have split this text (a warning for prompts, which are
    never split any more)."""
    return len(split_cell(cell)) > 1


class _Bad(ValueError):
    pass


def _text(item: object) -> str:
    if isinstance(item, float) and item.is_integer():
        return str(int(item))
    if isinstance(item, list):
        return " ".join(str(i) for i in item)
    return str(item)


def _parse_int(item: object, what: str) -> int:
    if isinstance(item, bool):
        raise _Bad(f"{item!r} is not {what}")
    if isinstance(item, int):
        return item
    if isinstance(item, float) and item.is_integer():
        return int(item)
    text = _text(item).strip()
    try:
        number = float(text)
    except ValueError:
        raise _Bad(f"{text!r} is not {what}") from None
    if not number.is_integer():
        raise _Bad(f"{text!r} is not {what}")
    return int(number)


Parsed = tuple[object, str]


def _parse_duration(item: object) -> Parsed:
    value = _parse_int(item, "a whole number of seconds "
                       f"(allowed {rules.DURATION_MIN}–{rules.DURATION_MAX})")
    return value, str(value)


def _parse_repeats(item: object) -> Parsed:
    value = _parse_int(item, "a whole number of samples (1 or more)")
    if value < 1:
        raise _Bad(f"{value} is below the minimum 1 (how many samples of each variant)")
    return value, str(value)


def _parse_bool(item: object) -> Parsed:
    if isinstance(item, bool):
        return item, str(item).lower()
    text = _text(item).strip().lower()
    if text in _TRUE:
        return True, "true"
    if text in _FALSE:
        return False, "false"
    raise _Bad(f"{_text(item)!r} is not true or false (write true/false, yes/no or 1/0)")


def _parse_mode(item: object) -> Parsed:
    text = _text(item).strip().lower()
    if text not in rules.MODES:
        raise _Bad(f"{_text(item)!r} is not a mode (allowed: {', '.join(rules.MODES)})")
    return text, text


def _parse_quality(item: object) -> Parsed:
    text = _text(item).strip().lower()
    if text.isdigit():
        text += "p"
    if text not in rules.QUALITIES:
        raise _Bad(f"{_text(item)!r} is not allowed (allowed: {', '.join(rules.QUALITIES)})")
    return text, text


def _parse_aspect(item: object) -> Parsed:
    text = re.sub(r"\s+", "", _text(item)).lower()
    if text in rules.ASPECT_RATIOS:
        return text, text
    hint = ""
    clock = _EXCEL_TIME.match(text)
    if clock and f"{int(clock[1])}:{int(clock[2])}" in rules.ASPECT_RATIOS:
        hint = (f"; a spreadsheet turned {int(clock[1])}:{int(clock[2])} into a time of day: "
                "format the column as Text and type it again")
    raise _Bad(f"{_text(item)!r} is not allowed (allowed: {', '.join(rules.ASPECT_RATIOS)}){hint}")


def _parse_urls(item: object) -> Parsed:
    urls = [str(u).strip() for u in item] if isinstance(item, list) else _text(item).split()
    urls = [u for u in urls if u]
    for url in urls:
        message = url_problem(url)
        if message:
            raise _Bad(message)
    return tuple(urls), " ".join(urls)


def url_problem(url: str) -> str | None:
    """Why a media URL cannot be sent, or None. The provider fetches these URLs itself."""
    short = url if len(url) <= 80 else url[:77] + "..."
    if len(url) > MAX_URL_CHARS:
        return f"a URL is {len(url):,} characters long (at most {MAX_URL_CHARS:,}): {short!r}"
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return f"{short!r} is not a valid URL"
    if parts.scheme not in ("http", "https") or not host:
        return f"{short!r} is not a web address (it must start with https:// or http://)"
    if rules.is_private_host(host):
        return (f"{short!r} points to a private or local address the provider cannot reach; "
                "use a public URL")
    return None


def _parse_name(item: object) -> Parsed:
    text = _text(item).strip()
    return text, text


def _parse_prompt(item: object) -> Parsed:
    text = _text(item)
    return text, text.strip()


PARSERS: dict[str, Callable[[object], Parsed]] = {
    "prompt": _parse_prompt,
    "mode": _parse_mode,
    "duration": _parse_duration,
    "quality": _parse_quality,
    "aspect_ratio": _parse_aspect,
    "generate_audio": _parse_bool,
    "web_search": _parse_bool,
    "content_filter": _parse_bool,
    "image_urls": _parse_urls,
    "video_urls": _parse_urls,
    "audio_urls": _parse_urls,
    "repeats": _parse_repeats,
    "name": _parse_name,
}
DEFAULT_CHOICES = {k: Choice(k, *PARSERS[k](v)) for k, v in DEFAULTS.items()}
