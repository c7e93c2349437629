"""The run directory on disk, without loading anything: what makes a folder a headstart run,
whether a command may read one (``predict``, ``evaluate``, ``export``, ``serve``, ``finetune``)
and whether ``--out`` may be written. Light on purpose (no torch, no numpy): these checks answer
a mistyped path before any heavy library loads; :mod:`headstart.core.runs` reads and writes the
runs themselves, and runs the same checks first.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from headstart.core.runlock import LOCK_NAME
from headstart.errors import RunError

RUN_FORMAT = "headstart-run"
RUN_FORMAT_VERSION = 1
#: A text run's encoder architecture (config.json) and tokenizer files, beside its weights.
ENCODER_FOLDER = "encoder"
#: The run's classic baseline (text: TF-IDF + logistic regression), as JSON and safetensors.
CLASSIC_FOLDER = "classic"

#: Files that could carry executable code (pickles and friends): never read, and a run
#: directory holding one is refused, since it is not what headstart wrote.
CODE_CARRYING = frozenset(
    {
        ".pkl",
        ".pickle",
        ".pt",
        ".pth",
        ".bin",
        ".joblib",
        ".ckpt",
        ".h5",
        ".keras",
        ".npz",
        ".py",
        ".pyc",
        ".so",
        ".sh",
        ".exe",
        ".dll",
    }
)


def read_json(path: Path) -> dict:
    """A run's JSON file; a missing or unreadable one is a :class:`RunError` naming it."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{path.parent}: not a headstart run ({path.name} is missing).") from None
    except (OSError, json.JSONDecodeError) as e:
        raise RunError(f"{path}: unreadable ({e}).") from None


def refuse_unexpected_files(path: Path) -> None:
    """Refuse a run directory holding a file that could carry code (headstart never writes
    one)."""
    folders = [path, path / ENCODER_FOLDER, path / CLASSIC_FOLDER]
    suspicious = sorted(
        p.relative_to(path).as_posix()
        for folder in folders
        if folder.is_dir()
        for p in folder.iterdir()
        if p.suffix.lower() in CODE_CARRYING
    )
    if suspicious:
        raise RunError(
            f"{path}: holds {', '.join(suspicious)}, which headstart never writes (runs are "
            "safetensors, JSON and CSV only); refusing to load it. Remove the file if you "
            "trust it."
        )


def check_run_dir(path: str | Path) -> dict | None:
    """Refuse, in one line, what cannot be a saved run: a missing path, a file, a folder
    without headstart's ``model.json``, one of another format or version, or one missing its
    configuration or weights. Returns the parsed ``model.json`` (None for an interrupted run,
    which loads from its checkpoint). Reads only small JSON files: nothing heavy loads."""
    path = Path(path)
    if not path.exists():
        raise RunError(f"{path}: no such run directory.")
    if not path.is_dir():
        raise RunError(
            f"{path}: is a file; give the run directory headstart train wrote "
            "(the folder holding model.json)."
        )
    interrupted = (
        not (path / "model.json").is_file() and (path / "checkpoint" / "state.json").is_file()
    )
    if not interrupted and not (path / "model.json").is_file():  # the user's own folder: no
        raise RunError(f"{path}: not a headstart run (model.json is missing).")  # more said
    refuse_unexpected_files(path)
    if interrupted:
        if not (path / "config.json").is_file():
            raise RunError(f"{path}: not a headstart run (config.json is missing).")
        return None
    meta = read_json(path / "model.json")
    if not isinstance(meta, dict) or meta.get("format") != RUN_FORMAT:
        raise RunError(f"{path}/model.json: not a headstart run description.")
    if meta.get("format_version", 0) > RUN_FORMAT_VERSION:
        raise RunError(f"{path}: written by a newer headstart; upgrade to load it.")
    read_json(path / "config.json")
    if not (path / "model.safetensors").is_file():
        raise RunError(f"{path}: model.safetensors is missing; the run did not finish saving.")
    return meta


def is_run_dir(path: Path) -> bool:
    """True when ``path`` holds a headstart run, finished (model.json of our format, as
    :func:`headstart.core.runs.load_run` requires), interrupted (checkpoint/state.json) or
    stopped before its first epoch (only headstart's config.json and split.json): the only
    folders headstart replaces."""
    if (path / "checkpoint" / "state.json").is_file():
        return True
    try:
        return json.loads((path / "model.json").read_text()).get("format") == RUN_FORMAT
    except (OSError, ValueError, AttributeError):
        pass
    # a run that stopped before its first epoch: headstart's config.json and split.json only
    names = {p.name for p in path.iterdir()} - {LOCK_NAME}  # a run being written
    if not names or not names <= {"config.json", "split.json"} or "config.json" not in names:
        return False
    try:
        return isinstance(json.loads((path / "config.json").read_text()).get("config"), dict)
    except (OSError, ValueError, AttributeError):
        return False


def check_out(out: Path, *, overwrite: bool = False) -> str:
    """What ``out`` is: ``"new"`` (missing or empty) or ``"run"`` (an earlier headstart run,
    which a new run replaces atomically, only with ``overwrite``). Anything else is refused:
    headstart never writes over or deletes what it did not create."""
    if not out.exists() or (out.is_dir() and not any(p.name != LOCK_NAME for p in out.iterdir())):
        return "new"
    if not out.is_dir():
        raise RunError(f"{out}: is a file, not a folder; choose another --out.")
    if not is_run_dir(out):
        raise RunError(
            f"{out}: this folder holds files headstart did not write, and headstart never "
            "writes over or deletes them. Choose a new or empty folder for --out "
            "(--overwrite replaces only an earlier headstart run)."
        )
    if not overwrite:
        raise RunError(
            f"{out}: holds an earlier headstart run. Pass --overwrite to replace it (the new "
            "run takes its place once complete), or choose another --out."
        )
    return "run"


def missing_from(path: Path) -> Path | None:
    """The outermost folder of ``path`` (itself included) that does not exist yet: what
    creating ``path`` would create, so that a failed run can remove exactly that."""
    path = Path(os.path.abspath(path))
    first = None
    while not path.exists():
        first = path
        if path.parent == path:
            break
        path = path.parent
    return first


def remove_created(path: Path, created: Path | None) -> None:
    """Remove the empty folders from ``path`` up to ``created`` (the outermost folder this
    invocation made, from :func:`missing_from`). A folder holding anything is kept: only what
    headstart created and left empty goes, never a folder that was there before."""
    if created is None:
        return
    path, created = Path(os.path.abspath(path)), Path(os.path.abspath(created))
    if path != created and created not in path.parents:
        return
    while True:
        try:
            path.rmdir()  # refuses a folder that is not empty
        except OSError:
            return
        if path == created:
            return
        path = path.parent


def check_writable(out: Path) -> None:
    """Fail before any work when the run directory cannot be created or written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"0" * 4096)
        probe.unlink()
    except OSError as e:
        raise RunError(
            f"{out}: cannot write the run directory ({e.strerror or e}); choose another --out."
        ) from None
