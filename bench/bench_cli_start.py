"""How fast the command line answers before any work: --help, --version, a mistyped option.

Each command runs in a fresh process (median of ``--repeat`` runs) beside two references
measured in the same run: starting Python and doing nothing (``python -c pass``), and starting
Python and importing torch (what every answer cost when the CLI imported it up front).

    python bench/bench_cli_start.py --repeat 7
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from results import record

COMMANDS = {
    "python -c pass (reference)": [sys.executable, "-c", "pass"],
    "python -c 'import torch' (reference)": [sys.executable, "-c", "import torch"],
    "headstart --help": [sys.executable, "-m", "headstart.cli", "--help"],
    "headstart --version": [sys.executable, "-m", "headstart.cli", "--version"],
    "headstart train --help": [sys.executable, "-m", "headstart.cli", "train", "--help"],
    "headstart train --demo --strategy bogus": [
        sys.executable,
        "-m",
        "headstart.cli",
        "train",
        "--demo",
        "--strategy",
        "bogus",
    ],
    "headstart train --no-such-flag": [
        sys.executable,
        "-m",
        "headstart.cli",
        "train",
        "--no-such-flag",
    ],
}


def seconds(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    results = {name: seconds(cmd, args.repeat) for name, cmd in COMMANDS.items()}
    bare = results["python -c pass (reference)"]
    torch = results["python -c 'import torch' (reference)"]
    result = {
        "repeat": args.repeat,
        "median_seconds": {k: round(v, 3) for k, v in results.items()},
        "ratio_to_python_start": {k: round(v / bare, 2) for k, v in results.items()},
        "ratio_to_importing_torch": {k: round(v / torch, 2) for k, v in results.items()},
    }
    print(json.dumps(result, indent=2))
    record(__file__, result)


if __name__ == "__main__":
    main()
