"""Named crash points for the durability tests (docs/reliability.md §7.2, P2).

``RUNNER_FAILPOINT=after_intent_commit`` (or ``name:N`` for its N-th hit) makes the runner
kill itself with SIGKILL at that point, exactly as a power cut or ``kill -9`` would. Unset,
each check is one dictionary look-up.
"""

from __future__ import annotations

import os
import signal

_hits: dict[str, int] = {}


def failpoint(name: str) -> None:
    spec = os.environ.get("RUNNER_FAILPOINT")
    if not spec:
        return
    wanted, _, nth = spec.partition(":")
    if wanted != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
