"""`runner metrics import` reads each platform's export as it comes (encodings, delimiters,
title lines, totals rows, locale numbers) and attaches its rows to the videos whose job key
the ad names carry; nothing is counted twice."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from runner.cli import main
from runner.metrics.cells import parse_date, parse_number
from runner.metrics.importer import read_report
from runner.metrics.model import AdTotals
from runner.metrics.store import imports_for_run, totals_by_job
from runner.run.ledger import reader

from .runhelp import grid, simulator

CORPUS = Path(__file__).parent / "corpus" / "ads"
STRANGER = "0123456789abcdef-fast-1"  # a well-formed key of no video in the workspace


@dataclass(frozen=True)
class Made:
    workspace: Path
    run_id: str
    keys: list[str]


@pytest.fixture(scope="module")
def made_run(tmp_path_factory: pytest.TempPathFactory) -> Made:
    """One simulated run of four videos, rendered once for the module."""
    base = tmp_path_factory.mktemp("metrics")
    ws = base / "ws"
    exp = grid(base / "g.csv", 4)
    with simulator(speed=1000.0) as url:
        result = CliRunner().invoke(
            main, ["run", str(exp), "--base-url", url, "--workspace", str(ws)]
        )
        assert result.exit_code == 0, result.output
    with sqlite3.connect(ws / "ledger.sqlite") as db:
        (run_id,) = db.execute("SELECT run_id FROM runs").fetchone()
        keys = sorted(k for (k,) in db.execute("SELECT job_key FROM jobs"))
    return Made(ws, run_id, keys)


@pytest.fixture
def made(made_run: Made, tmp_path: Path) -> Made:
    """A copy of the run's workspace for this test to import into."""
    ws = tmp_path / "ws"
    shutil.copytree(made_run.workspace, ws)
    return Made(ws, made_run.run_id, made_run.keys)


def ad(key: str, words: str = "lamp take") -> str:
    """An ad name as `runner export --for-ads` writes it: readable words, then the key."""
    return f"{words}__{key}"


