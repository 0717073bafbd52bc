"""EvoLink's file service (docs/evolink.md §21): input files uploaded for later creates.

The service lives on its own origin (``https://files-api.evolink.ai``), with the same Bearer
key. An upload is ``POST /api/v1/files/upload/stream``, multipart ``file``, ``upload_path`` and
``file_name``, answered ``{"success", "code", "msg", "data": {file_id, file_url,
upload_time, expires_at, ...}}``; ``file_url`` goes into the create. Refusals carry a numeric
``code``: 40001 too large, 40002 wrong type, 40003 the account's file quota is used up; they are
read by that code first, then by the HTTP status, as EvoLink's own client does.

An upload sends ``X-Evo-Upload-Id``; when its answer is lost after the request went out,
``GET /api/v1/files/upload-receipts/{id}`` says whether it was stored (and the file), so a lost
answer costs no second file of the quota.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import anyio.to_thread
import httpx

from .base import AccessLost, FileQuota, Transient, Uploaded, UploadOutcome, UploadRefused
from .evolink_wire import excerpt, parse_retry_after, redact

FILES_URL: Final = "https://files-api.evolink.ai"
UPLOAD_PATH: Final = "/api/v1/files/upload/stream"
UPLOAD_FOLDER: Final = "runner"  # the upload_path runner's files go under
LIFETIME: Final = 72 * 3600.0  # docs/evolink.md §21, when the answer does not say
UPLOAD_TIMEOUT: Final = httpx.Timeout(connect=10.0, read=120.0, write=300.0, pool=30.0)
FILES_TIMEOUT: Final = httpx.Timeout(connect=10.0, read=30.0, write=10.0, pool=30.0)
_REFUSALS: Final = {"40001": "too_large", "40002": "wrong_type", "40003": "quota"}


class Files:
    """The file service calls over an injected client (its absolute URLs bypass the API's
    base URL). ``headers`` carry the key and the User-Agent."""

    def __init__(
        self, http: httpx.AsyncClient, base_url: str, headers: dict[str, str], secret: str
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self._headers = headers
        self._secret = secret

    def __repr__(self) -> str:
        return f"Files(base_url={self.base_url!r})"

    async def upload(self, path: Path, name: str, mime: str, upload_id: str) -> UploadOutcome:
        headers = {**self._headers, "X-Evo-Upload-Id": upload_id}
        data = {"upload_path": UPLOAD_FOLDER, "file_name": name}
        try:  # at most 50 MB (docs/evolink.md §3.1), read off the event loop
            content = await anyio.to_thread.run_sync(path.read_bytes)
        except OSError as exc:  # the file itself: not the service's fault
            raise Transient(f"{path} could not be read ({exc.strerror or exc})") from None
        try:
            response = await self.http.post(
                self.base_url + UPLOAD_PATH,
                files={"file": (name, content, mime)},
                data=data,
                headers=headers,
                timeout=UPLOAD_TIMEOUT,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise Transient(f"could not reach the file service ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:  # sent, answer lost: did it arrive?
            found = await self._receipt(upload_id)
            if found is not None:
                return found
            raise Transient(f"the upload's answer was lost ({type(exc).__name__})") from None
        return self._read_upload(response)

    def _read_upload(self, response: httpx.Response) -> UploadOutcome:
        body = _json(response)
        code = _code(body)
        status = response.status_code
        said = self._said(response, body)
        if code in _REFUSALS:
            kind = _REFUSALS[code]
            return UploadRefused(kind, said, status, code)  # type: ignore[arg-type]
        self._check(response, said, refusable=True)
        if 400 <= status < 500:
            return UploadRefused("refused", said, status, code)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or body.get("success") is False:
            raise Transient(f"the upload answer has no file: {excerpt(response)}")
        uploaded = _uploaded(data)
        if uploaded is None:
            raise Transient(f"the upload answer has no file_id or file_url: {excerpt(response)}")
        return uploaded

    async def _receipt(self, upload_id: str) -> Uploaded | None:
        """The file an upload whose answer was lost stored, if its receipt says so."""
        try:
            response = await self.http.get(
                f"{self.base_url}/api/v1/files/upload-receipts/{quote(upload_id, safe='')}",
                headers=self._headers,
                timeout=FILES_TIMEOUT,
            )
        except httpx.HTTPError:
            return None
        body = _json(response)
        data = body.get("data") if isinstance(body, dict) else None
        if response.status_code != 200 or not isinstance(data, dict):
            return None
        if data.get("state") != "done" or not isinstance(data.get("file"), dict):
            return None
        return _uploaded(data["file"])

    async def delete(self, file_id: str) -> None:
        response = await self._send("DELETE", f"/api/v1/files/{quote(file_id, safe='')}")
        if response.status_code == 404:
            return  # already gone (deleted, or expired)
        self._check(response, self._said(response, _json(response)))

    async def quota(self) -> FileQuota | None:
        response = await self._send("GET", "/api/v1/files/quota")
        if response.status_code in (404, 405):
            return None
        body = _json(response)
        self._check(response, self._said(response, body))
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise Transient(f"the file quota answer has no data: {excerpt(response)}")
        used, limit = _int(data.get("used_files")), _int(data.get("max_files"))
        remaining = _int(data.get("remain_files"))
        if remaining is None and used is not None and limit is not None:
            remaining = max(0, limit - used)
        return FileQuota(used, limit, remaining)

    async def _send(self, method: str, path: str) -> httpx.Response:
        try:
            return await self.http.request(
                method, self.base_url + path, headers=self._headers, timeout=FILES_TIMEOUT
            )
        except httpx.HTTPError as exc:
            raise Transient(f"{type(exc).__name__} on the file service") from None

    def _check(self, response: httpx.Response, said: str, *, refusable: bool = False) -> None:
        """Raise for a failed call: 401/403 `AccessLost`; 429, 5xx and any other status
        (but 2xx, and 4xx when ``refusable``: the caller reads those) `Transient`."""
        status = response.status_code
        readable = 200 <= status < 300 or (refusable and 400 <= status < 500 and status != 429)
        if readable and status not in (401, 403):
            return
        text = f"the file service answered HTTP {status}: {said}"
        if status in (401, 403):
            raise AccessLost(text)
        raise Transient(text, parse_retry_after(response) if status == 429 else None)

    def _said(self, response: httpx.Response, body: Any) -> str:
        message = (body.get("msg") or body.get("message")) if isinstance(body, dict) else None
        text = str(message) if message else excerpt(response)
        return redact(text, self._secret)


def _uploaded(data: dict[str, Any]) -> Uploaded | None:
    file_id, url = data.get("file_id"), data.get("file_url")
    if not isinstance(file_id, str) or not file_id or not isinstance(url, str) or not url:
        return None
    return Uploaded(file_id, url, lifetime(data.get("upload_time"), data.get("expires_at")))


def lifetime(uploaded: object, expires: object) -> float:
    """Provider seconds between an upload's time and its expiry (both ISO 8601 with an
    offset, or unix seconds); 72 h when either is missing or unreadable."""
    start, end = _when(uploaded), _when(expires)
    if start is None or end is None or end <= start:
        return LIFETIME
    return end - start


def _when(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        return None


def _code(body: Any) -> str | None:
    """The numeric ``code`` of a file service answer as text (``"40003"``), or None."""
    code = body.get("code") if isinstance(body, dict) else None
    if isinstance(code, bool) or code is None:
        return None
    return str(code)


def _int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None
