"""Deployment: ONNX export checked by ONNX Runtime, prediction through it without PyTorch,
the metadata round trip and bad input to export."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import make_images
from conftest import run_cli as headstart

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

TINY = {"backbone": "test_resnet", "weights": "none", "image_size": 48, "epochs": 2}


def _image_run(tmp_path, image_folder, **extra):
    from headstart.api import train
    from headstart.core.config import TrainConfig

    out = tmp_path / "run"
    train(TrainConfig(data=str(image_folder), **{**TINY, **extra}), out=out, progress=False)
    return out


def _no_torch_predict(target, inputs, out_csv) -> subprocess.CompletedProcess:
    """``headstart predict --engine onnx`` in a fresh process that must never import torch."""
    code = (
        "import sys\n"
        "from headstart.cli import app\n"
        "try:\n"
        f"    app(['predict', {str(target)!r}, *{[str(i) for i in inputs]!r}, '--engine', "
        f"'onnx', '--out', {str(out_csv)!r}], standalone_mode=False)\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'torchvision', 'timm', 'transformers'))\n"
        "assert not leaked, leaked\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
    )


def _csv_probs(path) -> tuple[list[str], np.ndarray]:
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))  # a text run's rows end with the text's start
    labels = [r["predicted"] for r in rows]
    return labels, np.array([[float(r[k]) for k in r if k.startswith("p_")] for r in rows])


def test_image_export_is_checked_and_predicts_without_torch(tmp_path, image_folder):
    import onnx

    from headstart.core.runs import load_run
    from headstart.deploy.onnx_model import OnnxModel

    run_dir = _image_run(tmp_path, image_folder, tta=True)  # TTA goes into the graph too
    r = headstart("export", run_dir)
    assert "onnx.checker full check passed" in r.stdout
    assert "validation images" in r.stdout  # the check ran on the run's own images
    model_file = run_dir / "onnx" / "model.onnx"
    meta = json.loads((run_dir / "onnx" / "model.json").read_text())
    assert meta["check"]["max_abs_difference"] <= 1e-4
    assert meta["class_names"] == ["circle", "square", "stripes"]
    assert meta["preprocessing"]["input_size"] == [48, 48] and meta["tta"] is True
    # the same metadata inside the model, for a client that has only the .onnx file
    props = {p.key: p.value for p in onnx.load(str(model_file)).metadata_props}
    assert json.loads(props["headstart"]) == meta
    assert json.loads(props["class_names"]) == meta["class_names"]
    assert not list((run_dir / "onnx").glob(".*"))  # no staging folder left behind
    load_run(run_dir)  # the run still loads with its export inside

    # in-process: ONNX Runtime on decoded images agrees with the run
    images, _ = make_images(3, size=40, seed=7)
    onnx_probs = OnnxModel(run_dir).predict_proba(list(images))
    torch_probs = load_run(run_dir).predict_proba(list(images))
    assert np.abs(onnx_probs - torch_probs).max() < 1e-4
    assert (onnx_probs.argmax(1) == torch_probs.argmax(1)).all()

    # the command line, in a process where torch is never imported, on files and a folder
    proc = _no_torch_predict(model_file, [image_folder], tmp_path / "onnx.csv")
    assert proc.returncode == 0, proc.stderr
    headstart("predict", run_dir, image_folder, "--out", tmp_path / "torch.csv")
    onnx_labels, onnx_p = _csv_probs(tmp_path / "onnx.csv")
    torch_labels, torch_p = _csv_probs(tmp_path / "torch.csv")
    assert onnx_labels == torch_labels and np.abs(onnx_p - torch_p).max() < 1e-4


def test_text_export_takes_windows_and_predicts_without_torch(tmp_path):
    from headstart.core.runs import load_run
    from headstart.deploy.onnx_model import OnnxModel
    from test_text import reviews, write_table

    data = write_table(tmp_path / "reviews.csv", reviews(12))
    run_dir = tmp_path / "run"
    headstart(
        "train",
        data,
        "--backbone",
        "test_bert",
        "--epochs",
        "2",
        "--out",
        run_dir,
        "--blend",
        "none",
    )  # fmt: skip  (a blended export: test_text_baseline.py)
    r = headstart("export", run_dir, "--out", tmp_path / "ship" / "reviews.onnx")
    assert "input_ids, attention_mask, windows -> probabilities" in " ".join(r.stdout.split())
    ship = tmp_path / "ship"
    assert sorted(p.name for p in ship.iterdir()) == [
        "reviews.json",
        "reviews.onnx",
        "reviews.tokenizer.json",
    ]
    texts = ["works", "it helped a lot with the pain and I slept well " * 60, "nausea"]
    got = OnnxModel(ship / "reviews.onnx").predict_proba(texts)  # lengths 3 to the maximum
    want = load_run(run_dir).predict_proba(texts)
    assert np.abs(got - want).max() < 1e-4

    proc = _no_torch_predict(ship / "reviews.onnx", [data], tmp_path / "onnx.csv")
    assert proc.returncode == 0, proc.stderr
    headstart("predict", run_dir, data, "--out", tmp_path / "torch.csv")
    onnx_labels, onnx_p = _csv_probs(tmp_path / "onnx.csv")
    torch_labels, torch_p = _csv_probs(tmp_path / "torch.csv")
    assert onnx_labels == torch_labels and np.abs(onnx_p - torch_p).max() < 1e-4


def test_export_bad_inputs_are_one_clear_line(tmp_path, image_folder):
    r = headstart("export", tmp_path / "nowhere", check=False)
    assert r.returncode == 2 and "no such run directory" in r.stderr
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "model.json").write_text("{}")
    r = headstart("export", tmp_path / "half", check=False)
    assert r.returncode == 2 and "not a headstart run" in r.stderr
    run_dir = _image_run(tmp_path, image_folder)
    r = headstart("export", run_dir, "--out", tmp_path / "model.bin", check=False)
    assert r.returncode == 2 and "ending in .onnx" in r.stderr
    mine = tmp_path / "mine.onnx"
    mine.write_bytes(b"someone else's model")
    r = headstart("export", run_dir, "--out", mine, check=False)
    assert r.returncode == 2 and "not written by `headstart export`" in r.stderr
    assert mine.read_bytes() == b"someone else's model"  # never overwritten
    blocked = tmp_path / "file"
    blocked.write_text("a file where a folder should be")
    r = headstart("export", run_dir, "--out", blocked / "m.onnx", check=False)
    assert r.returncode == 2 and "cannot write there" in r.stderr
    r = headstart("predict", run_dir, image_folder, "--engine", "onnx", check=False)
    assert r.returncode == 2 and "headstart export" in r.stderr  # not exported yet
    r = headstart("predict", run_dir, image_folder, "--engine", "tflite", check=False)
    assert r.returncode == 2 and "--engine must be one of torch, onnx" in r.stderr
    from headstart.api import train
    from headstart.core.config import TrainConfig

    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        cfg = TrainConfig(data=str(image_folder), **{**TINY, "epochs": 3, "patience": 0})
        train(cfg, out=cut, progress=False, stop_after=1)
    for command in ("export", "serve"):
        r = headstart(command, cut, check=False)
        assert r.returncode == 2 and "interrupted after 1 epoch(s)" in r.stderr, r.stderr
        assert "train --resume" in r.stderr
    r = headstart("serve", run_dir, "--port", "99999", check=False)
    assert r.returncode == 2 and "between 1 and 65535" in r.stderr
    headstart("export", run_dir)
    onnx_file = run_dir / "onnx" / "model.onnx"
    for command in (["predict", onnx_file, image_folder], ["serve", onnx_file]):
        r = headstart(*command, check=False)  # an .onnx without --engine onnx
        assert r.returncode == 2 and "add --engine onnx" in r.stderr, r.stderr
    again = headstart("export", run_dir)  # its own earlier export is replaced
    assert "full check passed" in again.stdout


def test_a_failed_parity_check_names_the_difference_and_writes_nothing(tmp_path, image_folder):
    import headstart.deploy.export as export
    from headstart.errors import HeadstartError

    run_dir = _image_run(tmp_path, image_folder)
    real = export._tensors

    def shifted(arrays, names):  # PyTorch sees other pixels than ONNX Runtime
        return tuple(t + 0.5 for t in real(arrays, names))

    export._tensors = shifted
    try:
        with pytest.raises(
            HeadstartError, match=r"largest probability difference .*\(tolerance 0.0001\)"
        ):
            export.export_onnx(run_dir)
    finally:
        export._tensors = real
    assert not (run_dir / "onnx" / "model.onnx").exists()
    assert not (run_dir / "onnx" / "model.json").exists()


@pytest.mark.slow
def test_real_lite0_export_matches_pytorch(tmp_path):
    """The default backbone with its real weights: the graph timm builds for it exports and
    ONNX Runtime agrees with PyTorch."""
    from PIL import Image

    from headstart.api import train
    from headstart.core.config import TrainConfig
    from headstart.deploy.export import export_onnx

    images, labels = make_images(6, size=64, seed=3)
    root = tmp_path / "data"
    for i, (img, lab) in enumerate(zip(images, labels)):
        (root / f"c{lab}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / f"c{lab}" / f"{i}.png")
    run_dir = tmp_path / "run"
    train(TrainConfig(data=str(root), epochs=2), out=run_dir, progress=False)
    meta = export_onnx(run_dir)
    assert meta["backbone"] == "tf_efficientnet_lite0"
    assert meta["check"]["max_abs_difference"] <= 1e-4
    assert meta["check"]["end_to_end"]["same_class"] == meta["check"]["end_to_end"]["of"]
