"""The parameter table: one row per column of an experiment grid, read by every stage.

A row says how a cell is parsed (text -> typed value + the text shown in the report), its
default, where it goes in the create body (``duration``, ``model_params.web_search``), whether
it shapes the price, whether ``runner promote --set`` may change it, and whether it is a list
of media URLs. `cells` parses with it, `experiment` expands with it, `models` builds the
request body and its canonical (keyed) form from it, `promote` and `results` and the CLI list
its rows. Adding a Seedance parameter is one `Param` here (plus its rule in `rules`, if the
API restricts it).

Keys stay stable when a parameter is added: a parameter with ``keyed_at_default=False`` (the
default for new rows) is left out of the canonical form while it holds its default, so every
variant key computed before it existed still holds; the body sent still pins it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Final

from . import rules
from .urls import url_problem

Parsed = tuple[object, str]
Parser = Callable[[object], Parsed]

MAX_URL_CHARS: Final = 2048
_TRUE: Final = frozenset({"true", "yes", "1", "y", "t"})
_FALSE: Final = frozenset({"false", "no", "0", "n", "f"})
_EXCEL_TIME: Final = re.compile(r"^(\d{1,2}):(\d{2})(?::00)?$")


class BadValue(ValueError):
    """A cell value a parser refuses; the message says what is allowed."""


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter (grid column).

    ``field`` is its path in the create body (None: not sent, e.g. ``repeats``; ``mode`` is
    sent as part of ``model``). ``default`` None means none (required, or inferred). A body
    carries the parameter in the modes of ``pinned_in`` always, elsewhere only when it is
    not at its default (then `rules` refuse what a mode does not take).
    """

    name: str
    parse: Parser
    default: object = None
    field: str | None = None
    priced: bool = False  # the price depends on it (see `pricing.PriceTable.credits`)
    promotable: bool = False  # `runner promote --set` may change it
    media: bool = False  # a list of URLs (a Parquet list cell is one value, not an axis)
    literal: bool = False  # free text: never split on '|'
    pinned_in: tuple[rules.Mode, ...] = rules.MODES
    keyed_at_default: bool = False  # in the variant key even at its default (legacy rows)

    @property
    def option(self) -> str | None:
        """The model option's name for ``model_params.*`` fields (tiers allow or not)."""
        if self.field is None or not self.field.startswith("model_params."):
            return None
        return self.field.partition(".")[2]


def _text(item: object) -> str:
    if isinstance(item, float) and item.is_integer():
        return str(int(item))
    if isinstance(item, list):
        return " ".join(str(i) for i in item)
    return str(item)


def _int(item: object, what: str) -> int:
    if isinstance(item, bool):
        raise BadValue(f"{item!r} is not {what}")
    if isinstance(item, int):
        return item
    if isinstance(item, float) and item.is_integer():
        return int(item)
    text = _text(item).strip()
    try:
        number = float(text)
    except ValueError:
        raise BadValue(f"{text!r} is not {what}") from None
    if not number.is_integer():
        raise BadValue(f"{text!r} is not {what}")
    return int(number)


def parse_duration(item: object) -> Parsed:
    allowed = f"allowed {rules.DURATION_MIN}–{rules.DURATION_MAX}"
    value = _int(item, f"a whole number of seconds ({allowed})")
    return value, str(value)


def parse_repeats(item: object) -> Parsed:
    value = _int(item, "a whole number of samples (1 or more)")
    if value < 1:
        raise BadValue(f"{value} is below the minimum 1 (how many samples of each variant)")
    return value, str(value)


def parse_bool(item: object) -> Parsed:
    if isinstance(item, bool):
        return item, str(item).lower()
    text = _text(item).strip().lower()
    if text in _TRUE:
        return True, "true"
    if text in _FALSE:
        return False, "false"
    raise BadValue(f"{_text(item)!r} is not true or false (write true/false, yes/no or 1/0)")


def parse_mode(item: object) -> Parsed:
    text = _text(item).strip().lower()
    if text not in rules.MODES:
        raise BadValue(f"{_text(item)!r} is not a mode (allowed: {', '.join(rules.MODES)})")
    return text, text


def parse_quality(item: object) -> Parsed:
    text = _text(item).strip().lower()
    if text.isdigit():
        text += "p"
    if text not in rules.QUALITIES:
        allowed = ", ".join(rules.QUALITIES)
        raise BadValue(f"{_text(item)!r} is not allowed (allowed: {allowed})")
    return text, text


