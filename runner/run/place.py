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
from pathlib import Path

from ..errors import InputError

ALLOW = "RUNNER_ALLOW_SHARED_WORKSPACE"

# file-system types (as in /proc/mounts) whose locks SQLite cannot trust
NETWORK_FS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "9p", "ceph", "glusterfs", "lustre"}
    | {"davfs", "fuse.sshfs", "fuse.rclone", "fuse.s3fs", "fuse.gcsfuse", "fuse.davfs2"}
)
# folder names that cloud sync clients own (their own folders, and macOS's CloudStorage)
SYNCED = ("dropbox", "onedrive", "google drive", "googledrive", "my drive", "icloud drive")
SYNCED_EXACT = ("mobile documents", "cloudstorage", "nextcloud", "owncloud", "pcloud drive")


def shared_folder(path: Path, mounts: str | None = None) -> str | None:
    """Why ``path`` is not a safe ledger folder ("a network share (nfs4)", "a Dropbox
    folder"), or None. ``mounts``: the text of /proc/mounts (read when None; absent off
    Linux, where only the folder names are checked)."""
    full = path.resolve()
    for part in full.parts:
        name = part.lower()
        if name.startswith(SYNCED) or name in SYNCED_EXACT:
            return f"a cloud-synced folder ({part})"
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    best, kind = "", ""
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = str(full) == point or str(full).startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    if kind in NETWORK_FS:
        return f"a network share ({kind} at {best})"
    return None


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
