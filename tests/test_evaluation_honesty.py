"""Every number the evaluation shows is true: paired comparisons, one unit per quantity,
training images hiding in the evaluation data, and which images were evaluated."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.console import Console
from scipy import stats

import clihost
from conftest import CLASS_NAMES, make_images
from headstart.api import train
from headstart.console import render_evaluation
from headstart.core.config import TrainConfig
from headstart.core.evaluate import evaluate_run
from headstart.core.report import render_html
from headstart.core.runs import load_run
from headstart.core.statistics import classification_metrics, paired_comparison

TINY = {"backbone": "test_resnet", "weights": "none", "image_size": 48, "epochs": 3}


def _text(renderable, width: int = 200) -> str:
    con = Console(width=width, record=True, file=io.StringIO(), highlight=False)
    con.print(renderable)
    return con.export_text()


# --------------------------------------------------------------------------- paired comparison


def test_paired_comparison_counts_discordant_pairs_and_uses_mcnemars_exact_test():
    y = np.zeros(40, dtype=int)
    this = np.zeros(40, dtype=int)  # all right
    other = this.copy()
    other[:3] = 1  # other wrong on 3 images, right where this run is wrong on 1
    this[39] = 1
    p = paired_comparison(y, this, other, this_name="A", other_name="B", noun="image")
    assert p["n"] == 40
    assert (p["this_right_other_wrong"], p["other_right_this_wrong"]) == (3, 1)
    assert p["mcnemar_p"] == pytest.approx(stats.binomtest(3, 4, 0.5).pvalue)  # 0.625
    assert p["accuracy_difference"] == pytest.approx((39 - 37) / 40)
    lo, hi = p["accuracy_difference_ci95"]
    assert lo <= p["accuracy_difference"] <= hi
    assert not p["distinguishable"]
    assert "cannot tell" in p["verdict"] and "40 images" in p["verdict"]


def test_identical_predictions_are_said_plainly_with_a_newcombe_interval():
    """Two models that predict alike on all 17 images: p = 1, and neither "+0.0 to +0.0" (a
    paired bootstrap's collapse) nor certainty, but what 17 images allow."""
    y = np.zeros(17, dtype=int)
    pred = np.zeros(17, dtype=int)
    p = paired_comparison(y, pred, pred.copy(), this_name="A", other_name="B", noun="image")
    assert p["mcnemar_p"] == 1.0 and p["identical_predictions"]
    lo, hi = p["accuracy_difference_ci95"]
    assert (lo, hi) == pytest.approx((-0.1843, 0.1843), abs=1e-4)  # Newcombe, Wilson limits
    assert "made identical predictions on all 17 images" in p["verdict"]
    assert "+0.0 to +0.0" not in p["verdict"] and "-18.4 to +18.4" in p["verdict"]
    # right and wrong on the same images, with different wrong answers: not "identical"
    y = np.array([0, 1, 2, 0, 1, 2])
    this, other = np.array([0, 1, 1, 0, 2, 2]), np.array([0, 1, 0, 0, 0, 2])
    p = paired_comparison(y, this, other, this_name="A", other_name="B")
    assert not p["identical_predictions"] and "cannot tell" in p["verdict"]
    assert p["accuracy_difference_ci95"][0] < 0 < p["accuracy_difference_ci95"][1]


def test_newcombe_interval_matches_a_published_example():
    """Cavo et al. 2012 (the paired 2x2 table 59, 6 / 16, 80): -0.0621, 95% CI -0.1186 to
    -0.0046 by Newcombe's square-and-add method (Fagerland, Lydersen and Laake 2017, ch. 8)."""
    from headstart.core.statistics import paired_difference_interval

    lo, hi = paired_difference_interval(59, 6, 16, 80)
    assert (round(lo, 4), round(hi, 4)) == (-0.1186, -0.0046)
    lo, hi = paired_difference_interval(17, 0, 0, 0)  # both right on all 17
    assert lo < 0 < hi and hi - lo > 0.3


def test_paired_interval_is_narrow_when_two_models_agree_almost_everywhere():
    # Two models of ~70% accuracy that differ on 12 of 2,000 images, all 12 in A's favour.
    # Their unpaired intervals (about +-2 points each) overlap almost completely; the paired
    # comparison sees the same images and can tell them apart.
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 2000)
    a = np.where(rng.random(2000) < 0.7, y, (y + 1) % 3)
    wrong = np.flatnonzero(a != y)
    b = a.copy()
    right = np.flatnonzero(a == y)[:12]
    b[right] = (y[right] + 1) % 3
    p = paired_comparison(y, a, b, this_name="A", other_name="B")
    lo, hi = p["accuracy_difference_ci95"]
    assert 0 < lo <= hi < 0.012  # paired: as narrow as the 12 discordant images allow
    assert p["mcnemar_p"] == pytest.approx(2 * 0.5**12)
    assert p["distinguishable"]
    assert p["verdict"].startswith("A is better than B by 0.6 percentage points")
    assert len(wrong) > 0


