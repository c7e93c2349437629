"""Multi-label classification end to end: several labels per image or text, from a table's
label cells (``cat;dog``) or 0/1 label columns, through splitting, training (the lesson's head
with binary cross-entropy, the one-vs-rest probe), thresholds, evaluation with intervals
beside the label-frequency and TF-IDF baselines, the report, prediction in a fresh process,
the ONNX export and the server."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import fresh_process, run_cli
from headstart.core.labels import LabelFormat, encode_labels
from headstart.errors import ConfigError, DataError

COLOURS = ("red", "green", "blue")


def colour_squares(n: int, seed: int = 0, size: int = 32):
    """(images, 0/1 labels): each colour's label is on where a bright square of that colour
    is drawn (about 40% of images each; some images have none, some all three)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, 3)) < 0.4).astype(np.int64)
    images = np.full((n, size, size, 3), 40, np.uint8)
    for i in range(n):
        for c in np.flatnonzero(labels[i]):
            y, x = rng.integers(0, size - 12, 2)
            images[i, y : y + 12, x : x + 12, c] = 230
    noise = rng.normal(0, 8, images.shape)
    return np.clip(images + noise, 0, 255).astype(np.uint8), labels


def write_table(folder, n: int = 150, columns: bool = False):
    """A CSV of image paths and label sets (``red;blue``, an empty cell for none), or with
    ``columns`` one 0/1 column per colour."""
    images, labels = colour_squares(n)
    (folder / "img").mkdir(parents=True)
    with open(folder / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", *COLOURS] if columns else ["filename", "label"])
        for i, (img, row) in enumerate(zip(images, labels)):
            Image.fromarray(img).save(folder / "img" / f"{i:03d}.png")
            cells = [*map(str, row)] if columns else [";".join(np.array(COLOURS)[row == 1])]
            w.writerow([f"img/{i:03d}.png", *cells])
    return folder / "labels.csv", labels


TINY = ["--backbone", "test_resnet", "--weights", "none", "--image-size", "32", "--epochs", "8"]


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """One multi-label image run trained from the command line, and its data."""
    folder = tmp_path_factory.mktemp("squares")
    table, _ = write_table(folder)
    out = folder / "run"
    r = run_cli("train", table, *TINY, "--lr", "0.01", "--out", out)
    return out, table, r.stdout


# ------------------------------------------------------------------------------ labels


def test_label_cells_are_read_as_label_sets_when_a_cell_holds_the_separator():
    encoded, names = LabelFormat().encode({"t": ["cat;dog", "dog", "", " cat ; "]})
    assert names == ("cat", "dog")
    assert encoded["t"].tolist() == [[1, 1], [0, 1], [0, 0], [1, 0]]
    single, names = LabelFormat().encode({"t": ["cat", "dog", "cat"]})
    assert single["t"].tolist() == [0, 1, 0] and names == ("cat", "dog")
    forced, _ = LabelFormat(task="multi-label").encode({"t": ["cat", "dog"]})
    assert forced["t"].ndim == 2
    kept, names = LabelFormat(task="single-label").encode({"t": ["a;b", "c"]})
    assert names == ("a;b", "c") and kept["t"].ndim == 1
    with pytest.raises(ConfigError, match="--task must be one of"):
        LabelFormat(task="multilabel")
    with pytest.raises(ConfigError, match="multi-label task"):
        LabelFormat(task="single-label", columns=("a", "b"))


def test_an_empty_label_cell_is_no_label_only_in_multi_label_data(tmp_path):
    from headstart import load_source

    table, _ = write_table(tmp_path)
    source = load_source(table)
    assert source.train.labels.shape == (150, 3)
    assert (source.train.labels.sum(axis=1) == 0).any()  # images with no colour: kept
    lines = table.read_text().splitlines()
    single = tmp_path / "single.csv"
    rows = ["filename,label", "img/000.png,red", "img/001.png,", "img/002.png,blue"]
    single.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"single.csv, line 3: empty 'label' cell.*--task"):
        load_source(single)
    single.write_text("\n".join(rows[:3]) + "\n")  # one class: no multi-label to suggest
    with pytest.raises(DataError, match=r"line 3: empty 'label' cell. Give that row its label"):
        load_source(single)
    assert lines[0] == "filename,label"


