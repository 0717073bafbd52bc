"""The file service (``docs/simulator.md`` §24): input media uploaded for later creates.

EvoLink keeps uploaded files on its own origin, ``files-api`` [DOC]; so does the simulator when
``SimConfig.upload_origin`` is set (else on the API's origin):

- ``POST /api/v1/files/upload/stream`` (multipart ``file``, ``upload_path``/``uploadPath``,
  ``file_name``/``fileName``) → ``{"success": true, "code": 200, "msg", "data": {file_id,
  file_name, original_name, file_size, mime_type, upload_path, file_url, download_url,
  upload_time, expires_at}}`` [DOC], times ISO 8601 with the offset [DOC example].
- ``GET /api/v1/files/quota`` → ``data: {user_group, used_files, max_files, remain_files,
  is_custom, quota_reason}`` [DOC]; ``GET /api/v1/files/list`` → ``data: {files, total, page,
  page_size}``, newest first [INF shape]; ``DELETE /api/v1/files/{file_id}`` → ``data:
  {file_id}`` [INF shape]; ``GET /api/v1/files/upload-receipts/{upload_id}`` → ``data:
  {upload_id, state: "done", result_verified: true, file}`` for an upload that carried
  ``X-Evo-Upload-Id`` [EVO names; INF shape].
- the file itself at ``file_url`` (``/uploads/{file_id}/{file_name}``) and ``download_url``
  (``/api/v1/files/download/{file_id}``), without auth [INF paths].

Errors ``{"success": false, "code": <int>, "msg"}`` [INF shape]: 40001 too large (HTTP 413),
40002 wrong type (415), 40003 quota used up (403) [EVO codes; INF statuses], 401, 400 (no
``file`` part), 404 (unknown file or receipt). A file expires ``upload_ttl`` simulated seconds
(72 h [DOC]) after its upload and then no longer counts, lists or downloads; the quota is
``upload_quota`` files per key (100 [EVO]; EvoLink's newer quota page says 2,000 for the
default group); a second upload of the same ``file_name`` (and path) by the same key replaces
the first, whose links stop working [EVO "same name overwrites"; INF details]. Types are
recognised by their first bytes: JPEG, PNG, GIF, WebP [DOC], and MP4/MOV, MP3, WAV [INF].

An image's mean colour is its ``mark``: a create citing the file's URL renders a video showing
that colour in a corner (`runner.simulator.video`).
"""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any, Final

from .tasks import key_label

UPLOAD_TYPES: Final = (
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "video/mp4",
    "video/quicktime",
    "audio/mpeg",
    "audio/wav",
)
_ZONE: Final = timezone(timedelta(hours=8))  # the docs' examples are in +08:00
_EXTENSIONS: Final = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "audio/mpeg": ".mp3",
    "audio/wav": ".wav",
}
_STATUS: Final = {40001: 413, 40002: 415, 40003: 403, 400: 400, 401: 401, 404: 404}
RGB = tuple[int, int, int]


class FileError(Exception):
    """An error answer of the file service: ``code`` in the body, ``status`` over HTTP."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return _STATUS.get(self.code, 400)

    def body(self) -> dict[str, Any]:
        return {"success": False, "code": self.code, "msg": self.message}


def iso(when: float) -> str:
    """Unix seconds as ISO 8601 in +08:00, as the docs' examples show them."""
    return datetime.fromtimestamp(when, _ZONE).isoformat(timespec="seconds")


def sniff(data: bytes) -> str | None:
    """The MIME type the service sees in a file's first bytes (its own encoding)."""
    head = data[:16]
    if head[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp":
        return "video/quicktime" if head[8:12] == b"qt  " else "video/mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free"):
        return "video/quicktime"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    return None


def mark_of(data: bytes, mime: str) -> RGB | None:
    """An image's mean colour (None for other files, or an image Pillow cannot read)."""
    if not mime.startswith("image/"):
        return None
    try:
        from PIL import Image  # lazy: only images that are uploaded need it

        with Image.open(io.BytesIO(data)) as picture:
            small = picture.convert("RGB").resize((1, 1), Image.Resampling.BOX)
            r, g, b = small.getpixel((0, 0))  # type: ignore[misc]
    except Exception:
        return None
    return int(r), int(g), int(b)


def parse_form(content_type: str | None, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """The parts of a ``multipart/form-data`` body: name -> (file name, bytes)."""
    if not content_type or not content_type.lower().startswith("multipart/form-data"):
        raise FileError(400, "send the file as multipart/form-data")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=HTTP).parsebytes(head + raw)
    parts: dict[str, tuple[str | None, bytes]] = {}
    if not message.is_multipart():
        raise FileError(400, "the multipart body could not be read")
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        parts.setdefault(
            name, (part.get_filename(), payload if isinstance(payload, bytes) else b"")
        )
    return parts


