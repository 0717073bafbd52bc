"""The result-file stage (runner.run.media): safe streamed downloads from the simulator served on
127.0.0.1, its fault plans (expiry, truncation, redirects, wrong bodies, size), and probe,
poster and strip on real rendered videos."""

from __future__ import annotations

import hashlib
import resource
import signal
import sys
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import anyio
import av
import httpx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from runner.rules import PIXELS
from runner.run.media import (
    MAX_VIDEO_BYTES,
    Downloaded,
    DownloadError,
    check_url,
    download,
    is_retryable,
)
from runner.run.probe import Probe, make_poster, make_strip, media_info, mismatches, probe
from runner.simulator.app import DEFAULT_KEY, Fault, SimApp, SimConfig, create_app
from runner.simulator.testing import serve
from runner.simulator.video import TIER_LOOKS, frame_size, render_video

CREATE = "/v1/videos/generations"
BODY: dict[str, Any] = {
    "model": "seedance-2.0-fast-text-to-video",
    "prompt": "A red kite over a windy beach",
    "duration": 4,
    "quality": "480p",
    "aspect_ratio": "16:9",
    "generate_audio": True,
}
FAKE_MP4_HEAD = "\x00\x00\x00\x18ftypisom"  # ASCII, so a text fault body carries it unchanged


@cache
def real_video() -> bytes:
    """One real render, for tests about the transfer rather than the picture."""
    return render_video(
        prompt="A red kite", duration=4, aspect_ratio="16:9", tier="fast", generate_audio=True
    )


class LoopbackOnly(httpx.AsyncBaseTransport):
    """The real HTTP transport, refusing any host but 127.0.0.1 (the suite's network rule),
    and noting every request it is asked to send."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host != "127.0.0.1":
            raise AssertionError(f"the test tried to reach {request.url}")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    @property
    def file_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if not r.url.path.startswith(("/v1/", "/_sim/"))]


@dataclass
class Sim:
    url: str
    app: SimApp
    http: httpx.AsyncClient  # like the runner's API client: base URL and Bearer key
    transport: LoopbackOnly
    media: Path
    task_ids: list[str] = field(default_factory=list)

    async def result_url(self, **overrides: Any) -> str:
        """Create a task, let simulated time pass until it completes, return results[0]."""
        created = await self.http.post(CREATE, json={**BODY, **overrides})
        assert created.status_code == 200, created.text
        task_id = created.json()["id"]
        advanced = await self.http.post("/_sim/advance", json={"seconds": 3_600})
        assert advanced.status_code == 200, advanced.text
        task = (await self.http.get(f"/v1/tasks/{task_id}")).json()
        assert task["status"] == "completed", task
        self.task_ids.append(task_id)
        url: str = task["results"][0]
        return url

    def truth(self) -> bytes:
        """The simulator's own bytes of the last completed task (ground truth)."""
        sim = self.app.state.sim
        data: bytes = sim.video_bytes(sim.task(self.task_ids[-1]))
        return data

    async def fetch(self, url: str, name: str = "job-1.mp4", **kwargs: Any) -> Downloaded:
        kwargs.setdefault("trusted_origins", (self.url,))
        return await download(self.http, url, self.media / name, **kwargs)

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.media.iterdir()) if self.media.exists() else []


@asynccontextmanager
async def running(
    tmp_path: Path,
    *faults: Fault,
    client_timeout: float = 5.0,
    real_renderer: bool = False,
    **config: Any,
) -> AsyncIterator[Sim]:
    if not real_renderer:
        config.setdefault("video_source", lambda **_: real_video())
    app = create_app(SimConfig(faults=faults, **config))
    transport = LoopbackOnly()
    with serve(app) as url:
        async with httpx.AsyncClient(
            base_url=url,
            transport=transport,
            timeout=client_timeout,
            headers={"Authorization": f"Bearer {DEFAULT_KEY}"},
        ) as http:
            yield Sim(url, app, http, transport, tmp_path / "media")


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def refused(sim: Sim, url: str, **kwargs: Any) -> DownloadError:
    """Download ``url``, expecting a DownloadError; nothing may be left in the media folder."""
    with pytest.raises(DownloadError) as caught:
        await sim.fetch(url, **kwargs)
    assert sim.leftovers() == []
    return caught.value