def test_label_columns_give_one_label_per_column(tmp_path):
    from headstart import load_source

    table, labels = write_table(tmp_path, columns=True)
    fmt = LabelFormat(columns=COLOURS)
    source = load_source(table, labels=fmt)
    assert source.class_names == COLOURS
    assert np.array_equal(source.train.labels, labels)
    bad = tmp_path / "bad.csv"
    bad.write_text("filename,red,green,blue\nimg/000.png,1,yes,0\n")
    with pytest.raises(DataError, match=r"bad.csv, line 2: 'green' is 'yes'"):
        load_source(bad, labels=fmt)
    with pytest.raises(DataError, match=r"'purple' not found.*--label-columns"):
        load_source(table, labels=LabelFormat(columns=("red", "purple")))


def test_python_labels_as_a_matrix_or_lists():
    matrix, names = encode_labels({"y": np.array([[1, 0, 1], [0, 1, 0]])})
    assert names == ("0", "1", "2") and matrix["y"].tolist() == [[1, 0, 1], [0, 1, 0]]
    lists, names = encode_labels({"y": [["b", "a"], [], ["c"]]})
    assert names == ("a", "b", "c") and lists["y"].tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 1]]
    with pytest.raises(DataError, match="at least 2 labels"):
        encode_labels({"y": [["a"], ["a"]]})


def test_splits_keep_each_label_on_both_sides_by_iterative_stratification():
    from headstart.core.splits import make_splits
    from headstart.modalities.image.data.sources import from_arrays

    images, labels = colour_squares(200)
    splits = make_splits(from_arrays(images, labels), seed=3)
    again = make_splits(from_arrays(images, labels), seed=3)
    assert splits.record() == again.record()
    shares = {n: s.labels.mean(axis=0) for n, s in splits.items().items()}
    assert set(shares) == {"train", "val", "test"}  # 200 images: a test split is carved
    for share in shares.values():  # each label's share within 5 points everywhere
        assert np.abs(share - labels.mean(axis=0)).max() < 0.05
    assert "several labels" in splits.method["test_rule"]


# ------------------------------------------------------------------------------ scores


def test_bootstrap_average_precision_is_scikit_learns():
    from sklearn.metrics import average_precision_score

    from headstart.core.multilabel import weighted_average_precision

    rng = np.random.default_rng(0)
    y = (rng.random(80) < 0.3).astype(int)
    p = np.round(rng.random(80) * 0.6 + 0.3 * y, 2)  # ties on purpose
    w = rng.integers(0, 3, (4, 80))
    got = weighted_average_precision(y, p, w)
    want = [average_precision_score(y, p, sample_weight=wi) for wi in w]
    assert np.allclose(got, want)


def test_validation_chooses_one_threshold_or_one_per_label_on_held_out_folds():
    from headstart.core.multilabel import MIN_VAL_POSITIVES, choose_thresholds

    rng = np.random.default_rng(1)
    y = (rng.random((400, 3)) < 0.3).astype(int)
    y[:, 2] = 0
    y[:3, 2] = 1  # too rare for a threshold of its own
    alike = np.clip(y * 0.5 + rng.random((400, 3)) * 0.5, 0, 1)
    t, rule = choose_thresholds(y, alike)  # labels alike: one threshold
    assert rule["chosen"] == "global" and len(set(t)) == 1
    assert set(rule["cross_validated_micro_f1"]) == {"global", "per-label"}
    apart = alike.copy()
    apart[:, 0] = alike[:, 0] * 0.3  # label 0 lives at low probabilities, label 1 at high ones
    apart[:, 1] = 0.7 + alike[:, 1] * 0.3
    t, rule = choose_thresholds(y, apart)
    assert rule["chosen"] == "per-label" and t[0] < 0.3 < 0.7 < t[1]
    assert rule["own"] == 2 and t[2] == rule["global"]  # the rare label shares
    assert f"fewer than {MIN_VAL_POSITIVES}" in rule["rule"]


