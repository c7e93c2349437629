"""The classic text baseline (TF-IDF + logistic regression): fitted on the run's own split,
scored on the same texts as the model, saved without pickle, shown wherever the majority class
is; and the truncation of long texts, stated."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import fresh_process, predicted_in_a_fresh_process
from headstart.modalities.text.classic import TfidfBaseline
from headstart.modalities.text.textset import TextSet
from test_text import reviews, write_table

WORDS = {
    "positive": ["great relief", "works well", "very good", "helped a lot", "no side effects"],
    "negative": ["made me sick", "awful nausea", "did not work", "terrible headache", "stopped"],
    "neutral": ["some days fine", "not sure yet", "mixed results", "hard to say", "so so"],
}


def texts(n: int, classes=("positive", "negative"), seed: int = 0) -> TextSet:
    rng = np.random.default_rng(seed)
    out, labels = [], []
    for i in range(n):
        c = i % len(classes)
        words = WORDS[classes[c]]
        out.append(f"{words[rng.integers(len(words))]} {words[rng.integers(len(words))]} {i}")
        labels.append(c)
    return TextSet(out, np.array(labels), tuple(classes))


@pytest.mark.parametrize("classes", [("positive", "negative"), tuple(WORDS)])
def test_probabilities_equal_scikit_learn_s_and_survive_saving(tmp_path, classes):
    """One coefficient row per class reproduces scikit-learn's predict_proba (binary: the
    sigmoid as a softmax of -w/2, +w/2); saved as JSON + safetensors, reloaded identically."""
    from scipy.sparse import hstack
    from sklearn.linear_model import LogisticRegression

    train, val, test = texts(60, classes, 0), texts(20, classes, 1), texts(20, classes, 2)
    model = TfidfBaseline.fit(train, val, len(classes))
    assert model.record["C"] in [t["C"] for t in model.record["tried"]]
    best = max(model.record["tried"], key=lambda t: (t["val_accuracy"], -t["val_log_loss"]))
    assert model.record["C"] == best["C"]  # chosen on validation, ties by log loss
    x = hstack([v.transform(train.texts) for v in model.vectorisers]).tocsr()
    ref = LogisticRegression(C=model.record["C"], max_iter=2000).fit(x, train.labels)
    x_test = hstack([v.transform(test.texts) for v in model.vectorisers]).tocsr()
    expected = ref.predict_proba(x_test)
    got = model.predict_proba(test)
    assert got.shape == (len(test), len(classes))
    assert np.allclose(got, expected, atol=1e-4)
    model.save(tmp_path / "classic")
    names = sorted(p.name for p in (tmp_path / "classic").iterdir())
    assert names == ["classic.json", "classic.safetensors"]
    again = TfidfBaseline.load(tmp_path / "classic")
    assert np.allclose(again.predict_proba(test.texts), got, atol=1e-6)


def test_a_handful_of_texts_and_a_class_absent_from_train_still_fit():
    """Four texts share no term twice (min_df falls back to 1); a class missing from train
    gets probability 0."""
    train = TextSet(["good", "bad", "fine", "awful"], np.array([0, 1, 0, 1]), ("a", "b", "c"))
    model = TfidfBaseline.fit(train, train, 3)
    proba = model.predict_proba(["good", "awful"])
    assert proba.shape == (2, 3) and np.allclose(proba.sum(1), 1)
    assert np.all(proba[:, 2] < 1e-6)
    with pytest.raises(ValueError):
        TfidfBaseline.fit(TextSet(["a b", "c d"], np.array([0, 0]), ("a", "b")), train, 2)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """One text run of the tiny random encoder, trained once for the tests below."""
    from headstart.api import train
    from headstart.core.config import TrainConfig

    root = tmp_path_factory.mktemp("baseline")
    rows = reviews(30)
    long_text = " ".join(["the treatment was long and winding"] * 60)  # > 256 tokens
    rows += [[f"{long_text} good {i}", "positive"] for i in range(3)]
    data = write_table(root / "reviews.csv", rows)
    cfg = TrainConfig(data=str(data), backbone="test_bert", epochs=2)
    run = train(cfg, out=root / "run", progress=False, report=False, say=lambda *_: None)
    return run, data


@pytest.fixture(scope="module")
def joint_run(text_run, tmp_path_factory):
    """The same data and network as ``text_run``, made a joint model (--blend joint)."""
    from headstart.api import train
    from headstart.core.config import TrainConfig

    _, data = text_run
    cfg = TrainConfig(data=str(data), backbone="test_bert", epochs=2, blend="joint")
    out = tmp_path_factory.mktemp("joint") / "run"
    return train(cfg, out=out, progress=False, report=False, say=lambda *_: None)


def test_the_baseline_is_fitted_and_scored_on_the_run_s_own_split(text_run):
    """The baseline's train, validation and test texts are the run's; the paired comparison
    counts the same test texts as the headline; metrics.json and the saved model agree."""
    from headstart.core.runs import load_run

    run, _ = text_run
    m = json.loads((run.path / "metrics.json").read_text())
    cb = m["classic_baseline"]
    splits = run.data
    n = m["n_examples"]
    assert cb["fit"]["n_train"] == n["train"] and cb["fit"]["n_val"] == n["val"]
    assert cb["headline"]["split"] == m["headline"]["split"] == "test"
    assert cb["headline"]["n"] == cb["paired"]["n"] == m["headline"]["n"] == n["test"]
    # refitted by hand on the same texts, the same model and the same test score
    again = TfidfBaseline.fit(splits.train, splits.val, len(run.class_names))
    pred = again.predict_proba(splits.test).argmax(1)
    assert cb["test_accuracy"] == pytest.approx(np.mean(pred == splits.test.labels))
    assert cb["val_accuracy"] == pytest.approx(
        np.mean(again.predict_proba(splits.val).argmax(1) == splits.val.labels)
    )
    lo, hi = cb["headline"]["accuracy_ci95"]
    assert lo <= cb["test_accuracy"] <= hi
    p = cb["paired"]
    assert p["accuracy_this"] == pytest.approx(m["test_accuracy"])
    assert p["accuracy_other"] == pytest.approx(cb["test_accuracy"])
    assert p["other"] == "TF-IDF + logistic regression" and p["verdict"]
    loaded = load_run(run.path)
    from headstart.core.classic import load_baseline

    saved = load_baseline(loaded)
    assert np.allclose(
        saved.predict_proba(splits.test), again.predict_proba(splits.test), atol=1e-5
    )


def test_truncation_is_counted_on_the_texts_used(text_run):
    """The run's texts as its encoder read them: by default whole, in windows; cut, with
    what to do, when --long-texts truncate says so."""
    from headstart.modalities.text.encoder import load_text_encoder
    from headstart.modalities.text.lengths import truncation_record

    run, _ = text_run
    cut = run.metrics["truncation"]
    assert cut["max_length"] == 256 and cut["longer"] == 3 and cut["mode"] == "window"
    assert cut["texts"] == sum(run.n_examples.values())
    assert sum(v["longer"] for v in cut["by_split"].values()) == 3
    assert cut["tokens_read_share"] == 1.0 and cut["windows_of_longer"] >= 6
    assert cut["summary"].startswith("3 of 63 texts (5%) are longer than the encoder's 256")
    assert "read whole" in cut["summary"] and cut["advice"] == ""
    # inspect counts the same tokens: the same median, the same share longer than a window
    from headstart.modalities.text.inspect import token_lengths

    texts = [t for s in run.data.items().values() for t in s.texts]
    seen = token_lengths(texts, "test_bert", None)
    assert seen["median"] == cut["median_tokens"] and seen["truncated_share"] == cut["share"]
    sets = {n: s for n, s in run.data.items().items()}
    loaded = load_text_encoder("test_bert", weights="none", long_texts="truncate")
    cut = truncation_record(loaded, sets)
    assert cut["longer"] == 3 and 0 < cut["tokens_read_share"] < 1
    assert "were cut there" in cut["summary"]
    assert "--long-texts window" in cut["advice"] and "--max-length 512" in cut["advice"]


def test_evaluate_report_and_train_show_the_baseline_and_the_truncation(text_run, tmp_path):
    """A user's view: the train summary, evaluate's table and verdict, the report page; the
    same numbers in each place."""
    from conftest import run_cli

    run, data = text_run
    m = run.metrics
    cb = m["classic_baseline"]
    r = run_cli("evaluate", str(run.path))
    assert "TF-IDF + logistic regression" in r.stdout and "(classic baseline)" in r.stdout
    assert "against the classic baseline" in r.stdout
    assert f"{100 * cb['test_accuracy']:.1f}%" in r.stdout
    ev = json.loads((run.path / "evaluation.json").read_text())
    row = next(t for t in ev["table"] if t["kind"] == "classic baseline")
    assert row["accuracy"] == pytest.approx(cb["test_accuracy"]) and row["n"] == cb["headline"]["n"]
    assert ev["classic_baseline"]["paired"]["mcnemar_p"] == pytest.approx(cb["paired"]["mcnemar_p"])
    page = (run.path / "report.html").read_text()
    assert "Against the classic baseline" in page and "<b>Length.</b> 3 of 63 texts" in page
    out = tmp_path / "run2"
    r = run_cli("train", str(data), "--backbone", "test_bert", "--epochs", "2", "--out", str(out))
    assert "classic baseline" in r.stdout and "TF-IDF + logistic regression:" in r.stdout
    assert "3 of 63 texts (5%) are longer" in " ".join(r.stdout.split())


def test_evaluate_reads_other_data_by_the_columns_it_is_given(text_run, tmp_path):
    """Other data whose columns are named otherwise than the run's: evaluate says which it
    lacks, suggests the near names, and reads them with --text-column / --label-column."""
    from conftest import run_cli

    run, _ = text_run
    rows = [["review", "verdict"], *reviews(6)[1:]]
    other = write_table(tmp_path / "other.csv", rows)
    r = run_cli("evaluate", str(run.path), str(other), check=False)
    assert r.returncode == 2 and "--text-column" in r.stderr and "Traceback" not in r.stderr
    r = run_cli(
        "evaluate",
        str(run.path),
        str(other),
        "--text-column",
        "review",
        "--label-column",
        "verdict",
    )
    ev = json.loads((run.path / "evaluation_external.json").read_text())
    assert ev["table"][0]["n"] == len(rows) - 1 and "(classic baseline)" in r.stdout
    r = run_cli("evaluate", str(run.path), "--text-column", "review", check=False)
    assert r.returncode == 2 and "name the columns of DATA" in " ".join(r.stderr.split())


def test_a_saved_baseline_predicts_the_same_in_a_fresh_process(text_run):
    run, _ = text_run
    here = run.classic.predict_proba(["works well", "awful nausea again"])
    there = fresh_process(
        "import json; from headstart import load_run; from headstart.core.classic import "
        f"load_baseline; m = load_baseline(load_run({str(run.path)!r})); "
        "print(json.dumps(m.predict_proba(['works well', 'awful nausea again']).tolist()))"
    )
    assert np.allclose(there, here, atol=1e-6)


def test_image_runs_have_no_classic_baseline_and_no_truncation(tmp_path):
    from headstart.core.modality import modality

    assert modality("image").classic_baseline() is None
    assert modality("image").reading_record(None, {}) is None


def test_the_estimator_gives_the_command_line_s_model_and_shows_progress_when_verbose(
    tmp_path, capsys
):
    """``TextClassifier`` on the texts of a CSV equals ``headstart train`` on the CSV with the
    same settings (the estimator keeps no test split: ``--test-split 0``); ``verbose=True``
    says what it does, as scikit-learn's estimators do."""
    import headstart
    from conftest import run_cli
    from headstart.core.runs import load_run

    rows = reviews(15)
    data = write_table(tmp_path / "r.csv", rows)
    args = ["--backbone", "test_bert", "--epochs", "3", "--test-split", "0"]
    run_cli("train", str(data), *args, "--out", str(tmp_path / "cli"))
    X, y = [r[0] for r in rows[1:]], [r[1] for r in rows[1:]]
    capsys.readouterr()
    est = headstart.TextClassifier(backbone="test_bert", epochs=3, verbose=True).fit(X, y)
    said = capsys.readouterr()
    assert "features train: 24 texts" in said.err and "training: 3 epochs" in said.err
    assert "(classic baseline)" in said.out and "on 6 examples" in said.out
    probe = ["works well", "awful nausea", "a text never seen"]
    assert np.allclose(est.predict_proba(probe), load_run(tmp_path / "cli").predict_proba(probe))
    quiet = headstart.TextClassifier(backbone="test_bert", epochs=3).fit(X, y)
    assert capsys.readouterr().out == "" and quiet.run_.metrics["classic_baseline"]