def test_better_compared_run_is_named_first_with_the_interval_turned_around():
    y = np.zeros(100, dtype=int)
    this = np.ones(100, dtype=int)
    this[:50] = 0  # 50% right
    other = np.zeros(100, dtype=int)  # 100% right
    p = paired_comparison(y, this, other, this_name="A", other_name="B")
    assert p["accuracy_difference"] == pytest.approx(-0.5)
    assert p["verdict"].startswith("B is better than A by 50.0 percentage points")


@pytest.fixture(scope="module")
def folder_runs(tmp_path_factory):
    """Two tiny runs on the same class-folder data, and that data."""
    root = tmp_path_factory.mktemp("runs")
    images, labels = make_images(8)
    data = root / "folder"
    for i, (img, lab) in enumerate(zip(images, labels)):
        d = data / CLASS_NAMES[lab]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"img_{i:03d}.png")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HEADSTART_CACHE_DIR", str(root / "cache"))
        a = train(TrainConfig(**TINY, data=str(data)), out=root / "a", progress=False)
        b = train(
            TrainConfig(**{**TINY, "backbone": "test_efficientnet"}, data=str(data)),
            out=root / "b",
            progress=False,
        )
    return a.path, b.path, data


def test_a_compared_run_scored_on_its_own_training_images_is_flagged(folder_runs, tmp_path):
    """Found by a first-time user: a run of another seed (another split) scored 100% on this
    run's validation images, 12 of which it had trained on, without a word."""
    a, b, data = folder_runs
    same = evaluate_run(load_run(a), compare=[load_run(b)])["paired"][0]
    assert same["other_train_overlap"] == 0 and "Caution" not in same["verdict"]
    other_seed = train(TrainConfig(**TINY, data=str(data), seed=1), out=tmp_path / "s1")
    entry = evaluate_run(load_run(a), compare=[other_seed])["paired"][0]
    assert entry["other_train_overlap"] > 0
    assert (
        f"Caution: {entry['other_train_overlap']} of these {entry['n']} images"
        in (entry["verdict"])
    )
    assert "optimistic" in entry["verdict"]


def test_evaluate_compare_gives_a_paired_comparison_everywhere(folder_runs):
    a, b, _ = folder_runs
    run = load_run(a)
    result = evaluate_run(run, compare=[load_run(b)])
    assert [r["kind"] for r in result["table"]] == ["this run", "baseline", "compared run"]
    (paired,) = result["paired"]
    assert paired["n"] == result["table"][2]["n"]
    assert paired["this_right_other_wrong"] + paired["other_right_this_wrong"] <= paired["n"]
    assert 0.0 <= paired["mcnemar_p"] <= 1.0
    assert paired["verdict"]
    json.dumps(result)  # stays JSON-ready
    text = _text(render_evaluation(result))
    assert "paired" in text and paired["verdict"][:40] in " ".join(text.split())
    narrow = _text(render_evaluation(result), 80).splitlines()
    tops = [ln.rstrip() for ln in narrow if ln.startswith("┏")]
    assert len(tops) == 3 and all(ln.endswith("┓") for ln in tops)  # no table cut at 80
    lo, hi = result["accuracy_ci95"]
    assert f"{lo:.1%}-{hi:.1%}" in "\n".join(narrow)  # numbers are never wrapped or cut
    page = render_html(run, result, {})
    metrics = page.split('id="metrics"')[1].split('id="confusion"')[0]
    assert "McNemar" in metrics and paired["verdict"][:40] in metrics
    # a difference of accuracies is in percentage points, as the terminal says, not in %
    assert "accuracy difference (points)" in metrics
    assert f"{100 * paired['accuracy_difference']:+.1f}%" not in metrics


