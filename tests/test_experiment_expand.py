"""Expansion rules: pipe axes (with the \\| escape), sidecar [defaults] and [axes], --set,
repeats, mode inference, sandboxed Jinja templates, collapsing identical jobs, dimensions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runner.grid.cells import split_cell
from runner.grid.experiment import load
from runner.grid.prompts import Templates
from runner.models import content_hash


def test_pipe_cells_expand_to_the_cartesian_product(write: Callable[..., Path]) -> None:
    exp = load(write("g.csv", "prompt,duration,aspect_ratio\nA cat,5 | 10,16:9 | 9:16 | 1:1\n"))

    combos = {(v.request.duration, v.request.aspect_ratio) for v in exp.variants}
    assert len(exp.variants) == 6
    assert combos == {(d, a) for d in (5, 10) for a in ("16:9", "9:16", "1:1")}
    assert exp.dimensions == {"duration": ("5", "10"), "aspect_ratio": ("16:9", "9:16", "1:1")}


def test_escaped_pipe_is_literal_and_jinja_filters_are_not_axes() -> None:
    assert split_cell(r"Rock \| Roll | Jazz") == ["Rock | Roll", "Jazz"]
    assert split_cell("A {{ product | upper }} | B") == ["A {{ product | upper }}", "B"]


def test_template_variables_come_from_any_other_column(write: Callable[..., Path]) -> None:
    exp = load(
        write(
            "t.csv",
            "prompt,product,scene\nA {{ product | upper }} on a {{ scene }},lamp,beach | roof\n",
        )
    )

    assert [v.request.prompt for v in exp.variants] == ["A LAMP on a beach", "A LAMP on a roof"]
    assert exp.dimensions["scene"] == ("beach", "roof")
    assert "product" not in exp.dimensions  # one value: not varied


def test_reserved_columns_are_template_variables_too(write: Callable[..., Path]) -> None:
    exp = load(write("r.csv", "prompt,duration\nA {{ duration }}-second teaser,6\n"))

    assert exp.variants[0].request.prompt == "A 6-second teaser"


def test_defaults_are_the_documented_ones(write: Callable[..., Path]) -> None:
    r = load(write("d.csv", "prompt\nA cat\n")).variants[0].request

    assert (r.mode, r.duration, r.quality, r.aspect_ratio) == ("text", 5, "720p", "16:9")
    assert (r.generate_audio, r.web_search, r.content_filter) == (True, False, True)


def test_booleans_integers_and_qualities_accept_spreadsheet_spellings(
    write: Callable[..., Path],
) -> None:
    exp = load(
        write(
            "b.csv", "prompt,generate_audio,content_filter,duration,quality\nA cat,No,YES,8.0,480\n"
        )
    )
    r = exp.variants[0].request

    assert (r.generate_audio, r.content_filter, r.duration, r.quality) == (False, True, 8, "480p")


def test_mode_is_inferred_from_media(write: Callable[..., Path]) -> None:
    img = "https://cdn.example/{}.png"
    rows = [
        "A cat,,,",
        f"A cat,{img.format(1)},,",
        f"A cat,{img.format(1)} {img.format(2)},,",
        f"A cat,{img.format(1)} {img.format(2)} {img.format(3)},,",
        "A cat,,https://cdn.example/v.mp4,",
        f"A cat,{img.format(1)},,https://cdn.example/a.mp3",
    ]
    exp = load(write("m.csv", "prompt,image_urls,video_urls,audio_urls\n" + "\n".join(rows)))

    assert [v.request.mode for v in exp.variants] == [
        "text",
        "image",
        "image",
        "reference",
        "reference",
        "reference",
    ]
    assert exp.dimensions["mode"] == ("text", "image", "reference")


def test_urls_are_separated_by_whitespace_and_newlines(write: Callable[..., Path]) -> None:
    exp = load(
        write(
            "u.csv",
            'prompt,image_urls\nA cat,"https://a.example/1.png\n  https://a.example/2.png"\n',
        )
    )

    assert exp.variants[0].request.image_urls == (
        "https://a.example/1.png",
        "https://a.example/2.png",
    )


@pytest.mark.fault("B2")
def test_repeats_make_samples_of_one_variant(write: Callable[..., Path]) -> None:
    exp = load(write("rep.csv", "prompt,repeats\nA cat,3\nA dog,1\n"))

    assert [v.samples for v in exp.variants] == [3, 1]
    assert exp.jobs_per_tier == 4


@pytest.mark.fault("B2")
def test_identical_jobs_are_collapsed_and_counted(write: Callable[..., Path]) -> None:
    exp = load(
        write("dup.csv", "name,prompt,duration,repeats\nfirst,A cat,5 | 6,2\nsecond,A cat,5,3\n")
    )

    assert len(exp.variants) == 2
    assert exp.expanded == 4 + 3
    assert exp.jobs_per_tier == 3 + 2  # (cat,5) x3 samples, (cat,6) x2 samples
    assert exp.duplicates == 2
    assert exp.variants[0].name == "first"  # the first row keeps the variant


def test_sidecar_defaults_fill_absent_columns_and_empty_cells(write: Callable[..., Path]) -> None:
    write("s.toml", '[defaults]\nduration = 8\nquality = "480p"\nstyle = "noir"\n')
    exp = load(write("s.csv", "prompt,duration\nA {{ style }} cat,\nA dog,6\n"))

    assert [(v.request.prompt, v.request.duration, v.request.quality) for v in exp.variants] == [
        ("A noir cat", 8, "480p"),
        ("A dog", 6, "480p"),
    ]


def test_sidecar_axes_are_crossed_with_every_row(write: Callable[..., Path]) -> None:
    write("x.toml", '[axes]\naspect_ratio = ["16:9", "9:16"]\nmood = ["calm", "bold"]\n')
    exp = load(write("x.csv", "prompt\nA {{ mood }} cat\nA {{ mood }} dog\n"))

    assert len(exp.variants) == 2 * 2 * 2
    assert exp.dimensions["mood"] == ("calm", "bold")
    assert {v.request.prompt for v in exp.variants} == {
        "A calm cat",
        "A bold cat",
        "A calm dog",
        "A bold dog",
    }


def test_set_overrides_a_column_everywhere_and_may_be_an_axis(write: Callable[..., Path]) -> None:
    path = write("o.csv", "prompt,duration\nA cat,5\nA dog,6\n")

    exp = load(path, {"duration": "10 | 12"})

    assert sorted(v.request.duration for v in exp.variants) == [10, 10, 12, 12]


def test_sandbox_renders_loops_but_keeps_python_out(write: Callable[..., Path]) -> None:
    exp = load(
        write(
            "j.csv", 'prompt,items\n"{% for w in items.split() %}{{ w }}! {% endfor %}",hop skip\n'
        )
    )

    assert exp.variants[0].request.prompt == "hop! skip!"


def test_variant_key_is_the_hash_of_the_canonical_body_without_model(
    write: Callable[..., Path],
) -> None:
    v = load(write("k.csv", "prompt\nA cat\n")).variants[0]
    body = v.request.body("fast")
    del body["model"]

    assert v.variant_key == content_hash(body)
    assert len(v.variant_key) == 16


def test_every_variant_key_matches_its_request_over_a_mixed_grid(
    write: Callable[..., Path],
) -> None:
    """Expansion builds canonical JSON from cached pieces; it must equal the real thing."""
    write("mix.toml", "[axes]\ncontent_filter = [true, false]\n")
    exp = load(
        write(
            "mix.csv",
            "prompt,image_urls,video_urls,web_search,quality,duration\n"
            'Ünïcödé "quotes" {{ quality }},,,true | false,480p | 720p,4 | 15\n'
            "Animate @image1,https://a.example/1.png,,,720p,5\n"
            "Mix @video1,https://a.example/1.png,https://a.example/v.mp4,,,6\n",
        )
    )

    assert len(exp.variants) == 16 + 2 + 2
    for v in exp.variants:
        assert v.variant_key == content_hash(v.request.canonical())


@given(
    st.lists(
        st.sampled_from(["A ", "{{ a }}", "{{ b }}", " and ", "\n", "é", "{{a}}"]), max_size=8
    ),
    st.text(max_size=5),
    st.text(max_size=5),
)
def test_plain_templates_render_exactly_as_jinja_does(parts: list[str], a: str, b: str) -> None:
    source = "".join(parts) or "x"
    templates = Templates()
    compiled = templates.compile(source)
    assert not isinstance(compiled, str)
    template, names = compiled
    context = {"a": a, "b": b}

    fast = templates.render(source, tuple(context[n] for n in names))

    assert fast == (template.render(context).strip(), None)
