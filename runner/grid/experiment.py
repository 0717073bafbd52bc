"""Experiment grids: validate every cell of a sheet and expand it into variants.

One row is one creative idea. A row expands into the cartesian product of its multi-valued
cells (see `cells`), crossed with the sidecar's ``[axes]``, then into ``repeats`` samples.
``[defaults]`` fill absent columns and empty cells; ``--set column=value`` overrides a column
everywhere. Prompts are Jinja2 templates (see `prompts`); every other column is a variable.

Problems are collected, never raised one by one: the caller gets all of them at once, each
with file, spreadsheet row (header = row 1) and column.

Expansion is the hot path of million-job grids, so the work per combination is a few
dictionary look-ups: everything that depends only on the non-prompt parameters (rules,
inferred mode, the canonical JSON around the prompt) is computed once per distinct "shape",
and each prompt is rendered once per distinct set of the values its template uses.
"""

from __future__ import annotations

import difflib
import functools
import gc
import itertools
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

from .. import params, rules
from ..errors import ExperimentError, Problem
from ..localfiles import LocalFile, LocalFiles
from ..models import Request, Shape, Variant, canonical_json, text_hash
from .cells import (
    Cells,
    Choice,
    bidi_problem,
    default_choices,
    pipe_outside_jinja,
    split_warnings,
    unescape_pipes,
    unique_choices,
)
from .prompts import Templates, missing_message
from .sheet import Cell, Sheet, Sidecar, read_sheet, read_sidecar

# Columns that look like settings but are not ones we send; refused unless a template uses them.
NOT_SETTINGS = {
    "model": "the model is chosen from --tier (fast, standard, mini) and the mode column; "
    "remove this column",
    "tier": "choose the tier with --tier when you plan or run; remove this column",
    "callback_url": "runner checks on its tasks itself, callbacks are not supported; "
    "remove this column",
    "resolution": "this setting is called 'quality' (480p, 720p, 1080p); rename the column",
    "ratio": "this setting is called 'aspect_ratio'; rename the column",
    "audio": "this setting is called 'generate_audio' (true or false); rename the column",
    "seed": "Seedance 2.0 on EvoLink has no seed setting; remove this column",
    "watermark": "Seedance 2.0 on EvoLink has no watermark setting; remove this column",
    "camera_fixed": "Seedance 2.0 on EvoLink has no camera_fixed setting; remove this column",
}
_PLACEHOLDER_URL = "https://example.com/placeholder"
_PROMPT_MARK = "\0prompt\0"
_new = tuple.__new__  # builds a NamedTuple without its Python-level __new__ (hot path)


@dataclass(frozen=True, slots=True)
class Split:
    """A multi-valued cell: where it is and the values it was split into. ``row`` is None
    for an axis crossed with every row (the sidecar's ``[axes]``, ``--set a | b``)."""

    source: str  # the sheet's file name, the sidecar's, or "--set"
    row: int | None
    column: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Expansion:
    """Every distinct variant of an experiment."""

    source: str
    rows_read: int
    variants: tuple[Variant, ...]
    expanded: int  # jobs before identical ones were collapsed
    jobs_per_tier: int  # jobs after collapsing (sum of samples)
    dimensions: dict[str, tuple[str, ...]]  # varied column -> its values, first seen first
    shapes: dict[Shape, int]  # jobs per request shape, for quotes on every tier
    warnings: tuple[str, ...] = ()  # things worth a look that are not errors
    splits: tuple[Split, ...] = ()  # every multi-valued cell, row by row, then every-row axes
    # the grid as factors when every row splits alike: (("rows", 25), ("aspect_ratio", 2),
    # ("repeats", 3)); None when rows differ (then `splits` says what each row does)
    grid: tuple[tuple[str, int], ...] | None = None
    # files named in the URL columns, by content hash: uploaded when the run needs them
    files: dict[str, LocalFile] = field(default_factory=dict)

    @property
    def duplicates(self) -> int:
        return self.expanded - self.jobs_per_tier


RENDER_CACHE = 4096  # rendered prompts a row keeps for combinations that share them


