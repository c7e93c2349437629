"""What a user sees on the command line: an 80-column terminal, output piped to a log, fast
answers to --help and mistakes, counts that agree everywhere, and honest labels."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import CLASS_NAMES, make_images
from conftest import run_cli as headstart

TINY = ["--backbone", "test_resnet", "--weights", "none", "--image-size", "48", "--epochs", "2"]


def _folder(root: Path, n_per_class: int, *, broken: int = 0, name: str = "img") -> Path:
    images, labels = make_images(n_per_class, seed=7)
    for i, (img, lab) in enumerate(zip(images, labels)):
        d = root / CLASS_NAMES[lab]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"{name}_{i:03d}.png")
    for k in range(broken):
        (root / CLASS_NAMES[k % 3] / f"{name}_broken_{k}.png").write_bytes(b"\x89PNG broken")
    return root


LONG = "a_rather_long_folder_name_for_testing/with_another_level_of_nesting/data"


def test_help_version_and_mistakes_answer_without_loading_torch():
    code = (
        "import sys\n"
        "from headstart.cli import main\n"
        "for argv in (['--help'], ['--version'], ['train', '--help'],\n"
        "             ['train', '--demo', '--strategy', 'bogus'], ['train', '--bogus']):\n"
        "    sys.argv = ['headstart', *argv]\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('HEAVY', sorted(m for m in ('torch', 'timm', 'sklearn') if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in r.stdout, r.stdout + r.stderr
    assert "headstart 0." in r.stdout
    # the strategy error lists every valid value, auto included
    assert "scratch, auto; got 'bogus'" in r.stderr


def test_help_texts_are_true():
    summary = headstart("summary", "--help").stdout
    assert "auto" not in summary  # summary needs one concrete backbone
    finetune = headstart("finetune", "--help", columns=200).stdout
    assert "or auto (the four" not in finetune and "<bool>" not in finetune
    train = headstart("train", "--help").stdout
    assert "<bool>" not in train and "--no-flip" in train
    r = headstart("summary", "--run", "somewhere", "--backbone", "DenseNet121", check=False)
    assert r.returncode == 2 and "--backbone would not apply" in r.stderr
    r = headstart("finetune", "nowhere", "--strategy", "auto", check=False)
    assert r.returncode == 2 and "fine-tune, freeze-first, full" in r.stderr


def test_inspect_and_backbones_never_cut_paths_or_names_at_80_columns(tmp_path):
    data = _folder(tmp_path / LONG, 8, broken=1, name="an_image_with_a_long_descriptive_name")
    r = headstart("inspect", data)
    broken = data / "circle" / "an_image_with_a_long_descriptive_name_broken_0.png"
    assert str(broken) in r.stdout.splitlines()[-1]  # whole, on one line
    assert str(data) in r.stdout
    # the table itself fits the terminal
    assert max(len(line) for line in r.stdout.splitlines() if "│" in line) <= 80

    r = headstart("backbones")
    for name in ("tf_efficientnet_lite0", "mobilenetv3_large_100", "inception_resnet_v2"):
        assert f" {name} " in r.stdout
    assert "…" not in r.stdout
    assert max(len(line) for line in r.stdout.splitlines() if "│" in line) <= 80


@pytest.mark.slow
def test_train_counts_agree_everywhere_and_the_log_shows_each_step(tmp_path):
    """120 readable images and 2 broken files: every count says what was used."""
    data = _folder(tmp_path / "data", 40, broken=2)
    insp = headstart("inspect", data, "--json", tmp_path / "insp.json")
    planned = json.loads((tmp_path / "insp.json").read_text())["planned_split"]
    planned_total = {s: sum(c) for s, c in planned.items()}
    assert sum(planned_total.values()) == 120

    run = tmp_path / LONG / "run"
    r = headstart("train", data, "--out", run, *TINY)
    m = json.loads((run / "metrics.json").read_text())
    assert m["n_examples"] == planned_total  # what inspect planned is what train used
    assert sum(m["n_unreadable"].values()) == 2
    assert sum(m["train_class_counts"]) == m["n_examples"]["train"]
    used = ", ".join(f"{k} {v}" for k, v in m["n_examples"].items())
    assert used in r.stdout
    assert f"Images used: {used}" in (run / "report.html").read_text()
    inspection = json.loads((run / "inspection.json").read_text())
    assert {s: sum(c) for s, c in inspection["counts"].items()} == m["n_examples"]
    assert "2 unreadable image(s) will be skipped" in insp.stdout

    # a test split was carved (every class has 40 images): the headline is on it
    assert "test" in m["n_examples"] and m["headline"]["split"] == "test"
    assert not m["headline"]["optimistic"]
    assert "carved a stratified 15% test split" in r.stderr
    # no terminal: one line per step, no carriage-return bars
    assert "\r" not in r.stderr
    assert any(line.startswith("features train: ") for line in r.stderr.splitlines())
    training = [line for line in r.stderr.splitlines() if line.startswith("training: ")]
    assert training and re.match(r"training: \d+ epochs? in ", training[0])
    assert not re.search(r"\b([02-9]|\d\d+) epoch in ", training[0])  # "5 epochs", not "5 epoch"
    # where the report is, whole on its line
    assert f"report  {run / 'report.html'}" in r.stdout.splitlines()


@pytest.mark.slow
def test_an_unreadable_file_in_the_carved_test_split_is_counted_out_everywhere(tmp_path):
    """Splits are carved from the listed files, before any is decoded: a broken file that
    falls into the carved test split is left out there, and inspect's plan, train's note,
    metrics.json, the report, evaluate and compare all give the count of images scored."""
    from headstart.core.data import load_data

    data = _folder(tmp_path / "data", 20)  # 60 images: a 15% test split is carved (9)
    listed = load_data(str(data)).test.ids
    assert len(listed) == 9
    (data / listed[0]).write_bytes(b"\x89PNG broken")  # same listing, so the same split
    scored = 8

    headstart("inspect", data, "--json", tmp_path / "insp.json")
    planned = json.loads((tmp_path / "insp.json").read_text())
    assert sum(planned["planned_split"]["test"]) == scored
    assert any(
        f"({scored} images, after leaving out 1" in n for n in planned["split_method"]["notes"]
    )

    run = tmp_path / "run"
    r = headstart("train", data, "--out", run, *TINY)
    note = f"carved a stratified 15% test split from train ({scored} images, after leaving out"
    assert note in r.stderr and "(9 images" not in r.stderr
    used = " ".join(r.stdout.split())
    assert f"test {scored} (unreadable, left out: 1 of the carved test split" in used
    m = json.loads((run / "metrics.json").read_text())
    assert m["n_examples"]["test"] == m["headline"]["n"] == scored
    assert m["n_unreadable"]["test"] == 1
    report = (run / "report.html").read_text()
    assert f"accuracy on the test split ({scored} images)" in report
    assert "1 of the carved test split" in report and listed[0].split("/")[-1] in report
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["n"] == scored and len(evaluation["unreadable"]) == 1

    out = tmp_path / "cmp"
    r = headstart("compare", data, "--out", out, "--backbones", "test_resnet", *TINY[2:])
    board = json.loads((out / "leaderboard.json").read_text())
    assert board["n"] == board["leaderboard"][0]["n"] == scored
    assert f"test split ({scored} images scored; 1 unreadable" in (out / "compare.html").read_text()
    assert f"({scored} images)" in " ".join(r.stdout.split())
    # the validation split that ranked the backbones is counted too (none unreadable in it)
    n_val = json.loads((run / "metrics.json").read_text())["n_examples"]["val"]
    assert board["n_val"] == n_val and board["n_val_unreadable"] == 0
    assert (
        f"Ranked by validation accuracy (on {n_val} images)" in (out / "compare.html").read_text()
    )


@pytest.mark.slow
def test_without_a_test_split_every_score_says_it_is_optimistic(image_folder, tmp_path):
    run = tmp_path / "run"
    r = headstart("train", image_folder, "--out", run, *TINY)  # 8 images a class: no test
    m = json.loads((run / "metrics.json").read_text())
    assert "test_accuracy" not in m and m["headline"]["split"] == "val"
    label = "validation, used for model selection: optimistic"
    assert m["headline"]["optimistic"] and m["headline"]["label"] == label
    assert label in r.stdout
    assert label in (run / "report.html").read_text()
    ev = headstart("evaluate", run)
    assert label in ev.stdout


@pytest.mark.slow
def test_the_lessons_arrays_get_a_test_split_and_a_note(tmp_path):
    images, labels = make_images(30, seed=2)
    val_images, val_labels = make_images(6, seed=3)
    root = tmp_path / "arrays"
    root.mkdir()
    np.save(root / "train_images.npy", images)
    np.save(root / "train_labels.npy", labels)
    np.save(root / "test_images.npy", val_images)
    np.save(root / "test_labels.npy", val_labels)
    run = tmp_path / "run"
    r = headstart("train", root, "--out", run, *TINY)
    m = json.loads((run / "metrics.json").read_text())
    assert m["n_examples"] == {"train": 76, "val": 18, "test": 14}
    assert "test_accuracy" in m
    assert "carved a stratified 15% test split from train (14 images)" in r.stderr
    r = headstart("train", root, "--out", tmp_path / "lesson", "--test-split", "0", *TINY)
    m = json.loads((tmp_path / "lesson" / "metrics.json").read_text())
    assert m["n_examples"] == {"train": 90, "val": 18}


@pytest.mark.slow
def test_config_applies_given_flags_and_resume_refuses_changes(image_folder, tmp_path):
    run = tmp_path / "run"
    headstart("train", image_folder, "--out", run, *TINY)
    replay = tmp_path / "replay"
    headstart("train", "--config", run, "--out", replay, "--epochs", "1", "--head", "linear")
    from headstart.core.config import TrainConfig

    cfg = TrainConfig.from_file(replay).to_dict()  # (config.json is written in sections)
    assert cfg["epochs"] == 1 and cfg["head"] == "linear" and cfg["backbone"] == "test_resnet"
    r = headstart("train", "--resume", run, "--epochs", "5", "--lr", "0.1", check=False)
    assert r.returncode == 2
    assert "--epochs, --lr would change it" in r.stderr and "Traceback" not in r.stderr


def test_advise_counts_only_the_images_that_decode(tmp_path):
    from headstart.core.advise import advise
    from headstart.core.data import load_data

    data = _folder(tmp_path / "data", 8, broken=2)
    splits = load_data(data, seed=0)
    readable = sum(1 for p in splits.train.paths if "broken" not in Path(p).name)
    advice = advise(splits, "test_resnet", image_size=48, weights="none")
    assert sum(advice.measurements["train_class_counts"]) == readable < len(splits.train)
    assert any(f"{readable} training images" in r for r in advice.reasons)


def test_ctrl_c_during_feature_extraction_names_the_resume_command(
    image_folder, tmp_path, monkeypatch
):
    from headstart.api import train
    from headstart.core.config import TrainConfig
    from headstart.core.training import TrainingInterrupted
    from headstart.modalities.image.features import FeatureExtractor

    cfg = TrainConfig(backbone="test_resnet", weights="none", image_size=48, epochs=2)
    out = tmp_path / "run"

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(FeatureExtractor, "_compute", interrupted)
        with pytest.raises(TrainingInterrupted) as info:
            train(cfg, data=str(image_folder), out=out, progress=False)
    assert f"headstart train --resume {out}" in str(info.value)
    run = train(cfg, data=str(image_folder), out=out, progress=False, resume=True)
    assert (out / "model.safetensors").is_file() and run.metrics["epochs_run"] == 2


def _clean_at_80(r) -> str:
    """A command's output on an 80-column pipe: no traceback, nothing cut, tables fit."""
    assert "Traceback" not in r.stderr, r.stderr
    assert "…" not in r.stdout, r.stdout
    boxed = [line for line in r.stdout.splitlines() if line[:1] in "│┃┏┡└╭╰"]
    assert all(len(line) <= 80 for line in boxed), r.stdout
    return r.stdout


