"""Helpers for the tests of `runner run`: a served simulator and its ground truth, the runner
as a real subprocess, and small experiment files."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from runner.simulator.app import SimConfig, create_app
from runner.simulator.testing import serve

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "experiments" / "demo.csv"


@contextmanager
def simulator(**config: Any) -> Iterator[str]:
    """The simulator on 127.0.0.1 (fast by default); yields its base URL."""
    config.setdefault("speed", 200.0)
    config.setdefault("accept_any_key", True)
    with serve(create_app(SimConfig(**config))) as url:
        yield url


def truth(url: str) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(f"{url}/_sim/state", timeout=10).json()
    return data


def install_faults(url: str, *faults: dict[str, Any]) -> None:
    httpx.post(f"{url}/_sim/faults", json=list(faults), timeout=10).raise_for_status()


def grid(path: Path, jobs: int, *, duration: int = 4, prompt: str = "A lamp on a desk") -> Path:
    """An experiment of ``jobs`` distinct text-to-video jobs."""
    values = " | ".join(f"take {i}" for i in range(jobs))
    path.write_text(f'prompt,take,duration\n"{prompt}: {{{{ take }}}}",{values},{duration}\n')
    return path


def runner(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 120, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """The real command line in its own process (what kill -9 and signals need)."""
    full_env = {k: v for k, v in os.environ.items() if k != "EVOLINK_API_KEY"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "runner", *map(str, args)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def spawn(
    *args: str | Path, env: dict[str, str] | None = None, quiet: bool = False
) -> subprocess.Popen[str]:
    """The runner in the background (``quiet``: its output discarded)."""
    full_env = {k: v for k, v in os.environ.items() if k != "EVOLINK_API_KEY"}
    full_env.update(env or {})
    out = subprocess.DEVNULL if quiet else subprocess.PIPE
    return subprocess.Popen(
        [sys.executable, "-m", "runner", *map(str, args)],
        env=full_env,
        stdout=out,
        stderr=out,
        text=True,
    )


def creates_per_body(state: dict[str, Any]) -> list[int]:
    return list(state["creates_by_body"].values())