def load(
    path: Path, overrides: Mapping[str, str] | None = None, tier: str = "standard"
) -> Expansion:
    """Read, validate (for ``tier``) and expand an experiment, or raise ExperimentError
    listing every problem found."""
    sheet, sidecar = read_sheet(path), read_sidecar(path)
    # Expansion allocates millions of tuples and no cycles: the cyclic collector would scan
    # every live object again and again (15.9 s instead of ~8 s for 10^6 jobs).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return expand(sheet, sidecar, overrides or {}, tier, base=path.absolute().parent)
    finally:
        if enabled:
            gc.enable()


def shape_problems(shape: Shape, tier: str) -> tuple[tuple[str, str], ...]:
    """(column, message) for every API rule a request of this shape breaks on ``tier``."""
    return _shape_problems(shape, tier, params.TABLE)


@functools.cache
def _shape_problems(shape: Shape, tier: str, table: params.Table) -> tuple[tuple[str, str], ...]:
    body = shape.request("x", _PLACEHOLDER_URL).body(tier)
    columns = {p.field: p.name for p in table.sent} | {"model": "mode"}
    out = []
    for v in rules.check_body(body):
        message = v.message
        param = table.by_name.get(columns.get(v.field, ""))
        if param and param.option and not rules.tier_allows(tier, param.option):
            others = " or ".join(t for t in rules.TIERS if rules.tier_allows(t, param.option))
            message += f"; use --tier {others}, or set {param.name} to false"
        elif v.field == "quality" and "only available on" in message:
            best = [t for t in rules.TIERS if shape.quality in rules.TIER_QUALITIES[t]]
            message += f"; use --tier {' or '.join(best)} or choose 720p"
        out.append((columns.get(v.field, v.field), message))
    return tuple(out)


class _RowProblems:
    """Problems found in a row. One in a column set with ``--set`` is the flag's, so it is
    said once, naming ``--set`` (with the rows it concerns when that is not every row),
    instead of once for every row of the file."""

    def __init__(self, cells: Cells, overrides: Mapping[str, str]) -> None:
        self.cells = cells
        self.overrides = overrides
        self.of_flags: dict[tuple[str, str], dict[int, None]] = {}

    def problem(self, row: int, column: str, message: str) -> None:
        if column in self.overrides:
            self.of_flags.setdefault((column, message), {})[row] = None
        else:
            self.cells.problem(row, column, message)

    def finish(self, rows: int) -> None:
        for (column, message), where in self.of_flags.items():
            if len(where) < rows:
                message += f" (in {rows_text(list(where))} of {self.cells.file})"
            self.cells.problems.append(Problem("--set", None, column, message))


def rows_text(rows: list[int], shown: int = 10) -> str:
    """[2, 3, 4, 7] -> ``rows 2–4, 7``; [5] -> ``row 5``."""
    if len(rows) == 1:
        return f"row {rows[0]}"
    ranges: list[list[int]] = []
    for row in sorted(rows):
        if ranges and row == ranges[-1][1] + 1:
            ranges[-1][1] = row
        else:
            ranges.append([row, row])
    named = [f"{a}" if a == b else f"{a}–{b}" for a, b in ranges[:shown]]
    more = f" and {len(ranges) - shown:,} more" if len(ranges) > shown else ""
    return "rows " + ", ".join(named) + more


class _Shape:
    """What a combination of non-prompt choices means: the typed request parameters, the
    canonical JSON around the prompt, the inferred mode and the rules it breaks."""

    __slots__ = ("head", "jobs", "key", "mode", "mode_pair", "problems", "rest", "tail")

    def __init__(self, columns: Sequence[str], choices: Sequence[Choice], tier: str) -> None:
        values = {column: c.value for column, c in zip(columns, choices, strict=True)}
        mode = values.pop("mode")
        template = Request.make(rules.MODES[0], _PROMPT_MARK, values)
        self.mode: rules.Mode = mode or rules.infer_mode(  # type: ignore[assignment]
            len(template.image_urls), len(template.video_urls), len(template.audio_urls)
        )
        template = template._replace(mode=self.mode)
        self.mode_pair = ("mode", self.mode)
        self.rest = template[2:]  # every field after mode and prompt
        self.key: Shape = template.shape
        self.head, self.tail = canonical_json(template.canonical()).split(
            json.dumps(_PROMPT_MARK, ensure_ascii=False)
        )
        self.problems = shape_problems(self.key, tier)
        self.jobs = 0  # jobs of this shape after collapsing identical ones


