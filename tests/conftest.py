"""Shared fixtures. Tests talk to real components: files on disk, the CLI, the simulator."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from runner.cli import main
from runner.grid import pricing

QUOTE_DAY = dt.datetime(2026, 10, 20, 12, 0, tzinfo=dt.UTC)  # the built-in table is 10 days old


@pytest.fixture(autouse=True)
def quote_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Quotes are dated against a fixed day, so no test depends on today's date (prices
    over 30 days old get a warning). A test of that warning sets its own day."""
    monkeypatch.setattr(pricing, "now", lambda: QUOTE_DAY)


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (``@pytest.mark.anyio``) run on asyncio, the runner's own backend."""
    return "asyncio"


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """write("name.csv", text_or_bytes) -> path inside tmp_path."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return _write


@pytest.fixture
def cli() -> Callable[..., Result]:
    """cli("plan", "x.csv") runs the real command line in-process."""

    def _run(*args: str | Path) -> Result:
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)

    return _run
