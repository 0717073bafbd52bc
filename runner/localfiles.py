"""Media files on this computer, named in the URL columns of a grid, in one place.

A cell of ``image_urls``, ``video_urls`` or ``audio_urls`` may name a file instead of a web
address: ``./images/watch.png`` (relative to the experiment file's folder), ``watch.png`` or an
absolute path. The plan checks each one (it exists, its type by its first bytes, the API's size
limit for its column: docs/evolink.md §3.1) and the request carries ``sha256:<hex>`` of its
content, never a temporary URL: the variant key follows the picture, not the upload. The run
uploads the file through the provider's file service before the first create that needs it and
puts the URL it got in the body it sends (`runner.run.dispatch.uploads`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

REF_PREFIX: Final = "sha256:"
_HEX: Final = frozenset("0123456789abcdef")
MB: Final = 1000 * 1000  # the API's "MB" read as the smaller unit: never above its limit


@dataclass(frozen=True, slots=True)
class Kind:
    """What one media column takes: file types (MIME type -> name) and the size limit."""

    noun: str  # image, video, audio track
    types: Mapping[str, str]
    max_bytes: int


# docs/evolink.md §3.1: jpeg/png/webp ≤30 MB; mp4/mov ≤50 MB; mp3/wav ≤15 MB
KINDS: Final[Mapping[str, Kind]] = {
    "image_urls": Kind(
        "image", {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WebP"}, 30 * MB
    ),
    "video_urls": Kind("video", {"video/mp4": "MP4", "video/quicktime": "MOV"}, 50 * MB),
    "audio_urls": Kind("audio track", {"audio/mpeg": "MP3", "audio/wav": "WAV"}, 15 * MB),
}
# types that are not accepted anywhere, named so the message can say what the file is
_OTHER: Final = {
    "image/gif": "a GIF image",
    "image/bmp": "a BMP image",
    "image/tiff": "a TIFF image",
    "image/heic": "a HEIC photo (iPhone)",
    "application/pdf": "a PDF document",
}
_EXTENSIONS: Final = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "audio/mpeg": ".mp3",
    "audio/wav": ".wav",
}
_MOV_ATOMS: Final = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A checked file: its content hash, where it is, and what it is."""

    sha256: str
    path: Path  # absolute
    kind: str  # the column: image_urls, video_urls, audio_urls
    mime: str
    size: int

    @property
    def ref(self) -> str:
        """What the request carries in place of a URL: ``sha256:<hex>``."""
        return REF_PREFIX + self.sha256

    @property
    def upload_name(self) -> str:
        """The name it is uploaded under: its own name with a piece of its hash, so two
        different files called ``watch.png`` never overwrite each other (docs/evolink.md §21),
        and the extension of its real type."""
        stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in self.path.stem)[:60]
        return f"{stem or 'file'}-{self.sha256[:12]}{_EXTENSIONS.get(self.mime, '')}"


def is_local(text: str) -> bool:
    """Whether a cell item names a file rather than a web address: it has no scheme
    (``images/watch.png``, ``/home/me/watch.png``, ``~/watch.png``)."""
    try:
        return not urlsplit(text).scheme
    except ValueError:
        return False


def is_ref(value: object) -> bool:
    return (
        isinstance(value, str)
        and value.startswith(REF_PREFIX)
        and len(value) == len(REF_PREFIX) + 64
        and set(value[len(REF_PREFIX) :]) <= _HEX
    )


def refs_in(body: Mapping[str, Any]) -> list[str]:
    """The content hashes a request body names in its media arrays, in order, once each."""
    found: dict[str, None] = {}
    for field in KINDS:
        for item in body.get(field) or ():
            if is_ref(item):
                found[item[len(REF_PREFIX) :]] = None
    return list(found)


def with_urls(body: Mapping[str, Any], urls: Mapping[str, str]) -> dict[str, Any]:
    """``body`` with each ``sha256:<hex>`` replaced by the URL given for that hash (the body
    to send); key order and everything else unchanged."""
    out = dict(body)
    for field in KINDS:
        items = body.get(field)
        if items:
            out[field] = [urls[item[len(REF_PREFIX) :]] if is_ref(item) else item for item in items]
    return out