def expand(
    sheet: Sheet,
    sidecar: Sidecar | None,
    overrides: Mapping[str, str],
    tier: str = "standard",
    *,
    base: Path | None = None,
) -> Expansion:
    """Validate and expand; file paths in the URL columns are relative to ``base`` (the
    experiment's folder; the working directory when None)."""
    problems: list[Problem] = []
    files = LocalFiles(base if base is not None else Path.cwd())
    cells = Cells(sheet.name, problems, sheet.split_strings, files)
    side = Cells(sidecar.name if sidecar else "", problems, files=files)
    flags = Cells("--set", problems, files=files)
    templates = Templates()

    file_columns = [c for c in sheet.columns if c and c not in overrides]
    side_axes = dict(sidecar.axes) if sidecar else {}
    side_defaults = dict(sidecar.defaults) if sidecar else {}
    for col in list(side_axes):
        if col in file_columns or col in overrides:
            where = "a column of " + sheet.name if col in file_columns else "set with --set"
            side.problem(None, f"[axes]:{col}", f"is also {where}; keep only one of them")
            del side_axes[col]
    columns = list(dict.fromkeys([*file_columns, *overrides, *side_axes, *side_defaults]))
    fixed = {
        c: unique_choices(ch for v in vals for ch in side.choices(None, c, v, f"[axes]:{c}"))
        for c, vals in side_axes.items()
    } | {c: flags.choices(None, c, v) for c, v in overrides.items()}
    defaults = {c: side.choices(None, c, v, f"[defaults]:{c}") for c, v in side_defaults.items()}
    table = params.TABLE
    shape_columns = ("mode", *(p.name for p in table.settings))
    # Shape columns absent from a row: the mode is inferred, media lists are empty.
    fillers = {c: Choice(c, None if c == "mode" else (), "") for c in shape_columns}
    defaults_of_table = default_choices()
    own_columns = [c for c in columns if c not in table.by_name]
    _check_unused_columns(sheet, columns, overrides, templates, problems)
    found_in = _RowProblems(cells, overrides)

    variants: dict[str, int] = {}  # variant key -> index in found
    found: list[Variant] = []
    samples: list[int] = []
    shapes: dict[tuple[Choice, ...], _Shape] = {}
    expanded = 0
    seen: dict[str, dict[str, None]] = {c: {} for c in ("name", "mode", *columns)}
    prompt_is_axis = False
    splits: list[Split] = []
    checked_rows = 0  # rows with a prompt: every one of their combinations is checked
    citations: dict[tuple[int, str], tuple[int, str]] = {}  # (row, @video1) -> (sent, mode)
    row_kinds: set[tuple[tuple[tuple[str, int], ...], tuple[int, ...]]] = set()

    for row, raw in sheet.rows:
        per_column: dict[str, list[Choice]] = {}
        for col in columns:
            choices = fixed.get(col)
            if choices is None:
                choices = cells.choices(row, col, raw.get(col)) or defaults.get(col, [])
            if not choices and col not in table.by_name:
                choices = [Choice(col, "", "")]  # an empty variable cell is an empty string
            if choices:
                per_column[col] = choices
        prompts = per_column.get("prompt")
        if not prompts:
            found_in.problem(row, "prompt", "the prompt is empty")
            continue
        checked_rows += 1
        prompt_is_axis = prompt_is_axis or len(prompts) > 1
        row_splits = [(c, ch) for c, ch in per_column.items() if len(ch) > 1 and c not in fixed]
        splits.extend(Split(sheet.name, row, c, tuple(x.shown for x in ch)) for c, ch in row_splits)
        for col, default in defaults_of_table.items():
            per_column.setdefault(col, [default])
        name = per_column.pop("name", [Choice("name", f"row {row}", f"row {row}")])[0]
        repeats = [int(str(c.value)) for c in per_column.pop("repeats")]
        row_kinds.add((tuple((c, len(ch)) for c, ch in row_splits), tuple(repeats)))
        seen["name"][name.shown] = None
        for col, choices in per_column.items():
            seen.setdefault(col, {}).update(dict.fromkeys(c.shown for c in choices))
        real = list(per_column)
        for col in shape_columns:
            if col not in per_column:
                per_column[col] = [fillers[col]]
        cols = list(per_column)
        lists = list(per_column.values())
        i_prompt = cols.index("prompt")
        get_shape = itemgetter(*(cols.index(c) for c in shape_columns))
        # Look shapes up by the shape columns that vary in this row only (often none).
        varying = [cols.index(c) for c in shape_columns if len(per_column[c]) > 1]
        row_key: Callable[[tuple[Choice, ...]], object] = (
            itemgetter(*varying) if varying else _constant
        )
        row_shapes: dict[object, _Shape] = {}
        get_values = itemgetter(*(cols.index(c) for c in real if c != "prompt"))
        mode_inferred = "mode" not in real
        head = (("name", name.shown),)
        prompt_getters = _prompt_getters(prompts, cols, real, own_columns, templates, found_in, row)
        renders: dict[tuple[Choice, tuple[Choice, ...]], tuple[str, str] | None] = {}
        reported: set[object] = set()

        for combo in itertools.product(*lists):
            pc = combo[i_prompt]
            getter = prompt_getters[pc]
            rendered = None  # an unusable template: its problem is recorded; check the rest
            if getter is not None:
                args = getter(combo)
                rendered = renders.get((pc, args), _MISSING)
                if rendered is _MISSING:
                    rendered = _render(templates, pc, args, found_in, row)
                    if len(renders) >= RENDER_CACHE:  # a cache: a row of 10^5 prompts
                        renders.clear()  # need not keep them all (~300 bytes each)
                    renders[(pc, args)] = rendered
            shape = row_shapes.get(row_key(combo))
            if shape is None:
                shape_choices = get_shape(combo)
                shape = shapes.get(shape_choices)
                if shape is None:
                    shape = shapes[shape_choices] = _Shape(shape_columns, shape_choices, tier)
                    if mode_inferred and not shape.problems:
                        seen["mode"][shape.mode] = None
                row_shapes[row_key(combo)] = shape
            if shape.problems:
                if shape not in reported:
                    reported.add(shape)
                    for column, message in shape.problems:
                        found_in.problem(row, column, message)
                continue
            if rendered is None:
                continue
            prompt, fragment = rendered
            canonical = shape.head + fragment + shape.tail
            vkey = text_hash(canonical)
            for count in repeats:
                expanded += count
                index = variants.get(vkey)
                if index is None:
                    if "@" in prompt:
                        _note_citations(row, prompt, shape, citations)
                    values = head + get_values(combo)
                    if mode_inferred:
                        values += (shape.mode_pair,)
                    variants[vkey] = len(found)
                    request = _new(Request, (shape.mode, prompt, *shape.rest))
                    found.append(
                        _new(Variant, (request, vkey, sheet.name, row, name.shown, values, 1))
                    )
                    samples.append(count)
                    shape.jobs += count
                elif count > samples[index]:
                    shape.jobs += count - samples[index]
                    samples[index] = count
    found_in.finish(checked_rows)
    if problems:
        raise ExperimentError(problems)

    if not prompt_is_axis:  # one template per row: the row's name tells them apart
        seen.pop("prompt", None)
    every_row = [
        Split(sidecar.name if sidecar and c in side_axes else "--set", None, c, vals)
        for c, ch in fixed.items()
        if len(vals := tuple(x.shown for x in ch)) > 1
    ]
    return Expansion(
        source=sheet.name,
        rows_read=len(sheet.rows),
        variants=tuple(
            v if n == 1 else _with_samples(v, n) for v, n in zip(found, samples, strict=True)
        ),
        expanded=expanded,
        jobs_per_tier=sum(samples),
        dimensions={c: tuple(vals) for c, vals in seen.items() if len(vals) > 1},
        shapes=_jobs_per_shape(shapes.values()),
        warnings=(
            *_pipe_warnings(sheet),
            *split_warnings((cells, side, flags)),
            *_citation_warnings(sheet.name, citations),
        ),
        splits=(*splits, *every_row),
        grid=_grid(len(sheet.rows), row_kinds, every_row),
        files=files.files(),
    )


