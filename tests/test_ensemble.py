"""Caruana's ensemble selection at the end of ``--strategy auto`` (headstart.core.ensemble):
the selection, its cross-fitted decision, and the kept ensemble as a run like any other."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_cli
from headstart import from_arrays
from headstart.core import ensemble
from headstart.core.config import TrainConfig
from headstart.core.tasks import combine
from headstart.notes import speaking
from test_auto import noisy_images


def _onehot(pred: np.ndarray, k: int, sure: float = 0.9) -> np.ndarray:
    p = np.full((len(pred), k), (1 - sure) / (k - 1))
    p[np.arange(len(pred)), pred] = sure
    return p


def test_selection_adds_with_replacement_and_weights_complementary_members():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    block = np.arange(300) // 100
    # each of A, B, C errs on its own third: two of three are right everywhere
    members = [_onehot(np.where(block == k, (y + 1) % 3, y), 3, 0.8) for k in range(3)]
    noise = _onehot(rng.integers(0, 3, 300), 3)
    probas = [*members, noise]
    chosen = ensemble.select(probas, y)
    assert chosen["best_single"] == 0  # (ties: the first)
    assert all(w > 0 for w in chosen["weights"][:3]) and chosen["weights"][3] == 0
    assert sum(chosen["weights"]) == pytest.approx(1.0)
    mixed = combine(probas, chosen["weights"])
    assert np.mean(mixed.argmax(1) == y) == 1.0  # against 2/3 for each alone
    record = ensemble.decide(probas, y, ["a", "b", "c", "noise"])
    assert record["kept"] and record["cross_fitted"]
    assert record["difference"] > record["noise"]
    assert [m["candidate"] for m in record["members"]] == ["a", "b", "c"]
    # the plain validation score was selected on the same examples: its optimism is recorded
    assert record["optimism"] == pytest.approx(
        record["val_accuracy"] - record["cross_fitted_val_accuracy"], abs=1e-4
    )
    # a better model that is not a candidate (fine-tuned, TTA) must be beaten too
    better = ensemble.decide(probas, y, ["a", "b", "c", "noise"], reference=y.copy())
    assert not better["kept"] and better["compared_with"] == "the model kept so far"
    words = ensemble.verdict_words(better)
    assert "100.0% for the model kept so far" in words and words.endswith("; not kept")


def test_copies_of_one_candidate_make_no_ensemble():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    p = _onehot(np.where(rng.random(200) < 0.8, y, 1 - y), 2)
    record = ensemble.decide([p, p.copy()], y, ["one", "same"])
    assert not record["kept"] and len(record["members"]) == 1
    assert "not kept" in ensemble.verdict_words(record)


def test_auto_ensemble_across_backbones_is_a_run_that_reloads_predicts_and_exports(
    tmp_path, monkeypatch
):
    """The ensemble's plumbing, whatever the tiny data decides: the decision is made to keep
    an equal-weight ensemble of every frozen candidate, of the first backbone and of another
    one (``--ensemble-backbones``) read side by side."""
    from headstart.core.advise import train_auto
    from headstart.core.runs import load_run

    real = ensemble.decide

    def keep_all(probas, y, names, reference=None, seed=0):
        record = real(probas, y, names, reference, seed)
        k = len(probas)
        weights = [1 / k] * k
        mixed = combine(probas, weights)
        return {
            **record,
            "weights": weights,
            "members": [{"candidate": n, "weight": round(1 / k, 4)} for n in names],
            "val_accuracy": float(np.mean(mixed.argmax(1) == y)),
            "kept": True,
        }

    monkeypatch.setattr(ensemble, "decide", keep_all)
    from headstart.core.advise import climb

    monkeypatch.setattr(climb, "cannot_rank", lambda *a: None)  # climb whatever validation says
    images, labels = noisy_images(30, seed=4)
    cfg = TrainConfig(
        backbone="test_efficientnet_gn",  # (mean and std 0.5, as test_convnext's)
        weights="none",
        image_size=48,
        epochs=2,
        strategy="auto",
        ensemble_backbones="test_convnext,test_efficientnet",
    )
    out = tmp_path / "auto"
    notes = []
    with speaking(notes.append):
        run = train_auto(cfg, data=from_arrays(images, labels), out=out)
    auto = json.loads((out / "advice.json").read_text())["auto"]
    assert auto["kept"] == "ensemble of the frozen candidates"
    members = auto["ensemble"]["members"]
    assert len(members) >= 2 and run.head_spec.kind == "ensemble"
    names = [m["candidate"] for m in members]
    assert "last features, lesson head" in names and "last features, linear probe" in names
    assert "test_convnext: last features, linear probe" in names
    assert "all backbones' last features, linear probe" in names
    # a backbone that reads other pixels is left out, saying why; the other one is recorded
    backbones = {b["backbone"]: b for b in auto["backbones"]}
    assert backbones["test_efficientnet_gn"]["status"] == "first"
    assert backbones["test_convnext"]["status"] == "tried"
    assert backbones["test_convnext"]["ensemble_weight"] > 0
    assert "expects other pixels" in backbones["test_efficientnet"]["reason"]
    assert any("left out test_efficientnet" in n for n in notes)
    meta = json.loads((out / "model.json").read_text())
    assert meta["head"]["kind"] == "ensemble" and meta["features"]["kind"] == "multi"
    assert meta["backbone"] == "test_efficientnet_gn+test_convnext"
    assert [p["backbone"] for p in meta["stack"]] == ["test_efficientnet_gn", "test_convnext"]
    # the saved ensemble scores what the ladder measured: validation and test
    reloaded = load_run(out)
    assert reloaded.head_spec == run.head_spec
    from headstart.core.evaluate import run_probabilities

    proba, valid, _ = run_probabilities(reloaded, run.data.test)
    y, pred = run.predictions["test"]
    assert np.array_equal(proba[valid].argmax(1), pred)
    assert run.metrics["test_accuracy"] == pytest.approx(float(np.mean(y == pred)))
    # the stack's own forward pass (what predict and the export run) gives the same answers
    direct = reloaded.predict_proba(list(run.data.test.array[run.data.test.index]))
    assert np.array_equal(direct[valid].argmax(1), pred)
    # a fresh process predicts as this one, saying the cost of two backbones
    np.save(tmp_path / "few.npy", images[:4])
    r = run_cli("predict", out, tmp_path / "few.npy", "--out", tmp_path / "p.csv")
    got = [line.split(",")[1] for line in (tmp_path / "p.csv").read_text().splitlines()[1:]]
    expected = reloaded.predict_proba(list(images[:4])).argmax(1)
    assert got == [reloaded.class_names[i] for i in expected], r.stdout
    assert "on 2 backbones" in " ".join((r.stdout + r.stderr).split())
    pytest.importorskip("onnxruntime")
    run_cli("export", out, "--out", tmp_path / "model.onnx")  # (its parity check passes)
    # the report names the members, their weights and what each backbone added, and keeps
    # them when rewritten
    html = (out / "report.html").read_text()
    assert "ensemble: " in html and members[0]["candidate"] in html
    run_cli("report", out)
    html = (out / "report.html").read_text()
    assert "Strategy auto: the candidates tried" in html and "Ensemble selection" in html
    assert "What each backbone added" in html and "expects other pixels" in html
    assert "the kept ensemble reads it" in html
    assert auto["budget"]["backbones_seconds"] > 0  # loading and checking them is counted
    assert "loading other backbones" in html
    r = run_cli("summary", "--run", out)
    assert f"an ensemble of {len(members)} heads" in r.stdout


def test_backbones_side_by_side_train_from_each_ones_cache(image_folder, tmp_path):
    """``--backbone A+B``: each backbone's features cached as that backbone's (a later run of
    one of them reads them), concatenated for the head; frozen only; one input for both."""
    from headstart.api import train
    from headstart.errors import ConfigError

    out = tmp_path / "run"
    tiny = ["--weights", "none", "--image-size", "48", "--head", "linear"]
    run_cli("train", image_folder, "--backbone", "test_efficientnet_gn+test_convnext", *tiny,
            "--out", out)  # fmt: skip
    meta = json.loads((out / "model.json").read_text())
    widths = [p["num_features"] for p in meta["stack"]]
    assert meta["num_features"] == sum(widths) and len(widths) == 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["feature_cache"]["hits"][0] == "computed"
    one = TrainConfig(
        data=str(image_folder), backbone="test_convnext", weights="none", image_size=48
    )
    alone = train(one, save=False, progress=False)
    assert set(alone.metrics["feature_cache"]["hits"]) <= {"memory", "disk"}  # the stack's pass
    r = run_cli("predict", out, image_folder / "circle", "--out", tmp_path / "p.csv")
    assert (tmp_path / "p.csv").read_text().count("\n") == 1 + len(
        list((image_folder / "circle").glob("*.png"))
    ), r.stdout
    with pytest.raises(ConfigError, match="side by side are frozen"):
        TrainConfig(
            backbone="test_efficientnet_gn+test_convnext", strategy="fine-tune"
        ).for_modality("image")
    r = run_cli("train", image_folder, "--backbone", "test_efficientnet_gn+test_efficientnet",
                *tiny, "--out", tmp_path / "other", check=False)  # fmt: skip
    assert r.returncode != 0 and "test_efficientnet expects other pixels" in r.stderr + r.stdout
    assert "Traceback" not in r.stderr and not (tmp_path / "other").exists()
    r = run_cli("finetune", out, check=False)
    assert r.returncode == 2 and "cannot be fine-tuned" in r.stderr + r.stdout
    for asked, said in [
        ("test_convnext,test_convnext", "named twice"),
        ("test_convnext+test_resnet", "name single backbones"),
        ("nnone", "Did you mean none?"),
    ]:
        r = run_cli("train", image_folder, "--strategy", "auto", "--ensemble-backbones", asked,
                    *tiny, "--out", tmp_path / "auto", check=False)  # fmt: skip
        assert r.returncode == 2 and said in r.stderr + r.stdout, (asked, r.stderr)
    assert TrainConfig(ensemble_backbones=" Auto").ensemble_backbones == "auto"
    # ranking is of single backbones (the winner's advice says how much of it to retrain)
    r = run_cli("advise", image_folder, "--candidates", "test_resnet+test_convnext,test_resnet",
                "--weights", "none", check=False)  # fmt: skip
    assert r.returncode == 2 and "rank single backbones" in r.stderr + r.stdout