def test_a_perfect_score_has_a_wilson_interval_not_a_degenerate_one():
    from headstart.core.multilabel import multilabel_metrics

    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]] * 5)
    m = multilabel_metrics(y, y * 0.9 + 0.05, np.full(2, 0.5), ["a", "b"], n_boot=200)
    assert m["micro_f1"] == 1.0 and m["subset_accuracy"] == 1.0
    assert m["micro_f1_ci95"][0] < 0.95 and m["micro_f1_ci95"][1] == pytest.approx(1.0)
    assert m["subset_accuracy_ci95"][0] < 0.9


# ------------------------------------------------------------------------------ end to end


def test_inspect_shows_label_frequencies_and_co_occurrence(tmp_path):
    table, _ = write_table(tmp_path)
    out = run_cli("inspect", table).stdout
    assert "labels per image" in out and "seen together" in out
    assert "label-frequency baseline" in out and "majority-class" not in out


def test_train_reports_micro_f1_beside_the_label_frequency_baseline(image_run):
    out, _, stdout = image_run
    assert "test micro-F1" in stdout and "label-frequency baseline" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "multi-label"
    assert set(metrics["thresholds"]["values"]) == set(COLOURS)
    head = metrics["headline"]
    test = metrics["multi_label"]["test"]
    assert head["metric"] == "micro_f1" and head["micro_f1"] == test["model"]["micro_f1"]
    # the colours are easy: the model beats always predicting the common labels
    assert test["model"]["micro_f1"] > test["label_frequency"]["micro_f1"]
    page = (out / "report.html").read_text()
    assert "Precision-recall curves" in page and "wrong label sets" in page
    assert (out / "plots" / "pr.png").is_file()
    assert f"{100 * test['model']['micro_f1']:.1f}%" in page  # the same number everywhere


