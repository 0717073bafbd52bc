"""``runner export RUN --for-ads``: a folder of videos ready to upload to an ad platform.

Each chosen video (every done job's, or only those winners files star) is copied under an
ad-ready name that carries its job key, so the key survives the round trip through Ads
Manager and `runner metrics import` ties the platform's report rows back to the video
(`model.key_in_name` reads it back; docs/ad-platforms.md)::

    headphones_cinematic_9x16__950efe193cc996b9-fast-1.mp4
    '------- readable -------''------- job key -------'

The readable part is the variant's name, then the values of the run's varied dimensions in
the sheet's order, in lowercase ASCII letters, digits and ``_`` (accents dropped, ``16:9``
written ``16x9``, anything else a single ``_``), each clipped at a word to :data:`WORD_MAX`
characters (a long name leaves room for the values) and the whole to :data:`WORDS_MAX`. A
dimension that only follows the name (e.g. each row's product) is left out: the name already
says it; parameters (aspect ratio, duration...) are always kept. A promoted run's names are
made as its root sweep's, so a standard render reads like its fast parent. The whole name
stays under 100 characters (Google Ads caps asset names at 128). ``__`` never occurs in the
readable part, so it always separates the two; a job key names the variant, tier and sample,
so fast and standard renders and repeats get distinct names (a variant rendered again with
`--no-reuse`, or in another workspace, keeps its key: see README §9).

``manifest.csv`` lists the files (ad_name, file, job_key, variant_key, tier, one column per
varied dimension, prompt, run_id) for the media buyer: UTF-8 with BOM, every cell through
`csvsafe.to_excel`. Videos are copied, not linked: the folder is uploaded from anywhere and
must not depend on the workspace; each copy is checked against the ledger's sha256. The folder
is built beside ``--out`` and renamed when complete, so an export cut short leaves nothing.
"""

from __future__ import annotations

import csv
import hashlib
import re
import tempfile
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import params
from ..errors import InputError
from ..review.csvsafe import to_excel
from ..review.promote import starred_keys
from ..run.ledger import Store
from ..run.records import (
    COMPLETED,
    DONE,
    PENDING,
    RUNNING,
    SUBMITTED,
    SUBMITTING,
    JobRecord,
    RunRecord,
)

WORDS_MAX = 60  # readable part; + "__" + a job key (at most 32) stays under 100 with ".mp4"
WORD_MAX = 40  # one word group (a long name leaves room for the values)
FALLBACK = "video"  # when the name and values hold no ASCII letter or digit (emoji, CJK...)
MANIFEST = "manifest.csv"
FIXED = ("ad_name", "file", "job_key", "variant_key", "tier")
LAST = ("prompt", "run_id")
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Skipped:
    """A chosen job with no video to export, and why."""

    job_key: str
    name: str
    why: str


@dataclass(frozen=True, slots=True)
class AdsExport:
    """What an export for ads wrote."""

    path: Path
    videos: int
    bytes: int  # of the videos copied
    chosen: int  # jobs chosen (all of the run's, or those the winners files star)
    skipped: tuple[Skipped, ...]

    def text(self) -> str:
        lines = [
            f"Wrote {self.videos} video(s) for ads to {self.path} ({self.bytes / 1e6:,.1f} MB, "
            f"copied: the folder does not need the workspace) and {MANIFEST}.",
            "Upload the videos and keep each file name as the ad name (on Google Ads, as the "
            "YouTube video's title): the key at its end ties the platform's results back to "
            "the video.",
        ]
        if self.skipped:
            lines.append(f"Skipped {len(self.skipped)} of {self.chosen} job(s) without a video:")
            shown = self.skipped[:20]
            lines += [f"  {' '.join(filter(None, (s.job_key, s.name)))}: {s.why}" for s in shown]
            if len(self.skipped) > len(shown):
                lines.append(f"  and {len(self.skipped) - len(shown)} more")
        return "\n".join(lines)


def slug(text: object) -> str:
    """``text`` as lowercase ASCII words joined by ``_`` (``16:9`` -> ``16x9``)."""
    text = re.sub(r"(?<=\d):(?=\d)", "x", unicodedata.normalize("NFKD", str(text)))
    plain = text.encode("ascii", "ignore").decode("ascii").lower()
    return re.sub(r"[^a-z0-9]+", "_", plain).strip("_")


