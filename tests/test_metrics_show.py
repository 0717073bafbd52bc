"""`runner metrics show` and `runner promote --top` on a simulated demo run whose audience
figures are written into the ledger (the tables of migration 007_ad_metrics) with known
effects: 9:16 at 3 % CTR against 16:9 at 1 %, or 1.1 % against 1.0 %."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from runner.cli import main

from .runhelp import DEMO, simulator, truth

pytestmark = pytest.mark.slow  # the tests share a demo run against a served simulator


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, str]]:
    """The demo rendered once on fast: (simulator URL, workspace, run id)."""
    ws = tmp_path_factory.mktemp("show") / "ws"
    with simulator() as url:
        result = CliRunner().invoke(
            main, ["run", str(DEMO), "--base-url", url, "--workspace", str(ws), "--rate", "50"]
        )
        assert result.exit_code == 0, result.output
        with sqlite3.connect(ws / "ledger.sqlite") as db:
            (run_id,) = db.execute("SELECT run_id FROM runs").fetchone()
        yield url, ws, run_id


def figures(
    ws: Path,
    run_id: str,
    rates: dict[str, float],
    per_ad: int,
    *,
    seed: int = 1,
    split_test: bool = False,
) -> dict[str, int]:
    """Replace the ledger's figures: one Meta import, ``per_ad`` impressions per video and
    clicks drawn at its aspect ratio's CTR. Returns the clicks per job key."""
    rng = np.random.default_rng(seed)
    clicks: dict[str, int] = {}
    with sqlite3.connect(ws / "ledger.sqlite") as db:
        db.execute("DELETE FROM ad_metrics")
        db.execute("DELETE FROM metric_imports")
        db.execute(
            "INSERT INTO metric_imports VALUES (1, 'meta.csv', 'x', 'meta', 1.7e9, ?, 12, 12, 0)",
            (int(split_test),),
        )
        jobs = db.execute(
            "SELECT job_key, values_json FROM jobs WHERE run_id = ? ORDER BY job_id", (run_id,)
        ).fetchall()
        for key, values in jobs:
            rate = rates[dict(json.loads(values))["aspect_ratio"]]
            clicks[key] = int(rng.binomial(per_ad, rate))
            db.execute(
                "INSERT INTO ad_metrics VALUES (1, ?, ?, NULL, NULL, ?, ?, ?, ?, 'USD', ?)",
                (
                    key,
                    f"ad {key}",
                    per_ad,
                    clicks[key],
                    per_ad // 3,
                    per_ad / 200,
                    clicks[key] // 5,
                ),
            )
    return clicks


def test_show_json_ranks_9x16_first_and_calls_the_winner(
    demo: tuple[str, Path, str], cli: Callable[..., Result]
) -> None:
    _, ws, run_id = demo
    figures(ws, run_id, {"9:16": 0.03, "16:9": 0.01}, 20_000)

    result = cli("metrics", "show", run_id, "--by", "aspect_ratio", "--json", "--workspace", ws)

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    (dim,) = data["dimensions"]
    first, second = sorted(dim["values"], key=lambda v: -v["p_best"])
    assert first["value"] == "9:16" and first["p_best"] > 0.95 and second["value"] == "16:9"
    assert first["impressions"] == 6 * 20_000 and first["variants"] == 6
    assert dim["verdict"]["state"] == "winner" and dim["verdict"]["leader"] == "9:16"
    assert len(data["variants"]) == 12 and data["randomised"] is False
    assert data["imports"][0]["file"] == "meta.csv"
    assert set(data["variants"][0]["dims"]) == {"name", "product", "style", "aspect_ratio"}


def test_show_says_not_yet_for_a_small_effect_at_2000_impressions(
    demo: tuple[str, Path, str], cli: Callable[..., Result]
) -> None:
    _, ws, run_id = demo
    figures(ws, run_id, {"9:16": 0.011, "16:9": 0.010}, 2_000, seed=3)

    data = json.loads(
        cli("metrics", "show", run_id, "--by", "aspect_ratio", "--json", "--workspace", ws).stdout
    )
    human = cli("metrics", "show", run_id, "--by", "aspect_ratio", "--workspace", ws)

    verdict = data["dimensions"][0]["verdict"]
    assert verdict["state"] == "not_yet" and verdict["impressions_needed"] > 50_000
    assert human.exit_code == 0
    assert "Not yet:" in human.stdout and "more impressions per value needed" in human.stdout
    assert "platform delivery is not randomised" in human.stdout


