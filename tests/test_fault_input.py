"""Bad input and hostile text of the fault matrix (docs/reliability.md §7.3: B1, B5–B7, B9),
checked end to end against the simulator's ground truth: bad grids send nothing, hostile task
ids and result links never pick a file name, an empty key means the simulator, and a huge
hostile error body is stored clipped and shown escaped."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from starlette.types import Receive, Scope, Send

from runner.simulator.testing import serve

from .runhelp import grid, install_faults, runner, simulator, truth

CORPUS = Path(__file__).parent / "corpus" / "bad"


def ledger_rows(ws: Path, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(ws / "ledger.sqlite")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


# ---------------------------------------------------------------------- B1, B5: bad grids


@pytest.mark.slow
@pytest.mark.fault("B1", "B4", "B5")
def test_runs_of_every_bad_grid_are_refused_before_a_single_request(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    cases = sorted(p for p in CORPUS.iterdir() if p.suffix in {".csv", ".xlsx"})
    ws = tmp_path / "ws"
    with simulator() as url:
        for source in cases:
            for sibling in CORPUS.glob(source.stem + ".*"):
                shutil.copy(sibling, tmp_path / sibling.name)
            args = CORPUS / (source.stem + ".args")
            extra = args.read_text().split() if args.exists() else []
            result = cli(
                "run", tmp_path / source.name, *extra, "--base-url", url, "--workspace", ws
            )
            assert result.exit_code == 2, (source.name, result.output)
            assert "nothing was sent" in result.stderr, source.name
            assert "Traceback" not in result.output
        state = truth(url)

    assert len(cases) >= 20
    assert state["requests"] == {}  # not even the free balance call
    assert not (ws / "ledger.sqlite").exists()


@pytest.mark.fault("B5")
def test_a_5_kb_media_url_is_refused_at_import_with_its_row_and_column(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    long_url = "https://cdn.example.com/" + "a" * 5000 + ".png"
    exp = tmp_path / "u.csv"
    exp.write_text(f"prompt,image_urls\nA cat,{long_url}\nA dog,https://cdn.example.com/d.png\n")

    result = cli("plan", exp)

    assert result.exit_code == 2
    assert result.stderr.splitlines()[1:] == [
        f"u.csv:row 2:image_urls: a URL is {len(long_url):,} characters long (at most 2,048): "
        f"{long_url[:77] + '...'!r}"
    ]


# ---------------------------------------------------------------------- B6: hostile names


class HostileFileHost:
    """A file host that serves ``video`` at any path, naming it ``../../x.mp4``."""

    def __init__(self, video: bytes) -> None:
        self.video = video
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.paths.append(scope["raw_path"].decode())
        headers = [
            (b"content-type", b"video/mp4"),
            (b"content-length", str(len(self.video)).encode()),
            (b"content-disposition", b'attachment; filename="../../x.mp4"'),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.video})


@pytest.mark.slow
@pytest.mark.fault("B6")
def test_a_task_id_and_a_result_link_full_of_dot_dots_never_name_a_file(tmp_path: Path) -> None:
    from runner.simulator.video import VideoCache

    video = VideoCache().get(
        prompt="x", duration=4, aspect_ratio="16:9", tier="fast", generate_audio=True, seed=0
    )
    host = HostileFileHost(video)
    exp, ws = grid(tmp_path / "g.csv", 1), tmp_path / "deep" / "er" / "ws"
    with simulator() as url, serve(host) as evil:
        link = f"{evil}/files/..%2F..%2Fx.mp4/../../x.mp4?name=../../x.mp4#../../x.mp4"
        install_faults(
            url,
            # the create's answer names a task "task-unified-../../x" (the task is made)
            {"endpoint": "create", "kind": "patch", "calls": [1], "json_body": {"id": _ID}},
            # every read of it points at the hostile link
            {"endpoint": "task", "kind": "patch", "json_body": {"results": [link]}},
        )
        result = runner("run", exp, "--base-url", url, "--workspace", ws, "--rate", "20")
        state = truth(url)

    assert result.returncode == 0, result.stderr
    ((key, task_id, file_path),) = ledger_rows(ws, "SELECT job_key, task_id, file_path FROM jobs")
    run_id = next(ws.glob("2*")).name
    assert task_id == state["tasks"][0]["id"] != _ID  # the true id, from the same-key replay
    assert len(state["tasks"]) == 1 and sum(state["replays_by_idempotency_key"].values()) == 1
    assert {f["endpoint"] for f in state["faults_fired"]} == {"create", "task"}
    assert host.paths  # the hostile link was really fetched...
    assert file_path == f"{run_id}/media/{key}.mp4"  # ...into the name runner chose
    assert (ws / file_path).read_bytes() == video
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert not [p for p in written if re.search(r"(^|/)x(\.mp4)?$", p)]
    assert {p for p in written if "/media/" in p} == {
        f"deep/er/ws/{run_id}/media/{key}{suffix}" for suffix in (".mp4", ".jpg", ".strip.jpg")
    }


_ID = "task-unified-../../x"


# ---------------------------------------------------------------------- B7: the key


@pytest.mark.fault("B7")
@pytest.mark.parametrize("key", ["", "   \t"])
def test_an_empty_key_is_a_missing_key_the_built_in_simulator_announced(
    key: str, tmp_path: Path, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVOLINK_API_KEY", key)
    exp, ws = grid(tmp_path / "g.csv", 1), tmp_path / "ws"

    chosen = cli("run", exp, "--workspace", ws)
    forced = cli("run", exp, "--workspace", ws, "--backend", "evolink", "--yes")

    assert chosen.exit_code == 0, chosen.output
    assert chosen.stdout.startswith("Backend: built-in simulator (EVOLINK_API_KEY is not set)")
    assert forced.exit_code == 2
    assert "the evolink backend needs an API key: set EVOLINK_API_KEY" in forced.stderr


# ---------------------------------------------------------------------- B9: hostile error text


HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>\u202e\u2028é\"'&"


@pytest.mark.slow
@pytest.mark.fault("B9")
def test_a_megabyte_of_hostile_error_text_is_stored_clipped_and_shown_escaped(
    tmp_path: Path,
) -> None:
    exp, ws = grid(tmp_path / "g.csv", 4), tmp_path / "ws"
    huge = HOSTILE * (1_000_000 // len(HOSTILE))
    # with a lone surrogate, which a JSON answer may carry as "\ud800" and no database takes
    hostile_json = json.dumps({"error": {"code": "invalid_request", "message": huge}}).replace(
        "<script>", "\\ud800<script>", 1
    )
    with simulator() as url:
        install_faults(
            url,
            {  # a refusal whose message is a megabyte of markup
                "endpoint": "create",
                "kind": "respond",
                "calls": [1],
                "status": 400,
                "headers": {"content-type": "application/json"},
                "body": hostile_json,
            },
            {  # a gateway error page of a megabyte: the outcome is unknown
                "endpoint": "create",
                "kind": "respond",
                "calls": [2],
                "status": 502,
                "headers": {"content-type": "text/html"},
                "body": f"<html><body>{huge}</body></html>",
            },
            {  # the third is made; then no credits, said in the same megabyte
                "endpoint": "create",
                "kind": "respond",
                "calls": [4],
                "status": 402,
                "headers": {"content-type": "application/json"},
                "body": hostile_json,
            },
        )
        result = runner(
            "run", exp, "--base-url", url, "--workspace", ws, "--rate", "20", "--no-replay"
        )
        state = truth(url)

    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert "Stopped early: EvoLink refused for lack of credits" in result.stdout
    assert len(state["tasks"]) == 1  # the 400, the 502 and the 402 made nothing
    assert sorted(s for (s,) in ledger_rows(ws, "SELECT state FROM jobs")) == [
        "done",
        "pending",
        "rejected",
        "unknown",
    ]
    stored = [
        text
        for sql in (
            "SELECT error_message FROM jobs",
            "SELECT detail FROM attempts",
            "SELECT detail FROM events",
        )
        for (text,) in ledger_rows(ws, sql)
        if text
    ]
    assert any("<script>alert(1)</script>" in t for t in stored)  # kept, as text
    assert max(len(t.encode()) for t in stored) <= 2048
    html = (next(ws.glob("2*")) / "index.html").read_text()
    assert len(html) < 200_000
    assert html.lower().count("<script") == 2  # the page's own data and script blocks
    assert "<img src=x" not in html  # no tag of the provider's made it into the page
    assert len(result.stdout + result.stderr) < 20_000  # clipped in the output too
