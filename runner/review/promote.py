"""Promote: re-render chosen jobs of a run on another tier, identical but for ``model``.

Every parameter comes from the parent job's pinned request (the body the ledger recorded);
only the model changes, plus explicit ``--set`` overrides. The tier's rules are checked
before anything is spent. The child run records each job's ``parent_job_key``, so its report
shows every standard render beside its fast parent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import params
from ..errors import ExperimentError, InputError, Problem
from ..grid.cells import Choice
from ..grid.experiment import Expansion, shape_problems
from ..grid.plan import Plan, plan_for
from ..grid.pricing import PriceTable
from ..grid.sheet import csv_table
from ..models import Shape, Variant, job_key
from ..rules import Tier
from ..run.ledger import Store
from ..run.records import JobRecord, RunRecord
from .csvsafe import from_excel


@dataclass(frozen=True)
class Promotion:
    plan: Plan
    parents: dict[str, str]  # child job key -> parent job key
    collapsed: int  # picks that were samples of the same variant


@dataclass(frozen=True)
class Pick:
    """One starred row of a winners.csv: where it is, which job, whose star, their note."""

    file: str
    row: int
    key: str
    reviewer: str
    note: str


def read_picks(path: Path, run_id: str) -> list[Pick]:
    """Every pick of a winners.csv exported by the report (or written by hand: BOM,
    semicolons and tabs are fine). Cells are read back through the spreadsheet rule
    (csvsafe.from_excel). A file without a ``reviewer`` column (or a row with it empty)
    counts as one reviewer named after the file. Refuses files of other runs and a job
    starred twice by the same reviewer."""
    name = path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ExperimentError(
            [Problem(name, None, None, f"cannot read it ({exc.strerror})")]
        ) from None
    columns, rows, problems = csv_table(data, name, "a header row with a 'job_key' column")
    if "job_key" not in columns:
        found = ", ".join(c for c in columns if c) or "none"
        raise ExperimentError(
            [
                Problem(
                    name,
                    1,
                    None,
                    "there is no 'job_key' column (columns "
                    f"found: {found}); export it from the report",
                )
            ]
        )
    run_column = "run_id" if "run_id" in columns else "run" if "run" in columns else None

    def cell(cells: Mapping[str, object], column: str | None) -> str:
        return from_excel(str(cells.get(column) or "")).strip() if column else ""

    picks: list[Pick] = []
    seen: dict[tuple[str, str], int] = {}
    for row, cells in rows:
        key = cell(cells, "job_key")
        if not key:
            problems.append(Problem(name, row, "job_key", "is empty"))
            continue
        other = cell(cells, run_column)
        if other and other != run_id:
            problems.append(
                Problem(
                    name,
                    row,
                    run_column,
                    f"this pick is from run {other}, not {run_id}; promote "
                    f"that run (`runner promote {other} --winners {name}`)",
                )
            )
            continue
        reviewer = " ".join(cell(cells, "reviewer").split()) or name  # as the page writes it
        who = reviewer.casefold()
        if (who, key) in seen:
            by = f" by {reviewer}" if "reviewer" in columns else ""
            problems.append(
                Problem(
                    name,
                    row,
                    "job_key",
                    f"{key} is picked twice{by} (also on row {seen[who, key]}); keep one row",
                )
            )
            continue
        seen[who, key] = row
        note = from_excel(str(cells.get("note") or "")).strip()
        picks.append(Pick(name, row, key, reviewer, note))
    if not picks and not problems:
        problems.append(Problem(name, None, None, "no winners in the file"))
    if problems:
        raise ExperimentError(problems)
    return picks


def read_winners(path: Path, run_id: str) -> list[tuple[int, str]]:
    """(row, job_key) of each job a winners.csv stars, once per job (several reviewers may
    star the same job in a merged file). See :func:`read_picks`."""
    out: list[tuple[int, str]] = []
    seen: set[str] = set()
    for pick in read_picks(path, run_id):
        if pick.key not in seen:
            seen.add(pick.key)
            out.append((pick.row, pick.key))
    return out


@dataclass
class Votes:
    """The stars of several winners files, counted per reviewer: the same reviewer starring
    the same job in two files (a merged file passed with its originals) is one vote."""

    first: dict[str, Pick]  # job key -> where it was first starred
    reviewers: dict[str, dict[str, str]]  # job key -> {reviewer (casefolded): as written}
    notes: dict[str, list[tuple[str, str]]]  # job key -> [(reviewer, note)], each once
    everyone: dict[str, str]  # every reviewer of the files (casefolded: as written)

    def count(self, key: str) -> int:
        return len(self.reviewers[key])

    def chosen(self, min_votes: int) -> list[Pick]:
        """The first pick of each job starred by at least ``min_votes`` reviewers."""
        return [p for k, p in self.first.items() if self.count(k) >= min_votes]

    def resolved(self, full: Callable[[str], str]) -> Votes:
        """The same votes keyed by each job's full key (``full`` maps a key as written, e.g.
        a unique prefix, to it; a key it cannot map stays as written, for promote to report
        by file and row): a job starred by prefix in one file and by full key in another
        counts each reviewer once."""
        out = Votes({}, {}, {}, dict(self.everyone))
        for key, pick in self.first.items():
            try:
                whole = full(key)
            except InputError:
                whole = key
            out.first.setdefault(whole, pick)
            out.reviewers.setdefault(whole, {}).update(self.reviewers[key])
            notes = out.notes.setdefault(whole, [])
            notes.extend(n for n in self.notes.get(key, []) if n not in notes)
        return out

    def short(self, min_votes: int) -> list[str]:
        """The jobs starred by fewer reviewers, each as "key (1 vote: Ann)"."""
        out = []
        for key in self.first:
            n = self.count(key)
            if n < min_votes:
                names = ", ".join(self.reviewers[key].values())
                out.append(f"{key} ({n} vote{'' if n == 1 else 's'}: {names})")
        return out


def read_votes(paths: Sequence[Path], run_id: str) -> Votes:
    """The picks of every file, merged (problems of all files are reported together)."""
    votes = Votes({}, {}, {}, {})
    problems: list[Problem] = []
    for path in paths:
        try:
            picks = read_picks(path, run_id)
        except ExperimentError as exc:
            problems.extend(exc.problems)
            continue
        for pick in picks:
            who = pick.reviewer.casefold()
            votes.everyone.setdefault(who, pick.reviewer)
            votes.first.setdefault(pick.key, pick)
            votes.reviewers.setdefault(pick.key, {}).setdefault(who, pick.reviewer)
            notes = votes.notes.setdefault(pick.key, [])
            if pick.note and (pick.reviewer, pick.note) not in notes:
                notes.append((pick.reviewer, pick.note))
    if problems:
        raise ExperimentError(problems)
    return votes


def reviewers_by_job(store: Store, run_id: str, votes: Votes) -> dict[str, set[str]]:
    """Each starred job of the run by its full key (a winners file may give a unique
    prefix), with the reviewers (casefolded) who starred it, in the order first starred;
    an `ExperimentError` naming the file and row of each key that is no job of the run."""
    out: dict[str, set[str]] = {}
    problems: list[Problem] = []
    for key, pick in votes.first.items():
        try:
            full = store.find_job(run_id, key).job_key
        except InputError as exc:
            problems.append(Problem(pick.file, pick.row, "job_key", str(exc)))
            continue
        out.setdefault(full, set()).update(votes.reviewers[key])
    if problems:
        raise ExperimentError(problems)
    return out


NOTES_FILE = "winner-notes.json"


def starred_keys(
    store: Store, run_id: str, winners: Sequence[Path], min_votes: int = 1
) -> list[str]:
    """The full keys of the jobs the winners files star, each starred by at least
    ``min_votes`` reviewers (votes counted as `Votes` does), in the order first starred; an
    `InputError` when ``min_votes`` leaves none."""
    votes = read_votes(winners, run_id)
    keys = [k for k, who in reviewers_by_job(store, run_id, votes).items() if len(who) >= min_votes]
    if not keys and min_votes > 1:
        raise InputError(
            f"no job was starred by {min_votes} or more of the {len(votes.everyone)} "
            f"reviewer(s) in {', '.join(str(w) for w in winners)}; lower --min-votes"
        )
    return keys


def write_notes(folder: Path, run_id: str, votes: Votes, keys: Iterable[str]) -> None:
    """The promoted winners' notes, kept in the child run's folder for its report
    (report_data.winner_notes reads them): {parent job key: [[reviewer, note], ...]}."""
    notes = {k: [list(n) for n in votes.notes.get(k, [])] for k in keys}
    notes = {k: v for k, v in notes.items() if v}
    if not notes:
        return
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"parent_run": run_id, "notes": notes}, ensure_ascii=False, indent=1)
    (folder / NOTES_FILE).write_text(text + "\n", encoding="utf-8")


def promote(
    store: Store,
    run: RunRecord,
    picks: Iterable[tuple[int | None, str]],
    source: str,
    tier: Tier,
    overrides: Mapping[str, str],
    repeats: int,
    prices: PriceTable,
    sources: Mapping[str, str] | None = None,
) -> Promotion:
    """The child run's plan: each picked job of ``run`` on ``tier``. ``source`` names where
    the picks came from in messages (the winners file, or --pick); ``sources`` names the
    file of a job key when the picks came from several."""
    jobs = {j.job_key: j for j in store.jobs(run.run_id)}
    problems: list[Problem] = []
    changes = _overrides(overrides, problems)
    variants: dict[str, Variant] = {}
    parents: dict[str, str] = {}
    shapes: dict[Shape, int] = {}
    collapsed = 0
    of_flags: dict[tuple[str, str], list[str]] = {}  # a --set that breaks a rule: the keys
    picks = list(picks)
    for row, key in picks:
        where = (sources or {}).get(key, source)
        job = jobs.get(key) or _by_prefix(jobs, key)
        if job is None:
            problems.append(
                Problem(
                    where,
                    row,
                    "job_key",
                    f"{key} is not a job of run "
                    f"{run.run_id}; check the run, or export the winners "
                    "from its report again",
                )
            )
            continue
        if job.state != "done":
            problems.append(
                Problem(
                    where,
                    row,
                    "job_key",
                    f"{job.job_key} is {job.state}, not done: promote finished videos only",
                )
            )
            continue
        request = job.request.with_values({k: v.value for k, v in changes.items()})
        for column, message in shape_problems(request.shape, tier):
            if column in changes:  # the flag's problem: said once, below
                of_flags.setdefault((column, f"on {tier}: {message}"), []).append(job.job_key)
            else:
                problems.append(Problem(where, row, column, f"{job.job_key} on {tier}: {message}"))
        values = _values(job.values, changes)
        variant = Variant(
            request, request.variant_key, job.source, job.row, job.name, values, repeats
        )
        if variant.variant_key in variants:
            collapsed += 1
            continue
        variants[variant.variant_key] = variant
        shapes[request.shape] = shapes.get(request.shape, 0) + repeats
        for sample in range(1, repeats + 1):
            parents[job_key(variant.variant_key, tier, sample)] = job.job_key
    for (column, message), keys in of_flags.items():
        if len(keys) < len(picks):
            named = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
            message += f" (for {named})"
        problems.append(Problem("--set", None, column, message))
    if problems:
        raise ExperimentError(problems)
    dims = dict(run.dimensions)
    expansion = Expansion(
        source=source,
        rows_read=len(variants),
        variants=tuple(variants.values()),
        expanded=len(variants) * repeats,
        jobs_per_tier=len(variants) * repeats,
        dimensions=dims,
        shapes=shapes,
    )
    return Promotion(plan_for(Path(run.experiment), expansion, tier, prices), parents, collapsed)


def _overrides(overrides: Mapping[str, str], problems: list[Problem]) -> dict[str, Choice]:
    """``--set`` values parsed by the parameter table; only its promotable rows (the prompt
    and media stay the winner's)."""
    out: dict[str, Choice] = {}
    changeable = params.TABLE.promotable
    for column, text in overrides.items():
        param = params.TABLE.by_name.get(column)
        if param is None or not param.promotable:
            problems.append(
                Problem(
                    "--set",
                    None,
                    column,
                    "cannot be changed when promoting "
                    f"(allowed: {', '.join(changeable)}); the prompt and media "
                    "stay those of the winner",
                )
            )
            continue
        try:
            value, shown = param.parse(text)
        except ValueError as exc:
            problems.append(Problem("--set", None, column, str(exc)))
            continue
        out[column] = Choice(column, value, shown)
    return out


def _values(
    pairs: Iterable[tuple[str, str]], changes: Mapping[str, Choice]
) -> tuple[tuple[str, str], ...]:
    values = {k: v for k, v in pairs}
    for column, choice in changes.items():
        values[column] = choice.shown
    return tuple(values.items())


def _by_prefix(jobs: Mapping[str, JobRecord], prefix: str) -> JobRecord | None:
    found = [j for k, j in jobs.items() if k.startswith(prefix)]
    return found[0] if len(found) == 1 else None