def test_evaluate_prints_every_score_and_the_per_label_table(image_run):
    out, _, _ = image_run
    stdout = run_cli("evaluate", out, columns=160).stdout
    assert "micro-F1" in stdout and "Hamming" in stdout and "per label" in stdout
    ev = json.loads((out / "evaluation.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert ev["micro_f1"] == pytest.approx(metrics["headline"]["micro_f1"])
    assert [r["kind"] for r in ev["table"]] == ["this run", "baseline"]


def test_a_saved_run_predicts_label_sets_alike_in_a_fresh_process(image_run, tmp_path):
    from headstart import load_run

    out, table, _ = image_run
    paths = [str(table.parent / "img" / f"{i:03d}.png") for i in range(6)]
    run = load_run(out)
    here = run.predict_proba([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    there = fresh_process(
        "import json, numpy as np; from PIL import Image; from headstart import load_run; "
        f"r = load_run({str(out)!r}); "
        f"x = [np.asarray(Image.open(p).convert('RGB')) for p in {paths!r}]; "
        "print(json.dumps(r.predict_proba(x).tolist()))"
    )
    assert np.allclose(here, there, atol=1e-5)
    csv_out = tmp_path / "p.csv"
    run_cli("predict", out, *paths, "--out", csv_out)
    rows = list(csv.DictReader(csv_out.read_text().splitlines()))
    for row, p in zip(rows, here):
        on = [c for c, v, t in zip(run.class_names, p, run.thresholds) if v >= t]
        assert row["predicted"] == ";".join(on)
    shown = run_cli("predict", out, *paths[:2]).stdout
    assert "p: blue" in shown


def test_export_serve_and_onnx_predict_label_sets(image_run, tmp_path):
    from fastapi.testclient import TestClient

    from headstart.deploy.serve import create_app, load_model

    out, table, _ = image_run
    onnx_file = tmp_path / "m.onnx"
    run_cli("export", out, "--out", onnx_file)
    meta = json.loads(onnx_file.with_suffix(".json").read_text())
    assert meta["task"] == "multi-label" and set(meta["thresholds"]) == set(COLOURS)
    image = str(table.parent / "img" / "000.png")
    torch_csv, onnx_csv = tmp_path / "t.csv", tmp_path / "o.csv"
    run_cli("predict", out, image, "--out", torch_csv)
    run_cli("predict", onnx_file, image, "--engine", "onnx", "--out", onnx_csv)
    mine, theirs = (next(csv.DictReader(f.read_text().splitlines())) for f in (torch_csv, onnx_csv))
    assert mine["predicted"] == theirs["predicted"]
    app = create_app(*load_model(out, "torch"))
    with TestClient(app) as client:
        body = Path(image).read_bytes()
        r = client.post("/predict", files=[("files", ("a.png", body, "image/png"))])
        assert r.status_code == 200, r.text
        answer = r.json()["predictions"][0]
        assert answer["labels"] == [c for c in mine["predicted"].split(";") if c]
        assert "label" not in answer and set(answer["probabilities"]) == set(COLOURS)
        assert client.get("/metadata").json()["task"] == "multi-label"


def test_the_estimator_takes_a_label_matrix_and_predicts_one():
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_score

    from headstart import ImageClassifier

    images, labels = colour_squares(90, seed=2)
    clf = ImageClassifier(
        backbone="test_resnet", weights="none", image_size=32, head="linear", val_split=0.3
    )
    fitted = clone(clf).fit(images, labels)
    predicted = fitted.predict(images[:10])
    assert predicted.shape == (10, 3) and set(np.unique(predicted)) <= {0, 1}
    assert list(fitted.classes_) == [0, 1, 2]
    scores = cross_val_score(clf, images, labels, cv=2)  # subset accuracy, scikit-learn's
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))


def test_class_weights_are_refused_for_label_sets(tmp_path):
    table, _ = write_table(tmp_path, n=40)
    r = run_cli("train", table, *TINY, "--class-weights", "auto", check=False)
    assert r.returncode == 2 and "each label has its own threshold" in r.stderr


def test_texts_with_label_sets_beside_tfidf_one_vs_rest(tmp_path):
    rng = np.random.default_rng(0)
    words = {"sport": "goal match team", "politics": "vote senate law", "tech": "chip code robot"}
    with open(tmp_path / "texts.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for _ in range(120):
            on = [k for k in words if rng.random() < 0.4]
            text = " ".join(["today the news", *(words[k] for k in on)])
            w.writerow([text, ";".join(on)])
    out = tmp_path / "run"
    stdout = run_cli(
        "train", tmp_path / "texts.csv", "--backbone", "test_bert", "--epochs", "2", "--out", out
    ).stdout
    assert "TF-IDF + logistic regression (one per label)" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["classic_baseline"]["fit"]["task"] == "multi-label"
    ev = run_cli("evaluate", out, columns=160).stdout
    assert "TF-IDF" in ev and "against the classic baseline" in ev


def test_resume_of_a_multi_label_run_matches_an_uninterrupted_one(tmp_path):
    import torch

    from headstart.api import train
    from headstart.core.config import TrainConfig
    from headstart.modalities.image.data.sources import from_arrays

    images, labels = colour_squares(80, seed=4)
    source = from_arrays(images, labels)
    cfg = TrainConfig(
        backbone="test_resnet", weights="none", image_size=32, epochs=3, patience=0, test_split=0
    )
    whole = train(cfg, data=source, out=tmp_path / "whole", progress=False, report=False)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, data=source, out=tmp_path / "cut", progress=False, stop_after=1)
    resumed = train(
        cfg, data=source, out=tmp_path / "cut", progress=False, resume=True, report=False
    )
    assert resumed.metrics["task"] == "multi-label"
    assert resumed.metrics["thresholds"] == whole.metrics["thresholds"]
    for k, v in whole.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, rtol=0, atol=1e-6)


def test_auto_climbs_on_validation_micro_f1_and_the_probe_reads_label_columns(tmp_path):
    table, _ = write_table(tmp_path, n=100, columns=True)
    out = tmp_path / "auto"
    small = ["--backbone", "test_resnet", "--weights", "none", "--image-size", "32"]
    r = run_cli(
        "train", table, *small, "--label-columns", "red,green,blue",
        "--strategy", "auto", "--budget", "0.5", "--out", out,
    )  # fmt: skip
    said = r.stdout + r.stderr  # (notes go to stderr)
    assert "validation micro-F1" in said and "auto: kept" in said
    advice = json.loads((out / "advice.json").read_text())
    assert all("val_accuracy" not in r for r in advice["auto"]["candidates"])
    assert "val. micro-F1" in (out / "report.html").read_text()
    probe = tmp_path / "probe"
    run_cli(
        "train", table, *small, "--label-columns", "red,green,blue", "--head", "linear",
        "--out", probe,
    )  # fmt: skip
    metrics = json.loads((probe / "metrics.json").read_text())
    assert "one logistic regression per label" in metrics["probe"]["chosen_on"]
    assert (probe / "plots" / "history.png").is_file()  # its C search, by mean AP


def test_compare_and_advise_refuse_label_sets_with_what_to_do(tmp_path):
    table, _ = write_table(tmp_path, n=40)
    for command in ("compare", "advise"):
        r = run_cli(command, table, check=False)
        assert r.returncode == 2 and "several labels per example" in r.stderr
        assert "evaluate RUN --compare" in r.stderr


def test_logme_and_the_knn_score_take_a_label_matrix():
    from headstart.core.advise.scores import knn_accuracy, logme, probe_accuracy

    rng = np.random.default_rng(0)
    labels = (rng.random((60, 3)) < 0.5).astype(int)
    informative = labels + rng.normal(0, 0.1, labels.shape)
    noise = rng.normal(0, 1, labels.shape)
    assert logme(informative, labels) > logme(noise, labels)
    assert knn_accuracy(informative, labels) > 0.8
    assert probe_accuracy(informative, labels) > probe_accuracy(noise, labels)


def test_label_lists_of_any_length_fit_the_estimator():
    from headstart import ImageClassifier

    images, labels = colour_squares(60, seed=5)
    lists = [[c for c, on in zip(COLOURS, row) if on] for row in labels]
    clf = ImageClassifier(backbone="test_resnet", weights="none", image_size=32, head="linear")
    fitted = clf.fit(images, lists)
    assert list(fitted.classes_) == sorted(COLOURS) and fitted.predict(images[:3]).shape == (3, 3)
    assert 0 <= fitted.score(images[:20], lists[:20]) <= 1  # subset accuracy, on the same lists


def test_scores_leave_out_what_they_cannot_count_and_never_collapse():
    from headstart.core.multilabel import multilabel_metrics, paired_micro_f1

    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]] * 6)  # the third label never occurs
    m = multilabel_metrics(y, y * 0.9 + 0.05, np.full(3, 0.5), ["a", "b", "c"], n_boot=100)
    assert m["macro_f1"] == 1.0 and m["per_label"]["c"]["f1"] is None
    assert m["per_label"]["c"]["precision"] is None and m["per_label"]["c"]["recall"] is None
    assert m["per_label"]["c"]["average_precision"] is None  # JSON has no NaN
    assert m["mean_average_precision"] == 1.0 and m["mean_average_precision_ci95"][0] < 0.95
    same = paired_micro_f1(y, y, y, this_name="a", other_name="b", n_boot=50)
    assert same["micro_f1_difference_ci95"] is None and "identical predictions" in same["verdict"]