def test_the_blend_weight_is_chosen_on_validation():
    """The weight with the best validation accuracy wins; among equals, the lower log loss."""
    from headstart.core.classic import BLEND_WEIGHTS, blended, choose_weight

    y = np.array([0, 1, 0, 1])
    model = np.array([[0.6, 0.4], [0.6, 0.4], [0.6, 0.4], [0.4, 0.6]])  # 3 of 4 right
    classic = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.5, 0.5]])  # 3 of 4 right
    weight, tried = choose_weight(model, classic, y)
    assert [t["weight"] for t in tried] == list(BLEND_WEIGHTS)
    accuracy = {t["weight"]: t["val_accuracy"] for t in tried}
    assert accuracy[weight] == max(accuracy.values()) == 1.0  # the blend gets all 4
    best = [t for t in tried if t["val_accuracy"] == 1.0]
    assert weight == min(best, key=lambda t: t["val_log_loss"])["weight"]
    assert np.allclose(blended(model, classic, 0.0), model)
    assert np.allclose(blended(model, classic, 0.3), 0.7 * model + 0.3 * classic)


def test_a_mix_is_the_model_s_and_the_baseline_s_probabilities_averaged(text_run):
    """--blend mix: the weight with the best validation accuracy; the run's probabilities and
    metrics are the mix's; --blend none, the same network alone."""
    from headstart.api import train
    from headstart.core.classic import blended
    from headstart.core.config import TrainConfig

    _, data = text_run

    def trained(blend):
        cfg = TrainConfig(data=str(data), backbone="test_bert", epochs=2, blend=blend)
        return train(cfg, save=False, progress=False, say=lambda *_: None)

    mix, plain = trained("mix"), trained("none")
    b = mix.metrics["blend"]
    assert b["kind"] == "mix" and "joint" not in b and not mix.classic_joint
    assert b["weight"] == mix.classic_weight and len(b["tried"]) == 11
    assert max(t["val_accuracy"] for t in b["tried"]) == pytest.approx(mix.metrics["val_accuracy"])
    texts = mix.data.test.texts
    alone = plain.predict_proba(texts)  # the same network (same seed), alone
    want = blended(alone, mix.classic.predict_proba(texts), mix.classic_weight)
    assert np.allclose(mix.predict_proba(texts), want, atol=1e-6)
    assert mix.metrics["test_accuracy"] == pytest.approx(
        np.mean(want.argmax(1) == mix.data.test.labels)
    )
    assert plain.classic_weight == 0 and plain.metrics["blend"]["weight"] == 0
    assert not plain.classic_joint and plain.metrics["blend"]["chosen_on"] == "--blend none"


