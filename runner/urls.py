"""Which URLs may be used, in one place: media URLs of a grid (the provider fetches them),
callback URLs (`rules`) and result downloads (`media`) all ask `url_issue`.

`url_issue` says *what* is wrong as a code; each caller words it for its reader.
"""

from __future__ import annotations

import contextlib
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
    issue = url_issue(url, ("http", "https"), max_chars, legacy_ipv4=True)
    if issue is None:
        return None
    if issue == "too_long":
        return f"a URL is {len(url):,} characters long (at most {max_chars:,}): {short!r}"
    if issue == "invalid":
        return f"{short!r} is not a valid URL"
    if issue == "private":
        host = urlsplit(url).hostname or ""
        meant = whatwg_ipv4(host) if not _is_ip(host) else None
        spelled = f" ({host} is the address {meant})" if meant else ""
        return (
            f"{short!r} points to a private or local address{spelled} the provider cannot "
            "reach; use a public URL"
        )
    if urlsplit(url).scheme.lower() == "file":
        return (
            f"{short!r} is a file address: write the file's path instead (e.g. "
            "./images/watch.png, relative to the experiment's folder)"
        )
    return f"{short!r} is not a web address (it must start with https:// or http://)"


def is_private_host(host: str, *, legacy_ipv4: bool = False) -> bool:
    """True for localhost and private, loopback, link-local or reserved IP literals
    (``legacy_ipv4``: also IPv4 written as one number or in parts, in decimal, octal or hex,
    such as ``2130706433``, ``0177.0.0.1``, ``0x7f.1`` or ``127.1``, which browsers (the
    WHATWG URL standard) and the C resolver (``inet_aton``) read but `ipaddress` refuses:
    judged by the address either would use)."""
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


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _legacy_private(host: str) -> bool:
    meant = [whatwg_ipv4(host)]
    with contextlib.suppress(OSError):
        meant.append(ipaddress.IPv4Address(socket.inet_aton(host)))
    return any(ip is not None and is_private_host(str(ip)) for ip in meant)


def whatwg_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a host made of numbers means in a URL (the WHATWG URL standard's IPv4
    parser: one to four parts, each decimal, octal with a leading 0, or hex with 0x, the last
    filling the remaining bytes; a trailing dot allowed), or None when it is not one."""
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if len(parts) > 4:
        return None
    numbers = [_ipv4_number(part) for part in parts]
    if None in numbers:
        return None
    *head, last = [n for n in numbers if n is not None]
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    return ipaddress.IPv4Address(sum(n << (8 * (3 - i)) for i, n in enumerate(head)) + last)


def _ipv4_number(part: str) -> int | None:
    base = 10
    if part[:2].lower() == "0x":
        part, base = part[2:], 16
        if not part:
            return 0
    elif len(part) > 1 and part.startswith("0"):
        part, base = part[1:], 8
    if not part or any(c not in "0123456789abcdef"[:base] for c in part.lower()):
        return None
    return int(part, base)
