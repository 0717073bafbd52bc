"""The simulator's video renderer: milliseconds per render by tier, duration and audio.

Run:  python benchmarks/bench_video.py
"""

from __future__ import annotations

import statistics
import time

from runner.simulator.video import render_video


def main() -> None:
    print("tier      duration audio   median ms   size kB")
    for tier in ("standard", "fast", "mini"):
        for duration in (5, 15):
            for audio in (False, True):
                times, size = [], 0
                for i in range(5):
                    start = time.perf_counter()
                    data = render_video(
                        prompt=f"benchmark {i}",
                        duration=duration,
                        aspect_ratio="16:9",
                        tier=tier,
                        generate_audio=audio,
                    )
                    times.append((time.perf_counter() - start) * 1000)
                    size = len(data)
                print(
                    f"{tier:<9} {duration:>5} s {audio!s:<6} {statistics.median(times):>9.0f}"
                    f" {size / 1024:>9.0f}"
                )


if __name__ == "__main__":
    main()
