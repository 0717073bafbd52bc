"""The job key an ad name carries survives what platforms and people do to names."""

from __future__ import annotations

import pytest

from runner.metrics.model import key_in_name

KEY = "3f2a9c0d1e4b5a6c-standard-1"


@pytest.mark.parametrize(
    "name",
    [
        "headphones_9x16_cinematic__3f2a9c0d1e4b5a6c-standard-1.mp4",
        "HEADPHONES 9X16 __3F2A9C0D1E4B5A6C-STANDARD-1",
        "headphones 3f2a9c0d1e4b5a6c_standard_1 (copy)",
        "old 0000000000000000-fast-1 renamed __3f2a9c0d1e4b5a6c-standard-1",
    ],
)
def test_the_key_is_found(name: str) -> None:
    assert key_in_name(name) == KEY


@pytest.mark.parametrize(
    "name", ["headphones 9x16", "3f2a9c0d1e4b5a6-standard-1", "x3f2a9c0d1e4b5a6c7-fast-1", ""]
)
def test_no_key_is_invented(name: str) -> None:
    assert key_in_name(name) is None