def test_show_for_people_with_the_reviewers_stars_beside_the_audience(
    demo: tuple[str, Path, str], cli: Callable[..., Result], tmp_path: Path
) -> None:
    _, ws, run_id = demo
    figures(ws, run_id, {"9:16": 0.03, "16:9": 0.01}, 20_000, split_test=True)
    with sqlite3.connect(ws / "ledger.sqlite") as db:
        wide = [
            k
            for k, v in db.execute(
                "SELECT job_key, values_json FROM jobs WHERE run_id = ?", (run_id,)
            )
            if dict(json.loads(v))["aspect_ratio"] == "16:9"
        ]
    winners = tmp_path / "winners.csv"
    winners.write_text(
        "run_id,job_key,reviewer\n" + "".join(f"{run_id},{k},Ann\n" for k in wide[:3])
    )

    result = cli("metrics", "show", run_id, "--winners", winners, "--workspace", ws)

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "aspect_ratio (by CTR)" in out and "style (by CTR)" in out
    assert "9:16 is ahead: 3.0 % CTR (2.9–3.1 %) vs 1.0 % for 16:9" in out
    assert "Reviewers preferred 16:9 (3 stars), the audience 9:16." in out
    assert "delivery was randomised" in out and "not randomised" not in out
    row = next(line for line in out.splitlines() if line.strip().startswith("9:16"))
    assert "120,000" in row and "3.0 %" in row and row.split()[-1] == "0"  # no stars


def test_show_counts_stars_given_by_a_key_prefix_and_refuses_a_key_of_no_job(
    demo: tuple[str, Path, str], cli: Callable[..., Result], tmp_path: Path
) -> None:
    """Winners files may name a job by a unique prefix (as promote and export take them):
    Bob's star on Ann's job by its prefix is a second reviewer's star, not lost."""
    _, ws, run_id = demo
    figures(ws, run_id, {"9:16": 0.03, "16:9": 0.01}, 20_000)
    with sqlite3.connect(ws / "ledger.sqlite") as db:
        wide = sorted(
            k
            for k, v in db.execute(
                "SELECT job_key, values_json FROM jobs WHERE run_id = ?", (run_id,)
            )
            if dict(json.loads(v))["aspect_ratio"] == "16:9"
        )
    ann, bob, odd = tmp_path / "ann.csv", tmp_path / "bob.csv", tmp_path / "odd.csv"
    ann.write_text(f"job_key,reviewer\n{wide[0]},Ann\n{wide[1]},Ann\n")
    bob.write_text(f"job_key,reviewer\n{wide[0][:8]},Bob\n")
    odd.write_text("job_key,reviewer\nffffffffffff,Cy\n")

    result = cli(
        "metrics", "show", run_id, "--by", "aspect_ratio", "--winners", ann, "--winners", bob,
        "--workspace", ws,
    )  # fmt: skip
    refused = cli("metrics", "show", run_id, "--winners", odd, "--workspace", ws)

    assert result.exit_code == 0, result.output
    assert "Reviewers preferred 16:9 (3 stars), the audience 9:16." in result.stdout
    assert refused.exit_code == 2
    assert "odd.csv:row 2:job_key: no job in run" in " ".join(refused.output.split())


def test_show_without_figures_says_how_to_import_them_and_refuses_unknown_dimensions(
    demo: tuple[str, Path, str], cli: Callable[..., Result]
) -> None:
    _, ws, run_id = demo
    with sqlite3.connect(ws / "ledger.sqlite") as db:
        db.execute("DELETE FROM ad_metrics")
        db.execute("DELETE FROM metric_imports")

    empty = cli("metrics", "show", run_id, "--workspace", ws)
    wrong = cli("metrics", "show", run_id, "--by", "colour", "--workspace", ws)

    assert empty.exit_code == 0 and "No audience figures" in empty.stdout
    assert "runner metrics import FILE" in empty.stdout
    assert wrong.exit_code == 2
    assert "colour" in wrong.output and "name, product, style, aspect_ratio" in wrong.output


