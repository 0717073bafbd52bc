"""Whether a workspace folder is a safe home for the ledger.

SQLite's locking and its write-ahead log need a local file system: on a network share (NFS,
SMB/CIFS, sshfs ...) locks may not hold and the WAL's shared memory is unsupported, and a
cloud sync client (Dropbox, OneDrive, Google Drive, iCloud) may upload or replace the
database file mid-transaction. Either can corrupt the ledger or let two runners both think
they hold it, which is how a video gets paid for twice. So a writer refuses such a folder
(docs/reliability.md §4.2); ``RUNNER_ALLOW_SHARED_WORKSPACE=1`` overrides, at the user's risk.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from ..errors import InputError

ALLOW = "RUNNER_ALLOW_SHARED_WORKSPACE"

# file-system types (as in /proc/mounts) whose locks SQLite cannot trust
NETWORK_FS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "9p", "ceph", "glusterfs", "lustre"}
    | {"davfs", "fuse.sshfs", "fuse.rclone", "fuse.s3fs", "fuse.gcsfuse", "fuse.davfs2"}
    | {"fuse.gvfsd-fuse", "vboxsf", "vmhgfs", "fuse.vmhgfs-fuse", "prl_fs"}  # desktops, VMs
    | {"afpfs", "webdav"}  # macOS (smbfs and nfs above)
)
# a Windows drive seen from WSL: locks do not hold either, but it is no "network share"
WINDOWS_FS = frozenset({"drvfs", "9p"})
_DARWIN_LINE = re.compile(r"^.+? on (?P<point>/.*?) \((?P<kind>[^,)]+)")
# folder names that cloud sync clients own (their own folders, and macOS's CloudStorage)
SYNCED = ("dropbox", "onedrive", "google drive", "googledrive", "my drive", "icloud drive")
SYNCED_EXACT = ("mobile documents", "cloudstorage", "nextcloud", "owncloud", "pcloud drive")


def shared_folder(path: Path, mounts: str | None = None) -> str | None:
    """Why ``path`` is not a safe ledger folder ("a network share (nfs4)", "a Dropbox
    folder"), or None. ``mounts``: the mount table's text (`mount_table` when None)."""
    full = path.resolve()
    for part in full.parts:
        name = part.lower()
        if name.startswith(SYNCED) or name in SYNCED_EXACT:
            return f"a cloud-synced folder ({part})"
    if mounts is None:
        mounts = mount_table()
    best, kind = "", ""
    for point, fs in _mounts(mounts):
        inside = str(full) == point or str(full).startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fs
    if kind in WINDOWS_FS and best.startswith("/mnt/"):
        return f"a Windows drive seen from WSL ({best})"
    if kind in NETWORK_FS or kind in WINDOWS_FS:
        return f"a network share ({kind} at {best})"
    return None


def mount_table() -> str:
    """This machine's mounts: /proc/mounts on Linux, `mount`'s output on macOS; "" if
    neither can be read (then only folder names are checked)."""
    try:
        if sys.platform == "darwin":
            return subprocess.run(
                ["/sbin/mount"], capture_output=True, text=True, timeout=5, check=False
            ).stdout
        return Path("/proc/mounts").read_text(encoding="utf-8", errors="replace")
    except (OSError, subprocess.SubprocessError):
        return ""


def _mounts(text: str) -> list[tuple[str, str]]:
    """(mount point, file-system type) from /proc/mounts lines (``dev point type ...``) or
    macOS `mount` lines (``dev on /point (type, options)``)."""
    found = []
    for line in text.splitlines():
        darwin = _DARWIN_LINE.match(line)
        if darwin:
            found.append((darwin["point"], darwin["kind"].strip()))
            continue
        fields = line.split()
        if len(fields) >= 3:
            found.append((fields[1].replace("\\040", " "), fields[2]))
    return found


def check_workspace(path: Path) -> None:
    """Refuse a workspace whose ledger SQLite cannot keep safe (unless overridden)."""
    if os.environ.get(ALLOW) == "1":
        return
    why = shared_folder(path)
    if why:
        raise InputError(
            f"the workspace {path} is in {why}, where the ledger's locks and writes are not "
            "safe (a video could be paid for twice, or results lost). Use a folder on this "
            "computer's own disk, e.g. --workspace ~/runner-work; copy reports to the shared "
            f"folder afterwards. ({ALLOW}=1 overrides, at your own risk.)"
        )
