"""Every error `runner` raises on purpose, in one tree.

    RunnerError                     exit 1: something went wrong that the user must look at
    ├── InputError                  exit 2: bad experiment, flag or file; nothing was spent
    │   └── ExperimentError         carries every `Problem` found (file, row, column, message)
    ├── RunStopped                  exit 3: the run stopped early; its state is saved
    └── PricesUnavailable           exit 4: `runner prices update` got no usable price rules;
                                    nothing changed

Failures of single jobs are *data* (recorded in the ledger and shown in the report), never
exceptions: one bad job must not stop a batch. Messages are written for the person at the
keyboard and say what to do next.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class RunnerError(Exception):
    """Base of every deliberate error. The CLI prints ``Error: <message>`` and exits."""

    exit_code = 1


class InputError(RunnerError):
    """Invalid input or usage. Raised before anything is spent."""

    exit_code = 2


class RunStopped(RunnerError):
    """The run stopped before finishing (budget, auth, balance, interrupt). Resumable."""

    exit_code = 3


class PricesUnavailable(RunnerError):
    """The price rules could not be fetched or turned into a price table. The cache and the
    quotes are unchanged."""

    exit_code = 4


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One thing wrong with an input file, located as precisely as we can.

    ``row`` is the spreadsheet row number (the header is row 1, the first data row is row 2),
    so it matches what a user sees in Excel or Google Sheets.
    """

    file: str
    row: int | None
    column: str | None
    message: str

    @property
    def where(self) -> str:
        """``demo.csv:row 4:style``: the file, then the row and column when known."""
        parts = [self.file]
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column:
            parts.append(self.column)
        return ":".join(parts)

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class ExperimentError(InputError):
    """An experiment (or its sidecar, or a flag) has problems. Lists all of them at once."""

    max_shown = 50

    def __init__(self, problems: Iterable[Problem]) -> None:
        unique = sorted(set(problems), key=_problem_order)
        self.problems: tuple[Problem, ...] = tuple(unique)
        shown = [str(p) for p in self.problems[: self.max_shown]]
        hidden = len(self.problems) - len(shown)
        if hidden > 0:
            shown.append(f"... and {hidden} more problem(s) of the same kinds")
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} found; nothing was sent:"
        super().__init__("\n".join([head, *shown]))


def _problem_order(p: Problem) -> tuple[str, int, str, str]:
    return (p.file, p.row if p.row is not None else 0, p.column or "", p.message)
