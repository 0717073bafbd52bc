"""Which URLs may be used, in one place: media URLs of a grid (the provider fetches them),
callback URLs (`rules`) and result downloads (`media`) all ask `url_issue`.

`url_issue` says *what* is wrong as a code; each caller words it for its reader.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Literal
from urllib.parse import urlsplit

Issue = Literal["invalid", "too_long", "scheme", "no_host", "private"]


def url_issue(
    url: str, schemes: tuple[str, ...], max_chars: int | None = None, *, legacy_ipv4: bool = False
) -> Issue | None:
    """What makes ``url`` unusable, or None: longer than ``max_chars``, not parseable, a
    scheme outside ``schemes``, no host, or a private/local host (``legacy_ipv4``: also
    spellings such as ``127.1`` that the C resolver reads but `ipaddress` refuses)."""
    if max_chars is not None and len(url) > max_chars:
        return "too_long"
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "invalid"
    if parts.scheme.lower() not in schemes:
        return "scheme"
    if not host:
        return "no_host"
    if is_private_host(host, legacy_ipv4=legacy_ipv4):
        return "private"
    return None


def url_problem(url: str, max_chars: int) -> str | None:
    """Why a media URL of a grid cannot be sent, or None. The provider fetches it itself."""
    short = url if len(url) <= 80 else url[:77] + "..."
    issue = url_issue(url, ("http", "https"), max_chars)
    if issue is None:
        return None
    if issue == "too_long":
        return f"a URL is {len(url):,} characters long (at most {max_chars:,}): {short!r}"
    if issue == "invalid":
        return f"{short!r} is not a valid URL"
    if issue == "private":
        return (
            f"{short!r} points to a private or local address the provider cannot reach; "
            "use a public URL"
        )
    return f"{short!r} is not a web address (it must start with https:// or http://)"


def is_private_host(host: str, *, legacy_ipv4: bool = False) -> bool:
    """True for localhost and private, loopback, link-local or reserved IP literals
    (``legacy_ipv4``: also spellings such as ``127.1`` or ``2130706433`` that the C
    resolver reads but `ipaddress` refuses, judged by the address a socket would use)."""
    if host.lower().rstrip(".") in {"localhost", "localhost.localdomain"}:
        return True
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return legacy_ipv4 and _legacy_private(host)
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


def _legacy_private(host: str) -> bool:
    try:
        packed = socket.inet_aton(host)
    except OSError:
        return False
    return is_private_host(str(ipaddress.IPv4Address(packed)))