def clip(words: str, limit: int = WORDS_MAX) -> str:
    """``words`` cut to ``limit`` characters, at a ``_`` when one falls in the second half."""
    if len(words) <= limit:
        return words
    cut = words[:limit]
    if "_" in cut[limit // 2 :]:
        cut = cut[: cut.rindex("_")]
    return cut.strip("_")


def ad_name(words: Sequence[str], job_key: str) -> str:
    """The ad name (file name without extension) of a video: readable words, ``__``, key."""
    parts = (clip(slug(w), WORD_MAX) for w in words)
    readable = clip("_".join(p for p in parts if p)) or FALLBACK
    return f"{readable}__{job_key}"


def name_words(
    dimensions: Sequence[str], basis: Sequence[JobRecord], jobs: Sequence[JobRecord]
) -> dict[str, list[str]]:
    """Each job's readable words: its name, then its values of ``dimensions`` (those that
    only follow the name over the ``basis`` jobs are left out, parameters never)."""
    dims = [d for d in dimensions if d != "name"]
    follows: set[str] = set()
    for dim in dims:
        if dim in params.TABLE.by_name:
            continue
        seen: dict[str, str | None] = {}
        of_dim = [dict(j.values).get(dim) for j in basis]
        if all(seen.setdefault(j.name, v) == v for j, v in zip(basis, of_dim, strict=True)):
            follows.add(dim)
    out = {}
    for job in jobs:
        values = dict(job.values)
        out[job.job_key] = [job.name] + [values.get(d, "") for d in dims if d not in follows]
    return out


def naming_basis(store: Store, run: RunRecord) -> tuple[list[str], list[JobRecord]]:
    """The dimensions and jobs names are made from: a promoted run's root sweep's, so that
    the standard render of a variant reads like its fast parent (a promotion of a few
    winners varies fewer dimensions), plus the run's own."""
    lineage = [run]
    while lineage[-1].parent_run and len(lineage) < 50:
        try:
            lineage.append(store.run(lineage[-1].parent_run))
        except InputError:  # a parent no longer in the ledger
            break
    dims: list[str] = []
    basis: list[JobRecord] = []
    for record in reversed(lineage):
        dims += [d for d in record.dimensions if d not in dims]
        basis += store.jobs(record.run_id)
    return dims, basis


def chosen_keys(
    store: Store, run_id: str, winners: Sequence[Path], min_votes: int = 1
) -> list[str] | None:
    """The job keys the winners files star (a unique prefix is enough), by at least
    ``min_votes`` reviewers, in the order first starred; None without winners files (every
    job). Problems of all files at once."""
    if not winners:
        return None
    return starred_keys(store, run_id, winners, min_votes)


def check_out(out: Path) -> None:
    """Refuse an ``--out`` that is not a new or empty folder."""
    if out.is_file():
        raise InputError(f"--out {out} is a file: --for-ads writes a folder, give a new one")
    if out.suffix.lower() == ".zip":
        raise InputError(
            f"--out {out}: --for-ads writes a folder (ad platforms upload the videos one by "
            "one, not a zip): give a folder name"
        )
    if out.is_dir() and any(out.iterdir()):
        raise InputError(
            f"--out {out} is a folder that is not empty: give a new or empty folder "
            "(what you upload must be only this export)"
        )


def write_for_ads(
    store: Store,
    workspace: Path,
    run_id: str,
    out: Path,
    winners: Sequence[Path] = (),
    sep: str = ",",
    min_votes: int = 1,
) -> AdsExport:
    """Copy the chosen videos of ``run_id`` into the new folder ``out`` under ad names, with
    the manifest."""
    check_out(out)
    run = store.run(run_id)
    every = store.jobs(run_id)
    keys = chosen_keys(store, run_id, winners, min_votes)
    wanted = None if keys is None else frozenset(keys)
    chosen = [j for j in every if wanted is None or j.job_key in wanted]  # the run's order
    words = name_words(*naming_basis(store, run), chosen)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".for-ads-") as tmp:
        folder = Path(tmp) / "export"
        folder.mkdir()
        rows: list[dict[str, str]] = []
        skipped: list[Skipped] = []
        size = 0
        for job in chosen:
            why = _no_video(workspace, job)
            if why is None:
                name = ad_name(words[job.job_key], job.job_key)
                source = workspace / str(job.file_path)
                file = name + (source.suffix.lower() or ".mp4")
                why = _copy(source, folder / file, job)
            if why is None:
                size += (folder / file).stat().st_size
                rows.append(_row(run, job, name, file))
            else:
                skipped.append(Skipped(job.job_key, job.name, why))
        _write_manifest(folder / MANIFEST, run, rows, sep)
        if out.is_dir():
            out.rmdir()  # empty (check_out)
        folder.rename(out)
    return AdsExport(out, len(rows), size, len(chosen), tuple(skipped))


def _no_video(workspace: Path, job: JobRecord) -> str | None:
    """Why the job has no video to export, or None."""
    if job.state != DONE:
        if job.state in (PENDING, SUBMITTING, SUBMITTED, RUNNING, COMPLETED):
            return f"not finished ({job.state}): resume the run, then export again"
        first = (job.error_message or "").strip().splitlines()
        detail = f": {first[0]}" if first else ""
        return f"{job.state}{detail}"
    if job.media.get("pruned"):
        return str(job.media["pruned"])
    if not job.file_path or not (workspace / job.file_path).is_file():
        return f"the video is missing from the workspace ({job.file_path or 'no file'})"
    return None


def _copy(source: Path, target: Path, job: JobRecord) -> str | None:
    """Copy ``source`` to ``target`` checking its bytes against the ledger's sha256: None,
    or why the copy was dropped (a video edited or replaced in the workspace is not the one
    rendered, and results would be attached to the wrong video)."""
    digest = hashlib.sha256()
    with source.open("rb") as src, target.open("xb") as dst:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            dst.write(chunk)
    if job.file_sha256 and digest.hexdigest() != job.file_sha256:
        target.unlink()
        return (
            f"the video file changed since it was rendered (its sha256 differs from the "
            f"ledger's): {source}"
        )
    return None


def _row(run: RunRecord, job: JobRecord, name: str, file: str) -> dict[str, str]:
    values = dict(job.values)
    dims = {_column(d): values.get(d, "") for d in run.dimensions}
    return {
        "ad_name": name,
        "file": file,
        "job_key": job.job_key,
        "variant_key": job.variant_key,
        "tier": job.tier,
        **dims,
        "prompt": job.request.prompt,
        "run_id": job.run_id,
    }


def _column(dim: str) -> str:
    """A dimension's manifest column (renamed if it collides with a fixed one)."""
    return f"{dim} (dimension)" if dim in FIXED + LAST else dim


def _write_manifest(
    path: Path, run: RunRecord, rows: Sequence[Mapping[str, str]], sep: str
) -> None:
    columns = [*FIXED, *(_column(d) for d in run.dimensions), *LAST]
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, delimiter=sep, lineterminator="\r\n")
        writer.writerow([to_excel(c) for c in columns])
        writer.writerows([to_excel(str(r.get(c, ""))) for c in columns] for r in rows)