# --- downloads from the simulator -------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_simulated_video_downloads_whole_with_its_sha256_and_no_part_left(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, real_renderer=True) as sim:
        url = await sim.result_url()
        got = await sim.fetch(url, "abc123-fast-0.mp4")
        truth = sim.truth()
    dest = sim.media / "abc123-fast-0.mp4"
    assert got == Downloaded(dest, len(truth), hashlib.sha256(truth).hexdigest())
    assert dest.read_bytes() == truth
    assert sim.leftovers() == ["abc123-fast-0.mp4"]  # no .part beside it
    # a bare CDN link: the API key in the client's default headers never goes to the file host
    (request,) = sim.transport.file_requests
    assert "authorization" not in request.headers
    assert request.headers["accept-encoding"] == "identity"


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_second_download_replaces_the_file_and_a_stale_part_is_cleared(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as sim:
        url = await sim.result_url()
        sim.media.mkdir()
        (sim.media / "job-1.mp4").write_bytes(b"old")
        (sim.media / "job-1.mp4.part").write_bytes(b"left by a killed run")
        got = await sim.fetch(url)
    assert got.path.read_bytes() == real_video()
    assert sim.leftovers() == ["job-1.mp4"]


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("how", ["past 24 h", "unknown file", "410 gone"])
async def test_an_expired_link_is_code_expired_and_leaves_no_file(tmp_path: Path, how: str) -> None:
    faults = [Fault("file", status=410, body="Gone")] if how == "410 gone" else []
    async with running(tmp_path, *faults) as sim:
        url = await sim.result_url()
        if how == "past 24 h":
            await sim.http.post("/_sim/advance", json={"seconds": 86_401})
        elif how == "unknown file":
            url = url.replace("/files/task-unified-", "/files/task-unified-9")
        error = await refused(sim, url)
    assert error.code == "expired" and not error.retryable
    assert error.status in (403, 404, 410)
    assert error.message.startswith("the result link has expired (HTTP ")
    assert not is_retryable(error)


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_truncated_body_is_a_retryable_network_error_and_a_retry_gets_it_whole(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, Fault("file", "truncate", truncate_at=5000, calls=(1,))) as sim:
        url = await sim.result_url()
        error = await refused(sim, url)  # no partial file at dest, no .part
        assert error.code == "network" and error.retryable and is_retryable(error)
        again = await sim.fetch(url)  # what the caller's retry does
    assert again.sha256 == hashlib.sha256(real_video()).hexdigest()
    assert sim.leftovers() == ["job-1.mp4"]


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["reset", "drop", "hang"])
async def test_broken_and_silent_connections_are_retryable_network_errors(
    tmp_path: Path, kind: Any
) -> None:
    async with running(tmp_path, Fault("file", kind), client_timeout=0.5) as sim:
        url = await sim.result_url()
        error = await refused(sim, url)
    assert error.code == "network" and error.retryable
    assert error.message.endswith("it may work again")


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (429, True), (400, False), (401, False)]
)
async def test_other_statuses_are_http_errors_retryable_only_when_transient(
    tmp_path: Path, status: int, retryable: bool
) -> None:
    async with running(tmp_path, Fault("file", status=status, body="no")) as sim:
        url = await sim.result_url()
        error = await refused(sim, url)
    assert (error.code, error.retryable, error.status) == ("http_error", retryable, status)
    assert f"HTTP {status}" in error.message