@pytest.mark.slow
def test_every_command_at_80_columns_without_a_terminal(image_folder, tmp_path):
    frozen = tmp_path / LONG / "frozen"
    _clean_at_80(headstart("train", image_folder, "--out", frozen, *TINY))
    tuned = tmp_path / LONG / "tuned"
    out = _clean_at_80(
        headstart("finetune", frozen, "--out", tuned, "--epochs", "1", "--strategy", "full")
    )
    assert f"report  {tuned / 'report.html'}" in out.splitlines()

    new = tmp_path / LONG / "new_images"
    new.mkdir()
    src = next((image_folder / "stripes").glob("*.png"))
    (new / "an_unusually_long_file_name_for_a_photo_taken_last_summer.png").write_bytes(
        src.read_bytes()
    )
    out = _clean_at_80(headstart("predict", frozen, new))
    assert str(new / "an_unusually_long_file_name_for_a_photo_taken_last_summer.png") in out

    out = _clean_at_80(headstart("export", frozen))
    assert str(frozen / "onnx" / "model.onnx") in [line.strip() for line in out.splitlines()]
    out = _clean_at_80(headstart("predict", frozen, new, "--engine", "onnx"))
    assert str(new / "an_unusually_long_file_name_for_a_photo_taken_last_summer.png") in out

    out = _clean_at_80(headstart("evaluate", tuned, "--compare", frozen))
    assert "paired" in out
    _clean_at_80(headstart("report", frozen))
    out = _clean_at_80(headstart("summary", "--backbone", "test_resnet", "--classes", "3"))
    assert "trainable" in out
    out = _clean_at_80(
        headstart(
            "compare",
            image_folder,
            "--backbones",
            "test_resnet,test_efficientnet",
            "--weights",
            "none",
            "--image-size",
            "48",
            "--epochs",
            "2",
            "--out",
            tmp_path / LONG / "cmp",
        )
    )
    assert "test_efficientnet" in out and "test_resnet" in out
    out = _clean_at_80(
        headstart(
            "advise",
            image_folder,
            "--candidates",
            "test_resnet,test_efficientnet",
            "--weights",
            "none",
            "--image-size",
            "48",
            "--out",
            tmp_path / "adv",
        )
    )
    assert "how much to retrain" in out
    # the advice's sentences are wrapped inside the panel, never cut at its edge
    flowing = " ".join(out.replace("│", " ").split())
    advice = json.loads((tmp_path / "adv" / "advice.json").read_text())["advice"]
    for reason in advice["reasons"]:
        assert " ".join(reason.split()) in flowing, reason
    # an earlier run is replaced only when asked, and a foreign folder never
    r = headstart("train", image_folder, "--out", frozen, *TINY, check=False)
    assert r.returncode == 2 and "--overwrite" in r.stderr
    _clean_at_80(headstart("train", image_folder, "--out", frozen, "--overwrite", *TINY))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.json").write_text("my own file")
    r = headstart("train", image_folder, "--out", mine, "--overwrite", *TINY, check=False)
    assert r.returncode == 2 and "did not write" in r.stderr
    assert (mine / "config.json").read_text() == "my own file"


@pytest.mark.slow
def test_report_keeps_the_runs_evaluate_compared(image_folder, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    headstart("train", image_folder, "--out", a, *TINY)
    headstart("train", image_folder, "--out", b, *TINY, "--head", "linear")
    headstart("evaluate", a, "--compare", b)
    headstart("report", a)
    ev = json.loads((a / "evaluation.json").read_text())
    assert [r["kind"] for r in ev["table"]] == ["this run", "baseline", "compared run"]
    assert len(ev["paired"]) == 1 and "Paired comparison" in (a / "report.html").read_text()


@pytest.mark.slow
def test_train_warns_when_an_image_is_in_two_splits(split_folder, tmp_path):
    src = next((split_folder / "train" / "circle").glob("*.jpg"))
    (split_folder / "val" / "circle" / "copy.jpg").write_bytes(src.read_bytes())
    r = headstart("train", split_folder, "--out", tmp_path / "run", *TINY)
    assert (
        "1 image(s) appear in more than one split (2 files): scores on val will be optimistic"
        in r.stdout
    )
