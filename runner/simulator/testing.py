"""Serve an ASGI app (usually the simulator) on 127.0.0.1 for tests and benchmarks.

`serve` runs uvicorn in a background thread on a socket bound before the thread starts (port
0 picks a free one), waits until it accepts connections, yields the base URL and shuts down
cleanly (hung requests are cut after ``graceful_timeout`` seconds). `serve_process` does the
same in a child Python process, for tests that must kill or outlive the server's process.
`ManualClock` and `asgi_client` are the in-process test seams.
uvicorn runs with the pure-Python h11 protocol and the asyncio loop, the setup the
simulator's connection faults (reset, drop, truncate) are verified against, and without its
own ``Date`` header: the simulator's (in simulated time) is the only one.

The file origin on a port of its own: bind its socket first, so that its URL can go into the
config, then serve the app and its file host (``app.files``)::

    files = listen()
    app = create_app(SimConfig(file_origin=origin(files), strict_file_host=True))
    with serve(app) as api_url, serve(app.files, sock=files) as files_url:
        ...  # result URLs are f"{files_url}/files/<task id>.mp4"

    files = listen()
    with serve_process({"file_origin": origin(files)}, file_socket=files) as (url, proc):
        ...
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

from .app import create_app
from .config import DEFAULT_KEY, SimConfig


class ManualClock:
    """A monotonic clock that moves only when told: ``create_app(clock=ManualClock())``."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def __repr__(self) -> str:
        return f"<ManualClock {self.now}>"

    def advance(self, seconds: float) -> None:
        self.now += seconds


def asgi_client(
    app: ASGIApp, key: str | None = DEFAULT_KEY, base_url: str = "http://sim.test"
) -> httpx.AsyncClient:
    """An httpx client that calls ``app`` in process, authenticated with ``key``."""
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=base_url, headers=headers
    )


def _bind(host: str, port: int) -> socket.socket:
    # proto=IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets of a TCP-numbered
    # listener; with proto 0 every keep-alive response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def listen(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket on ``host`` (port 0: a free one), for `serve` and `serve_process`."""
    return _bind(host, port)


def origin(sock: socket.socket) -> str:
    """``http://host:port`` of a listening socket."""
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


def _config(app: ASGIApp | str, host: str, graceful_timeout: int, **extra: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        loop="asyncio",
        http="h11",
        ws="none",
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=graceful_timeout,
        date_header=False,  # the simulator sends its own, in simulated time
        **extra,
    )


@contextmanager
def serve(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    sock: socket.socket | None = None,
    graceful_timeout: int = 2,
    startup_timeout: float = 10.0,
) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread; yields ``http://host:port``.

    ``sock``: a socket from `listen` to serve on (``host`` and ``port`` are then ignored);
    it is closed afterwards."""
    if sock is None:
        sock = _bind(host, port)
    host = sock.getsockname()[0]
    server = uvicorn.Server(_config(app, host, graceful_timeout))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"uvicorn-{sock.getsockname()[1]}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if failure or not thread.is_alive():
                raise RuntimeError(f"the server did not start: {failure[:1]!r}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server did not start within {startup_timeout} s")
            time.sleep(0.01)
        bound_host, bound_port = sock.getsockname()[:2]
        yield f"http://{bound_host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(graceful_timeout + 10)
        sock.close()


@contextmanager
def serve_process(
    config: Mapping[str, Any] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    speed: float | None = None,
    file_socket: socket.socket | None = None,
    startup_timeout: float = 20.0,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run the simulator in a child process; yields ``(base_url, process)``.

    ``config`` is what `SimConfig.from_json` takes. The listening socket is
    bound here and inherited by the child, so the URL is valid before the child is ready.
    ``file_socket`` (from `listen`; give ``config["file_origin"]`` its `origin`): the child
    serves the file origin on it too.
    """
    settings = dict(config or {})
    if speed is not None:
        settings["speed"] = speed
    sock = _bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    code = "from runner.simulator.testing import _child; _child()"
    env = {
        **os.environ,
        "RUNNER_SIM_CONFIG": json.dumps(settings),
        "RUNNER_SIM_FD": str(sock.fileno()),
    }
    fds = [sock.fileno()]
    if file_socket is not None:
        env["RUNNER_SIM_FILE_FD"] = str(file_socket.fileno())
        fds.append(file_socket.fileno())
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, pass_fds=fds)
    url = f"http://{bound_host}:{bound_port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the simulator process exited with {proc.returncode}")
            try:
                with socket.create_connection((bound_host, bound_port), timeout=1) as probe:
                    probe.sendall(b"GET /_sim/faults HTTP/1.1\r\nHost: sim\r\n\r\n")
                    if probe.recv(12).startswith(b"HTTP/1.1 200"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the simulator process did not answer in {startup_timeout} s")
            time.sleep(0.05)
        yield url, proc
    finally:
        sock.close()
        if file_socket is not None:
            file_socket.close()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _child() -> None:
    """Entry point of `serve_process`'s child."""
    app = create_app(SimConfig.from_json(json.loads(os.environ["RUNNER_SIM_CONFIG"])))
    sock = socket.socket(fileno=int(os.environ["RUNNER_SIM_FD"]))  # family detected from the fd
    file_fd = os.environ.get("RUNNER_SIM_FILE_FD")
    with ExitStack() as stack:
        if file_fd is not None:
            stack.enter_context(serve(app.files, sock=socket.socket(fileno=int(file_fd))))
        uvicorn.Server(_config(app, sock.getsockname()[0], 2)).run(sockets=[sock])
