"""Uploads: the local files a create names, on the provider's file service when it is sent.

A job's body names a local file as ``sha256:<hex>`` (`runner.localfiles`). Just before its
create is committed, `Uploads.body_for` turns each into a URL: the workspace's upload of that
content when it still lives `UPLOAD_MARGIN` past now (the ledger's ``uploads``, whatever run
made it), else a new upload (docs/evolink.md §21). One upload per file at a time: jobs that
need the same file wait for the first. The body with the URLs is what the attempt records and
sends; a replay resends it unchanged (`runner.run.ledger.Ledger.begin_attempt`).

What can happen instead of a body (each a value, never raised)::

    Wait      the service could not be reached, or the answer was lost: try again later
    Reject    the file cannot be sent (gone, changed, too big, a type the service refuses):
              the job is rejected, naming the file and what to do
    Blocked   the account's file quota is full and none of runner's own uploads may go:
              creates that need a new upload stop (others go on); `runner resume` continues
    Stop      the key was refused (401/403): no creates at all

The quota (100 files, docs/evolink.md §21) is read before each upload; when it is full, or an
upload is refused for it (40003), runner deletes the oldest of its own live uploads that no
unfinished job needs (`runner.run.ledger.Store.upload_needed`) and tries once more.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from ...localfiles import LocalFile, recheck, refs_in, with_urls
from ...providers.base import AccessLost, Transient, Uploaded, UploadRefused
from .. import ledger as L

if TYPE_CHECKING:
    from .core import Dispatcher

# provider seconds an upload must still live when a create cites it: the task fetches its
# inputs when it starts, which may be a while after the create in a busy queue
UPLOAD_MARGIN = 3600.0


@dataclass(frozen=True, slots=True)
class Wait:
    reason: str


@dataclass(frozen=True, slots=True)
class Reject:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Blocked:
    message: str


@dataclass(frozen=True, slots=True)
class Stop:
    kind: str
    message: str


Problem = Wait | Reject | Blocked | Stop


class Uploads:
    def __init__(self, d: Dispatcher) -> None:
        self.d = d
        self._locks: dict[str, anyio.Lock] = {}
        self._rejected: dict[str, Reject] = {}  # file -> why its jobs cannot be sent
        self.blocked: str | None = None  # why creates needing a new upload stopped
        self.uploaded = 0  # uploads made by this run

    def __repr__(self) -> str:
        return f"<Uploads uploaded={self.uploaded} blocked={self.blocked is not None}>"

    async def body_for(self, job: L.JobRecord) -> dict[str, Any] | Problem:
        """The body to send for ``job``, its local files as URLs (uploading what it must)."""
        urls: dict[str, str] = {}
        for sha in refs_in(job.body):
            lock = self._locks.setdefault(sha, anyio.Lock())
            async with lock:
                got = await self._url(sha)
            if not isinstance(got, str):
                return got
            urls[sha] = got
        return with_urls(job.body, urls)

    # ------------------------------------------------------------------ one file

    def _until(self) -> float:
        """The wall time an upload must outlive to be cited now."""
        clock = self.d.clock
        return clock.wall() + UPLOAD_MARGIN / clock.scale

    async def _url(self, sha: str) -> str | Problem:
        d = self.d
        service = d.provider.upload_service()
        live = d.ledger.live_upload(sha, service, self._until())
        if live is not None:
            return live.url
        if sha in self._rejected:
            return self._rejected[sha]
        if self.blocked is not None:
            return Blocked(self.blocked)
        local = d.ledger.local_file(sha)
        if local is None:
            return self._reject(
                sha,
                "local_file",
                f"the file with content sha256:{sha[:12]}… is not known in this workspace; "
                "run the experiment again",
            )
        changed = await anyio.to_thread.run_sync(recheck, local)
        if changed is not None:
            return self._reject(sha, "local_file", changed)
        try:
            return await self._upload(local, service, retry=True)
        except Transient as exc:
            return Wait(f"uploading {local.path.name}: {exc}")
        except AccessLost as exc:
            return Stop(
                "auth",
                f"the file service refused the API key ({exc}): check {d.provider.key_env}, "
                f"then `runner resume {d.run_id}`",
            )

    async def _upload(self, local: LocalFile, service: str, *, retry: bool) -> str | Problem:
        d = self.d
        try:
            quota = await d.provider.upload_quota()
        except Transient:
            quota = None  # unknown: the upload's own answer says whether the quota is full
        if quota is not None and quota.remaining == 0 and not await self._free(local.sha256):
            return self._block(quota.used, quota.limit)
        upload_id = f"runner-{local.sha256[:24]}-{int(time.time() * 1000)}"
        outcome = await d.provider.upload(local.path, local.upload_name, local.mime, upload_id)
        if isinstance(outcome, Uploaded):
            now = d.clock.wall()
            record = d.ledger.uploaded(
                d.run_id,
                local.sha256,
                service,
                outcome.file_id,
                outcome.url,
                local.upload_name,
                now,
                now + outcome.lifetime / d.clock.scale,
            )
            self.uploaded += 1
            d.emit("uploaded", detail=f"{local.path.name} -> {outcome.file_id}")
            return record.url
        if outcome.kind == "quota":
            if retry and await self._free(local.sha256):
                return await self._upload(local, service, retry=False)
            return self._block(None, None, outcome)
        return self._reject(local.sha256, f"upload_{outcome.kind}", _refusal(local, outcome))

    async def _free(self, keep: str) -> bool:
        """Delete the oldest of runner's own live uploads (to this service) that no unfinished
        job needs; whether one went."""
        d = self.d
        service = d.provider.upload_service()
        for upload in d.ledger.uploads(service, live_at=d.clock.wall()):
            if upload.sha256 == keep or d.ledger.upload_needed(upload.sha256, d.run_id):
                continue
            try:
                await d.provider.delete_upload(upload.file_id)
            except (Transient, AccessLost):
                return False
            d.ledger.upload_deleted(d.run_id, upload, "the file quota was full")
            d.emit("upload_deleted", detail=f"{upload.name} ({upload.file_id}): quota full")
            return True
        return False

    # ------------------------------------------------------------------ outcomes

    def _reject(self, sha: str, code: str, message: str) -> Reject:
        self._rejected[sha] = Reject(code, message)
        return self._rejected[sha]

    def _block(
        self, used: int | None, limit: int | None, refusal: UploadRefused | None = None
    ) -> Blocked:
        full = f" ({used} of {limit} files)" if used is not None and limit is not None else ""
        said = f" ({refusal.message})" if refusal is not None else ""
        self.blocked = (
            f"the account's file storage is full{full}{said} and each of runner's own uploads "
            "is still needed by an unfinished job: jobs that need a new upload were not sent. "
            "Delete files you no longer need in the EvoLink dashboard (or wait: uploads expire "
            f"72 h after they were made), then `runner resume {self.d.run_id}`."
        )
        return Blocked(self.blocked)


def _refusal(local: LocalFile, refused: UploadRefused) -> str:
    """Why the service refused a file, and what to do, in words."""
    name = local.path
    code = f" ({refused.code})" if refused.code else f" (HTTP {refused.http_status})"
    if refused.kind == "too_large":
        what = f"{name} is too large for the provider's file service{code}: make it smaller"
    elif refused.kind == "wrong_type":
        what = (
            f"the provider's file service does not take {name} ({local.mime}){code}: put it "
            f"on a public web address and give that https:// address in {local.kind} instead"
        )
    else:
        what = f"the provider's file service refused {name}{code}: {refused.message}"
    return what