def test_a_separator_inside_a_label_is_pointed_out(tmp_path):
    table, _ = write_table(tmp_path, n=40)
    rows = table.read_text().splitlines()
    rows[1] = rows[1].split(",")[0] + ",red|blue"
    table.write_text("\n".join(rows) + "\n")
    out = run_cli("inspect", table).stdout
    assert "'red|blue' hold" in out and "--labels-sep" in out


def test_evaluate_refuses_another_task_at_once_and_reads_label_columns(image_run, tmp_path):
    out, table, _ = image_run
    lines = table.read_text().splitlines()
    single = table.parent / "single.csv"  # one colour per image
    single.write_text(
        "\n".join(["filename,label"] + [ln for ln in lines[1:] if ln.split(",")[1] in COLOURS])
    )
    r = run_cli("evaluate", out, single, "--task", "single-label", check=False)
    assert r.returncode == 2 and "drop --task" in r.stderr and "features" not in r.stderr
    r = run_cli("evaluate", out, single)  # a multi-label run reads cells as sets (of one)
    assert "micro-F1" in r.stdout
    # its training images among them are counted, and the others scored on their own
    assert "training images of this run" in r.stdout and "On the other" in r.stdout
    columns, _ = write_table(tmp_path, n=30, columns=True)
    r = run_cli("evaluate", out, columns, "--label-columns", ",".join(COLOURS), columns=160)
    assert "label frequency" in r.stdout
    r = run_cli("evaluate", out, "--compare", out, columns=160)
    assert "identical predictions" in r.stdout