# --------------------------------------------------------------------------- one unit each


def _ev(acc_ci=(0.70, 0.90), f1_ci=(0.095, 0.234)) -> dict:
    row = {
        "name": "run",
        "kind": "this run",
        "n": 30,
        "accuracy": 0.8,
        "accuracy_ci95": acc_ci,
        "balanced_accuracy": 0.75,
        "macro_f1": 0.167,
        "macro_f1_ci95": f1_ci,
    }
    return {
        "evaluated_on": "test split",
        "n": 30,
        "accuracy": 0.8,
        "table": [row],
        "per_class": {"a": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 30}},
        "log_loss": 0.5,
        "macro_auc": 0.6,
        "confusion_matrix": [[30]],
        "roc": {},
        "intervals": {"level": 0.95, "bootstrap_resamples": 1000},
    }


@pytest.mark.parametrize("width", [200, 80])
def test_terminal_table_shows_f1_interval_on_the_f1_scale(width):
    text = " ".join(_text(render_evaluation(_ev()), width).split())
    assert "0.095-0.234" in text or "0.095 - 0.234" in text
    assert "9.5" not in text and "23.4" not in text
    assert "70.0%-90.0%" in text or "70.0% - 90.0%" in text


def test_evaluate_at_80_columns_keeps_balanced_accuracy_and_macro_f1(monkeypatch):
    """A text run's long encoder name on an 80-column terminal: the F1 interval gives way,
    balanced accuracy and macro F1 (what matters on imbalanced data) stay; the methods are
    named once, under the table."""
    monkeypatch.setenv("COLUMNS", "80")
    ev = _ev()
    ev["table"][0]["name"] = "reviews (sentence-transformers/all-MiniLM-L6-v2, feature-extraction)"
    text = _text(render_evaluation(ev, "text"), 80)
    header = " ".join(text.split())
    assert "balanced" in header and "macro F1" in header  # (headers span two lines)
    assert "75.0%" in text and "0.167" in text and "70.0%-90.0%" in text
    assert "too narrow here for: F1 95% interval (0-1)" in header
    assert header.count("Clopper-Pearson") == 1
    assert max(len(line) for line in text.splitlines()) <= 80


def test_a_degenerate_bootstrap_interval_is_said_never_printed_as_x_to_x(folder_runs):
    """17 texts, all right: every bootstrap resample's macro F1 is 1.000. The F1 interval
    says why it has no width; the accuracy interval (exact) is 80.5%-100.0%."""
    y = np.array([0] * 9 + [1] * 8)
    m = classification_metrics(y, np.eye(2)[y], ["a", "b"])
    row = {"name": "run", "kind": "this run", **m}
    ev = {**_ev(), "n": 17, "table": [row]}
    text = " ".join(_text(render_evaluation(ev, "text"), 200).split())
    assert "1.000-1.000" not in text and "100.0%-100.0%" not in text
    assert "80.5%-100.0%" in text and "degenerate" in text
    assert "every text is right, so every resample scores 1.000" in text
    assert "F1 percentile bootstrap (1,000 resamples)" in text
    page = render_html(load_run(folder_runs[0]), ev, {})  # an image run: says images
    metrics = page.split('id="metrics"')[1].split('id="confusion"')[0]
    assert "1.000 - 1.000" not in metrics and "every image is right" in metrics
    assert "80.5% - 100.0%" in metrics and "degenerate" in metrics
    assert "Clopper-Pearson" in metrics and metrics.count("Intervals are 95%") == 1


