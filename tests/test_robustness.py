"""The robustness suite: messy folders, hostile files, random arrays, interruptions, full
disks and mismatched prediction inputs. Its figures are quoted in the README."""

from __future__ import annotations

import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

import clihost
from conftest import CLASS_NAMES, make_images, run_cli, write_image_folder
from headstart import from_arrays
from headstart.api import train
from headstart.core.config import TrainConfig
from headstart.core.data import inspect_source, load_source, make_splits
from headstart.core.runs import load_run
from headstart.errors import BackboneError, DataError, HeadstartError, RunError
from headstart.modalities.image.predict import predict_inputs

TINY = {"backbone": "test_resnet", "weights": "none", "image_size": 48, "epochs": 2}


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(path: Path, side: int = 100_000) -> None:
    """A tiny file declaring a 100,000 x 100,000 image: opening it must not decode it."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


#: every kind of bad file in the messy folder, and why it is bad
BAD_FILES = {
    "truncated.jpg": "truncated JPEG",
    "truncated.png": "truncated PNG",
    "empty.png": "zero bytes",
    "text.jpg": "text with an image extension",
    "bomb.png": "declares 10^10 pixels",
}
#: images in unusual modes that must load
ODD_GOOD = ("palette.png", "sixteen.png", "cmyk.jpg", "rgba.png", "grey.png", "exif.jpg")


@pytest.fixture
def messy_folder(tmp_path) -> Path:
    images, labels = make_images(8, seed=3)
    root = tmp_path / "messy"
    for i, (img, lab) in enumerate(zip(images, labels)):
        d = root / CLASS_NAMES[lab]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"good_{i:02d}.png")
    bad = root / "circle"
    Image.fromarray(images[0]).save(bad / "full.jpg", quality=95)
    data = (bad / "full.jpg").read_bytes()
    (bad / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (bad / "full.jpg").unlink()
    data = (bad / "good_00.png").read_bytes()
    (bad / "truncated.png").write_bytes(data[: len(data) // 2])
    (bad / "empty.png").write_bytes(b"")
    (bad / "text.jpg").write_text("definitely not a JPEG")
    bomb_png(bad / "bomb.png")
    odd = root / "square"
    Image.fromarray(images[9]).convert("P").save(odd / "palette.png")
    Image.fromarray(images[9][..., 0].astype(np.uint16) * 257).save(odd / "sixteen.png")
    Image.fromarray(images[9]).convert("CMYK").save(odd / "cmyk.jpg")
    Image.fromarray(images[9]).convert("RGBA").save(odd / "rgba.png")
    Image.fromarray(images[9]).convert("L").save(odd / "grey.png")
    img = Image.fromarray(images[9][:, :20])
    exif = img.getexif()
    exif[0x0112] = 8  # rotate 270
    img.save(odd / "exif.jpg", exif=exif)
    (root / "notes.txt").write_text("ignored")
    return root


def _bad_names(entries) -> set[str]:
    return {Path(e["path"]).name for e in entries}


def test_messy_folder_inspect_train_predict_complete(messy_folder, tmp_path):
    source = load_source(messy_folder)
    insp = inspect_source(source, progress=False)
    assert _bad_names(insp.unreadable) == set(BAD_FILES)
    assert any("decompression bomb" in u["reason"] for u in insp.unreadable)
    assert insp.counts["train"] == [8, 8 + len(ODD_GOOD), 8]  # good files counted only

    run = train(TrainConfig(**TINY, data=str(messy_folder)), out=tmp_path / "run", progress=False)
    assert _bad_names(run.skipped_examples) <= set(BAD_FILES)
    assert run.skipped_examples  # those in train/val were reported
    report = (tmp_path / "run" / "report.html").read_text()
    assert "image(s) skipped: " in report
    for name in BAD_FILES:
        assert name in report, name

    preds = predict_inputs(load_run(tmp_path / "run"), [messy_folder])
    failed = {Path(p.input).name for p in preds if p.error}
    assert failed == set(BAD_FILES)
    ok = [p for p in preds if not p.error]
    assert len(ok) == 24 + len(ODD_GOOD)
    assert all(np.isclose(p.probabilities.sum(), 1, atol=1e-5) for p in ok)


# --------------------------------------------------------------------------- properties

_dtypes = st.sampled_from(
    [
        np.uint8,
        np.uint16,
        np.int32,
        np.int64,
        np.float16,
        np.float32,
        np.float64,
        np.bool_,
        np.complex64,
    ]
)


@st.composite
def image_arrays(draw):
    dtype = draw(_dtypes)
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=5, min_side=0, max_side=6))
    return draw(hnp.arrays(dtype, shape))


@st.composite
def label_vectors(draw, n: int):
    kind = draw(st.sampled_from(["int", "float", "str", "wrong_length", "2d"]))
    if kind == "int":
        return np.array(draw(st.lists(st.integers(-3, 5), min_size=n, max_size=n)), dtype=int)
    if kind == "float":
        return np.array(
            draw(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=n, max_size=n)),
            dtype=float,
        )
    if kind == "str":
        return np.array(
            draw(st.lists(st.sampled_from(["a", "b", "c", ""]), min_size=n, max_size=n))
        )
    if kind == "2d":
        return np.zeros((n, 2))
    return np.zeros(n + draw(st.integers(1, 3)), dtype=int)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_data_layer_loads_or_raises_its_own_error(data):
    """Any array and any label vector: loads correctly, or a DataError -- nothing else."""
    images = data.draw(image_arrays())
    labels = data.draw(label_vectors(len(images) if images.ndim else 0))
    try:
        src = from_arrays(images, labels)
    except HeadstartError:
        return
    # what loads must be usable: every image decodes to RGB uint8, the split works or says why
    for i in range(len(src.train)):
        img = src.train.image(i)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert len(src.class_names) >= 2
    try:
        splits = make_splits(src, val_split=0.5)
    except HeadstartError:
        return
    assert len(splits.train) + len(splits.val) == len(src.train)


# --------------------------------------------------------------------------- hostile files


class _Plant:
    """A pickle that, if ever unpickled, creates a file: the evidence of code execution."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_object_npy_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "executed"
    np.save(
        tmp_path / "train_images.npy",
        np.array([_Plant(marker)] * 4, dtype=object),
        allow_pickle=True,
    )
    np.save(tmp_path / "train_labels.npy", np.array([0, 1, 0, 1]))
    with pytest.raises(DataError, match="refuses to load"):
        load_source(tmp_path)
    assert not marker.exists()