@pytest.mark.slow
@pytest.mark.anyio
async def test_an_announced_size_above_the_cap_is_refused_before_the_body(
    tmp_path: Path,
) -> None:
    # throttled to 2 KB/s, the 28 KB body would take 14 s; the refusal must not wait for it
    async with running(tmp_path, Fault("file", "throttle", bytes_per_second=2_000)) as sim:
        url = await sim.result_url()
        with anyio.fail_after(2):
            error = await refused(sim, url, max_bytes=10_000)
    assert error.code == "too_large" and not error.retryable
    assert "above the 10,000 bytes limit" in error.message


@pytest.mark.slow
@pytest.mark.anyio
async def test_an_endless_body_without_length_is_cut_at_the_cap(tmp_path: Path) -> None:
    async with running(tmp_path, Fault("file", "endless", max_bytes=10**12)) as sim:
        url = await sim.result_url()
        with anyio.fail_after(5):
            error = await refused(sim, url, max_bytes=3_000_000)
    assert error.code == "too_large" and not error.retryable
    assert "larger than the 3.0 MB limit" in error.message
    assert MAX_VIDEO_BYTES == 512 * 1024 * 1024


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize(
    ("content_type", "body", "words"),
    [
        ("application/json", '{"error": "nope"}', "application/json instead of a video"),
        ("application/xml", "<Error/>", "application/xml instead of a video"),
        ("video/mp4", "this is not a video at all", "not an MP4 video"),
        ("video/mp4", "abc", "not an MP4 video"),  # shorter than the signature
    ],
)
async def test_a_body_that_is_not_an_mp4_is_not_video(
    tmp_path: Path, content_type: str, body: str, words: str
) -> None:
    fault = Fault("file", status=200, body=body, content_type=content_type)
    async with running(tmp_path, fault) as sim:
        url = await sim.result_url()
        error = await refused(sim, url)
    assert error.code == "not_video" and not error.retryable
    assert words in error.message


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        (200, "text/html", "<html><body>Link expired</body></html>"),
        (200, "video/mp4", "<!DOCTYPE html><html><body>Just a moment...</body></html>"),
        (200, "application/octet-stream", "\n  <HTML><body>blocked</body></HTML>"),
        (403, "text/plain", "error code: 1010"),
        (403, "text/html", "<!DOCTYPE html><title>Access denied | Error 1010</title>"),
    ],
)
async def test_a_block_or_web_page_from_the_file_host_is_refused_not_expired(
    tmp_path: Path, status: int, content_type: str, body: str
) -> None:
    # docs/evolink.md §21: a fresh link may work (the dispatcher re-reads the task for one)
    fault = Fault("file", status=status, body=body, content_type=content_type)
    async with running(tmp_path, fault) as sim:
        url = await sim.result_url()
        error = await refused(sim, url)
    assert (error.code, error.retryable) == ("refused", False)
    assert error.message.startswith("the file host ")


@pytest.mark.slow
@pytest.mark.anyio
async def test_octet_stream_with_the_mp4_signature_downloads_and_probe_then_refuses_it(
    tmp_path: Path,
) -> None:
    body = FAKE_MP4_HEAD + "but nothing playable follows"
    fault = Fault("file", status=200, body=body, content_type="application/octet-stream")
    async with running(tmp_path, fault) as sim:
        got = await sim.fetch(await sim.result_url())
    assert got.path.read_bytes() == body.encode()
    with pytest.raises(DownloadError) as caught:
        probe(got.path)
    assert caught.value.code == "not_video"


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_signature_is_found_when_it_arrives_a_few_bytes_at_a_time(
    tmp_path: Path,
) -> None:
    tiny = FAKE_MP4_HEAD.encode() + bytes(range(88))  # 100 bytes in 6-byte pieces at 120 B/s
    fault = Fault("file", "throttle", bytes_per_second=120)
    async with running(tmp_path, fault, video_source=lambda **_: tiny) as sim:
        got = await sim.fetch(await sim.result_url())
    assert got.size == 100 and got.sha256 == hashlib.sha256(tiny).hexdigest()