def test_verdicts_say_texts_for_text_runs():
    y = np.zeros(28, dtype=int)
    this, other = y.copy(), y.copy()
    other[:2] = 1
    p = paired_comparison(y, this, other, this_name="A", other_name="B", noun="text")
    assert "on these 28 texts" in p["verdict"] and "images" not in p["verdict"]


def test_html_metrics_table_shows_f1_interval_on_the_f1_scale(folder_runs):
    run = load_run(folder_runs[0])
    page = render_html(run, _ev(), {})
    metrics = page.split('id="metrics"')[1].split('id="confusion"')[0]
    assert "0.095 - 0.234" in metrics or "0.095-0.234" in metrics
    assert "9.5" not in metrics and "23.4" not in metrics
    assert "(0-1)" in metrics and "(%)" in metrics  # the headers say the unit


def test_evaluation_json_says_the_units(folder_runs):
    result = evaluate_run(load_run(folder_runs[0]))
    assert "fraction" in result["units"]["accuracy"] and "0-1" in result["units"]["macro_f1"]


# --------------------------------------------------------------------------- overlap with train


def _external_with_copies(run_path: Path, data: Path, dest: Path, n_copies: int) -> Path:
    """A class-folder data set: ``n_copies`` training images under new names, plus new ones."""
    split = json.loads((run_path / "split.json").read_text())
    for item in split["train"][:n_copies]:
        cls, name = item.split("/")
        (dest / cls).mkdir(parents=True, exist_ok=True)
        Image.open(data / item).save(dest / cls / f"copy_{name}")  # same pixels, new path
    images, labels = make_images(3, seed=11)
    for i, (img, lab) in enumerate(zip(images, labels)):
        (dest / CLASS_NAMES[lab]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(dest / CLASS_NAMES[lab] / f"new_{i}.png")
    return dest


def test_overlap_with_training_images_is_found_by_content(folder_runs, tmp_path):
    a, _, data = folder_runs
    ext = _external_with_copies(a, data, tmp_path / "ext", n_copies=4)
    assert (a / "train_hashes.json").is_file()  # recorded at training time
    result = evaluate_run(load_run(a), ext)
    ov = result["overlap"]
    assert ov["checked"] and ov["n_overlap"] == 4 and ov["n_images"] == 13
    clean = ov["without_overlap"]
    assert clean["n"] == 9
    assert clean["accuracy_ci95"][0] <= clean["accuracy"] <= clean["accuracy_ci95"][1]
    text = " ".join(_text(render_evaluation(result)).split())
    assert "4 of the 13" in text and "9 images" in text


def test_overlap_falls_back_to_the_runs_recorded_data(folder_runs, tmp_path):
    a, _, data = folder_runs
    ext = _external_with_copies(a, data, tmp_path / "ext", n_copies=2)
    copy = tmp_path / "run"
    copy.mkdir()
    for f in a.iterdir():
        if f.is_file() and f.name != "train_hashes.json":
            (copy / f.name).write_bytes(f.read_bytes())
    ov = evaluate_run(load_run(copy), ext)["overlap"]
    assert ov["checked"] and ov["n_overlap"] == 2 and "re-read" in ov["hashes_from"]


def test_cli_evaluate_warns_about_overlap_and_writes_it(folder_runs, tmp_path):
    a, _, data = folder_runs
    ext = _external_with_copies(a, data, tmp_path / "ext", n_copies=3)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for f in a.iterdir():
        if f.is_file():
            (run_dir / f.name).write_bytes(f.read_bytes())
    env = {**os.environ, "COLUMNS": "80", "HEADSTART_CACHE_DIR": str(tmp_path / "cache")}
    r = clihost.run(["evaluate", run_dir, ext], env=env, timeout=300)  # a process of its own
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    assert "3 of the 12" in out and "training images" in out
    saved = json.loads((run_dir / "evaluation_external.json").read_text())
    assert saved["overlap"]["n_overlap"] == 3 and saved["overlap"]["without_overlap"]["n"] == 9


# --------------------------------------------------------------------------- in-memory runs


@pytest.fixture(scope="module")
def memory_run(tmp_path_factory):
    """An ImageClassifier fitted on the arrays of an arrays/ folder, saved as a run."""
    from headstart.modalities.image.estimator import ImageClassifier

    root = tmp_path_factory.mktemp("mem")
    images, labels = make_images(12, seed=2)
    test_images, test_labels = make_images(4, seed=3)
    arrays = root / "arrays"
    arrays.mkdir()
    np.save(arrays / "train_images.npy", images)
    np.save(arrays / "train_labels.npy", labels)
    np.save(arrays / "test_images.npy", test_images)
    np.save(arrays / "test_labels.npy", test_labels)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HEADSTART_CACHE_DIR", str(root / "cache"))
        clf = ImageClassifier(**TINY).fit(images, labels)
    path = clf.save(root / "run")
    return path, arrays


def test_in_memory_run_states_which_arrays_it_was_evaluated_on(memory_run):
    path, arrays = memory_run
    result = evaluate_run(load_run(path), arrays)
    assert result["n"] == 12
    assert "all splits" not in result["evaluated_on"]
    assert "test_images.npy" in result["evaluated_on"]
    assert result["evaluation_data"]["used"] == {"test_images.npy": 12}
    assert result["evaluation_data"]["not_used"] == {"train_images.npy": 36}
    title = " ".join(_text(render_evaluation(result), 80).split())
    assert "test_images.npy" in title and "12 images" in title and "train_images.npy" in title


def test_in_memory_run_says_the_overlap_could_not_be_checked(memory_run):
    path, arrays = memory_run
    result = evaluate_run(load_run(path), arrays)
    assert result["overlap"]["checked"] is False
    assert "in-memory" in result["overlap"]["reason"]
    assert "could not be checked" in " ".join(_text(render_evaluation(result)).split())


def test_external_folder_with_splits_names_each_split_and_count(folder_runs, split_folder):
    result = evaluate_run(load_run(folder_runs[0]), split_folder)
    assert result["evaluation_data"]["used"] == {"train": 21, "val": 9}
    assert "train (21) + val (9)" in result["evaluated_on"]
    assert result["n"] == 30


def test_macro_f1_ignores_a_class_the_evaluation_never_shows():
    """A run knows 3 classes; the evaluation images hold 2, predicted perfectly: macro F1 is
    1.0 (not 0.667 from averaging in the absent class's undefined F1 as 0), in the point
    estimate and in every bootstrap resample, and scikit-learn stays quiet."""
    import warnings

    from headstart.core.statistics import bootstrap_intervals, classification_metrics

    y = np.array([0, 0, 1, 1, 1, 0])
    proba = np.eye(3)[y]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(y, proba, ["a", "b", "c"], n_boot=200)
    assert m["macro_f1"] == pytest.approx(1.0)
    assert m["macro_f1_ci95"] == (1.0, 1.0)
    assert bootstrap_intervals(y, y, 3, n_boot=50)["macro_f1"] == (1.0, 1.0)


def test_duplicates_across_a_shared_split_make_both_scores_optimistic_alike(tmp_path):
    """A second trial: comparing two runs of one split warned that the compared run had seen
    the examples, and advised training on the same split, which they had."""
    from types import SimpleNamespace

    import numpy as np

    from headstart.core.overlap import seen_in_training, write_train_hashes

    write_train_hashes(tmp_path, ["h1", "h2"])
    split = {"train": ["a.png", "b.png"]}
    run, other = (SimpleNamespace(path=tmp_path, split=split) for _ in range(2))
    images = SimpleNamespace(noun="image")
    keep = np.ones(3, bool)
    entry = {"verdict": "Same.", "other": "other"}
    seen_in_training(other, images, keep, entry, lambda: ["h1", "x", "y"], run=run)
    assert (
        entry["other_train_overlap"] == 1
        and "Both runs trained on the same split" in entry["verdict"]
    )
    assert "Caution" not in entry["verdict"]
    apart = {"verdict": "Same.", "other": "other"}
    other_split = SimpleNamespace(path=tmp_path, split={"train": ["c.png"]})
    seen_in_training(other_split, images, keep, apart, lambda: ["h1", "x", "y"], run=run)
    assert "Caution: 1 of these 3 images" in apart["verdict"]
