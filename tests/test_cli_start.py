"""Mistakes are answered before the heavy libraries load: every argument, path and name error
of every command, ``backbones`` and ``--help`` run without importing torch, timm, transformers
or scikit-learn (what made each answer cost 10-25 s). No timing here:
``bench/bench_cli_start.py`` measures the seconds; these tests prove the cause is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch

from conftest import run_cli as headstart

#: What an error path must not import.
HEAVY = ("torch", "timm", "transformers", "sklearn", "scipy", "onnxruntime", "fastapi", "uvicorn")

#: Runs each argument list through the command line in one process, one after another, and
#: records after each what heavy libraries are loaded so far (the first one to load one is the
#: culprit), its exit code and what it said.
RUNNER = """
import contextlib, io, json, sys
from headstart.cli import app
heavy = set(sys.argv[2].split(","))
out = []
for args in json.loads(sys.argv[1]):
    err, said = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(said):
        try:
            app(args=args, prog_name="headstart")
        except SystemExit as e:
            code = e.code
    loaded = sorted({m.split(".")[0] for m in sys.modules} & heavy)
    out.append({"args": args, "code": code, "stderr": err.getvalue(),
                "stdout": said.getvalue(), "heavy": loaded})
print(json.dumps(out))
"""


def in_one_process(cases: list[list[str]]) -> list[dict]:
    r = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(cases), ",".join(HEAVY)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture
def bad(tmp_path, image_folder):
    """Every kind of bad input, on disk: data that cannot train, folders that are not runs,
    and a run directory that passes the light checks (for the errors behind them)."""
    d = {"nowhere": tmp_path / "nowhere", "images": image_folder}
    one = tmp_path / "oneclass" / "cat"
    one.mkdir(parents=True)
    for name in ("a.png", "b.png"):
        (one / name).write_bytes((image_folder / "circle").joinpath("img_000.png").read_bytes())
    d["oneclass"] = one.parent
    d["empty_csv"] = tmp_path / "empty.csv"
    d["empty_csv"].write_text("\n")
    d["no_columns_csv"] = tmp_path / "nocol.csv"
    d["no_columns_csv"].write_text("a,b\n1,2\n")
    d["no_label_csv"] = tmp_path / "nolabel.csv"
    d["no_label_csv"].write_text("filename\nimg.png\n")
    d["text_no_label"] = tmp_path / "texts.csv"
    d["text_no_label"].write_text("text\nit helped\nawful\n")
    d["text_one_class"] = tmp_path / "texts1.csv"
    d["text_one_class"].write_text("text,label\nit helped,pos\ngood,pos\n")
    d["texts"] = tmp_path / "texts2.csv"
    d["texts"].write_text("text,label\nit helped,pos\nawful,neg\n")
    d["notrun"] = tmp_path / "notrun"
    d["notrun"].mkdir()
    d["occupied"] = tmp_path / "occupied"
    d["occupied"].mkdir()
    (d["occupied"] / "mine.txt").write_text("the user's")
    run = tmp_path / "run"  # what the light checks look at; never loaded (the errors come first)
    run.mkdir()
    (run / "model.json").write_text(json.dumps({"format": "headstart-run", "modality": "image"}))
    (run / "config.json").write_text(json.dumps({"config": {"data": str(image_folder)}}))
    (run / "model.safetensors").write_bytes(b"")
    d["run"] = run
    d["notes"] = tmp_path / "notes.txt"  # the user's: predict --out never replaces it
    d["notes"].write_text("input,predicted,confidence\nmy own notes\n")
    d["picture"] = one / "a.png"
    d["empty"] = tmp_path / "empty"
    (d["empty"] / "inner").mkdir(parents=True)  # folders in it, and a hidden file, no inputs
    (d["empty"] / ".DS_Store").write_bytes(b"")
    return {k: str(v) for k, v in d.items()}


#: (command line with {placeholders} from ``bad``, what the one line must say)
CASES = [
    # a path that does not exist
    ("train {nowhere}", "no such file or folder"),
    ("inspect {nowhere}", "no such file or folder"),
    ("advise {nowhere}", "no such file or folder"),
    ("compare {nowhere} --backbones test_resnet", "no such file or folder"),
    ("predict {nowhere} x.png", "no such run directory"),
    ("evaluate {nowhere}", "no such run directory"),
    ("export {nowhere}", "no such run directory"),
    ("serve {nowhere}", "no such run directory"),
    ("finetune {nowhere}", "no such run directory"),
    ("report {nowhere}", "no such run directory"),
    ("summary --run {nowhere}", "no such run directory"),
    ("predict {run} {nowhere}", "no such file or folder"),
    ("evaluate {run} {nowhere}", "no such file or folder"),
    ("train --demo --weights {nowhere}", "weights file not found"),
    # a folder that is not a run
    ("predict {notrun} x.png", "not a headstart run"),
    ("evaluate {notrun}", "not a headstart run"),
    ("export {notrun}", "not a headstart run"),
    ("serve {notrun}", "not a headstart run"),
    ("finetune {notrun}", "not a headstart run"),
    ("report {notrun}", "not a headstart run"),
    ("predict {notrun} x.png --engine onnx", "has no onnx/model.onnx"),
    # data that cannot train
    ("train {oneclass}", "only one class"),
    ("inspect {oneclass}", "only one class"),
    ("advise {oneclass}", "only one class"),
    ("compare {oneclass} --backbones test_resnet", "only one class"),
    ("train {empty_csv}", "the file is empty"),
    ("inspect {empty_csv}", "the file is empty"),
    ("train {no_columns_csv}", "neither a 'filename' column"),
    ("train {no_label_csv}", "'label' not found"),
    ("train {text_no_label}", "'label' not found"),
    ("inspect {text_no_label}", "'label' not found"),
    ("train {text_one_class}", "only one class"),
    # a mistyped network
    ("train --demo --backbone DenseNet12", "Did you mean DenseNet121"),
    ("train {images} --backbone resnet5", "Did you mean ResNet50"),
    ("summary --backbone DenseNet12", "Did you mean DenseNet121"),
    ("advise --demo --candidates DenseNet12@96", "Did you mean DenseNet121"),
    ("compare --demo --backbones tf_efficientnet_lite0,DenseNet12", "Did you mean DenseNet121"),
    ("train {texts} --backbone minlm", "Did you mean minilm"),
    ("inspect {texts} --backbone minlm", "Did you mean minilm"),
    # an option value out of range, and --out that is someone else's folder
    ("train --demo --strategy bogus", "--strategy must be one of"),
    ("train --demo --epochs 0", "epochs must be at least 1"),
    ("train {images} --test-split 1.5", "--test-split must be in [0, 1)"),
    ("train {images} --val-split 0.6 --test-split 0.5", "--val-split + --test-split < 1"),
    ("train {images} --image-size 0", "--image-size must be between 16 and 2048"),
    ("predict {run} {empty}", "an empty folder, nothing to predict on"),
    ("train --demo --head bogus --backbone DenseNet121", "--head must be one of"),
    ("train --demo --nproc many", "--nproc must be a number"),
    ("train {images} --out {occupied}", "files headstart did not write"),
    ("finetune {run} --strategy bogus", "--strategy must be one of"),
    ("finetune {run} --out {occupied}", "files headstart did not write"),
    ("predict {run} x.png --engine bogus", "--engine must be one of"),
    ("predict {run} {images} --out {notes}", "not a predictions CSV headstart wrote"),
    ("predict {run} {picture} --out {picture}", "is one of the inputs"),
    ("predict {run} {images} --out {images}/circle/img_000.png", "not a predictions CSV"),
    ("predict {run} {images} --out {images}", "is a folder"),
    ("export {run} --out {run}/model.txt", "ending in .onnx"),
    ("serve {run} --port 0", "--port 0"),
    ("advise --demo --rank-by bogus", "--rank-by must be one of"),
    ("summary --head bogus", "head must be one of"),
]


def test_every_mistake_is_answered_before_the_heavy_libraries_load(bad):
    cases = [line.format(**bad).split() for line, _ in CASES]
    for (line, expected), got in zip(CASES, in_one_process(cases), strict=True):
        said = got["stderr"]
        assert got["code"] == 2, (line, said, got["stdout"])
        assert expected in said, (line, said)
        assert said.startswith("error: ") and said.count("\n") == 1, (line, said)  # one line
        assert "Traceback" not in said and "note:" not in said, (line, said)
        assert not got["heavy"], f"{line} imported {got['heavy']} before answering"
    assert Path(bad["notes"]).read_text() == "input,predicted,confidence\nmy own notes\n"


def test_a_failed_run_leaves_no_folder_it_made_and_keeps_the_users(bad, tmp_path):
    """Through the Python API (the command line answers before it creates anything)."""
    from headstart.core.config import TrainConfig
    from headstart.core.training import train
    from headstart.errors import DataError

    made = tmp_path / "new" / "nested" / "run"
    with pytest.raises(DataError, match="only one class"):
        train(TrainConfig(data=bad["oneclass"], backbone="test_resnet", weights="none"), out=made)
    assert not (tmp_path / "new").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    with pytest.raises(DataError, match="only one class"):
        train(TrainConfig(data=bad["oneclass"], backbone="test_resnet", weights="none"), out=mine)
    assert mine.is_dir()  # the user's folder stays, empty as it was
    assert not any(mine.iterdir())


def test_backbones_and_help_answer_without_heavy_imports():
    commands = ["inspect", "train", "finetune", "predict", "export", "serve", "backbones"]
    commands += ["summary", "evaluate", "report", "compare", "advise"]
    got = in_one_process([["backbones"], ["--help"], *[[c, "--help"] for c in commands]])
    listing = got[0]
    assert listing["code"] == 0 and not listing["heavy"], listing["heavy"]
    assert "DenseNet121" in listing["stdout"] and "7.0M" in listing["stdout"]
    # Xception's weights are not on the hub: the listing says where they come from
    assert "url, online" in listing["stdout"] and "GitHub release" in listing["stdout"]
    for r in got[1:]:
        assert r["code"] == 0 and not r["heavy"], (r["args"], r["heavy"])
        # at 80 columns nothing is cut: names and paths are printed whole
        assert "…" not in r["stdout"], (r["args"], r["stdout"])
    train_help = got[3]["stdout"]
    assert "runs/DATE-BACKBONE-STRATEGY" in train_help
    assert "(BN-Dense-ReLU-Dropout-Dense)" in train_help


def test_the_timm_names_read_from_its_files_are_timms_list():
    from headstart.modalities.image.backbones.names import timm_model_names

    assert timm_model_names() == frozenset(timm.list_models())


def test_the_backbone_table_agrees_with_timm():
    """Every number ``headstart backbones`` shows without building a model is timm's."""
    from headstart.modalities.image.backbones.aliases import (
        BACKBONE_FACTS,
        KERAS_ALIASES,
        OFF_HUB_WEIGHTS,
    )
    from headstart.modalities.image.backbones.model import Backbone

    assert set(BACKBONE_FACTS) == set(KERAS_ALIASES.values())
    for name, (params, size, hub_id) in BACKBONE_FACTS.items():
        cfg = timm.models.get_pretrained_cfg(name)
        assert tuple(cfg.input_size[1:]) == size, name
        assert cfg.hf_hub_id == hub_id, name
        if hub_id is None:
            assert cfg.url and name in OFF_HUB_WEIGHTS, name
        with torch.device("meta"):
            backbone = Backbone(timm.create_model(name, pretrained=False, num_classes=0))
        assert sum(p.numel() for p in backbone.parameters()) == params, name