@pytest.mark.slow
@pytest.mark.anyio
async def test_cancelling_a_download_midway_removes_the_part(tmp_path: Path) -> None:
    async with running(tmp_path, Fault("file", "throttle", bytes_per_second=10_000)) as sim:
        url = await sim.result_url()
        with anyio.move_on_after(0.4) as scope:
            await sim.fetch(url)
        assert scope.cancelled_caught
        assert sim.leftovers() == []


# --- redirects and refused links ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize(
    ("location", "why"),
    [
        ("http://127.0.0.1:9/files/x.mp4", "only https links"),  # loopback, not the sim's port
        ("http://169.254.169.254/latest/meta-data/", "only https links"),
        ("https://169.254.169.254/latest/meta-data/", "link-local address (169.254.169.254)"),
        ("https://10.0.0.1/x.mp4", "private, loopback or link-local address (10.0.0.1)"),
        ("https://localhost/x.mp4", "address (localhost)"),
        ("file:///etc/passwd", "this one is file:"),
    ],
)
async def test_a_redirect_to_a_refused_address_is_blocked_before_any_request(
    tmp_path: Path, location: str, why: str
) -> None:
    async with running(tmp_path, Fault("file", "redirect", location=location)) as sim:
        url = await sim.result_url()
        error = await refused(sim, url)
    assert error.code == "blocked_url" and not error.retryable
    assert error.message.startswith("the result link redirected to an address that was refused")
    assert why in error.message
    assert [str(r.url) for r in sim.transport.file_requests] == [url]  # never went there


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_redirect_within_the_trusted_origin_is_followed(tmp_path: Path) -> None:
    async with running(tmp_path) as sim:
        url = await sim.result_url()
        path = httpx.URL(url).path
        sim.app.state.sim.set_faults(
            [Fault("file", "redirect", status=307, calls=(1,), location=f"{path}?hop=2")]
        )
        got = await sim.fetch(url)
    assert got.sha256 == hashlib.sha256(real_video()).hexdigest()
    assert [str(r.url) for r in sim.transport.file_requests] == [url, f"{url}?hop=2"]


@pytest.mark.slow
@pytest.mark.anyio
async def test_endless_redirects_stop_after_max_redirects(tmp_path: Path) -> None:
    async with running(tmp_path) as sim:
        url = await sim.result_url()
        sim.app.state.sim.set_faults([Fault("file", "redirect", location=url)])
        error = await refused(sim, url, max_redirects=2)
    assert error.code == "http_error" and "more than 2 times" in error.message
    assert len(sim.transport.file_requests) == 3


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_loopback_link_is_refused_unless_it_is_the_trusted_origin(tmp_path: Path) -> None:
    async with running(tmp_path) as sim:
        url = await sim.result_url()
        error = await refused(sim, url, trusted_origins=())
        other = await refused(sim, url, trusted_origins=("http://simulator.local",))
    assert error.code == other.code == "blocked_url"
    assert (
        error.message == "the result link was refused: only https links are downloaded, "
        "and this one is http:"
    )
    assert sim.transport.file_requests == []


