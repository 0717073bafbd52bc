"""The `runner` command line: parse, call, print, map errors to exit codes. Nothing else.

`base` holds the group and what the commands share; each other module registers its
commands on it when imported here.
"""

from . import (  # noqa: F401 - they register commands
    housekeeping,
    metrics,
    operate,
    planning,
    prices,
    reading,
    simulate,
)
from .base import main

__all__ = ["main"]