def table(rows: Sequence[Sequence[object]], delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def put(folder: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


def run_import(made: Made, *args: str | Path) -> Result:
    return CliRunner().invoke(
        main, ["metrics", "import", *map(str, args), "--workspace", str(made.workspace)]
    )


def totals(made: Made) -> dict[str, AdTotals]:
    with reader(made.workspace) as store:
        return totals_by_job(store, made.run_id)


# ---------------------------------------------------------------------------- platforms


def test_meta_2017_title_case_reads_link_clicks_and_the_currency_of_the_spend_header(
    made: Made, tmp_path: Path
) -> None:
    k = made.keys
    text = table(
        [
            ["Reporting Starts", "Reporting Ends", "Ad Name", "Ad Set Name", "Delivery",
             "Amount Spent (USD)", "Impressions", "Clicks (All)", "Link Clicks",
             "CTR (Link Click-Through Rate)", "Results", "Cost per Results"],
            ["2026-11-01", "2026-11-07", ad(k[0], 'Lamp, "warm" light'), "set, a", "inactive",
             "12.34", "669", "20", "12", "1.79", "3", "4.11"],
            ["2026-11-01", "2026-11-07", ad(k[1]), "set b", "completed",
             "5", "1000", "40", "30", "3", "", ""],
        ]
    )  # fmt: skip
    result = run_import(made, put(tmp_path, "meta.csv", text))
    assert result.exit_code == 0, result.output
    assert f"meta.csv (Meta Ads Manager): 2 rows, 2 matched to 2 videos of run {made.run_id}" in (
        result.output
    )
    got = totals(made)
    assert got[k[0]] == AdTotals(669, 12, None, 12.34, 3, "USD")
    assert got[k[1]] == AdTotals(1000, 30, None, 5.0, 0, "USD")  # a blank Results cell: none


def test_meta_current_sentence_case_with_a_quoted_comma_header_and_unmatched_rows(
    made: Made, tmp_path: Path
) -> None:
    k = made.keys
    header = [
        "Reporting starts", "Reporting ends", "Campaign name", "Ad set name", "Ad name", "Ad ID",
        "Amount spent (USD)", "Impressions", "Reach", "Clicks (all)", "Link clicks",
        "CTR (link click-through rate)", "CPM (cost per 1,000 impressions) (USD)", "Results",
        "Result indicator", "Cost per result", "ThruPlays", "Video plays at 100%",
    ]  # fmt: skip
    text = table(
        [
            header,
            ["2026-11-01", "2026-11-30", "c", "s", ad(k[0]), "1", "1,234.50", "12,345", "9000",
             "500", "370", "3.00", "100", "7", "actions:link_click", "176.36", "2,000", "1500"],
            ["2026-11-01", "2026-11-30", "c", "s", "Summer sale A", "2", "3", "100", "90",
             "1", "1", "1", "30", "", "", "", "", ""],
            ["2026-11-01", "2026-11-30", "c", "s", ad(STRANGER), "3", "3", "100", "90",
             "1", "1", "1", "30", "", "", "", "", ""],
            ["2026-11-01", "2026-11-30", "c", "s", ad(k[2], "lamp_take_2"), "4", "--", "0", "",
             "0", "0", "", "", "", "", "", "", ""],
        ]
    )  # fmt: skip
    result = run_import(made, put(tmp_path, "meta.csv", text))
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "4 rows, 2 matched to 2 videos" in out
    assert "2 unmatched (row 3: names without a runner key, e.g. 'Summer sale A'" in out
    assert "runner export --for-ads" in out
    assert "row 4: keys of no video in this workspace" in out
    got = totals(made)
    # ThruPlays before "Video plays at 100%"; link clicks before clicks (all)
    assert got[k[0]] == AdTotals(12345, 370, 2000, 1234.5, 7, "USD")
    assert got[k[2]] == AdTotals(0, 0, 0, 0.0, 0, "USD")  # blank in columns it has: none
    with sqlite3.connect(made.workspace / "ledger.sqlite") as db:
        assert db.execute("SELECT rows, matched, unmatched FROM metric_imports").fetchall() == [
            (4, 2, 2)
        ]


def test_tiktok_days_add_up_and_destination_clicks_are_the_clicks(
    made: Made, tmp_path: Path
) -> None:
    k = made.keys
    header = ["Date", "Campaign name", "Ad group name", "Ad name", "Ad ID", "Cost",
              "Impressions", "Reach", "Clicks (all)", "Clicks (destination)",
              "CTR (destination)", "Conversions", "Video views at 100%"]  # fmt: skip
    text = table(
        [
            header,
            ["2026-11-01", "c", "g", ad(k[1]), "9", "$10.00", "2000", "1500", "80", "40",
             "2.00%", "4", "300"],
            ["2026-11-02", "c", "g", ad(k[1]), "9", "$5.50", "1000", "800", "30", "20",
             "2.00%", "1", "100"],
        ]
    )  # fmt: skip
    result = run_import(made, put(tmp_path, "tiktok.csv", text))
    assert result.exit_code == 0, result.output
    assert "tiktok.csv (TikTok Ads Manager): 2 rows, 2 matched to 1 video" in result.output
    assert totals(made)[k[1]] == AdTotals(3000, 60, 400, 15.5, 5, None)
    with reader(made.workspace) as store:
        assert [(i.platform, i.rows, i.matched) for i in imports_for_run(store, made.run_id)] == [
            ("tiktok", 2, 2)
        ]


def google_report(keys: Sequence[str], title: str = "Video") -> str:
    """A Google Ads video report: a title line, the date range, the header, ads, totals."""
    header = ["Campaign", "Ad group", "Ad ID", title, "Video ID", "Currency code", "Cost",
              "Impr.", "Views", "View rate", "Clicks", "CTR", "Video played to 100%",
              "Conversions"]  # fmt: skip
    return table(
        [
            ["Ad report"],
            ["November 1, 2026 - November 30, 2026"],
            header,
            ["c", "g", "1", ad(keys[0]), "dQw4w9WgXcQ", "EUR", "1,234.56", "20,000", "5,000",
             "25.00%", "600", "3.00%", "45.00%", "12"],
            ["c", "g", "2", ad(keys[1]), "aaaaaaaaaaa", "EUR", "10.00", "1,000", "100",
             "10.00%", "10", "1.00%", "12.34%", "0.00"],
            ["Total: Account", "--", "--", "--", "--", "EUR", "1,244.56", "21,000", "5,100",
             "24.29%", "610", "2.90%", "--", "12"],
        ]
    )  # fmt: skip


def test_google_preamble_impr_totals_and_completion_percentages(made: Made, tmp_path: Path) -> None:
    k = made.keys
    result = run_import(made, put(tmp_path, "google.csv", google_report(k)))
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "google.csv (Google Ads): 3 rows, 2 matched to 2 videos" in out
    assert "1 totals row skipped" in out
    got = totals(made)
    # "Video played to 100%" is a share of impressions: 45 % of 20,000
    assert got[k[0]] == AdTotals(20000, 600, 9000, 1234.56, 12, "EUR")
    assert got[k[1]] == AdTotals(1000, 10, 123, 10.0, 0, "EUR")
    with sqlite3.connect(made.workspace / "ledger.sqlite") as db:
        periods = set(db.execute("SELECT period_start, period_end FROM ad_metrics"))
    assert periods == {("2026-11-01", "2026-11-30")}  # from the date line above the header


def test_utf16_tab_localized_linkedin_style_with_decimal_commas(made: Made, tmp_path: Path) -> None:
    k = made.keys
    header = ["Data de início (em UTC)", "Nome da conta", "Moeda", "Nome da campanha",
              "Nome do anúncio", "Total investido", "Impressões", "Cliques", "Taxa de cliques",
              "Conclusões"]  # fmt: skip
    text = table(
        [
            header,
            ["25/11/2026", "Conta", "BRL", "Campanha, teste", ad(k[3]), "454,06", "1.234",
             "18", "1,459%", "300"],
            ["26/11/2026", "Conta", "BRL", "Campanha, teste", ad(k[3]), "1.000,50", "2.000",
             "20", "1,000%", "400"],
        ],
        delimiter="\t",
    )  # fmt: skip
    path = tmp_path / "linkedin.csv"
    path.write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    result = run_import(made, path)
    assert result.exit_code == 0, result.output
    assert "linkedin.csv (LinkedIn Campaign Manager): 2 rows, 2 matched" in result.output
    assert totals(made)[k[3]] == AdTotals(3234, 38, 700, 1454.56, None, "BRL")
    with sqlite3.connect(made.workspace / "ledger.sqlite") as db:
        days = sorted(db.execute("SELECT period_start, period_end FROM ad_metrics"))
    assert days == [("2026-11-25", "2026-11-25"), ("2026-11-26", "2026-11-26")]


def test_semicolons_with_a_bom_and_european_numbers(made: Made, tmp_path: Path) -> None:
    k = made.keys
    text = table(
        [
            ["Ad name", "Impressions", "Link clicks", "Amount spent (EUR)", "Day"],
            [ad(k[0]), "1.234", "56", "12,50", "2026-11-03"],
            [ad(k[1]), "987", "1", "0,99", "2026-11-03"],
        ],
        delimiter=";",
    )
    result = run_import(made, put(tmp_path, "semi.csv", text, "utf-8-sig"))
    assert result.exit_code == 0, result.output
    got = totals(made)
    assert got[k[0]] == AdTotals(1234, 56, None, 12.5, None, "EUR")
    assert got[k[1]] == AdTotals(987, 1, None, 0.99, None, "EUR")


def test_snapchat_swipes_are_the_clicks(made: Made, tmp_path: Path) -> None:
    k = made.keys
    text = table(
        [
            ["Campaign name", "Ad set", "Ad", "Ad ID", "Amount spent", "Total Impressions",
             "Swipes", "Total video views", "Video completions"],
            ["c", "s", ad(k[2]), "1", "3.50", "4000", "44", "900", "120"],
        ]
    )  # fmt: skip
    result = run_import(made, put(tmp_path, "snap.csv", text))
    assert result.exit_code == 0, result.output
    assert "snap.csv (Snapchat Ads Manager)" in result.output
    assert totals(made)[k[2]] == AdTotals(4000, 44, 120, 3.5, None, None)


# ---------------------------------------------------------------------------- never twice


def test_the_same_file_again_is_refused_and_counts_once(made: Made, tmp_path: Path) -> None:
    k = made.keys
    path = put(tmp_path, "google.csv", google_report(k))
    assert run_import(made, path).exit_code == 0
    again = run_import(made, path)
    assert again.exit_code == 2
    assert "google.csv (Google Ads): already imported on " in again.output
    assert "as import 1; nothing added" in again.output
    assert totals(made)[k[0]].impressions == 20000


def test_rows_of_days_already_imported_are_skipped_and_new_days_add_up(
    made: Made, tmp_path: Path
) -> None:
    k = made.keys
    header = ["Day", "Ad name", "Impressions", "Link clicks"]
    first = table(
        [header, ["2026-11-01", ad(k[0]), "100", "1"], ["2026-11-02", ad(k[0]), "200", "2"]]
    )
    second = table(
        [header, ["2026-11-02", ad(k[0]), "999", "9"], ["2026-11-03", ad(k[0]), "300", "3"]]
    )
    assert run_import(made, put(tmp_path, "d1.csv", first)).exit_code == 0
    result = run_import(made, put(tmp_path, "d2.csv", second))
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "1 already imported by import 1 (same videos, platform and dates; row 2)" in out
    assert "not counted twice" in out
    assert totals(made)[k[0]] == AdTotals(600, 6, None, None, None, None)
    # another platform's figures of the same video and days add up: a different audience
    tiktok = table(
        [["Date", "Ad name", "Impressions", "Clicks (destination)", "Cost"],
         ["2026-11-02", ad(k[0]), "50", "5", "1"]]
    )  # fmt: skip
    assert run_import(made, put(tmp_path, "t.csv", tiktok)).exit_code == 0
    assert totals(made)[k[0]].impressions == 650


def test_a_report_without_results_or_completions_does_not_dilute_the_others(
    made: Made, tmp_path: Path
) -> None:
    """Meta's report has spend, results and ThruPlays (a blank Results cell: none); TikTok's
    only impressions, clicks and cost. The cost per result stays Meta's spend over Meta's
    results, the completion rate Meta's plays over Meta's impressions, in Meta's currency."""
    k = made.keys
    meta = table(
        [["Day", "Ad name", "Impressions", "Link clicks", "ThruPlays", "Amount spent (USD)",
          "Results"],
         ["2026-11-01", ad(k[0]), "1,000", "30", "250", "40.00", "8"],
         ["2026-11-01", ad(k[1]), "1,000", "10", "100", "40.00", ""]]
    )  # fmt: skip
    tiktok = table(
        [["Date", "Ad name", "Impressions", "Clicks (destination)", "Cost"],
         ["2026-11-01", ad(k[0]), "3,000", "30", "60.00"]]
    )  # fmt: skip
    result = run_import(made, put(tmp_path, "meta.csv", meta), put(tmp_path, "tt.csv", tiktok))
    assert result.exit_code == 0, result.output
    shown = CliRunner().invoke(
        main, ["metrics", "show", made.run_id, "--json", "--workspace", str(made.workspace)]
    )
    assert shown.exit_code == 0, shown.output
    videos = {v["job_key"]: v for v in json.loads(shown.output)["variants"]}
    first, second = videos[k[0]], videos[k[1]]
    assert (first["impressions"], first["clicks"]) == (4000, 60)
    assert first["ctr"]["value"] == pytest.approx(0.015)
    assert first["completion"]["value"] == pytest.approx(0.25)  # 250 / 1,000, not / 4,000
    assert first["cost_per_result"]["value"] == pytest.approx(5.0)  # 40 / 8, not 100 / 8
    assert first["currency"] == "USD"
    assert second["results"] == 0 and second["cost_per_result"] is None


def test_a_report_with_nothing_new_is_an_error_and_keeps_nothing(
    made: Made, tmp_path: Path
) -> None:
    text = table([["Ad name", "Impressions", "Clicks"], ["Summer sale A", "10", "1"]])
    result = run_import(made, put(tmp_path, "plain.csv", text))
    assert result.exit_code == 2
    assert "1 unmatched (row 2: names without a runner key" in " ".join(result.output.split())
    with sqlite3.connect(made.workspace / "ledger.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM metric_imports").fetchone() == (0,)


# ---------------------------------------------------------------------------- options


def test_map_names_columns_no_platform_calls_so(made: Made, tmp_path: Path) -> None:
    k = made.keys
    text = table(
        [["Creative label", "Shown", "Taps", "Played to the end"], [ad(k[1]), "700", "7", "70"]]
    )
    path = put(tmp_path, "agency.csv", text)
    refused = run_import(made, path)
    assert refused.exit_code == 2
    assert "agency.csv: no header row found" in refused.output
    result = run_import(
        made,
        path,
        "--map", "Creative label=ad_name",
        "--map", "shown=impressions",
        "--map", "TAPS=clicks",
        "--map", "Played to the end=completions",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert totals(made)[k[1]] == AdTotals(700, 7, 70, None, None, None)


def test_map_of_a_column_in_no_report_is_an_error(made: Made, tmp_path: Path) -> None:
    path = put(tmp_path, "google.csv", google_report(made.keys))
    result = run_import(made, path, "--map", "Video title=ad_name")
    assert result.exit_code == 2
    assert "--map: no column 'video title' in google.csv" in result.output
    wrong = run_import(made, path, "--map", "Video=title")
    assert "'title' is not a field runner reads" in wrong.output


def test_google_video_title_column_read_through_map(made: Made, tmp_path: Path) -> None:
    path = put(tmp_path, "google.csv", google_report(made.keys, title="YouTube video name"))
    result = run_import(made, path, "--map", "YouTube video name=ad_name")
    assert result.exit_code == 0, result.output
    assert totals(made)[made.keys[0]].impressions == 20000


def test_split_test_is_recorded_with_the_import(made: Made, tmp_path: Path) -> None:
    text = table([["Ad name", "Impressions", "Link clicks"], [ad(made.keys[0]), "10", "1"]])
    result = run_import(made, put(tmp_path, "ab.csv", text), "--split-test")
    assert result.exit_code == 0, result.output
    assert "marked as the platform's split test" in result.output
    plain = table([["Ad name", "Impressions", "Link clicks"], [ad(made.keys[1]), "10", "1"]])
    assert run_import(made, put(tmp_path, "plain.csv", plain)).exit_code == 0
    with reader(made.workspace) as store:
        assert [(i.file, i.split_test) for i in imports_for_run(store, made.run_id)] == [
            ("ab.csv", True),
            ("plain.csv", False),
        ]


# ---------------------------------------------------------------------------- errors


def test_errors_name_the_file_row_column_and_the_fix(made: Made, tmp_path: Path) -> None:
    no_name = table(
        [["Campaign name", "Impressions", "Link clicks", "Amount spent"], ["c", "1", "1", "1"]]
    )
    result = run_import(made, put(tmp_path, "meta.csv", no_name))
    assert result.exit_code == 2
    assert "meta.csv:row 1: no ad name column" in result.output
    assert "Add the 'Ad name' column to the report in Ads Manager" in result.output
    assert "--map 'Your column=ad_name'" in result.output

    no_impr = table([["Ad name", "Link clicks"], [ad(made.keys[0]), "1"]])
    result = run_import(made, put(tmp_path, "m2.csv", no_impr))
    assert "m2.csv:row 1: no impressions column" in result.output

    bad = table([["Ad name", "Impressions", "Clicks"], [ad(made.keys[0]), "1O0", "1"]])
    result = run_import(made, put(tmp_path, "bad.csv", bad))
    assert result.exit_code == 2
    assert "bad.csv:row 2:Impressions: '1O0' is not a number" in result.output

    book = put(tmp_path, "report.xlsx", "")
    book.write_bytes(b"PK\x03\x04" + b"\0" * 40)
    result = run_import(made, book)
    assert "report.xlsx is an Excel workbook: export the report as CSV" in result.output
    with sqlite3.connect(made.workspace / "ledger.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM metric_imports").fetchone() == (0,)


def test_more_clicks_or_completions_than_impressions_is_refused_by_row_and_column(
    made: Made, tmp_path: Path
) -> None:
    """Such a row cannot be a rate (and once kept, `metrics show` and the report could not
    work one out): the import names the row and column and keeps nothing."""
    k = made.keys
    text = table(
        [["Day", "Ad name", "Impressions", "Link clicks", "ThruPlays"],
         ["2026-11-01", ad(k[0]), "1,000", "12", "300"],
         ["2026-11-01", ad(k[1]), "--", "5", ""],
         ["2026-11-01", ad(k[2]), "10", "2", "11"]]
    )  # fmt: skip
    result = run_import(made, put(tmp_path, "meta.csv", text))
    assert result.exit_code == 2
    out = " ".join(result.output.split())
    assert "meta.csv: 2 cell(s) could not be read; nothing was imported" in out
    assert "meta.csv:row 3:Link clicks: 5 clicks but 0 impressions ('Impressions')" in out
    assert "meta.csv:row 4:ThruPlays: 11 completed views but 10 impressions" in out
    assert "--map" in out
    assert totals(made) == {}


def test_an_empty_workspace_says_where_the_videos_are(tmp_path: Path) -> None:
    path = put(tmp_path, "meta.csv", table([["Ad name", "Impressions", "Clicks"]]))
    result = CliRunner().invoke(
        main, ["metrics", "import", str(path), "--workspace", str(tmp_path / "none")]
    )
    assert result.exit_code == 2
    assert "no runs in" in result.output


# ---------------------------------------------------------------------------- cells and corpus


@pytest.mark.parametrize(
    ("text", "decimal_comma", "value"),
    [
        ("1,234", False, 1234.0),
        ("1.234", True, 1234.0),
        ("1 234", False, 1234.0),
        ("1\u202f234,5", True, 1234.5),
        ("1.234.567", False, 1234567.0),
        ("1,234.56", False, 1234.56),
        ("1.234,56", False, 1234.56),
        ("454,06", True, 454.06),
        ("0,5", False, 0.5),
        ("12.5%", False, 12.5),
        ("$3.20", False, 3.2),
        ("€ 3,20", True, 3.2),
        ("USD 1,000.00", False, 1000.0),
        ("--", False, None),
        ("", False, None),
        ("(5.00)", False, -5.0),
    ],
)
def test_locale_numbers(text: str, decimal_comma: bool, value: float | None) -> None:
    assert parse_number(text, decimal_comma) == value


def test_counts_read_a_lone_separator_as_thousands_in_any_locale() -> None:
    assert parse_number("1.234", False, whole=True) == 1234.0  # an integer-only German file
    assert parse_number("1,234", True, whole=True) == 1234.0
    assert parse_number("1.234", False) == 1.234  # a figure that may be a fraction: the locale
    with pytest.raises(ValueError):
        parse_number("1O0")


@pytest.mark.parametrize(
    ("text", "dayfirst", "iso"),
    [
        ("2026-11-03", False, "2026-11-03"),
        ("2026-11-03 00:00:00", False, "2026-11-03"),
        ("03/11/2026", True, "2026-11-03"),
        ("11/03/2026", False, "2026-11-03"),
        ("25/11/2026", False, "2026-11-25"),
        ("Nov 3, 2026", False, "2026-11-03"),
        ("November 3, 2026", False, "2026-11-03"),
        ("3 Nov 2026", True, "2026-11-03"),
        ("20261103", False, "2026-11-03"),
    ],
)
def test_dates(text: str, dayfirst: bool, iso: str) -> None:
    assert parse_date(text, dayfirst) == iso


def test_corpus_exports_read_as_their_platform_wrote_them() -> None:
    google = read_report(CORPUS / "google_video.csv")
    assert google.platform.name == "google"
    assert google.totals == (6,)
    assert [(a.row, a.key, a.impressions, a.clicks, a.completions, a.spend, a.currency)
            for a in google.rows] == [
        (4, "3f2a9c0d1e4b5a6c-standard-1", 20000, 600, 9000, 1234.56, "USD"),
        (5, "77e1d0c2b3a49586-fast-2", 1500, 15, 150, 12.0, "USD"),
    ]  # fmt: skip
    assert {(a.start, a.end) for a in google.rows} == {("2026-11-01", "2026-11-30")}

    meta = read_report(CORPUS / "meta_2017.csv")
    assert meta.platform.name == "meta"
    assert [(a.name, a.key, a.clicks, a.spend, a.currency) for a in meta.rows] == [
        ('Headphones, "loud" 9:16__3f2a9c0d1e4b5a6c-standard-1', "3f2a9c0d1e4b5a6c-standard-1",
         12, 1.76, "USD"),
        ("headphones 16x9 (no key)", None, 3, 0.5, "USD"),
    ]  # fmt: skip

    linkedin = read_report(CORPUS / "linkedin_pt.csv")
    assert linkedin.platform.name == "linkedin"
    assert [(a.impressions, a.clicks, a.spend, a.currency, a.start) for a in linkedin.rows] == [
        (21871, 183, 454.06, "BRL", "2026-11-25")
    ]


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-be-bom", "cp1252"])
def test_every_encoding_and_delimiter_reads_the_same(
    tmp_path: Path, encoding: str, delimiter: str
) -> None:
    text = table(
        [["Ad name", "Impressions", "Link clicks", "Amount spent (EUR)"],
         [ad(STRANGER, "Café, crème"), "1000", "10", "9.99"]],
        delimiter,
    )  # fmt: skip
    data = (
        b"\xfe\xff" + text.encode("utf-16-be")
        if encoding == "utf-16-be-bom"
        else text.encode(encoding)
    )
    path = tmp_path / "r.csv"
    path.write_bytes(data)
    (row,) = read_report(path).rows
    assert (row.name, row.key, row.impressions, row.clicks, row.spend, row.currency) == (
        ad(STRANGER, "Café, crème"), STRANGER, 1000, 10, 9.99, "EUR"
    )  # fmt: skip
