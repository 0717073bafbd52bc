"""Winners files of several reviewers: votes counted per reviewer, --min-votes, errors with
their file, row and column; cells read back through the spreadsheet rule (csvsafe)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import ExperimentError
from runner.review.csvsafe import to_excel
from runner.review.promote import read_picks, read_votes, read_winners, write_notes
from runner.review.report_data import winner_notes

RUN = "20261130-120000-demo"
HEAD = ["run_id", "job_key", "variant_key", "tier", "name", "reviewer", "note", "prompt"]
FORMULA = '=HYPERLINK("http://example.com","x")'


def write(
    path: Path, rows: list[list[str]], *, head: list[str] = HEAD, sep: str = ",", bom: bool = False
) -> Path:
    def cell(v: str) -> str:
        v = to_excel(v)
        return '"' + v.replace('"', '""') + '"' if any(c in v for c in f'"{sep}\n') else v

    lines = [sep.join(head)] + [sep.join(cell(c) for c in r) for r in rows]
    path.write_bytes((("\ufeff" if bom else "") + "\r\n".join(lines) + "\r\n").encode())
    return path


def row(key: str, reviewer: str, note: str = "") -> list[str]:
    return [RUN, key, key[:4], "fast", "Lamp", reviewer, note, "a lamp"]


def test_votes_are_counted_per_reviewer_and_a_merged_file_is_not_counted_twice(tmp_path):
    ann = write(tmp_path / "ann.csv", [row("a-1", "Ann", FORMULA), row("b-1", "Ann")])
    bob = write(
        tmp_path / "bob.csv",
        [row("a-1", "Bob", "-10% brighter"), row("c-1", "Bob")],
        sep=";",
        bom=True,
    )
    merged = write(
        tmp_path / "merged.csv",
        [row("a-1", "Ann", FORMULA), row("a-1", "Bob"), row("b-1", "ann"), row("c-1", "Bob")],
    )

    votes = read_votes([ann, bob, merged], RUN)

    assert {k: votes.count(k) for k in votes.first} == {"a-1": 2, "b-1": 1, "c-1": 1}
    assert [p.key for p in votes.chosen(2)] == ["a-1"]
    assert [p.key for p in votes.chosen(1)] == ["a-1", "b-1", "c-1"]
    assert votes.short(2) == ["b-1 (1 vote: Ann)", "c-1 (1 vote: Bob)"]
    assert sorted(votes.everyone.values()) == ["Ann", "Bob"]
    # the formula note comes back exactly, once, with its reviewer
    assert votes.notes["a-1"] == [("Ann", FORMULA), ("Bob", "-10% brighter")]
    assert "'=HYPERLINK" in ann.read_text()  # neutralised on disk


def test_a_file_without_reviewer_column_is_one_reviewer_named_after_the_file(tmp_path):
    head = ["run_id", "job_key", "note"]
    hand = write(tmp_path / "hand.csv", [[RUN, "a-1", "ok"], [RUN, "b-1", ""]], head=head)
    also = write(tmp_path / "also.csv", [[RUN, "a-1", ""]], head=head)

    votes = read_votes([hand, also], RUN)

    assert dict(votes.reviewers["a-1"]) == {"hand.csv": "hand.csv", "also.csv": "also.csv"}
    assert [p.key for p in votes.chosen(2)] == ["a-1"]
    assert votes.notes["a-1"] == [("hand.csv", "ok")]


def test_read_winners_keeps_one_row_per_job_for_prune_and_share(tmp_path):
    merged = write(tmp_path / "m.csv", [row("a-1", "Ann"), row("a-1", "Bob"), row("b-1", "Bob")])
    assert read_winners(merged, RUN) == [(2, "a-1"), (4, "b-1")]


def test_bad_files_name_file_row_and_column(tmp_path):
    twice = write(tmp_path / "twice.csv", [row("a-1", "Ann"), row("a-1", "ann")])
    other = write(tmp_path / "other.csv", [["1999-x", "a-1", "a", "fast", "L", "Ann", "", ""]])
    nokey = write(tmp_path / "nokey.csv", [["x"]], head=["reviewer"])

    with pytest.raises(ExperimentError) as err:
        read_votes([twice, other, nokey, tmp_path / "absent.csv"], RUN)

    assert [str(p) for p in err.value.problems] == [
        "absent.csv: cannot read it (No such file or directory)",
        "nokey.csv:row 1: there is no 'job_key' column (columns found: reviewer); "
        "export it from the report",
        "other.csv:row 2:run_id: this pick is from run 1999-x, not 20261130-120000-demo; "
        "promote that run (`runner promote 1999-x --winners other.csv`)",
        "twice.csv:row 3:job_key: a-1 is picked twice by ann (also on row 2); keep one row",
    ]


def test_a_cell_starting_with_an_apostrophe_loses_exactly_one(tmp_path):
    path = write(tmp_path / "w.csv", [row("a-1", "Ann", "'quoted"), row("b-1", "Ann", "+1")])
    assert "''quoted" in path.read_text()
    assert [p.note for p in read_picks(path, RUN)] == ["'quoted", "+1"]


def test_notes_kept_for_the_promoted_run_are_read_back_by_its_report(tmp_path):
    ann = write(tmp_path / "ann.csv", [row("a-1", "Ann", FORMULA), row("b-1", "Ann", "meh")])
    votes = read_votes([ann], RUN)
    write_notes(tmp_path / "child", RUN, votes, ["a-1"])
    assert winner_notes(tmp_path / "child") == {"a-1": [["Ann", FORMULA]]}
    assert winner_notes(tmp_path / "nowhere") == {}


def test_a_job_starred_by_prefix_and_by_full_key_counts_each_reviewer_once(tmp_path):
    full = "3f2a9c0d1e4b5a6c-fast-1"
    ann = write(tmp_path / "ann.csv", [row(full[:8], "Ann")])  # a hand-edited short key
    bob = write(tmp_path / "bob.csv", [row(full, "Bob"), row("b-1", "Bob")])
    keys = {full[:8]: full, full: full, "b-1": "b-1"}

    votes = read_votes([ann, bob], RUN)
    assert sorted(votes.count(k) for k in votes.first) == [1, 1, 1]  # as written: split
    whole = votes.resolved(keys.__getitem__)
    assert {k: whole.count(k) for k in whole.first} == {full: 2, "b-1": 1}
    assert [p.key for p in whole.chosen(2)] == [full[:8]]  # Ann's row, as first starred
