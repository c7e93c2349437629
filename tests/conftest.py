"""Small generated data sets, written to temporary folders at test time (no committed binaries).

The images are not noise: each class has its own colour and stripe orientation, so a tiny
model can learn them and a test of training means something.
"""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import clihost

CLASS_NAMES = ("circle", "square", "stripes")

if "PYTEST_XDIST_WORKER" in os.environ:
    # one worker per core already: torch's own threads would only fight over the cores (set
    # before anything imports torch; the commands the tests start inherit it)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto``: one worker per core, at most 4 (each holds torch and a warm host)."""
    return max(1, min(os.cpu_count() or 1, 4))


def run_cli(*args, check: bool = True, cwd=None, columns: int = 80) -> subprocess.CompletedProcess:
    """``headstart ARGS`` as a user runs it, in a new process, with output piped (no
    terminal) and the terminal width a user would have (80 columns unless asked). The process
    is forked from a host that has already imported torch and the other heavy libraries
    (``clihost``); headstart itself is imported anew in each one."""
    r = clihost.run(args, env={**os.environ, "COLUMNS": str(columns)}, cwd=cwd, timeout=300)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def fresh_process(code: str):
    """What ``code`` prints as JSON, run in a new Python process (nothing shared with this
    one: a saved run must stand on its own)."""
    import json
    import sys

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return np.array(json.loads(proc.stdout))


def predicted_in_a_fresh_process(run_dir, inputs: list):
    """``load_run(run_dir).predict_proba(inputs)`` in a new Python process."""
    return fresh_process(
        "import json; from headstart import load_run; "
        f"print(json.dumps(load_run({str(run_dir)!r}).predict_proba({inputs!r}).tolist()))"
    )


def make_images(n_per_class: int, size: int = 32, n_classes: int = 3, seed: int = 0):
    """(images uint8 NHWC, labels int) with a learnable pattern per class."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    yy, xx = np.mgrid[0:size, 0:size]
    for c in range(n_classes):
        for _ in range(n_per_class):
            base = np.zeros((size, size, 3), np.float32)
            base[..., c % 3] = 0.6
            if c % 3 == 0:
                r = size * rng.uniform(0.2, 0.4)
                cy, cx = rng.uniform(0.35, 0.65, 2) * size
                base[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 1.0
            elif c % 3 == 1:
                a, b = sorted(rng.integers(2, size - 2, 2))
                base[a : b + 2, a : b + 2] = 1.0
            else:
                period = int(rng.integers(3, 6))
                base[(xx // period) % 2 == 0] *= 0.3
            base += rng.normal(0, 0.05, base.shape)
            images.append(np.clip(base * 255, 0, 255).astype(np.uint8))
            labels.append(c)
    return np.stack(images), np.array(labels)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own feature cache so tests never see each other's files."""
    from headstart.core.cache import clear_memory_cache

    clear_memory_cache()
    monkeypatch.setenv("HEADSTART_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def write_image_folder(root: Path) -> Path:
    """class-per-folder PNGs: 3 classes x 8 images, plus a README that must be ignored."""
    images, labels = make_images(8)
    for i, (img, lab) in enumerate(zip(images, labels)):
        d = root / CLASS_NAMES[lab]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"img_{i:03d}.png")
    (root / "README.txt").write_text("not an image")
    (root / "circle" / "notes.md").write_text("not an image either")
    return root


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """class-per-folder PNGs: 3 classes x 8 images, plus a README that must be ignored."""
    return write_image_folder(tmp_path / "folder")


@pytest.fixture
def split_folder(tmp_path) -> Path:
    """train/ and val/ split folders (the cats-and-dogs layout), JPEGs."""
    images, labels = make_images(10, seed=1)
    root = tmp_path / "split"
    for i, (img, lab) in enumerate(zip(images, labels)):
        split = "val" if i % 10 >= 7 else "train"
        d = root / split / CLASS_NAMES[lab]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"{i:03d}.jpg", quality=95)
    return root


@pytest.fixture
def array_folder(tmp_path) -> Path:
    """The lesson's layout: train_* and test_* arrays (test doubles as validation)."""
    images, labels = make_images(12, seed=2)
    test_images, test_labels = make_images(4, seed=3)
    root = tmp_path / "arrays"
    root.mkdir()
    np.save(root / "train_images.npy", images)
    np.save(root / "train_labels.npy", labels)
    np.save(root / "test_images.npy", test_images)
    np.save(root / "test_labels.npy", test_labels)
    return root


@pytest.fixture
def csv_data(tmp_path) -> Path:
    """A labels.csv of filename,label with string labels and paths in a subfolder."""
    images, labels = make_images(6, seed=4)
    root = tmp_path / "csvdata"
    (root / "imgs").mkdir(parents=True)
    rows = []
    for i, (img, lab) in enumerate(zip(images, labels)):
        name = f"imgs/{i:03d}.png"
        Image.fromarray(img).save(root / name)
        rows.append({"filename": name, "label": CLASS_NAMES[lab]})
    with open(root / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["filename", "label"])
        w.writeheader()
        w.writerows(rows)
    return root / "labels.csv"