def test_promote_top_2_promotes_exactly_the_two_best_by_ctr(
    demo: tuple[str, Path, str], cli: Callable[..., Result]
) -> None:
    url, ws, run_id = demo
    clicks = figures(ws, run_id, {"9:16": 0.03, "16:9": 0.01}, 20_000)
    best = sorted(clicks, key=lambda k: -clicks[k])[:2]
    assert clicks[best[1]] > max(c for k, c in clicks.items() if k not in best)  # no tie
    before = {t["id"] for t in truth(url)["tasks"]}

    result = cli(
        "promote", run_id, "--top", "2", "--metric", "ctr", "--min-impressions", "1000",
        "--workspace", ws, "--rate", "50",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "2 winner(s) of run" in result.stdout
    new = [t for t in truth(url)["tasks"] if t["id"] not in before]
    with sqlite3.connect(ws / "ledger.sqlite") as db:
        child = db.execute(
            "SELECT parent_job_key, task_id FROM jobs WHERE run_id = "
            "(SELECT run_id FROM runs WHERE parent_run = ? ORDER BY created_at DESC LIMIT 1)",
            (run_id,),
        ).fetchall()
    assert {p for p, _ in child} == set(best)
    assert {t["id"] for t in new} == {task for _, task in child} and len(new) == 2


def test_promote_top_refusals(demo: tuple[str, Path, str], cli: Callable[..., Result]) -> None:
    _, ws, run_id = demo
    figures(ws, run_id, {"9:16": 0.03, "16:9": 0.01}, 800)

    few = cli("promote", run_id, "--top", "2", "--workspace", ws)
    both = cli("promote", run_id, "--top", "2", "--pick", "abc", "--workspace", ws)
    also = cli("promote", run_id, "--top", "2", "--winners", "w.csv", "--workspace", ws)

    assert few.exit_code == 2
    assert "no video of run" in few.output and "1,000 or more impressions" in few.output
    assert "12 have figures" in few.output and "the most is 800" in few.output
    for refused in (both, also):
        assert refused.exit_code == 2 and "leave out --winners and --pick" in refused.output


def test_promote_top_2_takes_two_variants_not_two_samples_of_one(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    """Two variants of two samples each: the two best videos are both samples of variant 0,
    which a promotion renders once; --top 2 promotes variant 0 and variant 1."""
    ws, exp = tmp_path / "ws", tmp_path / "g.csv"
    exp.write_text('prompt,take,duration,repeats\n"A lamp: {{ take }}",take 0 | take 1,4,2\n')
    with simulator() as url:
        assert cli("run", exp, "--base-url", url, "--workspace", ws).exit_code == 0
        with sqlite3.connect(ws / "ledger.sqlite") as db:
            (run_id,) = db.execute("SELECT run_id FROM runs").fetchone()
            jobs = db.execute("SELECT job_key, variant_key, values_json FROM jobs").fetchall()
            db.execute(
                "INSERT INTO metric_imports VALUES (1, 'm.csv', 'x', 'meta', 1.7e9, 0, 4, 4, 0)"
            )
            for key, _, values in jobs:
                ctr = 0.05 if dict(json.loads(values))["take"] == "take 0" else 0.02
                db.execute(
                    "INSERT INTO ad_metrics VALUES (1, ?, 'ad', NULL, NULL, 20000, ?, NULL, NULL,"
                    " NULL, NULL)",
                    (key, int(20000 * ctr) + int(key.endswith("-1"))),
                )

        result = cli("promote", run_id, "--top", "2", "--workspace", ws, "--rate", "50")

    assert result.exit_code == 0, result.output
    assert "2 winner(s) of run" in result.stdout
    with sqlite3.connect(ws / "ledger.sqlite") as db:
        parents = [
            p for (p,) in db.execute("SELECT parent_job_key FROM jobs WHERE run_id != ?", (run_id,))
        ]
    variant_of = {key: variant for key, variant, _ in jobs}
    assert len({variant_of[p] for p in parents}) == 2