def _grid(
    rows: int,
    kinds: set[tuple[tuple[tuple[str, int], ...], tuple[int, ...]]],
    every_row: list[Split],
) -> tuple[tuple[str, int], ...] | None:
    """The grid as factors (rows, then each axis, then repeats) when every row splits the
    same columns into as many values and has one number of repeats; else None."""
    if len(kinds) != 1:
        return None
    ((cell_axes, repeats),) = kinds
    if len(repeats) != 1:
        return None
    axes = (*cell_axes, *((s.column, len(s.values)) for s in every_row))
    return (("rows", rows), *axes, *((("repeats", repeats[0]),) if repeats[0] > 1 else ()))


def _pipe_warnings(sheet: Sheet, shown: int = 5) -> tuple[str, ...]:
    """Prompts with a ``|`` outside ``{{ }}``: once that split a prompt into variants; now the
    prompt is sent whole. Say so, naming the cells, in case a sheet meant an axis."""
    if not sheet.split_strings:
        return ()
    rows = [
        row
        for row, raw in sheet.rows
        if isinstance(raw.get("prompt"), str) and pipe_outside_jinja(str(raw["prompt"]))
    ]
    if not rows:
        return ()
    cells = ", ".join(f"{sheet.name}:row {r}:prompt" for r in rows[:shown])
    more = f" and {len(rows) - shown} more" if len(rows) > shown else ""
    return (
        f"{cells}{more}: the prompt contains '|'; it is sent as one prompt, never split into "
        "variants. To try several prompts, write one row per prompt, or put the part that "
        "varies in its own column (e.g. 'style' with 'a | b') and use it as {{ style }}.",
    )


