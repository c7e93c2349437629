"""The README's first command, measured: ``headstart train --demo`` end to end.

Runs ``python -m headstart train --demo`` in a fresh process (interpreter start and imports
included) with a cold feature cache (a temporary ``HEADSTART_CACHE_DIR``) and records its wall
time and what the run's ``metrics.json`` says: the headline test accuracy with its 95% interval
and the number of images it rests on, the majority-class baseline on the same images, and the
time of the forward pass over the images and of the head's epochs. Then ``headstart export``
of that run (README's ONNX section), timed the same way, with what its check found: the
largest probability difference between ONNX Runtime and PyTorch on the run's validation
examples, and through the whole torch-free client path. The machine's load average
at the start and the end is recorded beside them (bench/results.py): on a busy machine the
wall time says more about the neighbours than about headstart.

    OMP_NUM_THREADS=2 python bench/bench_demo.py      # writes bench/results/demo.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import record

SRC = Path(__file__).resolve().parents[1] / "src"


def interval(headline: dict) -> list[float] | None:
    """The headline's 95% interval, whatever its key (``accuracy_ci95`` today)."""
    for key, value in headline.items():
        named = key.startswith("accuracy_ci") or "interval" in key
        if named and isinstance(value, list | tuple) and len(value) == 2:
            return [float(v) for v in value]
    return None


def run_export(run_dir: Path, env: dict) -> dict:
    """``headstart export RUN`` in a fresh process: wall time and its check's findings."""
    cmd = [sys.executable, "-m", "headstart", "export", str(run_dir)]
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"headstart export failed ({done.returncode}):\n{done.stderr}")
    meta = json.loads(next((run_dir / "onnx").glob("*.json")).read_text())
    check = meta["check"]
    return {
        "command": "headstart export RUN",
        "wall_seconds": round(wall, 1),
        "export_seconds": check.get("export_seconds"),
        "checked_on": check.get("examples"),
        "max_abs_difference_onnx_vs_torch": check.get("max_abs_difference"),
        "end_to_end": check.get("end_to_end"),
    }


def run_demo(extra: list[str], export_too: bool = True) -> dict:
    with tempfile.TemporaryDirectory(prefix="hs-demo-") as tmp:
        env = {
            **os.environ,
            "HEADSTART_CACHE_DIR": str(Path(tmp) / "cache"),  # cold: nothing extracted before
            # the checkout this script belongs to, not whatever headstart is installed
            "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
        }
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "headstart", "train", "--demo", "--out", str(out), *extra]
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"headstart train --demo failed ({done.returncode}):\n{done.stderr}")
        metrics = json.loads((out / "metrics.json").read_text())
        export = run_export(out, env) if export_too else None
    headline = metrics["headline"]
    timing = metrics.get("timing", {})
    return {
        "command": " ".join(["headstart train --demo", *extra]),
        "wall_seconds": round(wall, 1),
        "headline_split": headline["split"],
        "test_accuracy": headline["accuracy"],
        "test_accuracy_ci95": interval(headline),
        "n": headline["n"],
        "majority_baseline_test_accuracy": metrics.get("majority_baseline_test_accuracy"),
        "n_examples": metrics.get("n_examples"),
        "feature_extraction_seconds": timing.get("feature_extraction_seconds"),
        "training_seconds": timing.get("training_seconds"),
        "epochs_run": metrics.get("epochs_run"),
        "headline": headline,
        "export": export,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("extra", nargs="*", help="more options for headstart train (after --)")
    ap.add_argument("--no-export", action="store_true", help="skip timing headstart export")
    args = ap.parse_args()
    result = run_demo(args.extra, export_too=not args.no_export)
    print(json.dumps(result, indent=2))
    record(__file__, result)


if __name__ == "__main__":
    main()
