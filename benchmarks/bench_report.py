"""The report at scale: a synthetic 10,000-job run (ledger rows written directly, 12 real
videos shared by every job), then

- ``report.build`` wall time (target <= 5 s),
- the size of index.html (target <= 5 MB),
- time to interactive in Chromium from file:// (target <= 1.5 s): navigation start to the
  page's own ``runner-interactive`` mark (set once the first cards are in the DOM and the
  main thread has come back to the event loop), then a key press answered (focus moves),
- scrolling: the longest main-thread task while scrolling through 40 screens.

    python benchmarks/bench_report.py [--jobs 10000] [--keep DIR]

Needs Debian's /usr/bin/chromium for the browser figures (skipped without it).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.review import report  # noqa: E402
from runner.run import ledger as L  # noqa: E402
from tests.test_report_support import FakeJob, media_pool, write_run  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]

PRODUCTS = [
    "wireless headphones",
    "smartwatch",
    "e-bike",
    "coffee maker",
    "mineral sunscreen",
    "running shoes",
    "espresso grinder",
    "yoga mat",
    "desk lamp",
    "backpack",
    "electric toothbrush",
    "air purifier",
    "camping stove",
    "robot vacuum",
    "tote bag",
    "gaming mouse",
    "water bottle",
    "sunglasses",
    "bluetooth speaker",
    "e-reader",
    "skincare serum",
    "standing desk",
    "drone",
    "kettle",
    "scooter",
]
STYLES = ["cinematic", "playful", "minimalist", "documentary", "retro 16mm"]
RATIOS = ["16:9", "9:16", "1:1", "4:3"]
HOOKS = [
    "Before and after",
    "Day in the life",
    "Unboxing",
    "Problem, then solution",
    "Close-up detail",
    "Customer testimonial",
    "Behind the scenes",
    "Speed ramp reveal",
    "Top three reasons",
    "POV first use",
    "Split screen",
    "Slow motion hero",
    "Stop motion",
    "Macro texture",
    "Morning routine",
    "Gift reveal",
    "Weather test",
    "Night mode",
    "Side by side",
    "One take",
]


def synthetic_jobs(count: int) -> list[FakeJob]:
    jobs: list[FakeJob] = []
    i = 0
    while len(jobs) < count:
        product = PRODUCTS[i % len(PRODUCTS)]
        style = STYLES[(i // len(PRODUCTS)) % len(STYLES)]
        ratio = RATIOS[(i // (len(PRODUCTS) * len(STYLES))) % len(RATIOS)]
        hook = HOOKS[(i // (len(PRODUCTS) * len(STYLES) * len(RATIOS))) % len(HOOKS)]
        take = i // (len(PRODUCTS) * len(STYLES) * len(RATIOS) * len(HOOKS))
        prompt = (
            f"{hook}: {style} shot of a {product} in a sunlit loft, the camera slowly "
            f"dollies in while soft morning light rakes across the surface, shallow "
            f"depth of field, natural colours, take {take}"
        )
        state, code, message, media = L.DONE, None, None, i % 12
        if i % 37 == 5:
            state, code, media = L.FAILED, "content_policy_violation", None
            message = "The prompt was flagged by the content safety system (policy: people)."
        elif i % 211 == 7:
            state, code, media = L.UNKNOWN, "create_outcome_unknown", None
            message = "read timeout after the request was sent"
        elif i % 401 == 9:
            state, code, media = L.EXPIRED, "result_expired", None
            message = "the result URL answered 410 Gone"
        jobs.append(
            FakeJob(
                values={
                    "name": product.title(),
                    "style": style,
                    "aspect_ratio": ratio,
                    "hook": hook,
                    **({"take": str(take)} if count > 10_000 else {}),
                },
                prompt=prompt,
                name=product.title(),
                state=state,
                error_code=code,
                error_message=message,
                media=media,
                aspect_ratio=ratio,
                duration=5,
                latency=60 + (i * 37) % 120,
            )
        )
        i += 1
    return jobs


def build(workspace: Path, count: int) -> tuple[Path, float, float]:
    pool = media_pool(workspace / "_pool", 12)
    jobs = synthetic_jobs(count)
    t = time.perf_counter()
    write_run(
        workspace,
        "bench-10k",
        jobs,
        pool_dir=workspace / "_pool",
        pool=pool,
        name="bench sweep",
        experiment="experiments/bench.csv",
    )
    ledger_s = time.perf_counter() - t
    runs = []
    for _ in range(3):
        with L.reader(workspace) as store:
            t = time.perf_counter()
            path = report.build(store, workspace, "bench-10k")
            runs.append(time.perf_counter() - t)
    return path, ledger_s, min(runs), runs


def browser(path: Path) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {
        "tti": [],
        "first_cards": [],
        "parsed": [],
        "key": [],
        "longest_scroll_task": [],
        "dom_cards": [],
    }
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        for _ in range(3):
            page = b.new_page(viewport={"width": 1440, "height": 900})
            errors: list[str] = []
            page.on(
                "console",
                lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None,
            )
            page.goto(path.as_uri())
            page.wait_for_selector("html[data-ready='1']", timeout=30_000)
            marks = page.evaluate("""() => Object.fromEntries(
                ['runner-data-parsed', 'runner-first-cards', 'runner-interactive']
                .map(n => [n, performance.getEntriesByName(n)[0].startTime]))""")
            out["parsed"].append(marks["runner-data-parsed"])
            out["first_cards"].append(marks["runner-first-cards"])
            out["tti"].append(marks["runner-interactive"])
            t = time.perf_counter()
            page.keyboard.press("ArrowRight")
            page.wait_for_function("() => document.activeElement.classList.contains('card')")
            out["key"].append((time.perf_counter() - t) * 1000)
            longest = page.evaluate("""async () => {
                let longest = 0;
                const obs = new PerformanceObserver(list => {
                  for (const e of list.getEntries()) longest = Math.max(longest, e.duration); });
                obs.observe({type: 'longtask', buffered: false});
                for (let i = 0; i < 40; i++) {
                  window.scrollBy(0, window.innerHeight);
                  await new Promise(r => requestAnimationFrame(() => setTimeout(r, 30)));
                }
                await new Promise(r => setTimeout(r, 200));
                obs.disconnect();
                return longest; }""")
            out["longest_scroll_task"].append(longest)
            out["dom_cards"].append(page.evaluate("document.querySelectorAll('.card').length"))
            if errors:
                raise SystemExit(f"console errors: {errors[:3]}")
            page.close()
        b.close()
    return {k: statistics.median(v) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="Workspace to keep (default: a temp dir)")
    args = parser.parse_args()
    workspace = args.keep or Path(tempfile.mkdtemp(prefix="bench-report-"))
    if (workspace / "ledger.sqlite").exists():
        shutil.rmtree(workspace)
    try:
        path, ledger_s, best, runs = build(workspace, args.jobs)
        size = path.stat().st_size
        print(f"jobs: {args.jobs:,}  (synthetic ledger written in {ledger_s:.2f} s)")
        print(
            f"report.build: best {best:.2f} s of {', '.join(f'{r:.2f}' for r in runs)} "
            f"(target <= 5 s) {'OK' if best <= 5 else 'MISSED'}"
        )
        print(
            f"index.html: {size / 1e6:.2f} MB (target <= 5 MB) {'OK' if size <= 5e6 else 'MISSED'}"
        )
        if CHROMIUM.exists():
            b = browser(path)
            print(
                f"chromium (median of 3): data parsed {b['parsed']:.0f} ms, first cards "
                f"{b['first_cards']:.0f} ms, interactive {b['tti']:.0f} ms (target <= 1500) "
                f"{'OK' if b['tti'] <= 1500 else 'MISSED'}"
            )
            print(
                f"  key press answered in {b['key']:.0f} ms; longest task while scrolling 40 "
                f"screens {b['longest_scroll_task']:.0f} ms; cards in the DOM after: "
                f"{b['dom_cards']:.0f}"
            )
        else:
            print("chromium: /usr/bin/chromium not found, browser figures skipped")
    finally:
        if args.keep is None:
            shutil.rmtree(workspace, ignore_errors=True)


if __name__ == "__main__":
    main()
