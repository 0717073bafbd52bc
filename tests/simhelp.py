"""Constants shared by the simulator's tests."""

from __future__ import annotations

from typing import Any

BODY: dict[str, Any] = {
    "model": "seedance-2.0-fast-text-to-video",
    "prompt": "A red kite",
    "duration": 4,
    "quality": "480p",
}
FAKE_MP4 = b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 40
CREATE = "/v1/videos/generations"
