"""Fetches: download a finished task's file, verify it, decode it in a worker process.

A job ends here as done, expired (the link ran out) or result_error. A file downloaded and
renamed before a crash is verified, not fetched (and paid) again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_process
import httpx
import stamina

from .. import ledger as L
from ..failpoints import failpoint
from ..media import Downloaded, DownloadError, download

if TYPE_CHECKING:
    from .core import Dispatcher


class Fetches:
    def __init__(self, d: Dispatcher, files: httpx.AsyncClient, media_dir: Path) -> None:
        self.d = d
        self.files = files  # its own client: a slow file host never holds up the API
        self.media_dir = media_dir
        self.slots = anyio.Semaphore(d.s.downloads)
        self.media_slots = anyio.CapacityLimiter(1)  # one decoding process: the loop keeps a core

    async def fetch(self, job: L.JobRecord) -> None:
        """Download, verify, probe; the job ends done, expired or result_error."""
        await self.slots.acquire()
        try:
            await self._fetch_locked(job)
        finally:
            self.slots.release()
            self.d.wake()

    async def _fetch_locked(self, job: L.JobRecord) -> None:
        d = self.d
        dest = self.media_dir / f"{job.job_key}.mp4"
        self.media_dir.mkdir(parents=True, exist_ok=True)
        if dest.is_file() and await anyio.to_process.run_sync(_complete_video, str(dest)):
            # downloaded and renamed before a crash: verified, not fetched (and paid) again
            got: Downloaded | None = Downloaded(dest, dest.stat().st_size, _sha256(dest))
        else:
            got = await self._download(job, dest)
        if got is None:
            return
        failpoint("after_rename_before_done_commit")
        body = dict(job.body)
        try:  # decoding holds the GIL: in a worker process, the event loop stays free
            media = await anyio.to_process.run_sync(
                _media_info,
                str(dest),
                body["duration"],
                body["aspect_ratio"],
                body["generate_audio"],
                limiter=self.media_slots,
            )
        except DownloadError as exc:
            d.finish(job, L.RESULT_ERROR, exc.code, exc.message)
            return
        rel = dest.relative_to(d.ledger.workspace).as_posix()
        d.ledger.finish(
            d.run_id,
            job.job_id,
            L.DONE,
            None,
            None,
            file_path=rel,
            file_bytes=got.size,
            file_sha256=got.sha256,
            media_json=json.dumps(media),
        )
        d.emit("done", job)

    async def _download(self, job: L.JobRecord, dest: Path) -> Downloaded | None:
        """The file, retried (stamina) on what a retry may fix until the link expires;
        None after recording why the job ended expired or result_error."""
        d = self.d
        clock = d.clock
        expires = job.result_expires_at or 0.0
        refused = 0

        def retry(exc: Exception) -> bool:
            nonlocal refused
            if not isinstance(exc, DownloadError):
                return False
            if exc.code == "expired":  # 403/404/410 before the link should expire: a few tries
                refused += 1
                return refused < 3 and clock.wall() < expires
            return exc.retryable

        try:
            async for attempt in stamina.retry_context(  # stamina sleeps in wall seconds
                on=retry,
                attempts=8,
                timeout=max(1.0, expires - clock.wall()),
                wait_initial=clock.to_wall(2.0),
                wait_max=clock.to_wall(60.0),
                wait_jitter=clock.to_wall(2.0),
            ):
                with attempt:
                    failpoint("before_download")
                    return await download(
                        self.files,
                        job.result_url or "",
                        dest,
                        trusted_origin=d.s.trusted_origin,
                        max_bytes=d.s.max_video_bytes,
                    )
        except DownloadError as exc:
            if exc.code == "expired" or clock.wall() >= expires:
                d.finish(job, L.EXPIRED, "result_expired", exc.message)
            else:
                d.finish(job, L.RESULT_ERROR, exc.code, exc.message)
        return None


def _media_info(
    path: str, duration: int, aspect_ratio: str, generate_audio: bool
) -> dict[str, Any]:
    """`runner.run.probe.media_info`, imported in the worker process only (PyAV, Pillow and
    numpy need not weigh on the runner's own memory)."""
    from ..probe import media_info

    return media_info(path, duration, aspect_ratio, generate_audio)


def _complete_video(path: str) -> bool:
    from ..probe import probe

    try:
        probe(Path(path))
    except DownloadError:
        return False
    return True


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
