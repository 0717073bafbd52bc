"""``--notify URL``: the run's summary reaches a real HTTP server on 127.0.0.1 when the run ends
or stops, in a Slack-compatible body, never with the API key; a notification that fails is one
line on stderr and changes nothing else (README "Tell me when it ends")."""

from __future__ import annotations

import contextlib
import json
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from runner.review import notify

from .runhelp import grid, simulator, spawn, truth


@dataclass
class Hook:
    """A webhook on 127.0.0.1: what it received, and how it answers."""

    url: str = ""
    status: int = 200
    delay: float = 0.0
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


@contextmanager
def webhook(status: int = 200, delay: float = 0.0) -> Iterator[Hook]:
    hook = Hook(status=status, delay=delay)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            hook.received.append((dict(self.headers.items()), body))
            time.sleep(hook.delay)
            with contextlib.suppress(OSError):  # a client that gave up waiting
                self.send_response(hook.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/secretpath"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def summary(ws: Path) -> dict[str, Any]:
    (path,) = ws.glob("2*/summary.json")
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_a_finished_run_posts_its_summary_to_the_webhook_without_the_key(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"sk-NOTIFYCHECK-{secrets.token_hex(8)}"
    monkeypatch.setenv("EVOLINK_API_KEY", key)
    exp, ws = grid(tmp_path / "g.csv", 3), tmp_path / "ws"
    with simulator(speed=100.0) as api, webhook() as hook:
        result = cli(
            "run",
            exp,
            "--backend",
            "evolink",
            "--base-url",
            api,
            "--yes",
            "--workspace",
            ws,
            "--name",
            f"night {key}",  # a key pasted where it does not belong is scrubbed too
            "--notify",
            hook.url,
        )
        books = truth(api)

    assert result.exit_code == 0, result.output
    assert len(hook.received) == 1
    headers, raw = hook.received[0]
    assert key not in raw.decode() and key not in json.dumps(headers)
    assert not any(h.lower() in ("authorization", "cookie") for h in headers)
    body = json.loads(raw)
    on_disk = summary(ws)
    assert body["name"] == "night ***"
    assert {k: v for k, v in body.items() if k not in ("text", "name")} == {
        k: v for k, v in on_disk.items() if k != "name"
    }
    assert body["counts"] == {"done": 3} and len(books["tasks"]) == 3
    charged = sum(a["charged"] for a in books["accounts"].values())
    assert abs(body["credits"]["charged"] - charged) < 0.01  # the simulator's own books
    run = on_disk["run"]
    assert body["text"] == (
        f"runner: run night *** ({run}) finished (exit 0): 3/3 done, "
        f"{on_disk['credits']['spent']:,.2f} credits. Nothing left to do."
    )
    assert "Notified http://127.0.0.1:" in result.output
    assert "secretpath" not in result.output  # the webhook's path is its secret


@pytest.mark.slow
def test_a_run_stopped_by_its_budget_notifies_and_so_does_its_resume_through_the_env(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp, ws = grid(tmp_path / "g.csv", 6), tmp_path / "ws"
    with simulator(speed=50.0) as api, webhook() as hook:
        stopped = cli(
            "run", exp, "--base-url", api, "--workspace", ws, "--budget", "90", "--notify", hook.url
        )
        monkeypatch.setenv("RUNNER_NOTIFY_URL", hook.url)
        resumed = cli("resume", "latest", "--workspace", ws, "--budget", "1000")

    assert stopped.exit_code == 3 and resumed.exit_code == 0, resumed.output
    first, second = hook.bodies()
    run = first["run"]
    assert first["state"] == "stopped" and "budget" in first["stop_reason"]
    done = first["counts"]["done"]
    assert first["counts"] == {"done": done, "pending": 6 - done}
    assert first["text"].startswith(f"runner: run g ({run}) stopped (exit 3): {done}/6 done, ")
    assert first["text"].endswith(f"Next: runner resume {run}")
    assert second["state"] == "finished" and second["counts"] == {"done": 6}


@pytest.mark.slow
def test_a_run_stopped_by_sigterm_after_its_grace_notifies_with_the_command_that_goes_on(
    tmp_path: Path,
) -> None:
    exp, ws = grid(tmp_path / "g.csv", 6), tmp_path / "ws"
    with simulator(speed=20.0) as api, webhook() as hook:
        proc = spawn(
            "run", exp, "--base-url", api, "--workspace", ws, "--rate", "4", "--grace", "1",
            "--notify", hook.url,
        )  # fmt: skip
        while not truth(api)["tasks"]:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        paid = len(truth(api)["tasks"])

    assert proc.returncode == 3, err
    (body,) = hook.bodies()
    assert body["state"] == "stopped" and body["exit_code"] == 3
    assert "SIGTERM" in body["stop_reason"] and "grace ran out" in body["stop_reason"]
    assert sum(body["counts"].values()) == 6 and body["counts"].get("pending", 0) >= 6 - paid
    assert body["text"].endswith(f"Next: runner resume {body['run']}")


def test_an_unreachable_webhook_is_one_line_on_stderr_and_the_run_still_exits_0(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    exp, ws = grid(tmp_path / "g.csv", 2), tmp_path / "ws"
    url = f"http://127.0.0.1:{closed_port()}/hook"

    with simulator() as api:
        result = cli("run", exp, "--base-url", api, "--workspace", ws, "--notify", url)

    assert result.exit_code == 0
    lines = [line for line in result.stderr.splitlines() if "notification" in line]
    assert len(lines) == 1 and "failed" in lines[0] and "summary.json" in lines[0], result.stderr
    assert summary(ws)["counts"] == {"done": 2}


def test_a_webhook_answering_500_is_said_and_changes_nothing(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    exp, ws = grid(tmp_path / "g.csv", 1), tmp_path / "ws"
    with simulator() as api, webhook(status=500) as hook:
        result = cli("run", exp, "--base-url", api, "--workspace", ws, "--notify", hook.url)

    assert result.exit_code == 0 and len(hook.received) == 1
    assert "failed (it answered HTTP 500)" in result.stderr


def test_a_webhook_that_never_answers_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notify, "TIMEOUT", 0.3)
    data = {
        "run": "r",
        "name": "n",
        "state": "finished",
        "exit_code": 0,
        "jobs": 1,
        "counts": {"done": 1},
        "credits": {"spent": 1.0},
        "next": [],
    }
    with webhook(delay=2.0) as hook:
        started = time.monotonic()
        problem = notify.send(hook.url, data, None)

    assert problem == "no answer within 0.3 s"
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/x",
        "hooks.slack.com/services/x",
        "http://",
        "http://hooks..example.com/x",  # httpx cannot encode the host: it would raise later
        "http://127.0.0.1:abc/hook",
    ],
)
def test_a_bad_notify_url_is_refused_before_anything_starts(
    cli: Callable[..., Result], tmp_path: Path, url: str
) -> None:
    exp, ws = grid(tmp_path / "g.csv", 1), tmp_path / "ws"

    result = cli("run", exp, "--workspace", ws, "--notify", url)

    assert result.exit_code == 2
    assert "--notify" in result.stderr and "http:// or https://" in result.stderr
    assert not list(ws.glob("2*"))  # no run was created


def test_a_bad_notify_url_in_the_environment_is_named_as_such(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_NOTIFY_URL", "slack please")
    result = cli("run", grid(tmp_path / "g.csv", 1), "--workspace", tmp_path / "ws")

    assert result.exit_code == 2 and "RUNNER_NOTIFY_URL" in result.stderr
