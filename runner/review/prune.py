"""``runner prune``: free the disk a run's videos take, keeping what the report needs to open.

The posters and frame strips stay; each pruned job's media record in the ledger keeps what
became of its video (``pruned``: removed, or archived where), so the report shows the poster
with that note instead of a broken player, and ``status`` counts them. The ledger is written
before a file is touched: a prune cut short leaves videos marked pruned but still on disk,
and the next prune finishes them.

A pruned video is not reused by a later run of the same job (reuse takes only a video the
workspace holds, `Store.reusable_keys`): that run renders it again, and pays for it. Moving an
archived video back to where it was makes it reusable again.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..run import ledger as L
from ..run.ledger import Ledger, Store
from .promote import read_winners

REMOVED = "video removed by prune"


@dataclass(frozen=True, slots=True)
class Video:
    job_id: int
    job_key: str
    file_path: str  # as the ledger keeps it: relative to the workspace
    path: Path
    size: int
    shared: bool  # also linked from another folder (a reuse, a promotion's report)


@dataclass(frozen=True, slots=True)
class PrunePlan:
    run_id: str
    videos: tuple[Video, ...]
    kept: int  # videos kept because the winners file names their jobs

    @property
    def bytes(self) -> int:
        return sum(v.size for v in self.videos)

    @property
    def shared(self) -> int:
        return sum(1 for v in self.videos if v.shared)

    def text(self, archive: Path | None) -> str:
        what = f"moved into {archive}" if archive else "removed"
        kept = f"; {self.kept} winner video(s) kept" if self.kept else ""
        shared = (
            f" {self.shared} of them are also linked from another run's folder (reused there, "
            "or shown in a promotion's report): their space is freed when those copies go too."
            if self.shared and archive is None
            else ""
        )
        return (
            f"Run {self.run_id}: {len(self.videos)} video(s), {self.bytes / 1e6:,.1f} MB, will "
            f"be {what}{kept}. Posters and frame strips stay, so the report still opens." + shared
        )


def winner_keys(store: Store, run_id: str, winners: Path) -> set[str]:
    """The job keys a winners.csv of the run names (as `runner promote --winners` reads it;
    a unique prefix of a key is enough)."""
    return {store.find_job(run_id, key).job_key for _, key in read_winners(winners, run_id)}


def plan_prune(store: Store, run_id: str, keep: Iterable[str] = ()) -> PrunePlan:
    """The run's videos on disk, but those of ``keep``."""
    kept_keys = set(keep)
    videos, kept = [], 0
    for job in store.jobs(run_id, [L.DONE]):
        if not job.file_path:
            continue
        path = store.workspace / job.file_path
        if not path.is_file():
            continue
        if job.job_key in kept_keys:
            kept += 1
            continue
        stat = path.stat()
        videos.append(
            Video(job.job_id, job.job_key, job.file_path, path, stat.st_size, stat.st_nlink > 1)
        )
    return PrunePlan(run_id, tuple(videos), kept)


def archive_path(archive: Path, video: Video) -> Path:
    return archive / video.file_path


def apply_prune(ledger: Ledger, plan: PrunePlan, archive: Path | None = None) -> int:
    """Record, then remove (or move into ``archive``, keeping the paths relative to the
    workspace) every video of the plan. Returns how many went."""
    if archive is not None:
        archive = archive.resolve()
        for video in plan.videos:
            if archive_path(archive, video) == video.path.resolve():
                raise InputError(
                    f"--archive {archive} is the workspace itself: give another folder "
                    "(e.g. on an external disk)"
                )
    notes = {
        v.job_id: REMOVED
        if archive is None
        else f"{REMOVED} (archived at {archive_path(archive, v)})"
        for v in plan.videos
    }
    ledger.mark_pruned(plan.run_id, notes)
    for video in plan.videos:
        if archive is None:
            video.path.unlink(missing_ok=True)
        else:
            dest = archive_path(archive, video)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(video.path, dest)
    return len(plan.videos)
