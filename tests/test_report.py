"""What the report, the plots and the compare / advise tables show is what the run did."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from html import unescape

import numpy as np
import pytest
import torch
from rich.console import Console

from conftest import make_images
from conftest import run_cli as _cli
from headstart.api import train
from headstart.core import plots
from headstart.core.cache import cache_root
from headstart.core.config import TrainConfig
from headstart.core.loop import History
from headstart.core.runs import load_run
from headstart.modalities.image.preprocess import normalise

TINY = {"backbone": "test_resnet", "weights": "none", "image_size": 48, "epochs": 3}


def _history(values: list[float], best: int) -> History:
    rows = [
        {"epoch": i + 1, "loss": 1.0, "accuracy": v, "val_loss": 1.0, "val_accuracy": v}
        for i, v in enumerate(values)
    ]
    return History(epochs=rows, best_epoch=best)


@pytest.fixture
def figures(monkeypatch):
    """Every figure the plots module saves, kept open so a test can read what was drawn."""
    kept = []
    save = plots._save

    def keep(fig, path):
        kept.append(fig)
        fig.canvas.draw()  # tick positions are decided at draw time
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    monkeypatch.setattr(plots.plt, "close", lambda fig=None: None)
    return kept


# --- 1. a fine-tune continues its parent on one epoch axis ---------------------------------


def test_continuation_layout_numbers_the_continuation_after_the_parent():
    parent = _history([0.3, 0.6, 0.9, 0.8, 0.7], best=3)
    child = _history([0.85, 0.92, 0.95, 0.94], best=3)
    layout = plots.continuation_layout([parent, child])
    assert layout.xs[0].tolist() == [1, 2, 3, 4, 5]
    assert layout.xs[1].tolist() == [6, 7, 8, 9]
    assert layout.starts == [5.5]
    # the child starts from the parent's best epoch (3), not its last (5)
    assert layout.links == [((3.0, 0.9), (6.0, 0.85), 3)]


def test_plot_histories_draws_parent_then_continuation(figures, tmp_path):
    parent = _history([0.3, 0.6, 0.9, 0.8, 0.7], best=3)
    child = _history([0.85, 0.92, 0.95, 0.94], best=3)
    plots.plot_histories({"frozen": parent, "fine-tuned": child}, tmp_path / "two.png")
    ax = figures[-1].axes[0]
    lines = {ln.get_label(): ln for ln in ax.lines}
    assert list(lines["frozen"].get_xdata()) == [1, 2, 3, 4, 5]
    assert list(lines["fine-tuned"].get_xdata()) == [6, 7, 8, 9]
    link = lines["starts from epoch 3's weights (best)"]
    assert list(link.get_xdata()) == [3, 6] and list(link.get_ydata()) == [0.9, 0.85]
    assert list(lines["continuation starts"].get_xdata()) == [5.5, 5.5]
    assert all(float(t).is_integer() for t in ax.get_xticks())


def test_finetune_report_caption_describes_the_continuation(image_folder, tmp_path):
    parent = train(
        TrainConfig(**{**TINY, "epochs": 4, "patience": 10}, data=str(image_folder)),
        out=tmp_path / "frozen",
        progress=False,
    )
    child = train(
        TrainConfig(**TINY, data=str(image_folder), strategy="fine-tune", parent=str(parent.path)),
        out=tmp_path / "ft",
        progress=False,
    )
    html = unescape((child.path / "report.html").read_text())
    n, m, best = 4, len(child.history.epochs), parent.history.best_epoch
    assert f"the parent's training on epochs 1-{n}" in html
    assert f"this run's on epochs {n + 1}-{n + m}" in html
    assert f"best epoch ({best})" in html
    assert "one after the other" not in html


# --- 2. the augmentation panel shows what training did ------------------------------------


def test_no_augmentation_panel_without_augmentation(image_folder, tmp_path):
    run = train(TrainConfig(**TINY, data=str(image_folder)), out=tmp_path / "r", progress=False)
    assert not (run.path / "plots" / "augmented.png").exists()
    html = (run.path / "report.html").read_text()
    assert "No augmentation" in html and "flip" not in html.split('id="config"')[0]


def test_cached_augmentation_panel_shows_the_cached_views(image_folder, tmp_path):
    from headstart.modalities.image.report_parts import augmentation_views

    cfg = TrainConfig(**TINY, data=str(image_folder), augment="cached", views=2, flip=False)
    run = load_run(train(cfg, out=tmp_path / "r", progress=False).path)
    from headstart.core.data import load_data

    splits = load_data(cfg.data, split_record=run.split)
    shown = augmentation_views(run, splits.train)
    assert shown["exact"] and shown["titles"] == [
        "original (resized)",
        "cached view 1",
        "cached view 2",
    ]
    assert not any("flip" in w for w in shown["transforms"])
    assert "flip" not in shown["caption"] and "rotation" in shown["caption"]
    # each shown view is the view the feature cache computed: same features, row for row
    keys = run.metrics["feature_cache"]["keys"]
    backbone = run.model.backbone.eval()
    for k in (1, 2):
        key = keys[k - 1]
        cached = np.load(cache_root() / "features" / key[:2] / f"{key}.npy")
        x = torch.from_numpy(shown["images"][k]).permute(2, 0, 1)[None].float()
        with torch.inference_mode():
            feats = backbone(normalise(x, run.preprocessing)).numpy()[0]
        np.testing.assert_allclose(feats, cached[shown["position"]], atol=1e-4, rtol=1e-4)
        other = cached[shown["position"] + 1]
        assert not np.allclose(feats, other, atol=1e-3)
    html = (run.path / "report.html").read_text()
    assert "feature cache computed for this image" in html
    caption = re.search(r"<p>Augmentation \(cached\):[^<]*</p>", html).group(0)
    assert "flip" not in caption


def test_on_the_fly_augmentation_panel_says_it_shows_samples(image_folder, tmp_path):
    from headstart.modalities.image.report_parts import augmentation_views

    run = train(TrainConfig(**TINY, data=str(image_folder)), out=tmp_path / "r", progress=False)
    from headstart.core.data import load_data

    splits = load_data(run.config.data, split_record=run.split)
    fly = dataclasses.replace(
        run,
        config=dataclasses.replace(run.config, augment="on-the-fly", flip=True),
        metrics={**run.metrics, "feature_cache": {"mode": "on-the-fly", "reason": "x"}},
    )
    shown = augmentation_views(fly, splits.train)
    assert not shown["exact"] and shown["titles"][1] == "sample 1"
    assert shown["transforms"][0].startswith("horizontal flip")
    assert "samples from the augmenter training used" in shown["caption"]


# --- 3. the configuration as used ----------------------------------------------------------


def test_configuration_shows_resolved_values(image_folder, tmp_path):
    from headstart.core.report_settings import configuration_rows, settings_left_out

    run = train(TrainConfig(**TINY, data=str(image_folder)), out=tmp_path / "r", progress=False)
    html = (run.path / "report.html").read_text()
    assert f"<td>device</td><td>{run.record['device']} (auto)</td>" in html
    default_size = dataclasses.replace(run, config=dataclasses.replace(run.config, image_size=None))
    rows = dict(configuration_rows(default_size))
    assert rows["image_size"] == "48 (backbone default)"
    assert rows["data"] == str(image_folder)
    assert "None" not in rows.values()
    # 8 images a class: no test split carved, and the table says why
    assert rows["test_split"] == "none (auto: a class has fewer than 20 images)"
    assert rows["val_split"] == "carved: 20% of train, stratified"
    # settings this frozen run without augmentation, --strategy auto or a table did not use
    # are left out, and one line under the table names them
    unused = settings_left_out(run)
    for key in ("unfreeze", "layers", "backbone_lr", "bn", "views", "flip", "budget"):
        assert key in unused and key not in rows and f"<td>{key}</td>" not in html
    assert {"candidates", "filename_column", "label_column"} <= set(unused)
    listed = ", ".join(f"<code>{k}</code>" for k in unused)
    assert f"<p>Left out: the settings this run did not use ({listed}) and those only" in html
    assert "<code>config.json</code> keeps every setting.</p>" in html
    # only what images have: no text column or token length for an image run, nor listed
    assert "text_column" not in rows and "max_length" not in rows
    assert "text_column" not in unused and "max_length" not in unused
    assert "keras_style_total" not in html
    assert "<td>total as Keras counts it (+ BatchNorm statistics)</td>" in html


def test_configuration_shows_only_what_applied_and_how_each_split_came_to_be(array_folder):
    from headstart.core.report_settings import configuration_rows, settings_left_out
    from headstart.core.splits import split_words

    run = train(TrainConfig(**TINY, data=str(array_folder)), save=False, progress=False)

    def rows(config=None, method=None, metrics=None):
        cfg = dataclasses.replace(run.config, **(config or {}))
        changed = dataclasses.replace(
            run,
            config=cfg,
            strategy=cfg.strategy_spec(),
            split={**run.split, "method": {**run.split["method"], **(method or {})}},
            metrics={**run.metrics, **(metrics or {})},
        )
        return dict(configuration_rows(changed)), settings_left_out(changed)

    # the lesson's arrays: test_images.npy doubles as validation, a test split is carved
    shown, _ = rows()
    assert shown["val_split"] == "given by the data: its .npy arrays (--val-split not used)"
    test_folder = {"test": "given", "layout": "image-folder"}
    shown, _ = rows(method=test_folder)
    assert shown["test_split"] == "given by the data: its test/ folder (auto)"
    shown, _ = rows(config={"test_split": 0.2}, method=test_folder)
    assert shown["test_split"] == (
        "given by the data: its test/ folder (--test-split 0.2 not used)"
    )
    shown, _ = rows(method={"test": "stratified 0.15 of train"})
    assert shown["test_split"] == "carved: 15% of train, stratified (auto)"
    shown, _ = rows(config={"test_split": 0.0}, method={"test": "none"})
    assert shown["test_split"] == "none (--test-split 0)"
    assert split_words({"test": "given"}, "test") == "given by the data"  # (older records)
    # --budget and --candidates only where they applied
    shown, unused = rows()
    assert {"budget", "candidates"} <= set(unused) and "budget" not in shown
    shown, unused = rows(metrics={"chosen_by": "auto"})
    assert shown["budget"] == "8 minutes (--strategy auto)" and "budget" not in unused
    assert shown["strategy"] == "feature-extraction (chosen by --strategy auto)"
    assert "flip" in shown  # it decides whether the mirror-image candidate is tried
    shown, unused = rows(config={"candidates": "test_resnet,test_efficientnet"})
    assert shown["candidates"] == "test_resnet,test_efficientnet" and "candidates" not in unused
    # the lesson head's hidden layer and dropout; a linear head has neither
    shown, unused = rows()
    assert shown["hidden"] == "50" and shown["dropout"] == "0.5"
    shown, unused = rows(config={"head": "linear"})
    assert {"hidden", "dropout"} <= set(unused) and "hidden" not in shown
    # the column settings apply to a table only
    shown, unused = rows(method={"layout": "csv"})
    assert shown["filename_column"] == "filename" and shown["label_column"] == "label"
    shown, unused = rows(method={"layout": "arrays"})
    assert "filename_column" in unused and "label_column" in unused
    # a fine-tuned backbone: its learning rate and the --unfreeze it used are shown
    shown, unused = rows(config={"strategy": "fine-tune"})
    assert "unfreeze" in shown and "backbone_lr" in shown and "layers" in unused


def test_a_model_no_better_than_the_majority_class_says_so(image_folder, tmp_path):
    """Terminal and report both warn when always answering the largest class scores as well."""
    from headstart.console import render_run
    from headstart.core.report import write_report

    run = train(TrainConfig(**TINY, data=str(image_folder)), out=tmp_path / "r", progress=False)
    ev = json.loads((run.path / "evaluation.json").read_text())
    base = next(r for r in ev["table"] if r["kind"] == "baseline")["accuracy"]
    for equal in (False, True):
        ev["accuracy"] = base if equal else min(1.0, base + 0.2)
        run.metrics["val_accuracy"] = run.metrics["majority_baseline_val_accuracy"] + (
            0.0 if equal else 0.2
        )
        write_report(run, evaluation=ev)
        page = (run.path / "report.html").read_text()
        out = io.StringIO()
        Console(file=out, width=80).print(render_run(run))
        words = "no better than always answering " + repr(run.metrics["majority_class"])
        assert (words in " ".join(out.getvalue().split())) is equal
        assert ("No better than the majority-class baseline" in page) is equal
        # no compared run: the page points at --compare instead of promising a comparison
        assert "pair by pair on the same images below" not in page
        assert "headstart evaluate RUN --compare OTHER_RUN" in page


# --- 4. a run fitted from Python -----------------------------------------------------------


def test_report_of_an_estimator_run_shows_what_it_has(tmp_path):
    from headstart import ImageClassifier

    x, y = make_images(8, size=32)
    ImageClassifier(**TINY).fit(x, y).save(tmp_path / "est")
    _cli("report", tmp_path / "est")
    html = (tmp_path / "est" / "report.html").read_text()
    assert "Confusion matrix" not in html and "ROC curves" not in html
    assert "Most confident mistakes" not in html
    assert "<td>data</td><td>in-memory images (not recorded)</td>" in html
    assert re.search(r"headstart evaluate \S+est DATA", html)
    assert "None</td>" not in html
    # the instruction works, and the report then shows that evaluation
    ext = tmp_path / "ext"
    ext.mkdir()
    xe, ye = make_images(3, size=32, seed=7)
    np.save(ext / "train_images.npy", xe)
    np.save(ext / "train_labels.npy", ye)
    _cli("evaluate", tmp_path / "est", ext)
    _cli("report", tmp_path / "est")
    html = (tmp_path / "est" / "report.html").read_text()
    assert ">Confusion matrix</h2>" in html and "accuracy on the " in html and str(ext) in html


# --- 5. plot polish and the advice page ----------------------------------------------------


def test_history_plot_integer_epochs_and_best_epoch_in_the_legend(figures, tmp_path):
    plots.plot_history(_history([0.3, 0.6, 0.5], best=2), tmp_path / "h.png")
    fig = figures[-1]
    for ax in fig.axes:
        assert all(float(t).is_integer() for t in ax.get_xticks())
        assert not ax.texts  # nothing written on the data
    labels = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert "best epoch (2): its weights are kept" in labels


def test_leaderboard_bars_carry_their_values(figures, tmp_path):
    rows = [
        {"name": "a", "accuracy": 0.8, "accuracy_ci95": [0.7, 0.9]},
        {"name": "b", "accuracy": 0.6, "accuracy_ci95": [0.45, 0.75]},
    ]
    plots.plot_leaderboard(rows, tmp_path / "lb.png", baseline=0.34)
    texts = [t.get_text() for t in figures[-1].axes[0].texts]
    assert texts == ["60.0% (45.0%-75.0%)", "80.0% (70.0%-90.0%)"]  # bottom to top


def test_advice_page_has_a_title_and_says_what_and_when():
    from headstart.core.report import advice_page

    page = advice_page({"ranking": []}, "data/flowers")
    assert re.search(r"<h1>[^<]+</h1>", page)
    assert "data/flowers" in page and re.search(r"\d{4}-\d\d-\d\d", page)


# --- 6. timings that are cache reads say so ------------------------------------------------


def _text(renderable) -> str:
    con = Console(width=80, record=True, file=io.StringIO())
    con.print(renderable)
    return con.export_text()


def test_terminal_tables_mark_cached_feature_times():
    from headstart.console import render_advice, render_leaderboard

    board = {
        "majority_baseline_accuracy": 0.34,
        "leaderboard": [
            {
                "name": "a",
                "accuracy": 0.8,
                "accuracy_ci95": [0.7, 0.9],
                "macro_f1": 0.8,
                "parameters": 1e6,
                "feature_extraction_seconds": 22.8,
                "training_seconds": 1.0,
                "feature_cache": ["computed"],
            },
            {
                "name": "b",
                "accuracy": 0.7,
                "accuracy_ci95": [0.6, 0.8],
                "macro_f1": 0.7,
                "parameters": 1e6,
                "feature_extraction_seconds": 0.6,
                "training_seconds": 1.0,
                "feature_cache": ["disk"],
            },
        ],
    }
    text = _text(render_leaderboard(board))
    assert "(cached)" in text and "22.8" in text
    assert "feature cache" in text  # the footnote
    ranking = [
        {
            "rank": 1,
            "name": "a",
            "logme": 1.0,
            "probe": 0.9,
            "knn": 0.9,
            "parameters": 1e6,
            "image_size": [224, 224],
            "feature_seconds": 0.6,
            "feature_cache": "memory",
        },
    ]
    text = _text(render_advice({"ranking": ranking}))
    assert "(cached)" in text and "feature cache" in text
    ranking[0]["feature_cache"] = "computed"
    assert "cached" not in _text(render_advice({"ranking": ranking}))


def test_compare_and_advice_html_mark_cached_feature_times(image_folder, tmp_path):
    from headstart.core.compare import compare_backbones
    from headstart.core.report_advice import advice_section

    cfg = TrainConfig(**TINY, data=str(image_folder))
    first = compare_backbones(cfg, ["test_resnet"], tmp_path / "c1")
    again = compare_backbones(cfg, ["test_resnet"], tmp_path / "c2")
    assert first["leaderboard"][0]["feature_cache_status"] == "computed"
    row = again["leaderboard"][0]
    assert row["feature_cache_status"] == "cached" and "feature_cache" in row
    assert "(cached)" not in (tmp_path / "c1" / "compare.html").read_text()
    page = (tmp_path / "c2" / "compare.html").read_text()
    assert f"{row['feature_extraction_seconds']:.1f} (cached)" in page
    assert "feature cache" in page
    saved = json.loads((tmp_path / "c2" / "leaderboard.json").read_text())
    assert saved["leaderboard"][0]["feature_cache_status"] == "cached"
    section = advice_section(
        {
            "ranking": [
                {
                    "rank": 1,
                    "name": "a",
                    "logme": 1.0,
                    "probe": 0.9,
                    "knn": 0.9,
                    "parameters": 1e6,
                    "image_size": [224, 224],
                    "feature_seconds": 0.6,
                    "feature_cache": "disk",
                }
            ]
        }
    )
    assert "0.6 (cached)" in section and "feature cache" in section


def test_run_timing_says_whether_features_were_computed_or_read():
    from headstart.core.report_words import timing_sentence

    timing = {"feature_extraction_seconds": 0.6, "training_seconds": 3.0}
    read = {"timing": timing, "feature_cache": {"mode": "cached", "hits": ["disk", "memory"]}}
    assert "read from the feature cache" in timing_sentence(read)
    computed = {"timing": timing, "feature_cache": {"mode": "cached", "hits": ["computed"]}}
    assert "computed once and cached" in timing_sentence(computed)
    assert "--no-cache" in timing_sentence(computed, cache_kept=False)
    fly = {"timing": timing, "feature_cache": {"mode": "on-the-fly", "reason": "full"}}
    assert timing_sentence(fly).startswith("No feature cache (full)")


# --- 6. the page from templates ------------------------------------------------------------


def test_a_class_name_with_markup_is_escaped_once(tmp_path):
    """Class names are data: the page shows ``<script>`` and ``&`` as text, escaped exactly
    once (never run, never ``&amp;lt;``) wherever a class is named."""
    from PIL import Image

    name = "a<script>x & y"
    images, labels = make_images(8)
    for i, (img, lab) in enumerate(zip(images, labels)):
        d = tmp_path / "data" / ("circle", name, "stripes")[lab]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"{i:03d}.png")
    cfg = TrainConfig(**TINY, data=str(tmp_path / "data"))
    run = train(cfg, out=tmp_path / "r", progress=False)
    page = (run.path / "report.html").read_text()
    once = "a&lt;script&gt;x &amp; y"
    assert "<script>" not in page and "&amp;lt;" not in page and "&amp;amp;" not in page
    assert f"<td>{once}</td>" in page  # the data table and the per-class table
    assert page.count(once) >= 2


def test_the_templates_load_from_an_installed_package(tmp_path):
    """The templates ship as package data: a non-editable install of the package renders the
    page's templates through ``PackageLoader`` (no source tree on the path)."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q"]
        + ["--target", str(target), str(repo)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    code = (
        "import headstart, json; from headstart.core.pages import ENV; "
        "names = ENV.list_templates(extensions=['j2']); "
        "ENV.get_template('report/page.html.j2'); "
        "print(json.dumps([headstart.__file__, names]))"
    )
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    where, names = json.loads(out.stdout)
    assert where.startswith(str(target))
    assert {"report/page.html.j2", "report/single_label.html.j2"} <= set(names)
    assert "report/multilabel.html.j2" in names and "report/macros.html.j2" in names