def test_auto_keeps_the_better_of_the_mix_and_the_joint_model_on_validation(text_run):
    run, _ = text_run
    b = run.metrics["blend"]
    mix = next(t for t in b["tried"] if t["weight"] == b["joint"]["mix_weight"])
    assert mix["val_accuracy"] == b["joint"]["mix_val_accuracy"]
    joint = (b["joint"]["val_accuracy"], -b["joint"]["val_log_loss"])
    better = joint > (mix["val_accuracy"], -mix["val_log_loss"])
    assert run.classic_joint == better == (b["kind"] == "joint")
    tie = better and round(b["joint"]["val_accuracy"], 4) == mix["val_accuracy"]
    assert b.get("log_loss_decided", False) == tie  # what the summary and the report say
    assert run.metrics["val_accuracy"] == pytest.approx(
        b["joint"]["val_accuracy"] if better else mix["val_accuracy"]
    )


def _features(run, texts: TextSet) -> np.ndarray:
    """The run's encoder's pooled features of ``texts`` (what its head reads)."""
    from headstart.core.extractors import extractor_for
    from headstart.core.model import loaded_from_run

    return extractor_for(loaded_from_run(run)).extract(texts).features


def test_the_joint_model_is_one_logistic_regression_on_both_models_features(joint_run):
    """--blend joint: scikit-learn's logistic regression on [TF-IDF, alpha * features] with
    the chosen alpha and C, refitted by hand on the run's train texts, predicts the run's
    probabilities; its two parts are the run's head and the baseline's joint coefficients;
    alpha and C are the grid's best on validation."""
    from headstart.core.classic import JOINT_ALPHAS, JOINT_CS

    run = joint_run
    j = run.metrics["blend"]["joint"]
    assert run.classic_joint and run.metrics["blend"]["kind"] == "joint"
    assert len(j["tried"]) == len(JOINT_ALPHAS) * len(JOINT_CS)
    key = {(t["alpha"], t["C"]): (t["val_accuracy"], -t["val_log_loss"]) for t in j["tried"]}
    assert key[j["alpha"], j["C"]] == max(key.values())  # (the record's scores are rounded)
    assert run.head_spec.kind == "linear" and not run.head_spec.standardize
    train, test = run.data.train, run.data.test
    tfidf = run.classic
    want = _hand_joint(run, test)
    assert np.allclose(run.predict_proba(test.texts), want, atol=1e-4)
    assert run.metrics["test_accuracy"] == pytest.approx(np.mean(want.argmax(1) == test.labels))
    # the baseline itself is unchanged: its own coefficients, its own record
    again = TfidfBaseline.fit(train, run.data.val, len(run.class_names))
    assert np.allclose(tfidf.predict_proba(test), again.predict_proba(test), atol=1e-6)


