"""Fetches: download a finished task's file, verify it, decode it in a worker process.

A job ends here as done, expired (the link ran out) or result_error. A file downloaded and
renamed before a crash is verified, not fetched (and paid) again. A file host that refuses
the download (403 "1010", or a web page) gets a fresh link from a free re-read of the task,
twice at most (docs/evolink.md §21).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_process
import httpx
import stamina

from ...providers.base import AccessLost, TaskView, Transient
from .. import ledger as L
from ..failpoints import failpoint
from ..media import Downloaded, DownloadError, download
from .polls import EXPIRY_MARGIN, RESULT_TTL

if TYPE_CHECKING:
    from .core import Dispatcher

log = logging.getLogger(__name__)

REFUSED_REREADS = 2  # fresh links tried after the file host refused a download


class Fetches:
    def __init__(self, d: Dispatcher, files: httpx.AsyncClient, media_dir: Path) -> None:
        self.d = d
        self.files = files  # its own client: a slow file host never holds up the API
        self.media_dir = media_dir
        self.slots = anyio.Semaphore(d.s.downloads)
        self.media_slots = anyio.CapacityLimiter(1)  # one decoding process: the loop keeps a core
        # completed tasks waiting for a download slot, as job ids: a backlog of 10^4 finished
        # tasks (a file host slower than the provider) costs an int each, not a task and a row
        self.waiting: deque[int] = deque()
        self.workers = 0

    def enqueue(self, job_id: int) -> None:
        """Download this completed job's file when a slot is free (in the order queued)."""
        self.waiting.append(job_id)
        if self.workers < self.d.s.downloads:
            self.workers += 1
            self.d.start_soon(self._work)

    async def _work(self) -> None:
        try:
            while self.waiting:
                await self.fetch(self.d.ledger.job(self.waiting.popleft()))
        finally:
            self.workers -= 1

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
            durable=False,  # the file is at its final path: a resume finds and verifies it
            file_path=rel,
            file_bytes=got.size,
            file_sha256=got.sha256,
            media_json=json.dumps(media),
        )
        d.emit("done", job)

    async def _download(self, job: L.JobRecord, dest: Path) -> Downloaded | None:
        """The file; None after recording why the job ended expired or result_error.

        A file host that refuses the download (a 403 "1010" block, or a web page instead of
        the video) gets a fresh link: the task is read again (free) and the download tried
        again, at most `REFUSED_REREADS` times (docs/evolink.md §21). A new paid task is never
        made here."""
        url = job.result_url or ""
        for rereads in range(REFUSED_REREADS + 1):
            try:
                return await self._download_link(job, url, dest)
            except DownloadError as exc:
                if exc.code != "refused":
                    self._ended(job, exc)
                    return None
                if rereads == REFUSED_REREADS:
                    self.d.finish(
                        job,
                        L.RESULT_ERROR,
                        "file_host_refused",
                        f"{exc.message}, also with a fresh link; the video was made and paid "
                        "for: `runner retry` reads the task again and downloads it for free "
                        "(never a new paid task)",
                    )
                    return None
                url = await self._fresh_link(job, url)
        raise AssertionError("unreachable: the loop returns")

    async def _download_link(self, job: L.JobRecord, url: str, dest: Path) -> Downloaded:
        """``url`` downloaded, retried (stamina) on what a retry may fix until it expires."""
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
                    url,
                    dest,
                    trusted_origins=d.s.trusted_origins,
                    max_bytes=d.s.max_video_bytes,
                )
        raise AssertionError("unreachable: stamina re-raises the last error")

    def _ended(self, job: L.JobRecord, exc: DownloadError) -> None:
        d = self.d
        if exc.code == "disk":  # each new video would be paid for and could not be saved
            d.finish(job, L.RESULT_ERROR, exc.code, exc.message)
            d.stop_creates("disk", f"No new videos were started after this: {exc.message}.")
        elif exc.code == "expired" or d.clock.wall() >= (job.result_expires_at or 0.0):
            d.finish(job, L.EXPIRED, "result_expired", exc.message)
        else:
            d.finish(job, L.RESULT_ERROR, exc.code, exc.message)

    async def _fresh_link(self, job: L.JobRecord, url: str) -> str:
        """The task's result link read again (through the poll rate), recorded; ``url`` when
        the read fails or gives no link."""
        d = self.d
        assert job.task_id is not None  # a completed job has its task
        await d.polls.rate.acquire()
        try:
            view = (await d.provider.read_tasks([job.task_id])).get(job.task_id)
        except (Transient, AccessLost) as exc:
            log.info("re-reading task %s for a fresh link failed: %s", job.task_id, exc)
            return url
        if not isinstance(view, TaskView) or not view.result_url:
            return url
        expires = job.result_expires_at
        if expires is None:
            expires = d.clock.wall_after(RESULT_TTL * (1 - EXPIRY_MARGIN))
        d.ledger.completed(job.job_id, view.result_url, expires, d.run_id, view.credits_used)
        d.emit("retrying", job, "the file host refused the download; trying a fresh link")
        return view.result_url


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