def test_one_hot_labels_are_learnt_as_labels_and_said_to_be_one_hot():
    from headstart.core.splits import make_splits
    from headstart.modalities.image.data.sources import from_arrays

    images, _ = colour_squares(60, seed=6)
    one_hot = np.eye(3, dtype=int)[np.arange(60) % 3]
    splits = make_splits(from_arrays(images, one_hot))
    assert splits.train.labels.ndim == 2
    assert any("written one-hot" in n and "argmax" in n for n in splits.method["notes"])


def test_thresholds_can_be_asked_for_and_are_refused_for_one_class(tmp_path, image_run):
    from headstart.core.multilabel import choose_thresholds

    rng = np.random.default_rng(2)
    y = (rng.random((200, 3)) < 0.3).astype(int)
    p = np.clip(y * 0.5 + rng.random((200, 3)) * 0.5, 0, 1)
    t, rule = choose_thresholds(y, p, "per-label")
    assert rule["chosen"] == "per-label" and not rule["cross_validated_micro_f1"]
    assert "--thresholds per-label" in rule["rule"]
    assert choose_thresholds(y, p, "global")[1]["chosen"] == "global"
    _, table, _ = image_run
    single = tmp_path / "one.csv"
    single.write_text(
        "filename,label\n"
        + "".join(f"{table.parent}/img/{i:03d}.png,{c}\n" for i, c in enumerate(["a", "b"] * 10))
    )
    r = run_cli("train", single, *TINY, "--thresholds", "global", check=False)
    assert r.returncode == 2 and "one class per example" in r.stderr


def test_blend_is_refused_for_label_sets_before_torch_loads(tmp_path):
    with open(tmp_path / "texts.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(40):
            w.writerow([f"text number {i}", "a;b" if i % 3 else "a"])
    r = run_cli("train", tmp_path / "texts.csv", "--blend", "mix", check=False)
    assert r.returncode == 2 and "scored beside the model, not blended" in r.stderr


def test_copies_of_a_multi_label_text_stay_on_one_side_of_every_carved_split(tmp_path):
    """A first-time user's trial: duplicate texts with label sets landed in train and test
    (single-label splits kept them together; iterative stratification did not)."""

    from headstart.core.data import load_data

    rng = np.random.default_rng(0)
    words = ["good", "bad", "fast", "slow", "cheap", "dear"]
    rows = []
    for i in range(200):
        labels = sorted(set(rng.choice(["a", "b", "c"], size=rng.integers(1, 3))))
        rows.append((f"text {i} " + " ".join(rng.choice(words, 5)), ";".join(labels)))
    rows += rows[:40]  # 40 texts twice
    path = tmp_path / "t.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([("text", "label"), *rows])
    splits = load_data(str(path), val_split=0.2, test_split=0.15, seed=0)
    seen: dict[str, set] = {}
    for name, examples in splits.items().items():
        for text in examples.texts:
            seen.setdefault(text, set()).add(name)
    assert all(len(sides) == 1 for sides in seen.values())
    assert any("moved so that copies stay on one side" in n for n in splits.method["notes"])