@dataclass
class StoredFile:
    """One uploaded file of one key."""

    file_id: str
    key: str = field(repr=False)
    file_name: str
    original_name: str
    upload_path: str
    size: int
    mime: str
    sha256: str
    uploaded: float  # simulated unix time
    expires: float
    file_url: str
    download_url: str
    mark: RGB | None = None
    data: bytes | None = field(default=None, repr=False)  # None: on disk (or gone)

    def view(self) -> dict[str, Any]:
        """The ``data`` of an upload's answer, and an item of the list."""
        return {
            "file_id": self.file_id,
            "file_name": self.file_name,
            "original_name": self.original_name,
            "file_size": self.size,
            "mime_type": self.mime,
            "upload_path": self.upload_path,
            "file_url": self.file_url,
            "download_url": self.download_url,
            "upload_time": iso(self.uploaded),
            "expires_at": iso(self.expires),
        }

    def record(self) -> dict[str, Any]:
        """What a journal line keeps of it (no bytes, no key)."""
        return {
            **{k: getattr(self, k) for k in _RECORDED},
            "mark": None if self.mark is None else list(self.mark),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any], key: str) -> StoredFile:
        mark = record.get("mark")
        values = {k: record[k] for k in _RECORDED}
        return cls(key=key, mark=None if mark is None else (mark[0], mark[1], mark[2]), **values)


_RECORDED: Final = (
    "file_id",
    "file_name",
    "original_name",
    "upload_path",
    "size",
    "mime",
    "sha256",
    "uploaded",
    "expires",
    "file_url",
    "download_url",
)


@dataclass
class Receipt:
    """What an upload that carried ``X-Evo-Upload-Id`` left behind."""

    upload_id: str
    key: str = field(repr=False)
    file: dict[str, Any]