@pytest.mark.parametrize(
    ("url", "trusted", "ok"),
    [
        ("https://files.evolink.ai/task-unified-1.mp4", None, True),
        ("https://FILES.evolink.ai:443/a.mp4?sig=1", None, True),
        ("https://8.8.8.8/a.mp4", None, True),
        ("https://[2606:4700::1111]/a.mp4", None, True),
        ("http://files.evolink.ai/a.mp4", None, False),
        ("file:///etc/passwd", None, False),
        ("data:video/mp4;base64,AAAA", None, False),
        ("javascript:alert(1)", None, False),
        ("ftp://files.evolink.ai/a.mp4", None, False),
        ("https://10.0.0.1/a.mp4", None, False),
        ("https://192.168.1.20/a.mp4", None, False),
        ("https://169.254.169.254/latest/meta-data/", None, False),
        ("https://[::1]/a.mp4", None, False),
        ("https://[::ffff:127.0.0.1]/a.mp4", None, False),
        ("https://[fe80::1]/a.mp4", None, False),
        ("https://0.0.0.0/a.mp4", None, False),
        ("https://localhost/a.mp4", None, False),
        ("https://localhost./a.mp4", None, False),
        ("https://127.0.0.1./a.mp4", None, False),
        ("https://2130706433/a.mp4", None, False),  # 127.0.0.1 spelled as one number
        ("https://0x7f.1/a.mp4", None, False),
        ("https://127.1/a.mp4", None, False),
        ("https://0177.0.0.1/a.mp4", None, False),  # octal
        ("https://2130706433./a.mp4", None, False),  # a number with a trailing dot
        ("https://0xA9FEA9FE/latest/meta-data/", None, False),  # 169.254.169.254 in hex
        ("https://134744072/a.mp4", None, True),  # 8.8.8.8 as one number: public
        ("https://user@10.0.0.1/a.mp4", None, False),
        ("https:///a.mp4", None, False),
        ("https://files.evolink.ai:99999/a.mp4", None, False),
        ("not a url at all", None, False),
        ("http://127.0.0.1:8787/files/x.mp4", "http://127.0.0.1:8787", True),
        ("http://127.0.0.1:8787/files/x.mp4", "http://127.0.0.1:8787/v1/", True),
        ("http://127.0.0.1:8788/files/x.mp4", "http://127.0.0.1:8787", False),
        ("https://127.0.0.1:8787/files/x.mp4", "http://127.0.0.1:8787", False),
        ("http://simulator.local/files/x.mp4", "http://simulator.local", True),
        ("http://simulator.local:80/files/x.mp4", "http://simulator.local", True),
        ("http://simulator.local.evil.com/x.mp4", "http://simulator.local", False),
        ("https://files.evolink.ai/a.mp4", "http://127.0.0.1:8787", True),
        ("http://127.0.0.1:9999/files/x.mp4", "http://127.0.0.1:*", True),
        ("http://[::1]:8/files/x.mp4", "http://[::1]:*", True),
        ("http://LOCALHOST:8/files/x.mp4", "http://localhost:*", True),
        ("https://127.0.0.1:9999/files/x.mp4", "http://127.0.0.1:*", False),
        ("http://127.0.0.2:9999/files/x.mp4", "http://127.0.0.1:*", False),
        ("http://10.0.0.1:9999/files/x.mp4", "http://127.0.0.1:*", False),
    ],
)
def test_check_url_allows_public_https_and_the_trusted_origin_only(
    url: str, trusted: str | None, ok: bool
) -> None:
    reason = check_url(url, trusted)
    assert (reason is None) is ok, reason
    if reason is not None:
        assert reason[0].islower() and len(reason) < 120  # reads as part of a sentence


@given(
    st.ip_addresses(v=4, network="10.0.0.0/8")
    | st.ip_addresses(v=4, network="127.0.0.0/8")
    | st.ip_addresses(v=6, network="fc00::/7")
)
def test_check_url_refuses_every_private_address(ip: Any) -> None:
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    assert check_url(f"https://{host}/a.mp4", None) is not None


