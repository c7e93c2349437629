"""One run at a time in a run directory: ``RUN_DIR/.headstart.lock``.

A training run (single-process, or rank 0 of a distributed one) creates the lock file with
``O_EXCL`` before it writes anything, and removes it when training ends, however it ends. A
second run started on the same folder meanwhile (``--overwrite``, ``--resume``, or another
machine sharing the folder) is refused with the holder's host, process and start time.

A lock left by a process that died without cleaning up (killed, or the machine lost power)
is recognised on the same machine (its process no longer exists) and taken over; a lock
from another machine cannot be checked from here, so the message says which file to remove
once that run is known to be gone.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path

from headstart.errors import RunError

LOCK_NAME = ".headstart.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def holder(folder: Path) -> dict | None:
    """Who holds ``folder``'s lock, or None when nobody does (no lock, or a stale one from a
    process of this machine that no longer exists)."""
    path = Path(folder) / LOCK_NAME
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        info = {}
    if info.get("host") == socket.gethostname() and not _alive(int(info.get("pid", -1))):
        return None
    return info


def refusal(folder: Path, info: dict) -> str:
    where = f"process {info.get('pid', '?')} on {info.get('host', '?')}"
    since = f", started {info['started']}" if info.get("started") else ""
    return (
        f"{folder}: another headstart run is writing to this folder ({where}{since}). Wait "
        f"for it to finish or choose another --out; if that run is known to be gone (its "
        f"machine was lost), remove {Path(folder) / LOCK_NAME} and try again."
    )


class RunLock:
    """The lock of one run directory; ``acquire`` then ``release`` (also a context manager)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.held = False

    def acquire(self) -> None:
        """Take the lock, or raise :class:`RunError` naming the run that holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                other = holder(self.folder)
                if other is not None:
                    raise RunError(refusal(self.folder, other)) from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(self.info, f)
            self.held = True
            return
        raise RunError(f"{self.folder}: could not take the run lock {self.path}; try again.")

    def release(self) -> None:
        """Remove the lock if this process still holds it (the folder may have been replaced
        by the finished run, taking the lock with it)."""
        if not self.held:
            return
        self.held = False
        try:
            if json.loads(self.path.read_text()).get("pid") == self.info["pid"]:
                self.path.unlink()
        except (OSError, ValueError):
            pass

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