def test_crafted_weights_file_is_refused_without_executing(tmp_path):
    from headstart.modalities.image.backbones import create_backbone

    marker = tmp_path / "executed"
    for name in ("w.pth", "w.bin", "w.pt"):
        (tmp_path / name).write_bytes(pickle.dumps({"conv1.weight": _Plant(marker)}))
        with pytest.raises(BackboneError):
            create_backbone("test_resnet", weights=str(tmp_path / name))
    (tmp_path / "fake.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(BackboneError):
        create_backbone("test_resnet", weights=str(tmp_path / "fake.safetensors"))
    assert not marker.exists()


def test_run_directory_with_unexpected_or_swapped_files_is_refused(image_folder, tmp_path):
    run_dir = tmp_path / "run"
    train(TrainConfig(**TINY, data=str(image_folder)), out=run_dir, progress=False, report=False)
    marker = tmp_path / "executed"
    (run_dir / "extra.pkl").write_bytes(pickle.dumps(_Plant(marker)))
    with pytest.raises(RunError, match="extra.pkl.*refusing"):
        load_run(run_dir)
    (run_dir / "extra.pkl").unlink()
    real = (run_dir / "model.safetensors").read_bytes()
    (run_dir / "model.safetensors").write_bytes(pickle.dumps(_Plant(marker)))
    with pytest.raises(RunError, match="model.safetensors"):
        load_run(run_dir)
    (run_dir / "model.safetensors").write_bytes(real)
    meta = json.loads((run_dir / "model.json").read_text())
    meta["backbone"] = "__import__('os').system('touch x')"
    (run_dir / "model.json").write_text(json.dumps(meta))
    with pytest.raises(BackboneError, match="unknown backbone"):
        load_run(run_dir)
    assert not marker.exists()


# --------------------------------------------------------------------------- interruption


def _default_sigint() -> None:
    # a test runner started in the background (CI scripts, `cmd &`) inherits SIGINT ignored,
    # and Python then never raises KeyboardInterrupt: give the child a user's Ctrl-C
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cli(*args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "headstart.cli", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
        **kw,
    )


#: a whole-network run long enough that a kill after its first checkpoint lands mid-run
KILL_ARGS = [
    "--backbone",
    "test_resnet",
    "--weights",
    "none",
    "--image-size",
    "64",
    "--strategy",
    "full",
    "--epochs",
    "10",
    "--patience",
    "0",
    "--batch-size",
    "4",
]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """(the data, the run every kill test compares with), trained once for the module."""
    root = tmp_path_factory.mktemp("kill")
    data = write_image_folder(root / "folder")
    env = {**os.environ, "HEADSTART_CACHE_DIR": str(root / "cache")}
    r = clihost.run(["train", data, "--out", root / "whole", *KILL_ARGS], env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    return data, root / "whole"


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_killed_training_resumes_to_the_uninterrupted_result(uninterrupted, tmp_path, sig):
    """Kill mid-epoch: the run stays loadable, --resume finishes it, same model as no kill."""
    data, whole = uninterrupted
    cut = _cli("train", data, "--out", tmp_path / "cut", *KILL_ARGS)  # a process to signal
    state = tmp_path / "cut" / "checkpoint" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and not state.exists():
        time.sleep(0.05)
    assert state.exists(), cut.stderr.read() if cut.poll() is not None else "no checkpoint"
    time.sleep(0.05)  # into the next epoch
    cut.send_signal(sig)
    code = cut.wait(timeout=120)
    assert code != 0
    if sig == signal.SIGINT:
        assert "--resume" in cut.stderr.read()
    partial = load_run(tmp_path / "cut")  # loadable from the last completed checkpoint
    assert partial.metrics["interrupted"] and 1 <= partial.metrics["epochs_run"] < 10

    run_cli("train", "--resume", tmp_path / "cut")
    a, b = load_run(whole), load_run(tmp_path / "cut")
    assert len(b.history.epochs) == 10
    for k, v in a.model.state_dict().items():
        torch.testing.assert_close(b.model.state_dict()[k], v, rtol=0, atol=1e-6, msg=k)


def test_a_users_own_folder_is_not_a_run_whatever_it_holds(tmp_path):
    """A folder without model.json is not a run: its .py or .pkl files are the user's own
    business, never something headstart tells them to remove."""
    from headstart.core.rundir import check_run_dir

    (tmp_path / "cv.py").write_text("print('mine')")
    (tmp_path / "model.pkl").write_bytes(b"mine")
    with pytest.raises(RunError, match=r"not a headstart run \(model.json is missing\)") as e:
        check_run_dir(tmp_path)
    assert "Remove" not in str(e.value)


def test_atomic_write_never_leaves_a_partial_file(tmp_path, monkeypatch):
    from headstart.io import atomic_write_text

    atomic_write_text(tmp_path / "a.json", "old")

    def boom(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(tmp_path / "a.json", "new content")
    assert (tmp_path / "a.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


# --------------------------------------------------------------------------- disk


def test_unwritable_output_is_refused_before_training(image_folder, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(RunError, match="cannot write the run directory"):
        train(TrainConfig(**TINY, data=str(image_folder)), out=blocker / "run", progress=False)


def test_read_only_output_is_refused_before_training(image_folder, tmp_path, monkeypatch):
    import pathlib

    original = pathlib.Path.write_bytes

    def read_only(self, data):
        if self.name == ".write-test":
            raise OSError(30, "Read-only file system")
        return original(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", read_only)
    with pytest.raises(RunError, match="Read-only file system"):
        train(TrainConfig(**TINY, data=str(image_folder)), out=tmp_path / "run", progress=False)


def test_full_disk_is_refused_before_training(image_folder, tmp_path, monkeypatch):
    import shutil

    from headstart.core import training as pipeline

    started = []
    monkeypatch.setattr(pipeline, "prepare", lambda *a, **k: started.append(1))
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=1000))
    with pytest.raises(RunError, match="free some space"):
        train(TrainConfig(**TINY, data=str(image_folder)), out=tmp_path / "run", progress=False)
    assert not started  # nothing was computed


# --------------------------------------------------------------------------- prediction


def test_prediction_on_mismatched_inputs(image_folder, tmp_path):
    run = train(
        TrainConfig(**TINY, data=str(image_folder)),
        out=tmp_path / "run",
        progress=False,
        report=False,
    )
    images, _ = make_images(2, size=50, seed=4)  # another size than training's 32 px
    cases = tmp_path / "cases"
    cases.mkdir()
    Image.fromarray(images[0]).convert("RGBA").save(cases / "rgba.png")  # 4 channels
    Image.fromarray(images[1]).convert("L").save(cases / "grey.png")  # 1 channel
    Image.fromarray(images[2]).resize((200, 90)).save(cases / "wide.png")  # other size/aspect
    np.save(tmp_path / "grey.npy", images[:3, ..., 0])  # (N, H, W)
    np.save(tmp_path / "rgba.npy", np.concatenate([images[:3], images[:3, ..., :1]], axis=3))
    preds = predict_inputs(run, [cases, tmp_path / "grey.npy", tmp_path / "rgba.npy"])
    assert len(preds) == 9 and not any(p.error for p in preds)
    np.save(tmp_path / "two.npy", images[:3, ..., :2])
    with pytest.raises(DataError, match="not an image batch"):
        predict_inputs(run, [tmp_path / "two.npy"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no image files"):
        predict_inputs(run, [tmp_path / "empty"])
    with pytest.raises(DataError, match="no such file"):
        predict_inputs(run, [tmp_path / "missing.png"])


def test_reproducibility_record(image_folder, tmp_path):
    run = train(
        TrainConfig(**TINY, data=str(image_folder), seed=7),
        out=tmp_path / "run",
        progress=False,
        report=False,
    )
    rec = json.loads((tmp_path / "run" / "config.json").read_text())
    record, config = rec["record"], rec["config"]
    for key in ("seed", "python", "torch", "timm", "numpy", "headstart", "device", "data_hash"):
        assert key in record, key
    assert record["seed"] == 7 and config["data"]["seed"] == 7
    assert set(record["data_hash"]) == {"train", "val"}
    assert config == run.config.to_sections()