def parse_aspect(item: object) -> Parsed:
    text = re.sub(r"\s+", "", _text(item)).lower()
    if text in rules.ASPECT_RATIOS:
        return text, text
    hint = ""
    clock = _EXCEL_TIME.match(text)
    if clock and f"{int(clock[1])}:{int(clock[2])}" in rules.ASPECT_RATIOS:
        hint = (
            f"; a spreadsheet turned {int(clock[1])}:{int(clock[2])} into a time of day: "
            "format the column as Text and type it again"
        )
    allowed = ", ".join(rules.ASPECT_RATIOS)
    raise BadValue(f"{_text(item)!r} is not allowed (allowed: {allowed}){hint}")


def split_urls(item: object) -> list[str]:
    """The items of a URL cell: separated by spaces or new lines (a Parquet list as is)."""
    urls = [str(u).strip() for u in item] if isinstance(item, list) else _text(item).split()
    return [u for u in urls if u]


def parse_urls(item: object) -> Parsed:
    """Web addresses only; `runner.grid.cells` also reads file paths (`runner.localfiles`)."""
    urls = split_urls(item)
    for url in urls:
        message = url_problem(url, max_chars=MAX_URL_CHARS)
        if message:
            raise BadValue(message)
    return tuple(urls), " ".join(urls)


def parse_name(item: object) -> Parsed:
    text = _text(item).strip()
    return text, text


def parse_prompt(item: object) -> Parsed:
    text = _text(item)
    return text, text.strip()


def parse_text(item: object) -> Parsed:
    """Template variables: the text as written."""
    return _text(item), _text(item)


# Rows that predate the table carry ``keyed_at_default=True``: today's keys include them.
PARAMS: tuple[Param, ...] = (
    Param("prompt", parse_prompt, field="prompt", literal=True, keyed_at_default=True),
    Param("mode", parse_mode),
    Param(
        "duration",
        parse_duration,
        5,
        "duration",
        priced=True,
        promotable=True,
        keyed_at_default=True,
    ),
    Param(
        "quality",
        parse_quality,
        "720p",
        "quality",
        priced=True,
        promotable=True,
        keyed_at_default=True,
    ),
    Param(
        "aspect_ratio", parse_aspect, "16:9", "aspect_ratio", promotable=True, keyed_at_default=True
    ),
    Param(
        "generate_audio", parse_bool, True, "generate_audio", promotable=True, keyed_at_default=True
    ),
    Param(
        "web_search",
        parse_bool,
        False,
        "model_params.web_search",
        priced=True,
        promotable=True,
        pinned_in=("text",),
        keyed_at_default=True,
    ),
    Param(
        "content_filter",
        parse_bool,
        True,
        "content_filter",
        priced=True,
        promotable=True,
        keyed_at_default=True,
    ),
    Param(
        "image_urls",
        parse_urls,
        (),
        "image_urls",
        media=True,
        pinned_in=("image",),
        keyed_at_default=True,
    ),
    Param(
        "video_urls",
        parse_urls,
        (),
        "video_urls",
        priced=True,
        media=True,
        pinned_in=(),
        keyed_at_default=True,
    ),
    Param(
        "audio_urls", parse_urls, (), "audio_urls", media=True, pinned_in=(), keyed_at_default=True
    ),
    Param("repeats", parse_repeats, 1),
    Param("name", parse_name, literal=True),
)


@dataclass(frozen=True)
class Table:
    """The rows, and the views of them the stages read (each computed once)."""

    rows: tuple[Param, ...]

    @cached_property
    def by_name(self) -> dict[str, Param]:
        return {p.name: p for p in self.rows}

    @cached_property
    def columns(self) -> tuple[str, ...]:
        """Every reserved column name (any other column is a template variable)."""
        return tuple(p.name for p in self.rows)

    @cached_property
    def sent(self) -> tuple[Param, ...]:
        """The parameters of a request body, ``prompt`` first (``mode`` goes in ``model``)."""
        return tuple(p for p in self.rows if p.field is not None)

    @cached_property
    def settings(self) -> tuple[Param, ...]:
        """Sent parameters but the prompt: with the mode, all that rules and prices read."""
        return tuple(p for p in self.sent if p.name != "prompt")

    @cached_property
    def defaults(self) -> dict[str, object]:
        """Values of absent columns (media lists and the inferred mode have none)."""
        return {p.name: p.default for p in self.rows if p.default is not None and not p.media}

    @cached_property
    def media(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.rows if p.media)

    @cached_property
    def literal(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.rows if p.literal)

    @cached_property
    def promotable(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.rows if p.promotable)

    @cached_property
    def priced(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.rows if p.priced)

    def with_row(self, param: Param, after: str | None = None) -> Table:
        """This table with one more row (at the end, or after the row named ``after``)."""
        rows = list(self.rows)
        at = len(rows) if after is None else self.columns.index(after) + 1
        rows.insert(at, param)
        return Table(tuple(rows))


TABLE = Table(PARAMS)
"""The table every stage reads (as ``params.TABLE``, at call time: a test may extend it)."""
