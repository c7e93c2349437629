"""Inspection figures: counts, baseline, duplicates (within and across splits), corrupt files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

from conftest import make_images
from headstart import from_arrays
from headstart.core.data import inspect_source, load_source
from headstart.modalities.image.data.decode import UnreadableImage, decode_image


def test_counts_baseline_and_imbalance():
    images, _ = make_images(4)
    labels = np.array([0] * 8 + [1] * 2 + [2] * 2)
    insp = inspect_source(from_arrays(images, labels), progress=False)
    assert insp.counts["train"] == [8, 2, 2]
    assert insp.imbalance_ratio == 4.0
    assert insp.majority_baseline["class"] == "0"
    # scored on the planned validation split: 2 of its 3 images are class 0
    assert sum(insp.planned_split["val"]) == 3  # raised so every class could appear
    val = np.asarray(insp.planned_split["val"])
    assert insp.majority_baseline["accuracy"] == val[0] / val.sum()
    assert any("imbalanced" in w for w in insp.warnings())


def test_duplicates_within_and_across_splits(split_folder):
    # copy a train image into val (leakage) and duplicate one within train
    src_img = next((split_folder / "train" / "circle").glob("*.jpg"))
    shutil.copy(src_img, split_folder / "val" / "circle" / "leak.jpg")
    shutil.copy(src_img, split_folder / "train" / "circle" / "dup.jpg")
    insp = inspect_source(load_source(split_folder), progress=False)
    assert len(insp.duplicates_across) == 1
    group = insp.duplicates_across[0]
    assert group["splits"] == ["train", "val"] and len(group["ids"]) == 3
    assert [len(g) for g in insp.duplicates_within["train"]] == [2]
    assert any("more than one split" in w for w in insp.warnings())


def test_corrupt_files_are_listed_and_skipped(image_folder):
    good = next((image_folder / "square").glob("*.png"))
    data = good.read_bytes()
    (image_folder / "square" / "truncated.png").write_bytes(data[: len(data) // 2])
    (image_folder / "square" / "empty.jpg").write_bytes(b"")
    (image_folder / "square" / "fake.jpg").write_text("this is not a jpeg")
    insp = inspect_source(load_source(image_folder), progress=False)
    reasons = {u["path"].rsplit("/", 1)[-1]: u["reason"] for u in insp.unreadable}
    assert set(reasons) == {"truncated.png", "empty.jpg", "fake.jpg"}
    assert "empty" in reasons["empty.jpg"]
    assert "not an image" in reasons["fake.jpg"]
    assert insp.counts["train"] == [8, 8, 8]  # the good ones, not the 3 broken files


def test_decode_modes_and_exif(tmp_path):
    rgb = (np.arange(12 * 8 * 3) % 255).astype(np.uint8).reshape(12, 8, 3)
    cases = {
        "p.png": Image.fromarray(rgb).convert("P"),
        "la.png": Image.fromarray(rgb).convert("LA"),
        "rgba.png": Image.fromarray(rgb).convert("RGBA"),
        "cmyk.jpg": Image.fromarray(rgb).convert("CMYK"),
        "i16.png": Image.fromarray(rgb[..., 0].astype(np.uint16) * 257),
    }
    for name, img in cases.items():
        img.save(tmp_path / name)
        out = decode_image(tmp_path / name)
        assert out.shape == (12, 8, 3) and out.dtype == np.uint8, name
    # 16-bit is scaled, not clipped to white
    assert decode_image(tmp_path / "i16.png")[..., 0].max() < 255
    # EXIF orientation 6 (rotate 90) turns a 12x8 image into 8x12
    img = Image.fromarray(rgb)
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(tmp_path / "rot.jpg", exif=exif)
    assert decode_image(tmp_path / "rot.jpg").shape == (8, 12, 3)


def test_decompression_bomb_guard(tmp_path):
    Image.new("L", (200, 200)).save(tmp_path / "big.png")
    try:
        decode_image(tmp_path / "big.png", max_pixels=1000)
    except UnreadableImage as e:
        assert "safety limit" in e.reason
    else:  # pragma: no cover
        raise AssertionError("bomb guard did not trigger")


def test_cli_inspect_demo_end_to_end(tmp_path):
    """The README's first command (before training existed) on the built-in data."""
    out = tmp_path / "report.json"
    r = subprocess.run(
        [sys.executable, "-m", "headstart.cli", "inspect", "--demo", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "majority-class baseline" in r.stdout
    report = json.loads(out.read_text())
    assert report["n_images"]["train"] == 1797
    assert report["class_names"] == [str(i) for i in range(10)]


def test_cli_bad_input_is_one_clear_line(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "headstart.cli", "inspect", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "no such file or folder" in r.stderr
    assert "Traceback" not in r.stderr
