"""Formula neutralising for spreadsheet files round-trips exactly (runner/review/csvsafe.py)."""

from __future__ import annotations

import pytest

from runner.review.csvsafe import from_excel, to_excel


@pytest.mark.parametrize(
    "value",
    [
        '=HYPERLINK("http://example.com","x")',
        "+1 555 0100",
        "-5",
        "@SUM(A1)",
        "\tindented",
        "'quoted",
        "''=twice",
        "plain text",
        "",
        "a=b",
    ],
)
def test_round_trip_is_exact(value: str) -> None:
    written = to_excel(value)
    assert from_excel(written) == value
    assert not written.startswith(("=", "+", "-", "@", "\t", "\r"))


def test_plain_cells_are_untouched() -> None:
    assert to_excel("9:16 cinematic") == "9:16 cinematic"