def _hand_joint(run, texts: TextSet) -> np.ndarray:
    """scikit-learn's logistic regression on [TF-IDF, alpha * the run's encoder features]
    with the run's chosen alpha and C, fitted by hand on its train texts: its probabilities
    of ``texts``, at the run's temperature."""
    from scipy.sparse import csr_matrix, hstack
    from sklearn.linear_model import LogisticRegression

    from headstart.core.classic import load_baseline

    j, tfidf = run.metrics["blend"]["joint"], load_baseline(run)

    def both(t):
        return hstack([tfidf.features(t), csr_matrix(j["alpha"] * _features(run, t))])

    ref = LogisticRegression(C=j["C"], max_iter=2000).fit(
        both(run.data.train), run.data.train.labels
    )
    z = np.log(ref.predict_proba(both(texts))) / j["temperature"]  # calibrated on validation
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_a_joint_run_keeps_its_trained_head_and_finetune_continues_from_it(joint_run, tmp_path):
    """A joint run predicts with the joint model's linear layer, and keeps the head it trained
    (``trained_head.safetensors``, reloaded); the fine-tuning continuation starts from that
    trained head (LP-FT from the probe it trained, not from a part fitted beside TF-IDF). The
    continued encoder's features (the head's inputs, caught in one pass) make its own joint
    model: the hand-fitted regression on them predicts it, in a fresh process too."""
    import torch

    from conftest import run_cli
    from headstart.core.runs import load_run

    saved = load_run(joint_run.path)
    assert saved.trained_head_spec.kind == joint_run.config.head == "lesson"
    pairs = zip(
        saved.trained_head.state_dict().values(), joint_run.trained_head.state_dict().values()
    )
    assert all(torch.equal(a, b) for a, b in pairs)
    out = tmp_path / "ft"
    run_cli("finetune", str(joint_run.path), "--epochs", "1", "--out", str(out))
    child = load_run(out)
    assert child.trained_head_spec == saved.trained_head_spec  # continued, then replaced
    assert child.classic_joint and child.metrics["blend"]["kind"] == "joint"
    assert child.weights["kind"] == "trained"  # its encoder's top layer trained
    child.data = joint_run.data  # the same split (finetune reads the parent's)
    test = joint_run.data.test
    assert np.allclose(child.predict_proba(test.texts), _hand_joint(child, test), atol=1e-4)
    texts = ["works well", "awful nausea"]
    assert np.allclose(
        predicted_in_a_fresh_process(out, texts), child.predict_proba(texts), atol=1e-6
    )
    (joint_run.path / "trained_head.safetensors").rename(tmp_path / "moved")
    try:
        bad = run_cli("predict", str(joint_run.path), str(tmp_path / "moved"), check=False)
        assert bad.returncode == 2 and "trained_head.safetensors" in bad.stderr
    finally:
        (tmp_path / "moved").rename(joint_run.path / "trained_head.safetensors")


