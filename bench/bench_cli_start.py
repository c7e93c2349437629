"""How fast the command line answers a mistake, lists its backbones and shows its help.

Goal (issue 25): every argument, path and name error answers within 1 s on a quiet 2-core
machine, ``headstart backbones`` within 2 s. Each command below runs in a fresh process,
``--repeat`` times, round robin (median and fastest kept, wall-clock and CPU seconds), on
small inputs made in a temporary folder: every error class for each command it applies to
(missing path, a folder that is not a run, a one-class folder, a mistyped backbone, a bad
option value, a missing CSV column, an empty CSV, text data errors), then ``backbones`` and
``--help``. Measured in the same run, as references: starting Python (``python -c pass``),
importing the command line (``python -c "import headstart.cli"``) and importing torch (what
every answer cost when the checks came after the heavy imports). On a busy machine wall-clock
seconds grow with the load, so the load average is recorded at the start and the end, and
CPU seconds (user + system of the child, which a quiet machine's wall-clock time approaches)
beside them.

Every case must exit as expected (2 and the expected words for a mistake, 0 otherwise), or the
benchmark stops: a fast wrong answer is not measured.

    PYTHONPATH=src python bench/bench_cli_start.py --repeat 5   # bench/results/cli_start.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import record

PY = sys.executable
HS = [PY, "-m", "headstart"]

#: error class -> [(command line with {placeholders}, words the one-line answer must hold)]
ERRORS = {
    "missing path": [
        ("inspect {nowhere}", "no such file or folder"),
        ("train {nowhere}", "no such file or folder"),
        ("advise {nowhere}", "no such file or folder"),
        ("compare {nowhere} --backbones test_resnet", "no such file or folder"),
        ("predict {nowhere} x.png", "no such run directory"),
        ("predict {run} {nowhere}", "no such file or folder"),
        ("evaluate {nowhere}", "no such run directory"),
        ("evaluate {run} {nowhere}", "no such file or folder"),
        ("export {nowhere}", "no such run directory"),
        ("serve {nowhere}", "no such run directory"),
        ("finetune {nowhere}", "no such run directory"),
        ("report {nowhere}", "no such run directory"),
        ("summary --run {nowhere}", "no such run directory"),
        ("train --demo --weights {nowhere}", "weights file not found"),
    ],
    "not a run": [
        ("predict {notrun} x.png", "not a headstart run"),
        ("predict {notrun} x.png --engine onnx", "has no onnx/model.onnx"),
        ("evaluate {notrun}", "not a headstart run"),
        ("export {notrun}", "not a headstart run"),
        ("serve {notrun}", "not a headstart run"),
        ("finetune {notrun}", "not a headstart run"),
        ("report {notrun}", "not a headstart run"),
        ("summary --run {notrun}", "not a headstart run"),
    ],
    "one-class folder": [
        ("inspect {oneclass}", "only one class"),
        ("train {oneclass}", "only one class"),
        ("advise {oneclass}", "only one class"),
        ("compare {oneclass} --backbones test_resnet", "only one class"),
        ("evaluate {run} {oneclass}", "only one class"),
    ],
    "mistyped backbone": [
        ("train --demo --backbone DenseNet12", "Did you mean DenseNet121"),
        ("train {images} --backbone resnet5", "Did you mean ResNet50"),
        ("summary --backbone DenseNet12", "Did you mean DenseNet121"),
        ("advise --demo --candidates DenseNet12@96", "Did you mean DenseNet121"),
        ("compare --demo --backbones DenseNet12", "Did you mean DenseNet121"),
    ],
    "bad option value": [
        ("train --demo --strategy bogus", "--strategy must be one of"),
        ("train --no-such-flag", "No such option"),
        ("train --demo --epochs 0", "epochs must be at least 1"),
        ("train --demo --nproc many", "--nproc must be a number"),
        ("train {images} --out {occupied}", "files headstart did not write"),
        ("inspect {images} --modality bogus", "modality must be"),
        ("finetune {run} --strategy bogus", "--strategy must be one of"),
        ("predict {run} x.png --engine bogus", "--engine must be one of"),
        ("export {run} --out {run}/model.txt", "ending in .onnx"),
        ("serve {run} --port 0", "--port 0"),
        ("advise --demo --rank-by bogus", "--rank-by must be one of"),
        ("summary --head bogus", "head must be one of"),
    ],
    "missing CSV column": [
        ("train {no_columns_csv}", "neither a 'filename' column"),
        ("inspect {no_columns_csv}", "neither a 'filename' column"),
        ("train {no_label_csv}", "'label' not found"),
        ("advise {no_label_csv}", "'label' not found"),
        ("compare {no_label_csv} --backbones test_resnet", "'label' not found"),
    ],
    "empty CSV": [
        ("train {empty_csv}", "the file is empty"),
        ("inspect {empty_csv}", "the file is empty"),
        ("advise {empty_csv}", "the file is empty"),
    ],
    "text data": [
        ("train {text_no_label}", "'label' not found"),
        ("inspect {text_no_label}", "'label' not found"),
        ("train {text_one_class}", "only one class"),
        ("train {texts} --backbone minlm", "Did you mean minilm"),
        ("inspect {texts} --backbone minlm", "Did you mean minilm"),
        ("train {texts} --augment cached", "for images only"),
    ],
}
#: what answers with a result, not an error: (command line, words the output must hold)
ANSWERS = [
    ("backbones", "DenseNet121"),
    ("--help", "Usage"),
    ("train --help", "runs/DATE-BACKBONE-STRATEGY"),
    ("--version", "headstart"),
]
REFERENCES = {
    "python -c pass": [PY, "-c", "pass"],
    "python -c 'import headstart.cli'": [PY, "-c", "import headstart.cli"],
    "python -c 'import torch'": [PY, "-c", "import torch"],
}


def make_inputs(root: Path) -> dict[str, str]:
    """The small inputs every case reads (PNG images written with Pillow)."""
    from PIL import Image

    d = {"nowhere": root / "nowhere"}
    images = root / "images"
    for c, colour in (("cat", (200, 30, 30)), ("dog", (30, 30, 200))):
        (images / c).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (16, 16), colour).save(images / c / f"{i}.png")
    d["images"] = images
    one = root / "oneclass" / "cat"
    one.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (16, 16), (200, 30, 30)).save(one / f"{i}.png")
    d["oneclass"] = one.parent
    files = {
        "empty_csv": "\n",
        "no_columns_csv": "a,b\n1,2\n",
        "no_label_csv": "filename\nimages/cat/0.png\n",
        "text_no_label": "text\nit helped\nawful\n",
        "text_one_class": "text,label\nit helped,pos\ngood,pos\n",
        "texts": "text,label\nit helped,pos\nawful,neg\n",
    }
    for key, text in files.items():
        d[key] = root / f"{key}.csv"
        d[key].write_text(text)
    d["notrun"] = root / "notrun"
    d["notrun"].mkdir()
    d["occupied"] = root / "occupied"
    d["occupied"].mkdir()
    (d["occupied"] / "mine.txt").write_text("not headstart's")
    run = root / "run"  # passes the light checks; the errors in front of loading it are measured
    run.mkdir()
    (run / "model.json").write_text(json.dumps({"format": "headstart-run", "modality": "image"}))
    (run / "config.json").write_text(json.dumps({"config": {"data": str(images)}}))
    (run / "model.safetensors").write_bytes(b"")
    d["run"] = run
    return {k: str(v) for k, v in d.items()}


def once(cmd: list[str], env: dict) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, CPU seconds of the child, the finished process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, r


def summarise(walls: list[float], cpus: list[float], said: str) -> dict:
    return {
        "median_s": round(statistics.median(walls), 3),
        "min_s": round(min(walls), 3),
        "cpu_median_s": round(statistics.median(cpus), 3),
        "said": said.splitlines()[0][:160] if said else "",
    }


def measure_all(cases: list[tuple[str, list[str], int, str | None]], repeat: int, env: dict):
    """Each case ``repeat`` times, round robin (a load that changes during the run touches
    every case alike); stops at a case that does not answer as expected."""
    walls: dict[str, list[float]] = {key: [] for key, *_ in cases}
    cpus: dict[str, list[float]] = {key: [] for key, *_ in cases}
    said: dict[str, str] = {}
    for _ in range(repeat):
        for key, cmd, code, words in cases:
            wall, cpu, r = once(cmd, env)
            walls[key].append(wall)
            cpus[key].append(cpu)
            said[key] = (r.stderr if code else r.stdout).strip()
            if r.returncode != code or (words and words not in said[key]):
                sys.exit(f"{key}: exit {r.returncode}, expected {code}:\n{said[key]}")
    return {key: summarise(walls[key], cpus[key], said[key]) for key, *_ in cases}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    env = {**os.environ, "COLUMNS": "80"}
    results: dict = {"references": {}, "errors": {}, "answers": {}}
    with tempfile.TemporaryDirectory() as tmp:
        inputs = make_inputs(Path(tmp))
        cases = [(f"ref|{name}", cmd, 0, None) for name, cmd in REFERENCES.items()]
        cases += [
            (f"error|{kind}|{line}", [*HS, *line.format(**inputs).split()], 2, words)
            for kind, rows in ERRORS.items()
            for line, words in rows
        ]
        cases += [(f"answer|{line}", [*HS, *line.split()], 0, words) for line, words in ANSWERS]
        measured = measure_all(cases, args.repeat, env)
    for key, row in measured.items():
        part, *rest = key.split("|")
        if part == "ref":
            results["references"][rest[0]] = row
        elif part == "error":
            results["errors"].setdefault(rest[0], {})[rest[1]] = row
        else:
            results["answers"][rest[0]] = row
        print(f"{row['median_s']:6.2f} s  {row['cpu_median_s']:5.2f} s CPU  {' '.join(rest)}")
    errors = [r for rows in results["errors"].values() for r in rows.values()]
    refs = results["references"]
    results["summary"] = {
        "error_cases": len(errors),
        "slowest_error_median_s": max(r["median_s"] for r in errors),
        "median_of_error_medians_s": round(statistics.median(r["median_s"] for r in errors), 3),
        "slowest_error_cpu_s": max(r["cpu_median_s"] for r in errors),
        "errors_within_1s": sum(r["median_s"] <= 1.0 for r in errors),
        "backbones_median_s": results["answers"]["backbones"]["median_s"],
        "python_start_s": refs["python -c pass"]["median_s"],
        "import_headstart_cli_s": refs["python -c 'import headstart.cli'"]["median_s"],
        "import_torch_s": refs["python -c 'import torch'"]["median_s"],
    }
    results["repeat"] = args.repeat
    record(__file__, results)
    print(json.dumps(results["summary"], indent=2))


if __name__ == "__main__":
    main()
