"""Cells that Excel would run as formulas, neutralised in a way runner reads back exactly.

Excel (and LibreOffice, Google Sheets) treat a CSV cell that starts with ``=``, ``+``,
``-`` or ``@`` as a formula (a tab or carriage return first does the same in some
versions): a note like ``=HYPERLINK("http://…")`` in a winners.csv would run when a
colleague opens the file. Such a cell is written with a leading apostrophe, the
spreadsheet's own "this is text" mark; a cell that already starts with an apostrophe gets
one more, so reading strips exactly one apostrophe and gets the original back. The rule is
the same in the page's script (``templates/static/report/85-picks.js``). Plain results.csv
and Parquet are not neutralised: they are for pandas, exact. See docs/report-page.md.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MARK = "'"


def to_excel(value: str) -> str:
    """The cell as written to a file a spreadsheet may open."""
    if value.startswith(FORMULA_STARTS) or value.startswith(MARK):
        return MARK + value
    return value


def from_excel(value: str) -> str:
    """The original cell of a value written by :func:`to_excel` (one apostrophe dropped)."""
    return value[1:] if value.startswith(MARK) else value
