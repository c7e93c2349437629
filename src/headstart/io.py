"""Atomic file writes: a file is either its old self or its complete new self, never half.

Everything headstart writes into a run directory or the cache goes through here: write to a
temporary file in the same folder, flush and fsync, then ``os.replace`` (atomic on POSIX and
Windows). An interrupted run therefore never leaves a truncated JSON or weights file behind.
Files and folders get the user's normal permissions (``0o666`` / ``0o777`` less the umask),
not the owner-only ones of :mod:`tempfile`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the system allows (Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # elsewhere: set and restore at once (process-wide, so briefly)
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def normal_permissions(path: str | Path) -> None:
    """Give ``path`` the mode a plain ``open``/``mkdir`` would have: 0o666 (0o777 for a
    folder) less the umask. :mod:`tempfile` creates owner-only files and folders."""
    base = 0o777 if Path(path).is_dir() else 0o666
    os.chmod(path, base & ~current_umask())


def make_temp_dir(prefix: str, parent: str | Path | None = None) -> Path:
    """A new, uniquely named folder (beside the final place when ``parent`` is given, so it can
    be renamed there atomically) with normal permissions."""
    if parent is not None:
        Path(parent).mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    normal_permissions(path)
    return path


def replace_dir(new: str | Path, dest: str | Path, *, remove_old: bool) -> Path | None:
    """Move the folder ``new`` to ``dest``; ``dest`` is the old folder or the complete new one,
    never a mix. An existing ``dest`` is first renamed to a temporary sibling, the new folder
    renamed into place (two renames: ``dest`` is absent only between them), then the old one
    removed if ``remove_old`` (else its temporary path is returned). If moving the new folder
    in fails, the old one is put back. ``new`` and ``dest`` must be on one file system."""
    new, dest = Path(new), Path(dest)
    aside = None
    if dest.exists():
        aside = dest.parent / f".{dest.name}.old-{secrets.token_hex(4)}"
        os.rename(dest, aside)  # a fresh random name beside it
    try:
        os.replace(new, dest)
    except BaseException:
        if aside is not None:
            os.replace(aside, dest)
        raise
    if aside is not None and remove_old:
        shutil.rmtree(aside)
        return None
    return aside


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        normal_permissions(tmp_path)  # mkstemp made it owner-only
        os.replace(tmp_path, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, payload: object) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, default=_json_default) + "\n")


def atomic_write_with(path: str | Path, writer: Callable[[Path], None]) -> None:
    """Let ``writer`` produce the file at a temporary path (e.g. ``safetensors.save_file``)."""
    with atomic_path(path) as tmp:
        writer(tmp)


def _json_default(obj: object) -> object:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