class FileStore:
    """The uploaded files of every key; the `Simulator` calls it under its lock and journals
    what changes. ``directory``: where file bytes are kept (else in memory)."""

    def __init__(
        self,
        *,
        quota: int,
        max_bytes: int,
        ttl: float,
        types: tuple[str, ...] = UPLOAD_TYPES,
        directory: Path | None = None,
    ) -> None:
        self.quota = quota
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.types = types
        self.directory = directory
        self.files: dict[str, StoredFile] = {}
        self.receipts: dict[tuple[str, str], Receipt] = {}
        self.uploads: Counter[str] = Counter()  # key label -> files stored
        self.refused: Counter[int] = Counter()  # error code -> uploads refused
        self.deleted: Counter[str] = Counter()  # key label -> files deleted by a client
        self.replaced = 0  # uploads that replaced a file of the same name
        self.expired = 0
        self._serial = 0

    def __repr__(self) -> str:
        return f"<FileStore files={len(self.files)} quota={self.quota}>"

    # --- changes (each returns what the journal keeps) ---------------------------------------

    def check(
        self, key: str, form: Mapping[str, tuple[str | None, bytes]], now: float
    ) -> tuple[bytes, str, str, str]:
        """Refuse an upload the service would refuse (FileError); else (data, mime, name,
        path) of the file to store."""
        if "file" not in form:
            raise FileError(400, "no file: send it in the multipart field 'file'")
        original, data = form["file"]
        if len(data) > self.max_bytes:
            self.refused[40001] += 1
            raise FileError(
                40001, f"File too large: {len(data)} bytes, at most {self.max_bytes} bytes"
            )
        mime = sniff(data)
        if mime is None or mime not in self.types:
            self.refused[40002] += 1
            raise FileError(40002, f"Unsupported file type {mime or 'unknown'}")
        name = _text(form, "file_name", "fileName") or original or ""
        name = name.rsplit("/", 1)[-1] or f"upload{_EXTENSIONS.get(mime, '')}"
        path = _text(form, "upload_path", "uploadPath") or mime.split("/")[0] + "s"
        self.purge(now)
        replaced = self._same_name(key, name, path)
        if replaced is None and self.used(key) >= self.quota:
            self.refused[40003] += 1
            raise FileError(
                40003,
                f"File quota exceeded: {self.quota} files stored; delete some or wait for them "
                "to expire",
            )
        return data, mime, name, path

    def make(
        self,
        key: str,
        data: bytes,
        mime: str,
        name: str,
        path: str,
        now: float,
        base: str,
        original: str | None = None,
    ) -> StoredFile:
        """A new file, not kept yet (`add` keeps it): its id, links and mark."""
        self._serial += 1
        digest = hashlib.sha256(data).hexdigest()
        file_id = (
            f"file_{hashlib.sha256(f'{self._serial}:{now}:{digest}'.encode()).hexdigest()[:24]}"
        )
        stored = StoredFile(
            file_id=file_id,
            key=key,
            file_name=name,
            original_name=original or name,
            upload_path=path,
            size=len(data),
            mime=mime,
            sha256=digest,
            uploaded=now,
            expires=now + self.ttl,
            file_url=f"{base}/uploads/{file_id}/{name}",
            download_url=f"{base}/api/v1/files/download/{file_id}",
            mark=mark_of(data, mime),
            data=data,
        )
        return stored

    def add(self, stored: StoredFile) -> None:
        """Keep a file (new, or replayed from a journal: its bytes in ``directory``),
        replacing one of the same name."""
        if stored.data is not None and self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / stored.file_id).write_bytes(stored.data)
            stored.data = None
        old = self._same_name(stored.key, stored.file_name, stored.upload_path)
        if old is not None:
            self.replaced += 1
            self._drop(old)
        self.files[stored.file_id] = stored
        self.uploads[key_label(stored.key)] += 1

    def delete(self, key: str, file_id: str, now: float) -> StoredFile:
        self.purge(now)
        stored = self.files.get(file_id)
        if stored is None or stored.key != key:
            raise FileError(404, f"File not found: {file_id}")
        self._drop(stored)
        self.deleted[key_label(key)] += 1
        return stored

    def forget(self, file_id: str) -> None:
        """A deletion replayed from a journal (the file may have expired since)."""
        stored = self.files.get(file_id)
        if stored is not None:
            self._drop(stored)
            self.deleted[key_label(stored.key)] += 1

    def remember(self, key: str, upload_id: str, stored: StoredFile) -> None:
        self.receipts[(key, upload_id)] = Receipt(upload_id, key, stored.view())

    def purge(self, now: float) -> None:
        """Expired files go (they no longer count against the quota)."""
        for stored in [f for f in self.files.values() if f.expires <= now]:
            self._drop(stored)
            self.expired += 1

    def _drop(self, stored: StoredFile) -> None:
        self.files.pop(stored.file_id, None)
        if self.directory is not None:
            (self.directory / stored.file_id).unlink(missing_ok=True)

    def _same_name(self, key: str, name: str, path: str) -> StoredFile | None:
        return next(
            (
                f
                for f in self.files.values()
                if f.key == key and f.file_name == name and f.upload_path == path
            ),
            None,
        )

    # --- reads ---------------------------------------------------------------------------------

    def used(self, key: str) -> int:
        return sum(1 for f in self.files.values() if f.key == key)

    def quota_view(self, key: str, now: float) -> dict[str, Any]:
        self.purge(now)
        used = self.used(key)
        return _ok(
            {
                "user_group": "default",
                "used_files": used,
                "max_files": self.quota,
                "remain_files": max(0, self.quota - used),
                "is_custom": False,
                "quota_reason": "",
            }
        )

    def list_view(self, key: str, now: float, page: int, page_size: int) -> dict[str, Any]:
        self.purge(now)
        mine = sorted((f for f in self.files.values() if f.key == key), key=lambda f: -f.uploaded)
        start = (page - 1) * page_size
        return _ok(
            {
                "files": [f.view() for f in mine[start : start + page_size]],
                "total": len(mine),
                "page": page,
                "page_size": page_size,
            }
        )

    def receipt_view(self, key: str, upload_id: str) -> dict[str, Any]:
        receipt = self.receipts.get((key, upload_id))
        if receipt is None:
            raise FileError(404, f"No upload receipt {upload_id}")
        return _ok(
            {
                "upload_id": upload_id,
                "state": "done",
                "result_verified": True,
                "file": receipt.file,
            }
        )

    def find(self, url: str, now: float) -> StoredFile | None:
        """The live file a link points to (its ``file_url`` or ``download_url``)."""
        self.purge(now)
        return next((f for f in self.files.values() if url in (f.file_url, f.download_url)), None)

    def content(self, file_id: str, now: float) -> tuple[StoredFile, bytes] | None:
        self.purge(now)
        stored = self.files.get(file_id)
        if stored is None:
            return None
        data = stored.data
        if data is None and self.directory is not None:
            path = self.directory / file_id
            data = path.read_bytes() if path.is_file() else None
        return None if data is None else (stored, data)

    def snapshot(self, now: float) -> dict[str, Any]:
        """The ground truth: files stored (per key), uploads, refusals, deletions."""
        self.purge(now)
        return {
            "stored": [
                {**f.record(), "key": key_label(f.key)}
                for f in sorted(self.files.values(), key=lambda f: f.uploaded)
            ],
            "uploads": dict(self.uploads),
            "uploads_total": sum(self.uploads.values()),
            "refused": {str(code): n for code, n in self.refused.items()},
            "deleted": dict(self.deleted),
            "replaced": self.replaced,
            "expired": self.expired,
            "quota": self.quota,
        }


def _ok(data: dict[str, Any], msg: str = "success") -> dict[str, Any]:
    """A successful answer of the file service."""
    return {"success": True, "code": 200, "msg": msg, "data": data}


def _text(form: Mapping[str, tuple[str | None, bytes]], *names: str) -> str | None:
    for name in names:
        if name in form:
            text = form[name][1].decode("utf-8", "replace").strip()
            if text:
                return text
    return None
