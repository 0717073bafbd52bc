"""The statistics of `runner metrics show`: known effects recovered from synthetic per-video
figures, Wilson intervals that cover as often as they claim, cost intervals that make sense."""

from __future__ import annotations

import json

import numpy as np
import pytest

from runner.metrics.model import AdTotals, ImportInfo
from runner.metrics.stats import (
    about,
    cost_per_result,
    counts_of,
    impressions_needed,
    p_best,
    performance,
    wilson,
)
from runner.run.records import JobRecord


def job(key: str, **values: str) -> JobRecord:
    return JobRecord(
        job_id=0,
        run_id="r",
        job_key=key,
        variant_key=key.split("-")[0],
        tier="fast",
        sample=1,
        model="m",
        mode="t2v",
        body={},
        values=tuple(values.items()),
        source="demo.csv",
        row=2,
        name=values.get("name", "x"),
        parent_job_key=None,
        est_credits=1.0,
        state="done",
        task_id=None,
        credits=None,
        attempts=1,
        resubmits=0,
        rechecks=0,
        progress=None,
        estimated_time=None,
        submitted_at=None,
        completed_at=None,
        result_url=None,
        result_expires_at=None,
        file_path=None,
        file_bytes=None,
        file_sha256=None,
    )


def demo_like(
    rates: dict[str, float], per_ad: int, seed: int = 1
) -> tuple[list[JobRecord], dict[str, AdTotals]]:
    """Three products x two styles x the given aspect ratios, one ad each; clicks drawn
    binomially at each ratio's CTR."""
    rng = np.random.default_rng(seed)
    jobs, totals = [], {}
    n = 0
    for name in ("Headphones", "Smartwatch", "E-bike"):
        for style in ("Cinematic", "Playful"):
            for ratio, rate in rates.items():
                key = f"{n:016x}-fast-1"
                n += 1
                jobs.append(job(key, name=name, style=style, aspect_ratio=ratio))
                clicks = int(rng.binomial(per_ad, rate))
                totals[key] = AdTotals(
                    per_ad, clicks, per_ad // 4, spend=per_ad * 0.005, results=clicks // 10
                )
    return jobs, totals


IMPORT = ImportInfo(1, "meta.csv", "meta", 1.0, False, 12, 12)


def test_a_big_effect_at_20000_impressions_per_ad_is_a_winner() -> None:
    jobs, totals = demo_like({"16:9": 0.01, "9:16": 0.03}, 20_000)

    data = performance(jobs, totals, [IMPORT], by="aspect_ratio")

    json.dumps(data)  # JSON-ready as is
    (dim,) = data["dimensions"]
    assert dim["name"] == "aspect_ratio"
    best = max(dim["values"], key=lambda v: v["ctr"]["value"])
    assert best["value"] == "9:16" and best["impressions"] == 120_000 and best["variants"] == 6
    assert best["p_best"] > 0.95
    assert dim["verdict"]["state"] == "winner" and dim["verdict"]["leader"] == "9:16"
    assert dim["verdict"]["text"].startswith("9:16 is ahead: 3.0 % CTR (2.9–3.1 %) vs 1.0 %")
    assert "over 99.9 % likely the best" in dim["verdict"]["text"]
    assert data["randomised"] is False and len(data["variants"]) == 12
    low = best["ctr"]["low"]
    assert 0.028 < low < best["ctr"]["value"] < best["ctr"]["high"] < 0.032


def test_a_small_effect_at_2000_impressions_per_ad_is_not_yet() -> None:
    jobs, totals = demo_like({"16:9": 0.010, "9:16": 0.011}, 2_000, seed=3)

    data = performance(jobs, totals, [IMPORT], by="aspect_ratio")

    verdict = data["dimensions"][0]["verdict"]
    assert verdict["state"] == "not_yet"
    values = {v["value"]: v for v in data["dimensions"][0]["values"]}
    p1, p2 = (values[k]["ctr"]["value"] for k in ("9:16", "16:9"))
    have = 12_000
    assert verdict["impressions_needed"] == impressions_needed(p1, p2) - have  # type: ignore[operator]
    assert (
        verdict["text"].startswith("Not yet:") and "more impressions per value" in (verdict["text"])
    )
    assert all(v["p_best"] < 0.95 for v in values.values())
    assert sum(v["p_best"] for v in values.values()) == pytest.approx(1.0)


def test_sample_size_matches_the_textbook_two_proportion_formula() -> None:
    # 1.1 % vs 1.0 %, 80 % power, 5 % two-sided: about 163,000 per group (Fleiss without
    # continuity correction)
    assert 162_000 < (impressions_needed(0.011, 0.010) or 0) < 164_500
    # 3 % vs 1 %: under 1,000 per group
    assert 700 < (impressions_needed(0.03, 0.01) or 0) < 800
    assert impressions_needed(0.02, 0.02) is None
    assert [about(n) for n in (87, 151_096, 85_123, 1_449_999)] == [87, 150_000, 85_000, 1_400_000]