def test_suggestions_name_aliases_and_timm_names():
    from headstart.modalities.image.backbones.names import check_backbone_name, close_backbones

    assert close_backbones("DenseNet12")[0] == "DenseNet121 (densenet121)"
    assert close_backbones("Resnet18")[0] == "resnet18"  # timm names are case-sensitive
    assert check_backbone_name("densenet121") == "densenet121"
    assert check_backbone_name("resnet50.a1_in1k") == "resnet50.a1_in1k"  # a pretrained tag
    assert check_backbone_name("mobilenetv2") == "mobilenetv2_100"  # aliases ignore case


def test_notes_follow_the_work(tmp_path):
    """The carved-test-split note is said once the network has loaded, so a network that
    fails to load (weights that are not weights) gets its error alone."""
    from PIL import Image

    for c, colour in (("a", (200, 0, 0)), ("b", (0, 0, 200))):
        (tmp_path / "data" / c).mkdir(parents=True)
        for i in range(20):  # enough per class for the automatic test split
            Image.new("RGB", (8, 8), colour).save(tmp_path / "data" / c / f"{i}.png")
    junk = tmp_path / "w.safetensors"
    junk.write_bytes(b"not weights")
    r = headstart(
        "train",
        tmp_path / "data",
        "--backbone",
        "test_resnet",
        "--weights",
        junk,
        "--out",
        tmp_path / "run",
        check=False,
    )
    assert r.returncode == 2 and "not a readable weights file" in r.stderr
    assert "note:" not in r.stderr and "carved" not in r.stderr
    assert not (tmp_path / "run").exists()  # and the folder it made is gone


def test_stages_under_a_shared_parent_are_named_by_their_parts():
    """DenseNet's stages all live under ``features``: each is named by its dense block and
    transition, not as ``features (26 modules)``."""
    from headstart.core.stages import StageMap

    smap = StageMap(
        stem=["features.conv0"],
        stages=[
            ["features.denseblock1.layer1.conv", "features.transition1.conv"],
            ["features.denseblock2.layer1.conv", "features.denseblock2.layer2.conv"],
        ],
        top=["features.norm5"],
    )
    assert smap.describe() == [
        "stage 1: features.denseblock1 + features.transition1 (2 modules)",
        "stage 2: features.denseblock2 (2 modules)",
        "top: features.norm5",
    ]
    resnet = StageMap(stem=["conv1"], stages=[["layer1.0.conv", "layer1.1.conv"]], top=[])
    assert resnet.describe() == ["stage 1: layer1 (2 modules)"]
