"""Logging for the command line: plain lines on stderr, with the API key redacted.

The key only ever travels in the Authorization header, but a debug log of a request, an
exception's text or a third-party library may still carry it; the filter replaces the exact
key and any ``Bearer <token>`` with ``***`` in every record before it is written
(the precedent is openai-python's SensitiveHeadersFilter).
"""

from __future__ import annotations

import logging
import re

_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


class RedactKey(logging.Filter):
    def __init__(self, key: str | None) -> None:
        super().__init__()
        self.key = key

    def redact(self, text: str) -> str:
        if self.key:
            text = text.replace(self.key, "***")
        return _BEARER.sub(r"\1***", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if clean != message or record.exc_info:
            record.msg, record.args = clean, None
            if record.exc_info:
                record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return True


def configure(verbose: int, key: str | None) -> None:
    """WARNING by default, INFO with -v, DEBUG with -vv (httpx's request lines included)."""
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    handler.addFilter(RedactKey(key))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(level if verbose >= 2 else logging.WARNING)
    # stamina logs every scheduled retry as a warning; retries are routine here
    logging.getLogger("stamina").setLevel(logging.INFO if verbose >= 1 else logging.ERROR)
