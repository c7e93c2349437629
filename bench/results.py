"""One writer for every benchmark's result, so each published number traces to a committed file.

``record(__file__, results)`` writes ``bench/results/<name>.json`` (``<name>``: the script's
name without ``bench_``, or ``name=``) atomically, with what is needed to judge the numbers
later: the command as typed, the date, the machine (cores, processor, platform, Python, torch
and numpy versions, thread settings) and the load average when the script started and when it
wrote. README.md and BENCHMARKS.md cite these files; ``bench/out/`` stays for scratch output.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shlex
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def loadavg() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the system has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


#: The load, time and environment when this module was imported: the start of the benchmark
#: that imports it, before it sets any variable of its own.
LOAD_AT_START = loadavg()
STARTED = datetime.now(UTC)
ENV_AT_START = {
    k: os.environ[k] for k in ("OMP_NUM_THREADS", "HEADSTART_CACHE_DIR") if k in os.environ
}


def processor() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what platform says."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine() -> dict:
    """Where the numbers were measured."""
    info: dict = {
        "cpus": os.cpu_count(),
        "processor": processor(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }
    for module in ("numpy", "torch"):
        with contextlib.suppress(ImportError):
            info[module] = __import__(module).__version__
    if "torch" in info:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return info


def command() -> str:
    """The command that ran the script, as typed (relative to the repository root), with the
    variables that change its numbers as they were when it started."""
    env = " ".join(f"{k}={v}" for k, v in ENV_AT_START.items())
    argv = shlex.join(["python", *sys.argv])
    return f"{env} {argv}".strip()


def record(script: str, results, *, name: str | None = None, note: str | None = None) -> Path:
    """Write ``results`` (anything JSON can hold) to ``bench/results/<name>.json`` atomically
    and return the path. ``script``: the benchmark's ``__file__``."""
    stem = Path(script).stem
    name = name or stem.removeprefix("bench_")
    doc = {
        "script": f"bench/{Path(script).name}",
        "command": command(),
        "date": STARTED.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "loadavg": {"start": LOAD_AT_START, "end": loadavg()},
        **({"note": note} if note else {}),
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    target = RESULTS / f"{name}.json"
    fd, tmp = tempfile.mkstemp(dir=RESULTS, prefix=f".{name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2, default=str)
            f.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would make the committed file private
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    print(f"wrote {target.relative_to(RESULTS.parent.parent)}", file=sys.stderr)
    return target