@pytest.mark.anyio
@pytest.mark.parametrize(
    "relative",
    [
        "../escape.mp4",
        "sub/../../escape.mp4",
        "../media/../escape.mp4",
        ".hidden.mp4",
        "job-1.mp4.part",
        "job 1.mp4",
    ],
)
@pytest.mark.fault("B6")
async def test_a_destination_outside_the_media_folder_is_refused_before_fetching(
    tmp_path: Path, relative: str
) -> None:
    transport = LoopbackOnly()
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(ValueError, match="refusing to write"):
            await download(
                http,
                "http://127.0.0.1:9/files/x.mp4",
                tmp_path / "media" / relative,
                trusted_origins=("http://127.0.0.1:9",),
            )
    assert transport.requests == []
    assert listing(tmp_path) == []


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.fault("B6")
async def test_a_relative_workspace_above_the_current_folder_is_fine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a leading ".." (--workspace ../reports) says where the folder is; it steps out of nothing
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    async with running(tmp_path) as sim:
        got = await download(
            sim.http,
            await sim.result_url(),
            Path("..") / "media" / "job-1.mp4",
            trusted_origins=(sim.url,),
        )
    assert got.size == len(real_video())
    assert sim.leftovers() == ["job-1.mp4"]


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.fault("B6")
async def test_a_destination_that_is_a_symlink_out_of_the_folder_is_refused(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as sim:
        url = await sim.result_url()
        sim.media.mkdir()
        (sim.media / "job-1.mp4").symlink_to(tmp_path / "elsewhere.mp4")
        with pytest.raises(ValueError, match="resolves outside"):
            await sim.fetch(url)
    assert not (tmp_path / "elsewhere.mp4").exists()


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.fault("P7")
async def test_a_folder_that_cannot_be_written_is_a_disk_error(tmp_path: Path) -> None:
    async with running(tmp_path) as sim:
        url = await sim.result_url()
        sim.media.write_text("a file where the media folder should be")
        with pytest.raises(DownloadError) as caught:
            await sim.fetch(url)
    assert caught.value.code == "disk" and not caught.value.retryable
    assert "could not write" in caught.value.message


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and SIGXFSZ as on Linux")
@pytest.mark.fault("P7")
async def test_a_write_that_fails_midway_is_a_disk_error_and_removes_the_part(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as sim:
        url = await sim.result_url()
        # a real failing write: the OS refuses to grow any file of this process past 8 KB
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8_192, hard))
        try:
            with pytest.raises(DownloadError) as caught:
                await sim.fetch(url)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, previous)
        assert sim.leftovers() == []
    assert caught.value.code == "disk" and not caught.value.retryable
    assert "File too large" in caught.value.message


def test_download_errors_read_well() -> None:
    error = DownloadError("network", "the connection broke; it may work again", retryable=True)
    assert str(error) == error.message == "the connection broke; it may work again"
    assert repr(error) == (
        "<DownloadError network retryable=True: 'the connection broke; it may work again'>"
    )
    assert is_retryable(error) and not is_retryable(ValueError("x"))


# --- probe, poster, strip ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize(
    ("aspect_ratio", "audio", "tier"), [("9:16", True, "fast"), ("21:9", False, "standard")]
)
async def test_probe_poster_and_strip_of_a_rendered_simulator_video(
    tmp_path: Path, aspect_ratio: str, audio: bool, tier: str
) -> None:
    model = "seedance-2.0-text-to-video" if tier == "standard" else BODY["model"]
    async with running(tmp_path, real_renderer=True) as sim:
        url = await sim.result_url(
            model=model, aspect_ratio=aspect_ratio, generate_audio=audio, duration=5
        )
        video = (await sim.fetch(url)).path
    width, height = frame_size(aspect_ratio, tier)

    measured = await anyio.to_thread.run_sync(probe, video)
    assert measured.duration == pytest.approx(5.0, abs=0.01)
    assert measured == Probe(
        duration=measured.duration,
        width=width,
        height=height,
        fps=TIER_LOOKS[tier].fps,
        has_audio=audio,
        video_codec="h264",
    )
    assert mismatches(measured, duration=5, aspect_ratio=aspect_ratio, generate_audio=audio) == []

    poster, strip = tmp_path / "poster.jpg", tmp_path / "strip.jpg"
    await anyio.to_thread.run_sync(make_poster, video, poster)
    await anyio.to_thread.run_sync(make_strip, video, strip)
    with Image.open(poster) as image:
        assert (image.format, image.size) == ("JPEG", (width, height))
        luma = np.asarray(image.convert("L"), dtype=np.float32)
    assert luma.mean() > 24 and luma.std() > 6  # not a near-black or blank frame
    with Image.open(strip) as image:
        assert image.format == "JPEG" and image.height == 90
        assert abs(image.width - 6 * round(width * 90 / height)) <= 6
    assert listing(tmp_path) == ["media", "poster.jpg", "strip.jpg"]


