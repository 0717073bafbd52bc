"""Experiment grids: read a CSV or Parquet sheet, validate every cell, expand it into variants.

One row is one creative idea. A cell may hold several values (``a | b | c``; ``\\|`` is a
literal pipe; a Parquet list cell likewise), and a row expands into the cartesian product of
its multi-valued cells, then into ``repeats`` samples. A sidecar ``EXP.toml`` may hold
``[defaults]`` (values for absent columns and empty cells) and ``[axes]`` (lists crossed with
every row); ``--set column=value`` overrides a column in every row. Prompts are Jinja2 templates
rendered in the sandbox with strict undefined; every column is a variable.

Problems are collected, never raised one by one: the caller gets all of them at once, each
with file, spreadsheet row (header = row 1) and column. pandas is used here and nowhere else.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
import jinja2.meta
import jinja2.sandbox

from . import rules
from .errors import ExperimentError, Problem
from .models import Request, Variant, content_hash
from .sheet import URL_COLUMNS, Cell, Sheet, Sidecar, read_sheet, read_sidecar

BOOL_COLUMNS = ("generate_audio", "web_search", "content_filter")
RESERVED = (
    "prompt", "mode", "duration", "quality", "aspect_ratio", *BOOL_COLUMNS, *URL_COLUMNS,
    "repeats", "name",
)
DEFAULTS: dict[str, object] = {
    "duration": 5, "quality": "720p", "aspect_ratio": "16:9", "generate_audio": True,
    "web_search": False, "content_filter": True, "repeats": 1,
}
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
MAX_URL_CHARS = 2048
_TRUE = {"true", "yes", "1", "y", "t"}
_FALSE = {"false", "no", "0", "n", "f"}
_PIPE_SPLIT = re.compile(r"(?<!\\)\|")
_EXCEL_TIME = re.compile(r"^\d{1,2}:\d{2}(:\d{2})?$")
_SHAPE_PLACEHOLDER_URL = "https://example.com/placeholder"


# --------------------------------------------------------------------------- cell parsing


@dataclass(frozen=True, slots=True)
class Choice:
    """One value of a (possibly multi-valued) cell: typed, and as shown to people."""

    value: object
    shown: str


class _Cells:
    """Parses cells of one source into lists of `Choice`s, collecting problems."""

    def __init__(self, file: str, problems: list[Problem]) -> None:
        self.file = file
        self.problems = problems

    def problem(self, row: int | None, column: str, message: str) -> None:
        self.problems.append(Problem(self.file, row, column, message))

    def choices(
        self, row: int | None, column: str, cell: Cell, label: str | None = None
    ) -> list[Choice]:
        """The choices of a cell; [] for an empty cell (meaning: use the default).
        ``label`` names the cell in messages when it is not the column (sidecar entries)."""
        label = label or column
        if cell is None:
            return []
        if isinstance(cell, list):
            if column in URL_COLUMNS:
                raw: list[object] = [cell]
            else:
                raw = list(cell)
        elif isinstance(cell, str):
            if not cell.strip():
                return []
            parts = [p.strip().replace("\\|", "|") for p in _PIPE_SPLIT.split(cell)]
            if len(parts) > 1 and not all(parts):
                self.problem(row, label, f"{cell!r} has an empty value between the '|' signs")
                parts = [p for p in parts if p]
            raw = list(parts)
        else:
            raw = [cell]
        out: list[Choice] = []
        for item in raw:
            choice = self.parse(row, column, item, label)
            if choice is not None:
                out.append(choice)
        return _unique_choices(out)

    def parse(self, row: int | None, column: str, item: object, label: str) -> Choice | None:
        parser = _PARSERS.get(column)
        if parser is None:
            text = _text(item)
            return Choice(text, text)
        try:
            return parser(item)
        except _Bad as bad:
            self.problem(row, label, str(bad))
            return None


class _Bad(ValueError):
    pass


def _text(item: object) -> str:
    if isinstance(item, float) and item.is_integer():
        return str(int(item))
    if isinstance(item, list):
        return " ".join(str(i) for i in item)
    return str(item)


def _parse_int(item: object, what: str) -> int:
    if isinstance(item, bool):
        raise _Bad(f"{item!r} is not {what}")
    if isinstance(item, int):
        return item
    if isinstance(item, float) and item.is_integer():
        return int(item)
    text = _text(item).strip()
    try:
        number = float(text)
    except ValueError:
        raise _Bad(f"{text!r} is not {what}") from None
    if not number.is_integer():
        raise _Bad(f"{text!r} is not {what}")
    return int(number)


def _parse_duration(item: object) -> Choice:
    value = _parse_int(item, "a whole number of seconds "
                       f"(allowed {rules.DURATION_MIN}–{rules.DURATION_MAX})")
    return Choice(value, str(value))


def _parse_repeats(item: object) -> Choice:
    value = _parse_int(item, "a whole number of samples (1 or more)")
    if value < 1:
        raise _Bad(f"{value} is below the minimum 1 (how many samples of each variant)")
    return Choice(value, str(value))


def _parse_bool(item: object) -> Choice:
    if isinstance(item, bool):
        return Choice(item, str(item).lower())
    text = _text(item).strip().lower()
    if text in _TRUE:
        return Choice(True, "true")
    if text in _FALSE:
        return Choice(False, "false")
    raise _Bad(f"{_text(item)!r} is not true or false (write true/false, yes/no or 1/0)")


def _parse_mode(item: object) -> Choice:
    text = _text(item).strip().lower()
    if text not in rules.MODES:
        raise _Bad(f"{_text(item)!r} is not a mode (allowed: {', '.join(rules.MODES)})")
    return Choice(text, text)


def _parse_quality(item: object) -> Choice:
    text = _text(item).strip().lower()
    if text.isdigit():
        text += "p"
    if text not in rules.QUALITIES:
        raise _Bad(f"{_text(item)!r} is not allowed (allowed: {', '.join(rules.QUALITIES)})")
    return Choice(text, text)


def _parse_aspect(item: object) -> Choice:
    text = re.sub(r"\s+", "", _text(item)).lower()
    if text in rules.ASPECT_RATIOS:
        return Choice(text, text)
    hint = ""
    if _EXCEL_TIME.match(text):
        hint = ("; it looks like a spreadsheet turned the ratio into a time: "
                "format the column as Text")
    raise _Bad(f"{_text(item)!r} is not allowed (allowed: {', '.join(rules.ASPECT_RATIOS)}){hint}")


def _parse_urls(item: object) -> Choice:
    urls = [str(u).strip() for u in item] if isinstance(item, list) else _text(item).split()
    urls = [u for u in urls if u]
    for url in urls:
        message = url_problem(url)
        if message:
            raise _Bad(message)
    return Choice(tuple(urls), " ".join(urls))


def url_problem(url: str) -> str | None:
    """Why a media URL cannot be sent, or None. The provider fetches these URLs itself."""
    short = url if len(url) <= 80 else url[:77] + "..."
    if len(url) > MAX_URL_CHARS:
        return f"a URL is {len(url):,} characters long (at most {MAX_URL_CHARS:,}): {short!r}"
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return f"{short!r} is not a valid URL"
    if parts.scheme not in ("http", "https") or not host:
        return f"{short!r} is not a web address (it must start with https:// or http://)"
    if rules.is_private_host(host):
        return (f"{short!r} points to a private or local address the provider cannot reach; "
                "use a public URL")
    return None


def _parse_name(item: object) -> Choice:
    text = _text(item).strip()
    return Choice(text, text)


def _parse_prompt(item: object) -> Choice:
    text = _text(item)
    return Choice(text, text.strip())


_PARSERS: dict[str, Callable[[object], Choice]] = {
    "prompt": _parse_prompt,
    "mode": _parse_mode,
    "duration": _parse_duration,
    "quality": _parse_quality,
    "aspect_ratio": _parse_aspect,
    "generate_audio": _parse_bool,
    "web_search": _parse_bool,
    "content_filter": _parse_bool,
    "image_urls": _parse_urls,
    "video_urls": _parse_urls,
    "audio_urls": _parse_urls,
    "repeats": _parse_repeats,
    "name": _parse_name,
}
_DEFAULT_CHOICES = {k: _PARSERS[k](v) for k, v in DEFAULTS.items()}
_NO_URLS = Choice((), "")
_MODE_PAIRS = {m: ("mode", m) for m in rules.MODES}


# --------------------------------------------------------------------------- templates


class _Templates:
    """Compiles prompt templates once and renders them in Jinja's immutable sandbox,
    caching each render by the values of the variables the template actually uses."""

    def __init__(self) -> None:
        self.env = jinja2.sandbox.ImmutableSandboxedEnvironment(
            undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False
        )
        self._compiled: dict[str, tuple[jinja2.Template, tuple[str, ...]] | str] = {}
        self._renders: dict[tuple[str, tuple[str, ...]], tuple[str | None, str | None]] = {}

    def compile(self, source: str) -> tuple[jinja2.Template, tuple[str, ...]] | str:
        """The template and its variables, or an error message."""
        hit = self._compiled.get(source)
        if hit is None:
            try:
                ast = self.env.parse(source)
                names = tuple(sorted(jinja2.meta.find_undeclared_variables(ast)))
                hit = (self.env.from_string(ast), names)
            except jinja2.TemplateSyntaxError as exc:
                hit = f"the prompt template has an error on its line {exc.lineno}: {exc.message}"
            self._compiled[source] = hit
        return hit

    def render(self, source: str, context: Mapping[str, str]) -> tuple[str | None, str | None]:
        """(rendered prompt, None) or (None, error message)."""
        compiled = self.compile(source)
        if isinstance(compiled, str):
            return None, compiled
        template, names = compiled
        missing = [n for n in names if n not in context]
        if missing:
            uses = ", ".join("{{ " + n + " }}" for n in missing)
            known = ", ".join(sorted(context)) or "none"
            noun = "column" if len(missing) == 1 else "columns"
            return None, (f"the prompt uses {uses} but there is no such {noun} "
                          f"(columns you can use: {known}; names are lower case)")
        key = (source, tuple(context[n] for n in names))
        hit = self._renders.get(key)
        if hit is None:
            hit = self._render(template, {n: context[n] for n in names})
            self._renders[key] = hit
        return hit

    @staticmethod
    def _render(
        template: jinja2.Template, context: dict[str, str]
    ) -> tuple[str | None, str | None]:
        try:
            return template.render(context).strip(), None
        except jinja2.UndefinedError as exc:
            return None, f"the prompt template uses something undefined ({exc.message})"
        except jinja2.exceptions.SecurityError as exc:
            return None, f"the prompt template does something prompts may not do ({exc})"
        except Exception as exc:  # any error raised while rendering user text is the user's
            return None, f"the prompt template could not be filled in ({exc})"


# --------------------------------------------------------------------------- expansion


@dataclass(frozen=True)
class Expansion:
    """Every distinct variant of an experiment, tier-independent."""

    source: str
    rows_read: int
    variants: tuple[Variant, ...]
    expanded: int  # jobs before identical ones were collapsed
    jobs_per_tier: int  # jobs after collapsing (sum of samples)
    dimensions: dict[str, tuple[str, ...]]  # varied column -> its values, in first-seen order

    @property
    def duplicates(self) -> int:
        return self.expanded - self.jobs_per_tier


def load(
    path: Path, overrides: Mapping[str, str] | None = None
) -> Expansion:
    """Read, validate and expand an experiment. Raises ExperimentError with every problem."""
    sheet = read_sheet(path)
    sidecar = read_sidecar(path)
    return expand(sheet, sidecar, overrides or {})


def expand(sheet: Sheet, sidecar: Sidecar | None, overrides: Mapping[str, str]) -> Expansion:
    problems: list[Problem] = []
    cells = _Cells(sheet.name, problems)
    templates = _Templates()

    # Which columns exist where: the file's, the sidecar's and the --set ones.
    file_columns = [c for c in sheet.columns if c and c not in overrides]
    side_defaults = dict(sidecar.defaults) if sidecar else {}
    side_axes = dict(sidecar.axes) if sidecar else {}
    side_name = sidecar.name if sidecar else ""
    side_cells = _Cells(side_name, problems)
    set_cells = _Cells("--set", problems)
    for col in list(side_axes):
        if col in file_columns or col in overrides:
            where = "a column of " + sheet.name if col in file_columns else "set with --set"
            side_cells.problem(None, f"[axes]:{col}", f"is also {where}; keep only one of them")
            del side_axes[col]
    all_columns = _unique([*file_columns, *overrides, *side_axes, *side_defaults])

    # Parse the constant sources once.
    axis_choices = {
        c: _unique_choices(
            ch for v in values for ch in side_cells.choices(None, c, v, label=f"[axes]:{c}")
        )
        for c, values in side_axes.items()
    }
    default_choices = {
        c: side_cells.choices(None, c, v, label=f"[defaults]:{c}")
        for c, v in side_defaults.items()
    }
    set_choices = {c: set_cells.choices(None, c, v) for c, v in overrides.items()}

    _check_unused_columns(sheet, all_columns, templates, problems)

    variants: dict[str, Variant] = {}
    samples: dict[str, int] = {}
    expanded = 0
    seen_values: dict[str, dict[str, None]] = {c: {} for c in ("name", "mode", *all_columns)}
    prompt_is_axis = False
    shape_checks: dict[tuple[object, ...], list[rules.Violation]] = {}

    for row, raw in sheet.rows:
        per_column: dict[str, list[Choice]] = {}
        for col in all_columns:
            if col in set_choices:
                choices = set_choices[col]
            elif col in axis_choices:
                choices = axis_choices[col]
            else:
                choices = cells.choices(row, col, raw.get(col)) if col in raw else []
                if not choices:
                    choices = default_choices.get(col, [])
            if not choices:
                if col in _DEFAULT_CHOICES:
                    choices = [_DEFAULT_CHOICES[col]]
                elif col not in _PARSERS:
                    choices = [Choice("", "")]  # an empty variable cell is an empty string
            if choices:
                per_column[col] = choices
        if "prompt" not in per_column:
            cells.problem(row, "prompt", "the prompt is empty")
            continue
        for col, default in _DEFAULT_CHOICES.items():
            per_column.setdefault(col, [default])
        name_choice = per_column.pop("name", [Choice(f"row {row}", f"row {row}")])[0]
        seen_values["name"][name_choice.shown] = None
        repeats_choices = per_column.pop("repeats")
        prompt_is_axis = prompt_is_axis or len(per_column["prompt"]) > 1
        axes = list(per_column.items())
        for col, choices in axes:
            bucket = seen_values.setdefault(col, {})
            for ch in choices:
                bucket[ch.shown] = None
        cols = [c for c, _ in axes]
        pairs = [[(c, ch.shown) for ch in chs] for c, chs in axes]
        for combo_index in itertools.product(*(range(len(chs)) for _, chs in axes)):
            combo = {cols[i]: axes[i][1][j] for i, j in enumerate(combo_index)}
            context = {c: ch.shown for c, ch in combo.items() if c != "prompt"}
            prompt, error = templates.render(str(combo["prompt"].value), context)
            if error is not None:
                cells.problem(row, "prompt", error)
                continue
            assert prompt is not None
            request = _request(combo, prompt)
            row_problems = _check_request(request, shape_checks)
            if row_problems:
                for column, message in row_problems:
                    cells.problem(row, column, message)
                continue
            values = tuple(pairs[i][j] for i, j in enumerate(combo_index))
            if "mode" not in combo:
                values += (_MODE_PAIRS[request.mode],)
                seen_values["mode"][request.mode] = None
            vkey = content_hash(request.canonical())
            for rep in repeats_choices:
                count = int(str(rep.value))
                expanded += count
                if vkey not in variants:
                    variants[vkey] = Variant(
                        request=request, variant_key=vkey, source=sheet.name, row=row,
                        name=name_choice.shown, values=(("name", name_choice.shown), *values),
                    )
                samples[vkey] = max(samples.get(vkey, 0), count)
    if problems:
        raise ExperimentError(problems)

    final = tuple(
        v if samples[k] == 1 else _with_samples(v, samples[k]) for k, v in variants.items()
    )
    if not prompt_is_axis:  # each row has one template: the row's name tells them apart
        seen_values.pop("prompt")
    dimensions = {c: tuple(vals) for c, vals in seen_values.items() if len(vals) > 1}
    return Expansion(
        source=sheet.name, rows_read=len(sheet.rows), variants=final, expanded=expanded,
        jobs_per_tier=sum(samples.values()), dimensions=dimensions,
    )


def _with_samples(variant: Variant, n: int) -> Variant:
    return Variant(variant.request, variant.variant_key, variant.source, variant.row,
                   variant.name, variant.values, n)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _unique_choices(items: Iterable[Choice]) -> list[Choice]:
    return list(dict.fromkeys(items))


def _request(combo: Mapping[str, Choice], prompt: str) -> Request:
    images: tuple[str, ...] = combo.get("image_urls", _NO_URLS).value  # type: ignore[assignment]
    videos: tuple[str, ...] = combo.get("video_urls", _NO_URLS).value  # type: ignore[assignment]
    audios: tuple[str, ...] = combo.get("audio_urls", _NO_URLS).value  # type: ignore[assignment]
    mode_choice = combo.get("mode")
    mode = (
        mode_choice.value if mode_choice is not None
        else rules.infer_mode(len(images), len(videos), len(audios))
    )
    return Request(
        mode=mode,  # type: ignore[arg-type]
        prompt=prompt,
        duration=combo["duration"].value,  # type: ignore[arg-type]
        quality=combo["quality"].value,  # type: ignore[arg-type]
        aspect_ratio=combo["aspect_ratio"].value,  # type: ignore[arg-type]
        generate_audio=combo["generate_audio"].value,  # type: ignore[arg-type]
        content_filter=combo["content_filter"].value,  # type: ignore[arg-type]
        web_search=combo["web_search"].value,  # type: ignore[arg-type]
        image_urls=images,
        video_urls=videos,
        audio_urls=audios,
    )


_FIELD_TO_COLUMN = {"model_params.web_search": "web_search", "model": "mode"}


def _check_request(
    request: Request, cache: dict[tuple[object, ...], list[rules.Violation]]
) -> list[tuple[str, str]]:
    """Tier-independent API rules (checked with the standard tier, which allows the most);
    tier-specific ones are checked by `tier_problems`."""
    out = [("prompt", m) for m in rules.prompt_problems(request.prompt)]
    key = _shape(request)
    hit = cache.get(key)
    if hit is None:
        hit = [v for v in rules.check_body(_shape_body(request, "standard"))
               if v.field != "prompt"]
        cache[key] = hit
    out.extend((_FIELD_TO_COLUMN.get(v.field, v.field), v.message) for v in hit)
    return out


def _shape(request: Request) -> tuple[object, ...]:
    return (request.mode, request.duration, request.quality, request.aspect_ratio,
            request.web_search, len(request.image_urls), len(request.video_urls),
            len(request.audio_urls))


def _shape_body(request: Request, tier: str) -> dict[str, Any]:
    """The request's body with placeholder prompt and URLs: what the rules depend on."""
    shaped = Request(
        request.mode, "x", request.duration, request.quality, request.aspect_ratio,
        request.generate_audio, request.content_filter, request.web_search,
        tuple(_SHAPE_PLACEHOLDER_URL for _ in request.image_urls),
        tuple(_SHAPE_PLACEHOLDER_URL for _ in request.video_urls),
        tuple(_SHAPE_PLACEHOLDER_URL for _ in request.audio_urls),
    )
    body = shaped.body(tier)
    if request.web_search:
        body["model_params"] = {"web_search": True}
    return body