def sniff(head: bytes) -> str | None:
    """The MIME type of a file from its first bytes (at least 16), or None when unknown."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in (b"heic", b"heix", b"mif1", b"msf1"):
            return "image/heic"
        return "video/mp4"
    if head[4:8] in _MOV_ATOMS:
        return "video/quicktime"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE6 == 0xE2):
        return "audio/mpeg"  # an ID3 tag, or an MPEG audio frame (layer III) at once
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"BM"):
        return "image/bmp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if head.startswith(b"%PDF"):
        return "application/pdf"
    return None


def describe(mime: str | None) -> str:
    """``a PNG image``, ``an MP4 video``, ``a GIF image``, ``not a file type runner knows``."""
    for kind in KINDS.values():
        if mime is not None and mime in kind.types:
            name = kind.types[mime]
            article = "an" if name[0] in "AEFHILMNORSX" else "a"
            return f"{article} {name} {kind.noun.split()[0]}"
    if mime in _OTHER:
        return _OTHER[mime]
    return "not an image, video or audio file runner recognises"


def column_for(mime: str) -> str | None:
    """The column that takes files of this type, if any."""
    return next((column for column, kind in KINDS.items() if mime in kind.types), None)


def hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class LocalFiles:
    """Checks the files a grid names, relative to ``base`` (the experiment's folder), each
    once: a file cited in a thousand cells is read and hashed one time. `found` holds every
    file checked so far, by content hash."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.found: dict[str, LocalFile] = {}
        self._seen: dict[tuple[Path, str], LocalFile | str] = {}

    def __repr__(self) -> str:
        return f"<LocalFiles base={str(self.base)!r} files={len(self.found)}>"

    def check(self, text: str, column: str) -> LocalFile | str:
        """The file ``text`` names, checked for ``column``, or what is wrong with it (a
        sentence that says what to do)."""
        path = (self.base / Path(text).expanduser()).absolute()
        key = (path, column)
        if key not in self._seen:
            self._seen[key] = _check(path, text, column, self.base)
        found = self._seen[key]
        if isinstance(found, LocalFile):
            self.found[found.sha256] = found
        return found

    def files(self, hashes: Iterable[str] | None = None) -> dict[str, LocalFile]:
        """The files checked (those of ``hashes`` only, when given)."""
        if hashes is None:
            return dict(self.found)
        return {h: self.found[h] for h in hashes if h in self.found}


def _check(path: Path, text: str, column: str, base: Path) -> LocalFile | str:
    kind = KINDS[column]
    shown = repr(text)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return (
            f"{shown} is not a web address and there is no such file (looked for {path}); "
            f"file paths are relative to the experiment's folder ({base}), web addresses "
            "start with https://"
        )
    except OSError as exc:
        return f"{shown} cannot be read ({exc.strerror or exc}); check the file's permissions"
    if path.is_dir():
        return f"{shown} is a folder, not a file; name the {kind.noun} file inside it"
    if stat.st_size == 0:
        return f"{shown} is an empty file; save the {kind.noun} again"
    try:
        with open(path, "rb") as handle:
            head = handle.read(32)
    except OSError as exc:
        return f"{shown} cannot be read ({exc.strerror or exc}); check the file's permissions"
    mime = sniff(head)
    if mime is None or mime not in kind.types:
        names = list(kind.types.values())
        allowed = ", ".join(names[:-1]) + " or " + names[-1]
        other = column_for(mime) if mime else None
        hint = f"; put it in {other}" if other else f"; save it as {' or '.join(names[:2])}"
        return f"{shown} is {describe(mime)}; {column} takes {allowed} files{hint}"
    if stat.st_size > kind.max_bytes:
        size = f"{stat.st_size / MB:,.1f} MB"
        if size == f"{kind.max_bytes / MB:,.1f} MB":  # just over: the bytes tell them apart
            size = f"{stat.st_size:,} bytes"
        return (
            f"{shown} is {size}; the API takes {kind.noun}s of at most {kind.max_bytes // MB} MB "
            f"({kind.max_bytes:,} bytes): make it smaller (resize or compress it)"
        )
    try:
        sha = hash_file(path)
    except OSError as exc:
        return f"{shown} cannot be read ({exc.strerror or exc}); check the file's permissions"
    return LocalFile(sha, path, column, mime, stat.st_size)


def recheck(file: LocalFile) -> str | None:
    """Why a file recorded at plan time cannot be uploaded as it was planned (gone, or its
    content changed since), or None. Reads and hashes it again."""
    try:
        size = os.stat(file.path).st_size
        same = size == file.size and hash_file(file.path) == file.sha256
    except OSError as exc:
        return (
            f"{file.path} can no longer be read ({exc.strerror or exc}): put it back, or "
            "plan the experiment again"
        )
    if not same:
        return (
            f"{file.path} changed since the run was planned (its content is not the one the "
            "jobs were made for): put the original back, or run the experiment again to make "
            "jobs for the new file"
        )
    return None