def write_video(path: Path, pictures: list[np.ndarray], fps: int = 12) -> Path:
    """A real H.264 MP4 of the given RGB frames (all the same size)."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = pictures[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for index, picture in enumerate(pictures):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def black(n: int) -> list[np.ndarray]:
    return [np.zeros((48, 64, 3), np.uint8) for _ in range(n)]


def stripes(n: int) -> list[np.ndarray]:
    out = []
    for i in range(n):
        picture = np.zeros((48, 64, 3), np.uint8)
        picture[:, ::8] = (250, 200, 40)
        picture[:, 1::8] = (250, 200, 40)
        picture[i % 48, :] = (40, 120, 250)
        out.append(picture)
    return out


def luma_of(path: Path) -> tuple[float, float]:
    with Image.open(path) as image:
        values = np.asarray(image.convert("L"), dtype=np.float32)
    return float(values.mean()), float(values.std())


def test_the_poster_skips_a_black_opening(tmp_path: Path) -> None:
    video = write_video(tmp_path / "fade.mp4", black(12) + stripes(24))
    make_poster(video, tmp_path / "poster.jpg")
    mean, std = luma_of(tmp_path / "poster.jpg")
    assert mean > 24 and std > 6


def test_an_all_black_video_still_gets_a_poster_from_10_percent_in(tmp_path: Path) -> None:
    video = write_video(tmp_path / "black.mp4", black(24))
    make_poster(video, tmp_path / "poster.jpg")
    mean, _ = luma_of(tmp_path / "poster.jpg")
    assert mean < 24
    with Image.open(tmp_path / "poster.jpg") as image:
        assert image.size == (64, 48)


def test_the_strip_shows_frames_equally_spaced_in_time(tmp_path: Path) -> None:
    # 4 s at 12 fps: 1 s black, 1 s stripes, 1 s black, 1 s stripes
    video = write_video(tmp_path / "v.mp4", black(12) + stripes(12) + black(12) + stripes(12))
    make_strip(video, tmp_path / "strip.jpg", frames=4, height=48)
    with Image.open(tmp_path / "strip.jpg") as image:
        assert image.size == (4 * 64, 48)
        tiles = [
            np.asarray(image.crop((64 * i, 0, 64 * (i + 1), 48)).convert("L")) for i in range(4)
        ]
    assert [float(t.mean()) > 24 for t in tiles] == [False, True, False, True]
    with pytest.raises(ValueError, match="frames >= 1"):
        make_strip(video, tmp_path / "none.jpg", frames=0)


def test_posters_and_strips_from_parallel_threads_match_one_thread(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(real_video())
    outputs = [tmp_path / f"s{i}.jpg" for i in range(6)]
    make_strip(video, tmp_path / "alone.jpg")
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda out: make_strip(video, out), outputs))
    expected = (tmp_path / "alone.jpg").read_bytes()
    assert all(out.read_bytes() == expected for out in outputs)


def test_a_missing_file_is_a_bug_of_the_caller_not_a_bad_video(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        probe(tmp_path / "never-downloaded.mp4")


def audio_only(path: Path) -> Path:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16_000, layout="mono")
        sound = av.AudioFrame.from_ndarray(
            np.zeros((1, 16_000), np.float32), format="fltp", layout="mono"
        )
        sound.sample_rate = 16_000
        sound.pts = 0
        container.mux(stream.encode(sound))
        container.mux(stream.encode(None))
    return path


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: p.write_text("<html>expired</html>"), "cannot be read as a video"),
        (lambda p: p.write_bytes(b""), "cannot be read as a video"),
        (lambda p: p.write_bytes(real_video()[: len(real_video()) // 20]), "video"),
        (audio_only, "holds no video track"),
    ],
    ids=["html", "empty", "first-5-percent", "audio-only"],
)
def test_what_cannot_be_decoded_as_a_video_is_not_video(
    tmp_path: Path, make: Callable[[Path], object], words: str
) -> None:
    path = tmp_path / "bad.mp4"
    make(path)
    for look in (
        probe,
        lambda p: make_poster(p, tmp_path / "p.jpg"),
        lambda p: make_strip(p, tmp_path / "s.jpg"),
    ):
        with pytest.raises(DownloadError) as caught:
            look(path)
        assert caught.value.code == "not_video" and words in caught.value.message
    assert not (tmp_path / "p.jpg").exists() and not (tmp_path / "s.jpg").exists()


# --- mismatches ---------------------------------------------------------------------------------


def probed(
    duration: float = 5.0,
    width: int = 1280,
    height: int = 720,
    fps: float = 24.0,
    audio: bool = True,
) -> Probe:
    return Probe(
        duration=duration, width=width, height=height, fps=fps, has_audio=audio, video_codec="h264"
    )


@pytest.mark.parametrize(
    ("got", "asked", "expected"),
    [
        (probed(), (5, "16:9", True), []),
        (probed(duration=5.49), (5, "16:9", True), []),
        (probed(duration=4.0), (5, "16:9", True), ["duration 4.0 s, asked 5 s"]),
        (probed(duration=5.6), (5, "16:9", True), ["duration 5.6 s, asked 5 s"]),
        (probed(duration=5.9, fps=1.0), (5, "16:9", True), []),  # one frame is 1 s here
        (probed(width=960, height=960), (5, "16:9", True), ["aspect 1.00 (960x960), asked 16:9"]),
        (probed(width=864, height=496), (5, "16:9", True), []),  # 480p 16:9 is 2 % off
        (probed(width=960, height=960), (5, "adaptive", True), []),
        (probed(audio=False), (5, "16:9", True), ["no audio track, audio was asked for"]),
        (probed(), (5, "16:9", False), ["an audio track, no audio was asked for"]),
        (
            probed(duration=8.0, width=720, height=1280, audio=False),
            (4, "16:9", True),
            [
                "duration 8.0 s, asked 4 s",
                "aspect 0.56 (720x1280), asked 16:9",
                "no audio track, audio was asked for",
            ],
        ),
    ],
)
def test_mismatches_name_each_difference_in_plain_words(
    got: Probe, asked: tuple[int, str, bool], expected: list[str]
) -> None:
    duration, aspect_ratio, audio = asked
    assert (
        mismatches(got, duration=duration, aspect_ratio=aspect_ratio, generate_audio=audio)
        == expected
    )


def test_every_documented_and_simulated_size_matches_its_aspect_ratio() -> None:
    sizes = [(ratio, size) for ratio, by_quality in PIXELS.items() for size in by_quality.values()]
    sizes += [(ratio, frame_size(ratio, tier)) for ratio in PIXELS for tier in TIER_LOOKS]
    for ratio, (width, height) in sizes:
        assert (
            mismatches(
                probed(width=width, height=height),
                duration=5,
                aspect_ratio=ratio,
                generate_audio=True,
            )
            == []
        ), (ratio, width, height)
    with pytest.raises(ValueError, match="not W:H"):
        mismatches(probed(), duration=5, aspect_ratio="wide", generate_audio=True)


def test_media_info_probes_writes_poster_and_strip_and_compares(tmp_path: Path) -> None:
    video = tmp_path / "job.mp4"
    video.write_bytes(
        render_video(
            prompt="a kite", duration=5, aspect_ratio="9:16", tier="fast", generate_audio=True
        )
    )

    info = media_info(str(video), 5, "16:9", True)

    assert (info["poster"], info["strip"]) == ("job.jpg", "job.strip.jpg")
    assert (tmp_path / "job.jpg").is_file() and (tmp_path / "job.strip.jpg").is_file()
    assert info["has_audio"] is True and abs(info["duration"] - 5) < 0.2
    assert info["mismatches"] == [f"aspect 0.56 ({info['width']}x{info['height']}), asked 16:9"]