def test_every_dimension_by_default_and_refusals() -> None:
    jobs, totals = demo_like({"16:9": 0.01, "9:16": 0.03}, 20_000)
    data = performance(jobs, totals, [])
    assert [d["name"] for d in data["dimensions"]] == ["name", "style", "aspect_ratio"]
    assert data["dimensions"][2]["verdict"]["leader"] == "9:16"
    for value in data["dimensions"][1]["values"]:  # no effect by style: both about 2 %
        assert value["ctr"]["low"] < 0.02 < value["ctr"]["high"]
    with pytest.raises(ValueError, match="use one of name, style, aspect_ratio"):
        performance(jobs, totals, [], by="colour")
    with pytest.raises(ValueError, match="ctr, completion, cost_per_result"):
        performance(jobs, totals, [], metric="cpm")  # type: ignore[arg-type]


def test_no_figures_is_no_data_and_split_tests_are_randomised() -> None:
    jobs, _ = demo_like({"16:9": 0.01, "9:16": 0.03}, 100)
    data = performance(jobs, {}, [], by="style")
    verdict = data["dimensions"][0]["verdict"]
    assert verdict["state"] == "no_data" and verdict["leader"] is None
    assert "runner metrics import" in verdict["text"]
    assert all(v["ctr"] is None and v["p_best"] is None for v in data["dimensions"][0]["values"])
    split = ImportInfo(2, "tt.csv", "tiktok", 2.0, True, 1, 1)
    assert performance(jobs, {}, [split])["randomised"] is True
    assert performance(jobs, {}, [split, IMPORT])["randomised"] is False


@pytest.mark.parametrize(("p", "n"), [(0.03, 20_000), (0.3, 200)])
def test_wilson_intervals_cover_the_true_rate_about_95_percent_of_the_time(
    p: float, n: int
) -> None:
    rng = np.random.default_rng(2026)
    hits = 0
    for successes in rng.binomial(n, p, 1000):
        est = wilson(int(successes), n)
        assert est is not None
        hits += est.low <= p <= est.high
    assert 930 <= hits <= 970


def test_cost_per_result_interval_is_sane() -> None:
    assert cost_per_result(100.0, 0) is None and cost_per_result(None, 5) is None
    small, big = cost_per_result(100.0, 10), cost_per_result(10_000.0, 1000)
    assert small is not None and big is not None
    assert small.value == big.value == 10.0
    assert small.low < big.low < 10.0 < big.high < small.high  # more results: narrower
    assert big.low > 9.3 and big.high < 10.7
    # coverage: results drawn as Poisson around a true cost of 2.0 per result
    rng = np.random.default_rng(7)
    spend, true_cost = 400.0, 2.0
    covered = 0
    for results in rng.poisson(spend / true_cost, 1000):
        est = cost_per_result(spend, int(results))
        covered += est is not None and est.low <= true_cost <= est.high
    assert 930 <= covered <= 970


def test_cost_metric_lower_is_better_and_currencies_do_not_mix() -> None:
    cheap = counts_of([AdTotals(10_000, 100, spend=100.0, results=100, currency="USD")])
    dear = counts_of([AdTotals(10_000, 100, spend=300.0, results=100, currency="USD")])
    chances = p_best([dear, cheap], "cost_per_result")
    assert chances[1] is not None and chances[1] > 0.99
    mixed = counts_of(
        [
            AdTotals(1, 0, spend=1.0, results=1, currency="USD"),
            AdTotals(1, 0, spend=1.0, results=1, currency="EUR"),
        ]
    )
    assert mixed.cost() is None and mixed.json()["cost_per_result"] is None
    jobs = [job("a" * 16 + "-fast-1", ratio="16:9"), job("b" * 16 + "-fast-1", ratio="9:16")]
    totals = {
        jobs[0].job_key: AdTotals(10_000, 100, spend=300.0, results=100, currency="USD"),
        jobs[1].job_key: AdTotals(10_000, 100, spend=100.0, results=100, currency="USD"),
    }
    verdict = performance(jobs, totals, [], metric="cost_per_result")["dimensions"][0]["verdict"]
    assert verdict["state"] == "winner" and verdict["leader"] == "9:16"
    assert verdict["text"].startswith("9:16 costs least: 1.00 USD cost (")


def test_p_best_is_seeded_and_the_same_every_time() -> None:
    groups = [
        counts_of([AdTotals(2000, 22)]),
        counts_of([AdTotals(2000, 20)]),
        counts_of([AdTotals(0, 0)]),
    ]
    first = p_best(groups, "ctr")
    assert first == p_best(groups, "ctr") and first[2] is None
    assert first[0] is not None and 0.5 < first[0] < 0.95


def test_close_rates_read_alike_in_the_sentence_and_the_table() -> None:
    from runner.metrics.stats import pair_rounds_apart, percent

    assert pair_rounds_apart(0.01850, 0.01849, "ctr")  # 1.9 % vs 1.8 % at one decimal
    assert percent(0.01850, fine=True) == "1.85 %" and percent(0.01849, fine=True) == "1.85 %"
    assert not pair_rounds_apart(0.03, 0.01, "ctr")
