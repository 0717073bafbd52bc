"""The dispatcher: create -> poll -> download for every job of a run (`core.Dispatcher`).

Three parts around a small coordinator: `creates` (budget, the soft breaker, not-sent
retries, stop), `polls` (task reads under a `PollPolicy`) and `fetches` (downloads,
verification, decoding in a worker process). Time comes from an injected `runner.run.clock.Clock`.
"""

from .core import Dispatcher, Outcome, Settings
from .polls import GONE_GRACE, GONE_REREADS, MAX_TASK_AGE, PollPolicy

__all__ = [
    "GONE_GRACE",
    "GONE_REREADS",
    "MAX_TASK_AGE",
    "Dispatcher",
    "Outcome",
    "PollPolicy",
    "Settings",
]
