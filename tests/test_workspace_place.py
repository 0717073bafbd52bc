"""A workspace on a network share or in a cloud-synced folder is refused before anything is
spent: SQLite's locks and WAL are not safe there (docs/reliability.md §4.2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from runner.run.place import shared_folder

from .runhelp import grid

MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
server:/export/team /mnt/team nfs4 rw,relatime 0 0
//nas/share /media/my\\040nas cifs rw 0 0
/dev/vdb /mnt/team/scratch ext4 rw 0 0
"""


DARWIN = """\
/dev/disk3s1s1 on / (apfs, sealed, local, read-only, journaled)
/dev/disk3s5 on /System/Volumes/Data (apfs, local, journaled, nobrowse)
//ana@nas.local/Team on /Volumes/Team Share (smbfs, nodev, nosuid, mounted by ana)
nas:/export on /Volumes/nfs (nfs, asynchronous)
"""
WSL = """\
rootfs / ext4 rw 0 0
C:\\134 /mnt/c 9p rw,relatime,aname=drvfs 0 0
D: /mnt/d drvfs rw 0 0
"""


@pytest.mark.parametrize(
    ("path", "mounts", "why"),
    [
        ("/Volumes/Team Share/ads", DARWIN, "a network share (smbfs at /Volumes/Team Share)"),
        ("/Volumes/nfs/ws", DARWIN, "a network share (nfs at /Volumes/nfs)"),
        ("/System/Volumes/Data/Users/ana/ws", DARWIN, None),
        ("/mnt/c/Users/ana/ws", WSL, "a Windows drive seen from WSL (/mnt/c)"),
        ("/mnt/d/ws", WSL, "a Windows drive seen from WSL (/mnt/d)"),
        ("/home/ana/ws", WSL, None),
    ],
)
def test_macos_and_wsl_mounts_are_read_too(path: str, mounts: str, why: str | None) -> None:
    assert shared_folder(Path(path), mounts) == why


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/mnt/team/ws", "a network share (nfs4 at /mnt/team)"),
        ("/mnt/team", "a network share (nfs4 at /mnt/team)"),
        ("/media/my nas/runs", "a network share (cifs at /media/my nas)"),
        ("/mnt/team/scratch/ws", None),  # a local disk mounted inside the share
        ("/mnt/teamwork/ws", None),  # a prefix of the name is not the mount
        ("/home/ana/work", None),
        ("/home/ana/Dropbox/ads/ws", "a cloud-synced folder (Dropbox)"),
        ("/home/ana/OneDrive - Contoso/ws", "a cloud-synced folder (OneDrive - Contoso)"),
        (
            "/Users/ana/Library/Mobile Documents/com~apple~CloudDocs/ws",
            "a cloud-synced folder (Mobile Documents)",
        ),
        (
            "/Users/ana/Library/CloudStorage/GoogleDrive-ana/ws",
            "a cloud-synced folder (CloudStorage)",
        ),
    ],
)
def test_which_folders_are_shared(path: str, why: str | None) -> None:
    assert shared_folder(Path(path), MOUNTS) == why


def test_a_run_in_a_synced_folder_is_refused_with_the_way_out_and_nothing_spent(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    ws = tmp_path / "Dropbox" / "ws"
    result = cli("run", grid(tmp_path / "g.csv", 1), "--workspace", ws)

    assert result.exit_code == 2
    assert "cloud-synced folder (Dropbox)" in result.output
    assert "--workspace ~/runner-work" in result.output
    assert not ws.exists()  # no ledger, no run, nothing sent


def test_the_refusal_can_be_overridden(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_ALLOW_SHARED_WORKSPACE", "1")
    ws = tmp_path / "Dropbox" / "ws"
    result = cli("run", grid(tmp_path / "g.csv", 1), "--workspace", ws)

    assert result.exit_code == 0, result.output
    assert (ws / "ledger.sqlite").is_file()