_CITATION = re.compile(r"@(image|video|audio)(\d+)", re.IGNORECASE)
_MEDIA_OF = {  # cited kind -> (count field of a Shape, column, noun)
    "image": ("images", "image_urls", "image"),
    "video": ("videos", "video_urls", "video"),
    "audio": ("audios", "audio_urls", "audio track"),
}


def _note_citations(
    row: int, prompt: str, shape: _Shape, found: dict[tuple[int, str], tuple[int, str]]
) -> None:
    """Record each ``@image3`` / ``@video1`` / ``@audio1`` the prompt cites beyond the media
    its request sends (a text-mode prompt citing any)."""
    for kind, number in _CITATION.findall(prompt):
        kind = kind.lower()
        sent = getattr(shape.key, _MEDIA_OF[kind][0])
        if int(number) > sent:
            found.setdefault((row, f"@{kind}{int(number)}"), (sent, shape.mode))


def _citation_warnings(
    file: str, found: dict[tuple[int, str], tuple[int, str]], shown: int = 5
) -> tuple[str, ...]:
    """One warning per citation of media a row does not send, naming the row."""
    out = []
    for (row, tag), (sent, mode) in list(found.items())[:shown]:
        _, column, noun = _MEDIA_OF[tag[1:].rstrip("0123456789")]
        has = f"no {noun} ({mode} mode)" if not sent else f"{sent} {noun}{'s' * (sent > 1)}"
        out.append(
            f"{file}:row {row}:prompt: cites {tag} but the row sends {has}; add the {noun} "
            f"to {column} (reference mode), or take {tag} out of the prompt."
        )
    rows = {row for row, _ in found}
    if len(found) > shown:
        out.append(
            f"... and {len(found) - shown:,} more citation(s) of media not sent "
            f"({len(rows):,} row(s) in all)."
        )
    return tuple(out)


_MISSING: Any = object()


def _constant(combo: tuple[Choice, ...]) -> object:
    return None


