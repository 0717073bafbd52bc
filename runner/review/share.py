"""``runner export RUN --share``: a small folder (or zip) of a run's review for a client.

The folder holds the report page (``index.html``), every job's poster and frame strip, and
only the videos of the jobs a winners.csv names, in ``media/`` as in the run's own folder:
nothing else of the run (no ledger, no results tables, no logs, no settings). Each video
left out is marked the way `runner prune` marks a removed one (the ``pruned`` note of the
page's media entry, runner/review/report_data.py), so the card shows its poster with
"video not included in this share" instead of a player. The page opens from ``file://``
offline, like the report itself (docs/report-page.md).

A ``--out`` ending in ``.zip`` gets the same folder zipped (one top folder named after the
zip), written beside it under a temporary name and renamed when complete.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..run.ledger import Store
from .promote import starred_keys
from .report import build_share
from .report_data import safe_name
from .tables import replaced

NOT_SHARED = "video not included in this share"


@dataclass(frozen=True, slots=True)
class Shared:
    """What a share wrote."""

    path: Path
    videos: int  # starred videos included
    starred: int  # jobs the winners file names
    missing: int  # starred jobs without a video to include (failed, not finished, pruned)
    posters: int
    bytes: int

    def text(self) -> str:
        size = f"{self.bytes / 1e6:,.1f} MB"
        lines = [
            f"Wrote {self.path} ({size}): the report (index.html), {self.posters} poster(s) "
            f"and frame strips, {self.videos} starred video(s)."
        ]
        if self.missing:
            lines.append(
                f"{self.missing} of the {self.starred} starred job(s) have no video to include "
                "(failed, not finished, or pruned): their cards show the poster or the error."
            )
        lines.append("Open index.html in a browser to check it; it works offline.")
        return "\n".join(lines)


def check_out(out: Path) -> None:
    """Refuse an ``--out`` that would overwrite or mix with something."""
    if out.suffix.lower() == ".zip":
        if out.exists():
            raise InputError(
                f"--out {out} already exists: give a new .zip name, or delete the old one"
            )
        return
    if out.is_file():
        raise InputError(f"--out {out} is a file: give a folder (or a name ending in .zip)")
    if out.is_dir() and any(out.iterdir()):
        raise InputError(
            f"--out {out} is a folder that is not empty: give a new or empty folder "
            "(a share never mixes with other files)"
        )


def write_share(
    store: Store,
    workspace: Path,
    run_id: str,
    winners: Sequence[Path],
    out: Path,
    templates: Path | None = None,
    min_votes: int = 1,
) -> Shared:
    """Write the share of ``run_id`` with the videos of the jobs the ``winners`` files star
    (by at least ``min_votes`` reviewers)."""
    check_out(out)
    keys = set(starred_keys(store, run_id, winners, min_votes))
    out.parent.mkdir(parents=True, exist_ok=True)
    # built beside ``out`` and renamed when complete: a share cut short leaves nothing
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".share-") as tmp:
        folder = Path(tmp) / out.stem
        shared = _write_folder(store, workspace, run_id, keys, folder, templates)
        if out.suffix.lower() == ".zip":
            with replaced(out) as part:
                _zip(folder, part)
            return replace(shared, path=out, bytes=out.stat().st_size)
        if out.is_dir():
            out.rmdir()  # empty (check_out)
        folder.rename(out)
        return replace(shared, path=out)


def _write_folder(
    store: Store,
    workspace: Path,
    run_id: str,
    keys: set[str],
    folder: Path,
    templates: Path | None,
) -> Shared:
    media = folder / "media"
    media.mkdir(parents=True, exist_ok=True)
    copies: dict[str, Path] = {}  # name in media/ -> source file
    videos: set[str] = set()
    posters: set[str] = set()
    missing = 0

    def shown(row: dict[str, Any]) -> dict[str, Any]:
        nonlocal missing
        row = {**row, "credits": None, "estimated_credits": None}  # not the client's business
        starred = row["job_key"] in keys
        file = row.get("file")
        video = safe_name(file)
        if video is None or not file:
            missing += starred
            return row
        source = (workspace / str(file)).parent
        for kind in ("poster", "strip"):
            name = safe_name(row.get(kind))
            if name and (source / name).is_file():
                copies[name] = source / name
                if kind == "poster":
                    posters.add(name)
        if row.get("video_pruned") or not (source / video).is_file():
            missing += starred  # the page shows prune's note, or the state
            return row
        if starred:
            copies[video] = source / video
            videos.add(video)
            return row
        return {**row, "video_pruned": NOT_SHARED}

    build_share(store, workspace, run_id, folder, shown, templates)
    for name, source in copies.items():
        shutil.copyfile(source, media / name)
    size = sum(p.stat().st_size for p in _files(folder))
    return Shared(folder, len(videos), len(keys), missing, len(posters), size)


def _files(folder: Path) -> Iterator[Path]:
    return (p for p in sorted(folder.rglob("*")) if p.is_file())


def _zip(folder: Path, path: Path) -> None:
    """``folder`` zipped under its own name; videos and JPEGs stored (already compressed)."""
    with zipfile.ZipFile(path, "w") as archive:
        for file in _files(folder):
            name = f"{folder.name}/{file.relative_to(folder).as_posix()}"
            packed = file.suffix.lower() in (".html", ".css", ".js", ".json", ".txt")
            archive.write(file, name, zipfile.ZIP_DEFLATED if packed else zipfile.ZIP_STORED)