class TierCheck:
    """The tier-specific rules (1080p on standard only, no web search on mini), cached by
    the shape of a request so that a million variants cost a handful of rule checks."""

    def __init__(self, tier: str) -> None:
        self.tier = tier
        self._cache: dict[tuple[object, ...], list[rules.Violation]] = {}

    def problems(self, variant: Variant) -> list[Problem]:
        key = _shape(variant.request)
        hit = self._cache.get(key)
        if hit is None:
            hit = rules.check_body(_shape_body(variant.request, self.tier))
            self._cache[key] = hit
        return [self._problem(variant, v) for v in hit]

    def _problem(self, variant: Variant, violation: rules.Violation) -> Problem:
        message = violation.message
        if violation.field == "model_params.web_search" and self.tier == "mini":
            message += "; use --tier fast or standard, or set web_search to false"
        elif violation.field == "quality":
            message += "; use --tier standard or choose 720p"
        column = _FIELD_TO_COLUMN.get(violation.field, violation.field)
        return Problem(variant.source, variant.row, column, message)


def tier_problems(variants: Iterable[Variant], tier: str) -> Iterator[Problem]:
    """Problems of the variants on ``tier``."""
    check = TierCheck(tier)
    for v in variants:
        yield from check.problems(v)


def _check_unused_columns(
    sheet: Sheet, columns: Sequence[str], templates: _Templates, problems: list[Problem]
) -> None:
    """Refuse columns that look like settings (misspelled or unsupported) and that no
    prompt template uses: they would silently do nothing."""
    used: set[str] = set()
    for _, raw in sheet.rows:
        cell = raw.get("prompt")
        if isinstance(cell, str):
            for part in _PIPE_SPLIT.split(cell):
                compiled = templates.compile(part.strip().replace("\\|", "|"))
                if not isinstance(compiled, str):
                    used.update(compiled[1])
    for col in columns:
        if col in RESERVED or col in used:
            continue
        if col in NOT_SETTINGS:
            problems.append(Problem(sheet.name, 1, col, NOT_SETTINGS[col]))
            continue
        close = difflib.get_close_matches(col, RESERVED, n=1, cutoff=0.8)
        if close:
            problems.append(Problem(
                sheet.name, 1, col,
                f"unknown column; did you mean '{close[0]}'? (a column that is not a setting "
                "is a template variable, but no prompt uses {{ " + col + " }})",
            ))
