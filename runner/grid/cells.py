"""Cells of an experiment: split multi-valued cells and parse each value into a `Choice`.

A cell ``a | b | c`` holds three values (``\\|`` is a literal pipe; pipes inside Jinja's
``{{ }}`` and ``{% %}`` are filters, not separators); a Parquet list cell likewise, except in
the URL columns where a list is one set of URLs. The free-text columns ``prompt`` and ``name``
are never split (real prompts contain ``|``: shot lists, JSON-style prompts), and neither is a
Parquet string. Parse errors are collected as `Problem`s.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Iterable

from .. import params
from ..errors import Problem
from ..localfiles import LocalFiles, is_local
from ..urls import url_problem
from .sheet import Cell

_CELL_PART = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\\\||\||[^{|\\]+|.", re.DOTALL)
# A split cell looks like a pipe meant as text when a value is this long (prose) or when it
# splits into more values than this: the plan warns, naming the cell.
PROSE_CHARS = 60
MANY_VALUES = 8
# Bidirectional embeddings, overrides and isolates: invisible, and they make text display in
# another order than it is sent (U+202E shows "gpj.exe" as "exe.jpg"). Never in a grid.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


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

    def __init__(
        self,
        file: str,
        problems: list[Problem],
        split_strings: bool = True,
        files: LocalFiles | None = None,
    ) -> None:
        self.file = file
        self.problems = problems
        self.split_strings = split_strings  # False for Parquet: only list cells are axes
        self.files = files  # file paths in the URL columns are read with it (None: refused)
        # split cells that look like text with a '|' in it: (cell, longest value or count)
        self.prose: list[tuple[Problem, int]] = []
        self.many: list[tuple[Problem, int]] = []

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
        param = params.TABLE.by_name.get(column)
        if isinstance(cell, list):
            raw = [cell] if param and param.media else list(cell)
        elif isinstance(cell, str):
            if not cell.strip():
                return []
            if (param and param.literal) or not self.split_strings:
                return self._literal(row, column, cell, label)
            parts = split_cell(cell)
            if len(parts) > 1:
                self._suspect(row, label, parts, param is not None and param.media)
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

    def _suspect(self, row: int | None, label: str, parts: list[str], media: bool) -> None:
        """Note a split that looks unintended: a value as long as prose (URLs are long by
        nature, so not in the media columns), or very many values."""
        here = Problem(self.file, row, label, "")
        longest = max(len(p) for p in parts)
        if longest > PROSE_CHARS and not media:
            self.prose.append((here, longest))
        if len(parts) > MANY_VALUES:
            self.many.append((here, len(parts)))

    def _literal(self, row: int | None, column: str, cell: str, label: str) -> list[Choice]:
        """One value, never split; ``\\|`` still reads as ``|`` (sheets written when it had
        to be escaped keep working)."""
        choice = self.parse(row, column, unescape_pipes(cell).strip(), label)
        return [] if choice is None else [choice]

    def parse(self, row: int | None, column: str, item: object, label: str) -> Choice | None:
        param = params.TABLE.by_name.get(column)
        texts = item if isinstance(item, list) else [item]
        bad = bidi_problem("".join(t for t in texts if isinstance(t, str)), _what(column))
        if bad:
            self.problem(row, label, bad)
        if param is not None and param.media and self.files is not None:
            return self._media(row, column, item, label, self.files)
        try:
            value, shown = (param.parse if param else params.parse_text)(item)
        except params.BadValue as bad:
            self.problem(row, label, str(bad))
            return None
        return Choice(column, value, shown)

    def _media(
        self, row: int | None, column: str, item: object, label: str, files: LocalFiles
    ) -> Choice | None:
        """A set of media: web addresses as written, files as ``sha256:<hex>`` of their
        content (`runner.localfiles`); every bad item is a problem of its own."""
        texts = params.split_urls(item)
        values: list[str] = []
        for text in texts:
            if is_local(text):
                found = files.check(text, column)
                if isinstance(found, str):
                    self.problem(row, label, found)
                else:
                    values.append(found.ref)
                continue
            message = url_problem(text, params.MAX_URL_CHARS)
            if message:
                self.problem(row, label, message)
            else:
                values.append(text)
        if len(values) < len(texts):
            return None
        return Choice(column, tuple(values), " ".join(texts))


def bidi_problem(text: str, what: str = "the prompt") -> str | None:
    """Why ``text`` may not be used when it holds bidirectional control characters."""
    if _BIDI.search(text) is None:
        return None
    found = sorted(set(_BIDI.findall(text)))
    codes = ", ".join(f"U+{ord(c):04X} {unicodedata.name(c)}" for c in found)
    return (
        f"{what} contains invisible text-direction characters ({codes}) that make it "
        "display differently from what is sent; delete them (retype the text if unsure)"
    )


def _what(column: str) -> str:
    return {"prompt": "the prompt", "name": "the name"}.get(column, "the cell")


def split_warnings(sources: Iterable[Cells], shown: int = 5) -> tuple[str, ...]:
    """Warnings naming the split cells that look like text containing '|' rather than
    several values, with the fix."""
    prose = [n for c in sources for n in c.prose]
    many = [n for c in sources for n in c.many]
    out = []
    fix = (
        "if the '|' is part of the text, write \\| for a literal pipe; "
        "to try several values this long, put one per row."
    )
    if prose:
        out.append(
            f"{_cells(prose, 'characters', shown)}: split on '|' into a value over "
            f"{PROSE_CHARS} characters long, which reads like prose; {fix}"
        )
    if many:
        out.append(
            f"{_cells(many, 'values', shown)}: split on '|' into more than {MANY_VALUES} values "
            "(each one a variant); if that is not meant, write \\| for a literal pipe, or put "
            "one value per row."
        )
    return tuple(out)


def _cells(found: list[tuple[Problem, int]], unit: str, shown: int) -> str:
    named = ", ".join(f"{p.where} ({n:,} {unit})" for p, n in found[:shown])
    return named + (f" and {len(found) - shown:,} more" if len(found) > shown else "")


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


def default_choices() -> dict[str, Choice]:
    """A `Choice` for every column the parameter table gives a default."""
    return _default_choices(params.TABLE)


@functools.cache
def _default_choices(table: params.Table) -> dict[str, Choice]:
    return {k: Choice(k, *table.by_name[k].parse(v)) for k, v in table.defaults.items()}
