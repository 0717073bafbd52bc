"""Pipes in free text are prose, never axes: a prompt or name containing ``|`` is sent whole
(a shot list or a JSON-style prompt must not become paid junk variants); Parquet strings are
literal, only its list cells are axes; a sheet that used to split prompts gets a warning."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from click.testing import Result

from runner.grid.experiment import load
from runner.grid.plan import make_plan

ROOT = Path(__file__).resolve().parents[1]

# prompts as people write them: shot lists, JSON-style specs, a pipe in prose
PROSE = [
    "Shot 1: a {{ product }} on a desk | Shot 2: close-up | Length 15 seconds",
    '{ "META": "ad", "SCENE": "{{ product }} at dawn" | "night" }',
    "A {{ product }} | minimal | studio light | 4k",
]


def _grid(rows: int) -> str:
    lines = ["prompt,product,aspect_ratio,name"]
    for i in range(rows):
        prompt = PROSE[i % len(PROSE)].replace('"', '""')
        lines.append(f'"{prompt}",item {i},16:9 | 9:16,"Idea {i} | draft"')
    return "\n".join(lines) + "\n"


def test_thirty_prose_prompts_with_pipes_give_exactly_rows_times_axes_jobs(
    write: Callable[..., Path],
) -> None:
    plan = make_plan(write("prose.csv", _grid(30)))

    assert plan.job_count == 30 * 2  # rows x aspect ratios, nothing split out of the prompts
    prompts = {v.request.prompt for v in plan.expansion.variants}
    assert "Shot 1: a item 0 on a desk | Shot 2: close-up | Length 15 seconds" in prompts
    assert not any(p.strip() in ("Length 15 seconds", "minimal", "4k") for p in prompts)
    assert {v.name for v in plan.expansion.variants} >= {"Idea 0 | draft", "Idea 29 | draft"}
    assert "prompt" not in plan.expansion.dimensions


def test_a_prompt_with_a_pipe_is_named_in_a_warning_with_the_new_way(
    write: Callable[..., Path],
) -> None:
    plan = make_plan(write("old.csv", "prompt\nA cat | A dog\nA bird\n"))

    assert plan.job_count == 1 + 1
    warning = next(w for w in plan.warnings if "'|'" in w)
    assert "old.csv:row 2:prompt" in warning and "row 3" not in warning
    assert "one row per prompt" in warning and "{{ style }}" in warning


def test_escaped_pipes_in_a_prompt_still_read_as_pipes(write: Callable[..., Path]) -> None:
    exp = load(write("e.csv", "prompt\nRock \\| Roll {{ 'x' | upper }}\n"))

    assert [v.request.prompt for v in exp.variants] == ["Rock | Roll X"]


def test_parquet_strings_are_literal_and_only_list_cells_are_axes(tmp_path: Path) -> None:
    path = tmp_path / "g.parquet"
    pd.DataFrame(
        {
            "prompt": ["A lamp | on a desk", "A {{ style }} chair"],
            "style": ["oak | pine", "oak | pine"],
            "aspect_ratio": [["16:9", "9:16"], ["1:1"]],
        }
    ).to_parquet(path)

    exp = load(path)

    assert sorted(v.request.prompt for v in exp.variants) == [
        "A lamp | on a desk",
        "A lamp | on a desk",
        "A oak | pine chair",
    ]
    assert exp.warnings == ()


def test_a_prompt_axis_is_still_possible_as_a_variable_or_a_parquet_list(
    tmp_path: Path,
    write: Callable[..., Path],
) -> None:
    via_variable = load(write("v.csv", "prompt,idea\n{{ idea }},A cat | A dog\n"))
    path = tmp_path / "p.parquet"
    pd.DataFrame({"prompt": [["A cat", "A dog"]]}).to_parquet(path)
    via_list = load(path)

    assert sorted(v.request.prompt for v in via_variable.variants) == ["A cat", "A dog"]
    assert sorted(v.request.prompt for v in via_list.variants) == ["A cat", "A dog"]


def test_every_split_is_listed_by_row_and_column_and_a_regular_grid_as_a_product(
    write: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    rows = "\n".join(
        f"A {{{{ style }}}} lamp {i},soft | bold | noir,16:9 | 9:16,5 | 8,3" for i in range(25)
    )
    path = write("g.csv", "prompt,style,aspect_ratio,duration,repeats\n" + rows + "\n")

    text = cli("plan", path).stdout
    data = json.loads(cli("plan", path, "--json").stdout)

    assert "grid: 25 rows × 3 styles × 2 aspect ratios × 2 durations × 3 repeats" in text
    assert "rows 2–26: style -> 3 values, aspect_ratio -> 2 values, duration -> 2 values" in text
    assert data["grid"] == {
        "rows": 25,
        "axes": {"style": 3, "aspect_ratio": 2, "duration": 2},
        "repeats": 3,
        "text": "25 rows × 3 styles × 2 aspect ratios × 2 durations × 3 repeats",
    }
    assert len(data["splits"]) == 25 * 3
    assert data["splits"][0] == {
        "file": "g.csv",
        "row": 2,
        "column": "style",
        "count": 3,
        "values": ["soft", "bold", "noir"],
    }
    assert data["jobs"] == 25 * 3 * 2 * 2 * 3


def test_rows_that_split_differently_are_listed_row_by_row_without_a_product(
    write: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    path = write(
        "mixed.csv",
        "prompt,style,aspect_ratio\nA {{ style }} lamp,soft | bold | noir,16:9\n"
        "A {{ style }} chair,soft,16:9 | 9:16\nA {{ style }} desk,oak,1:1\n"
        "A {{ style }} rug,soft | bold | noir,16:9\n",
    )

    text = cli("plan", path, "--set", "duration=5 | 10").stdout
    data = json.loads(cli("plan", path, "--json").stdout)

    assert "grid:" not in text
    assert "rows 2, 5: style -> 3 values" in text
    assert "row 3: aspect_ratio -> 2 values" in text
    assert "row 4" not in text.split("Varied dimensions")[0]
    assert "every row: duration -> 2 values (--set)" in text
    assert data["grid"] is None
    assert [(s["row"], s["column"], s["count"]) for s in data["splits"]] == [
        (2, "style", 3),
        (3, "aspect_ratio", 2),
        (5, "style", 3),
    ]


def test_axes_of_the_sidecar_are_listed_once_for_every_row(cli: Callable[..., Result]) -> None:
    text = cli("plan", ROOT / "experiments" / "sweep.csv").stdout

    assert "grid: 5 rows × 4 styles × 2 aspect ratios × 5 hooks" in text
    assert "every row: hook -> 5 values (sweep.toml [axes])" in text


def test_a_split_value_that_reads_like_prose_is_named_in_a_warning_with_the_fix(
    write: Callable[..., Path],
) -> None:
    scene = "a sunlit kitchen with morning light streaming through the tall window"
    path = write(
        "scenes.csv",
        f"prompt,scene,mood\nA lamp in {{{{ scene }}}},{scene} | a dark alley,calm\n"
        "A chair in {{ scene }},a barn | a loft,calm\n",
    )

    plan = make_plan(path)

    assert plan.job_count == 4  # a warning, not a refusal
    (warning,) = [w for w in plan.warnings if "prose" in w]
    assert warning.startswith("scenes.csv:row 2:scene (69 characters): ")
    assert "row 3" not in warning
    assert "write \\| for a literal pipe" in warning and "one per row" in warning


def test_a_cell_split_into_more_than_eight_values_is_named_in_a_warning(
    write: Callable[..., Path],
) -> None:
    many = " | ".join(f"v{i}" for i in range(9))
    eight = " | ".join(f"w{i}" for i in range(8))
    path = write("many.csv", f"prompt,x,y\nA {{{{ x }}}} {{{{ y }}}},{many},{eight}\n")
    write("many.toml", '[axes]\nz = ["a | b | c | d | e | f | g | h | i"]\n')

    plan = make_plan(path)

    (warning,) = [w for w in plan.warnings if "more than 8 values" in w]
    assert warning.startswith("many.csv:row 2:x (9 values), many.toml:[axes]:z (9 values): ")
    assert ":y" not in warning
    assert "write \\| for a literal pipe, or put one value per row" in warning


def test_long_urls_and_parquet_lists_are_not_taken_for_prose(
    tmp_path: Path, write: Callable[..., Path]
) -> None:
    url = "https://images.example.com/catalog/2026/spring/very-long-product-name-front.png"
    csv_plan = make_plan(write("u.csv", f"prompt,image_urls\nA mug,{url} | {url}?v=2\n"))
    path = tmp_path / "p.parquet"
    pd.DataFrame({"prompt": ["A {{ x }}"], "x": [[f"value {i}" for i in range(12)]]}).to_parquet(
        path
    )

    assert csv_plan.job_count == 2 and csv_plan.warnings == ()
    assert make_plan(path).warnings == ()