def _as_blend(folder, kind: str) -> None:
    """Make the run in ``folder`` a mix at weight 0.4 or leave it the joint model it is."""
    if kind == "mix":
        meta = json.loads((folder / "model.json").read_text())
        meta["classic_weight"], meta["classic_joint"] = 0.4, False
        (folder / "model.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("kind", ["mix", "joint"])
def test_a_blended_run_reloads_evaluates_exports_and_serves_the_same(joint_run, tmp_path, kind):
    """A mix at weight 0.4 (both parts count) and a joint model: reloaded in a fresh process,
    evaluated, exported (the graph takes TF-IDF vectors; parity checked by ONNX Runtime,
    predicted without torch) and served, every path gives the same probabilities."""
    import dataclasses
    import shutil

    from fastapi.testclient import TestClient

    from conftest import run_cli
    from headstart.core.classic import joint_proba
    from headstart.core.runs import load_run
    from headstart.deploy.onnx_model import OnnxModel
    from headstart.deploy.serve import create_app, load_model

    run = joint_run
    folder = tmp_path / "blend"
    shutil.copytree(run.path, folder)
    _as_blend(folder, kind)
    texts = ["works well", "awful nausea and a headache", "a text never seen " * 80]
    want = load_run(folder).predict_proba(texts)
    network = dataclasses.replace(load_run(run.path), classic_joint=False).predict_proba(texts)
    if kind == "mix":
        expected = 0.6 * network + 0.4 * run.classic.predict_proba(texts)
        said = "+ classic baseline (weight 0.4)"
    else:
        expected = joint_proba(network, run.classic.joint_logits(texts))
        said = "+ classic baseline (one joint logistic regression)"
    assert np.allclose(want, expected, atol=1e-5)
    assert np.allclose(predicted_in_a_fresh_process(folder, texts), want, atol=1e-6)
    r = run_cli("evaluate", str(folder))
    assert said in " ".join(r.stdout.split())
    r = run_cli("export", str(folder))
    assert "input_ids, attention_mask, windows, tfidf -> probabilities" in " ".join(
        r.stdout.split()
    )
    onnx = OnnxModel(folder / "onnx" / "model.onnx").predict_proba(texts)
    assert np.abs(onnx - want).max() < 1e-4
    for engine in ("torch", "onnx"):
        with TestClient(create_app(*load_model(folder, engine))) as client:
            got = client.post("/predict", json={"texts": texts}).json()["predictions"]
        served = np.array([[p["probabilities"][c] for c in run.class_names] for p in got])
        assert np.abs(served - want).max() < 1e-4, engine
    shutil.rmtree(folder / "classic")
    (tmp_path / "a.txt").write_text("works well")
    bad = run_cli("predict", str(folder), str(tmp_path / "a.txt"), check=False)
    assert bad.returncode == 2 and "classic/ is missing" in bad.stderr


def test_setfit_pairs_are_drawn_as_setfit_draws_them():
    from headstart.modalities.text.contrastive import draw_pairs

    labels = np.array([0, 0, 0, 1, 1, 2])
    pairs = draw_pairs(labels, iterations=3, seed=0)
    same = labels[pairs[:, 0]] == labels[pairs[:, 1]]
    assert np.array_equal(same, pairs[:, 2] == 1)  # target 1 exactly for a pair of one class
    assert not np.any(pairs[:, 0] == pairs[:, 1])
    # per round: each text once with its class (class 2 has no other text) and once without
    assert len(pairs) == 3 * (5 + 6)
    assert np.array_equal(draw_pairs(labels, 3, seed=0), pairs)


def test_a_setfit_run_tunes_the_encoder_and_predicts_alike_after_reloading(tmp_path, image_folder):
    """--setfit changes the encoder's weights before the head trains: the features are keyed
    by the new weights (never the pretrained ones' cache), the run records the stage, and it
    reloads in a fresh process with the same predictions."""
    from conftest import run_cli
    from headstart.core.runs import load_run

    data = write_table(tmp_path / "r.csv", reviews(12))
    args = ["--backbone", "test_bert", "--epochs", "2", "--blend", "none"]
    run_cli("train", str(data), *args, "--out", str(tmp_path / "plain"))
    r = run_cli("train", str(data), *args, "--setfit", "--out", str(tmp_path / "sf"))
    assert "SetFit's contrastive stage" in r.stdout + r.stderr
    plain, tuned = load_run(tmp_path / "plain"), load_run(tmp_path / "sf")
    assert tuned.metrics["setfit"]["pairs"] > 0 and tuned.config.setfit
    assert tuned.weights["kind"] == "trained"
    assert tuned.weights["fingerprint"] != plain.weights["fingerprint"]
    keys = set(tuned.metrics["feature_cache"]["keys"])
    assert not keys & set(plain.metrics["feature_cache"]["keys"])
    assert all(h == "computed" for h in tuned.metrics["feature_cache"]["hits"])
    texts = ["works well", "awful nausea"]
    here = tuned.predict_proba(texts)
    assert not np.allclose(here, plain.predict_proba(texts))
    assert np.allclose(predicted_in_a_fresh_process(tmp_path / "sf", texts), here, atol=1e-6)
    page = (tmp_path / "sf" / "report.html").read_text()  # the report says what the run did
    assert "SetFit&#x27;s contrastive stage, then feature-extraction" in page
    assert "then tuned by SetFit&#x27;s contrastive stage" in page
    assert "SetFit&#x27;s contrastive stage (the whole encoder):" in page
    bad = run_cli("train", str(image_folder), "--setfit", check=False)
    assert bad.returncode == 2 and "--setfit is for texts" in bad.stderr


def test_setfit_s_stage_stops_at_the_deadline_after_its_first_step():
    import time

    from headstart.modalities.text.contrastive import contrastive_tune
    from headstart.modalities.text.encoder import load_text_encoder

    loaded = load_text_encoder("test_bert", weights="none")
    done = contrastive_tune(loaded, texts(12), deadline=time.perf_counter() - 1)
    assert done["steps_run"] == 1 < done["steps"]
    assert not any(p.requires_grad for p in loaded.backbone.parameters())  # frozen again


def test_a_joint_model_is_fitted_once_for_the_same_baseline_and_features(joint_run):
    """auto's frozen candidates read the same features: the second asks, the first's fit
    answers (the same coefficients, marked reused)."""
    from headstart.core.classic import fit_joint

    run = joint_run
    sets = {"train": run.data.train, "val": run.data.val}
    feats = {n: _features(run, s) for n, s in sets.items()}
    first = fit_joint(run.classic, sets, feats, len(run.class_names))
    again = fit_joint(run.classic, sets, feats, len(run.class_names))
    assert again[2]["reused"] and "reused" not in first[2]
    assert again[0] is first[0] and np.array_equal(again[1], first[1])
    feats["val"] = feats["val"] + 1.0  # other features: fitted anew
    assert "reused" not in fit_joint(run.classic, sets, feats, len(run.class_names))[2]


def test_the_temperature_calibrates_without_changing_a_prediction():
    """Overconfident logits get a temperature above 1 that lowers the log loss and keeps
    every argmax; calibrated ones keep about 1; no labels, exactly 1."""
    from headstart.core.classic import fit_temperature

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    logits = rng.normal(size=(400, 3))
    logits[np.arange(400), y] += 1.0  # informative, and calibrated as drawn
    t = fit_temperature(logits, y)
    assert 0.7 < t < 1.4

    def loss(z):
        z = z - z.max(axis=1, keepdims=True)
        return np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y])

    hot = 20 * logits  # the same predictions, far too sure
    t = fit_temperature(hot, y)
    assert t > 5 and loss(hot / t) < loss(hot) / 3
    assert np.array_equal((hot / t).argmax(1), hot.argmax(1))
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0, np.int64)) == 1.0