def _jobs_per_shape(shapes: Iterable[_Shape]) -> dict[Shape, int]:
    out: dict[Shape, int] = {}
    for shape in shapes:
        if shape.jobs:
            out[shape.key] = out.get(shape.key, 0) + shape.jobs
    return out


def _prompt_getters(
    prompts: list[Choice],
    cols: list[str],
    real: list[str],
    own_columns: list[str],
    templates: Templates,
    report: _RowProblems,
    row: int,
) -> dict[Choice, Callable[[tuple[Choice, ...]], tuple[Choice, ...]] | None]:
    """For each prompt choice of a row: a function picking, from a combination, the choices
    of the variables its template uses; None when the template cannot be used."""
    out: dict[Choice, Callable[[tuple[Choice, ...]], tuple[Choice, ...]] | None] = {}
    available = [c for c in real if c != "prompt"]
    for pc in prompts:
        compiled = templates.compile(str(pc.value))
        if isinstance(compiled, str):
            report.problem(row, "prompt", compiled)
            out[pc] = None
            continue
        names = compiled[1]
        missing = [n for n in names if n not in available]
        if missing:
            report.problem(row, "prompt", missing_message(missing, own_columns))
            out[pc] = None
            continue
        indices = [cols.index(n) for n in names]
        out[pc] = _picker(indices)
    return out


def _picker(indices: list[int]) -> Callable[[tuple[Choice, ...]], tuple[Choice, ...]]:
    if not indices:
        return lambda combo: ()
    if len(indices) == 1:
        i = indices[0]
        return lambda combo: (combo[i],)
    return itemgetter(*indices)


def _render(
    templates: Templates, pc: Choice, args: tuple[Choice, ...], report: _RowProblems, row: int
) -> tuple[str, str] | None:
    """(prompt, its JSON fragment) or None after recording the problems."""
    prompt, error = templates.render(str(pc.value), tuple(a.shown for a in args))
    if error is not None:
        report.problem(row, "prompt", error)
        return None
    assert prompt is not None
    found = rules.prompt_problems(prompt)
    bidi = bidi_problem(prompt)
    if bidi and not any(bidi_problem(t) for t in (str(pc.value), *(a.shown for a in args))):
        found.append(bidi)  # made by the template itself; a cell's own are named by `Cells`
    for message in found:
        report.problem(row, "prompt", message)
    return None if found else (prompt, json.dumps(prompt, ensure_ascii=False))


def _with_samples(variant: Variant, n: int) -> Variant:
    return Variant(
        variant.request,
        variant.variant_key,
        variant.source,
        variant.row,
        variant.name,
        variant.values,
        n,
    )


def _check_unused_columns(
    sheet: Sheet,
    columns: Iterable[str],
    overrides: Mapping[str, str],
    templates: Templates,
    problems: list[Problem],
) -> None:
    """Refuse columns that look like settings (misspelled or unsupported) and that no
    prompt template uses: they would silently do nothing. A column given with ``--set`` is
    named as the flag's."""
    used: set[str] = set()
    prompts: list[Cell] = [raw.get("prompt") for _, raw in sheet.rows]
    for cell in [*prompts, overrides.get("prompt")]:
        texts = [cell] if isinstance(cell, str) else cell if isinstance(cell, list) else []
        for text in texts:
            compiled = templates.compile(unescape_pipes(str(text)))
            if not isinstance(compiled, str):
                used.update(compiled[1])
    for col in columns:
        if col in params.TABLE.by_name or col in used:
            continue
        file, row = ("--set", None) if col in overrides else (sheet.name, 1)
        if col in NOT_SETTINGS:
            problems.append(Problem(file, row, col, NOT_SETTINGS[col]))
            continue
        close = difflib.get_close_matches(col, params.TABLE.columns, n=1, cutoff=0.8)
        if close:
            problems.append(
                Problem(
                    file,
                    row,
                    col,
                    f"unknown column; did you mean '{close[0]}'? (a column that is not a setting "
                    "is a template variable, but no prompt uses {{ " + col + " }})",
                )
            )
