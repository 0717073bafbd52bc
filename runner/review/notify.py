"""``--notify URL``: tell someone a run ended (README "Tell me when it ends").

When a run ends or stops, whatever the path that wrote its ``summary.json`` (a clean end, a
budget or disk stop, a Ctrl-C after its grace, an error that stopped it with exit 3), the
summary is POSTed as JSON to the URL given with ``--notify`` or ``RUNNER_NOTIFY_URL``, in a
body a Slack incoming webhook takes: ``text`` is one line a person reads, the summary's own
fields follow it (Slack ignores fields it does not know; a script reads them).

The body is built from the summary only: it never carries the API key, and no header but
Content-Type is sent (any text that happened to hold the key is scrubbed all the same). A
notification that fails (no connection, an error status, no answer in `TIMEOUT` seconds) is
logged and said in one line on stderr; it never stops anything nor changes the exit code.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..errors import InputError
from ..logs import RedactKey

ENV = "RUNNER_NOTIFY_URL"
TIMEOUT = 10.0  # seconds for the whole POST
TEXT_REASON = 160  # characters of the stop reason in the one-line text

log = logging.getLogger(__name__)


def notify_url(option: str | None) -> str | None:
    """The URL to notify: ``--notify`` or else ``RUNNER_NOTIFY_URL``, checked before anything
    is paid. Raises InputError naming where a bad URL came from."""
    source, url = ("--notify", option) if option else (ENV, os.environ.get(ENV, ""))
    url = (url or "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or not _well_formed(url):
        raise InputError(
            f"{source} {url[:80]!r} is not a web address: give an http:// or https:// URL, "
            "e.g. a Slack incoming webhook https://hooks.slack.com/services/... Nothing was spent."
        )
    return url


def _well_formed(url: str) -> bool:
    """Whether httpx can send to it (a port that is a number, a host name it can encode)."""
    try:
        host = httpx.URL(url).host
        host.encode("idna")
    except (httpx.InvalidURL, ValueError):  # UnicodeError is a ValueError
        return False
    return True


def shown(url: str) -> str:
    """The URL as said on screen: scheme and host only (a webhook's path is its secret)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def text_of(data: dict[str, Any]) -> str:
    """One line: run, state, done/total, credits, what to do next."""
    done = data["counts"].get("done", 0)
    state = data["state"]
    if data.get("exit_code") is not None:
        state += f" (exit {data['exit_code']})"
    line = (
        f"runner: run {data['name']} ({data['run']}) {state}: {done}/{data['jobs']} done, "
        f"{data['credits']['spent']:,.2f} credits"
    )
    reason = " ".join(str(data.get("stop_reason") or "").split())
    if reason:
        line += f"; {reason[:TEXT_REASON]}{'…' if len(reason) > TEXT_REASON else ''}"
    commands = [step["command"] for step in data["next"] if step["command"]]
    line += f". Next: {'; '.join(commands)}" if commands else ". Nothing left to do."
    return line


def body_of(data: dict[str, Any], key: str | None) -> bytes:
    """The JSON body: ``text`` then the summary's fields, scrubbed of ``key``."""
    text = json.dumps({"text": text_of(data), **data}, ensure_ascii=False)
    return RedactKey(key).redact(text).encode("utf-8")


def send(url: str, data: dict[str, Any], key: str | None) -> str | None:
    """POST the summary to ``url``. Returns None when it was taken (a 2xx answer), else what
    went wrong in a few words (also logged). Never raises for a network or HTTP failure."""
    try:
        response = httpx.post(
            url,
            content=body_of(data, key),
            headers={"Content-Type": "application/json"},
            timeout=TIMEOUT,
        )
    except httpx.TimeoutException:
        problem = f"no answer within {TIMEOUT:g} s"
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:  # IDNA: UnicodeError
        problem = f"{type(exc).__name__}: {exc}"[:200]
    else:
        if response.is_success:
            return None
        problem = f"it answered HTTP {response.status_code}"
    problem = RedactKey(key).redact(problem)
    log.info("notification to %s failed: %s", shown(url), problem)
    return problem
