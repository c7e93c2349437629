"""``report.html``: one self-contained page (figures embedded, no network) per run.

Sections: data, configuration, parameters, training history, metrics with intervals and
baselines, confusion matrix, ROC, the most confident mistakes, sample and augmented images.
Written at the end of ``headstart train`` and by ``headstart report RUN_DIR``.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from headstart import plots
from headstart.io import atomic_write_json, atomic_write_text

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2433;
background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px 32px 64px}
h1{font-size:1.6rem;margin:.2em 0}h2{font-size:1.2rem;margin-top:2em;border-bottom:1px solid
#dde1e7;padding-bottom:.3em}
.sub{color:#5b6475}.cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:12px 16px;min-width:150px}
.card b{display:block;font-size:1.5rem}.card span{color:#5b6475;font-size:.85rem}
table{border-collapse:collapse;background:#fff;margin:8px 0;font-size:.9rem}
td,th{border:1px solid #dde1e7;padding:4px 10px;text-align:right}
th{background:#eef1f5}td:first-child,th:first-child{text-align:left}
img{max-width:100%;background:#fff;border:1px solid #dde1e7;border-radius:6px;margin:6px 0}
.warn{background:#fff7e6;border:1px solid #f0c36d;border-radius:6px;padding:8px 12px}
code{background:#eef1f5;padding:1px 4px;border-radius:3px}
.row{display:flex;gap:12px;flex-wrap:wrap;align-items:flex-start}.row img{max-width:49%}
"""


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _pct(v: float) -> str:
    return "-" if v is None or v != v else f"{v:.1%}"


def _ci(ci) -> str:
    return f"{ci[0]:.1%} - {ci[1]:.1%}" if ci else "-"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def make_figures(run, evaluation: dict | None, splits=None) -> dict[str, Path]:
    """Write the run's figures under RUN_DIR/plots and return them by name."""
    out = Path(run.path) / "plots"
    figs: dict[str, Path] = {}
    if run.history is not None and run.history.epochs:
        figs["history"] = plots.plot_history(
            run.history, out / "history.png", f"Training history: {run.backbone_name}"
        )
    if evaluation is not None:
        figs["confusion"] = plots.plot_confusion(
            evaluation["confusion_matrix"], run.class_names, out / "confusion.png"
        )
        if evaluation["roc"]:
            figs["roc"] = plots.plot_roc(evaluation["roc"], out / "roc.png")
    if splits is not None:
        figs.update(_image_figures(run, evaluation, splits, out))
    return figs


def _image_figures(run, evaluation: dict | None, splits, out: Path) -> dict[str, Path]:
    from headstart.data.decode import UnreadableImage
    from headstart.preprocess import augmenter, resize_image

    figs: dict[str, Path] = {}
    train = splits.train
    rng = np.random.default_rng(0)
    picks = rng.choice(len(train), size=min(9, len(train)), replace=False)
    imgs, titles = [], []
    for i in picks:
        try:
            imgs.append(train.image(int(i)))
            titles.append(train.class_names[int(train.labels[i])])
        except UnreadableImage:
            continue
    if imgs:
        figs["samples"] = plots.plot_image_grid(
            imgs, titles, out / "samples.png", "Sample training images"
        )
        base = resize_image(imgs[0], run.preprocessing)
        aug = augmenter(flip=run.config.flip)
        import torch

        torch.manual_seed(0)
        views = [base] + [aug(base) for _ in range(8)]
        figs["augmented"] = plots.plot_image_grid(
            [v.permute(1, 2, 0).numpy() for v in views],
            ["original (resized)"] + [f"augmented {k}" for k in range(1, 9)],
            out / "augmented.png",
            "One image, augmented (flip, rotation, zoom, translation, colour)",
        )
    if evaluation is not None:
        mistakes = confident_mistakes(evaluation, k=9)
        if mistakes:
            where = {}
            for s in splits.items().values():
                for pos, item_id in enumerate(s.ids):
                    where[item_id] = (s, pos)
            mimgs, mtitles = [], []
            for m in mistakes:
                if m["id"] in where:
                    s, pos = where[m["id"]]
                    mimgs.append(s.image(pos))
                    mtitles.append(f"true {m['true']}\npred {m['predicted']} ({m['p']:.0%})")
            if mimgs:
                figs["mistakes"] = plots.plot_image_grid(
                    mimgs,
                    mtitles,
                    out / "mistakes.png",
                    "Most confident mistakes",
                    title_colors=["#b00020"] * len(mimgs),
                )
    return figs


def confident_mistakes(evaluation: dict, k: int = 9) -> list[dict]:
    """Wrong predictions, most confident first (fastai's top losses)."""
    pred = evaluation.get("predictions") or {}
    if not pred:
        return []
    proba = np.asarray(pred["proba"])
    y = np.asarray(pred["y_true"])
    names = list(evaluation["per_class"])
    guess = proba.argmax(1)
    wrong = np.flatnonzero(guess != y)
    order = wrong[np.argsort(-proba[wrong, guess[wrong]])][:k]
    return [
        {
            "id": pred["ids"][i],
            "true": names[y[i]],
            "predicted": names[guess[i]],
            "p": float(proba[i, guess[i]]),
        }
        for i in order
    ]


def render_html(
    run,
    evaluation: dict | None,
    figures: dict[str, Path],
    inspection: dict | None = None,
    extra_sections: str = "",
) -> str:
    m = run.metrics
    params = m.get("parameters", {})
    name = Path(run.path).name if run.path else "run"
    cards = [
        ("validation accuracy", _pct(m.get("val_accuracy"))),
        ("majority-class baseline", _pct(m.get("majority_baseline_val_accuracy"))),
    ]
    if evaluation is not None and not evaluation["evaluated_on"].startswith("val"):
        cards.insert(
            0, (f"accuracy on {evaluation['evaluated_on']}", f"{_pct(evaluation['accuracy'])}")
        )
    if params:
        cards.append(
            ("trainable / total parameters", f"{params['trainable']:,} / {params['total']:,}")
        )
    parts = [
        f"<h1>headstart run: {html.escape(name)}</h1>",
        f'<div class="sub">{html.escape(run.backbone_name)} &middot; '
        f"{html.escape(run.strategy.label())} &middot; "
        f"{len(run.class_names)} classes &middot; created "
        f"{html.escape(str(run.record.get('created', '')))}</div>",
        '<div class="cards">'
        + "".join(
            f'<div class="card"><b>{html.escape(v)}</b><span>{html.escape(k)}</span></div>'
            for k, v in cards
        )
        + "</div>",
    ]
    parts.append('<h2 id="data">Data</h2>')
    if inspection:
        counts = inspection.get("counts", {})
        header = ["class", *counts]
        rows = [
            [c, *[counts[s][i] for s in counts]]
            for i, c in enumerate(inspection.get("class_names", []))
        ]
        parts.append(_table(header, rows))
        b = inspection.get("majority_baseline", {})
        parts.append(
            f"<p>Source: <code>{html.escape(str(inspection.get('location')))}</code> "
            f"({html.escape(str(inspection.get('layout')))}). Imbalance "
            f"{inspection.get('imbalance_ratio', 1):.2f}x; majority class "
            f"'{html.escape(str(b.get('class')))}'.</p>"
        )
        warnings = []
        if inspection.get("unreadable"):
            warnings.append(
                f"{len(inspection['unreadable'])} unreadable image(s) skipped: "
                + ", ".join(u["path"] for u in inspection["unreadable"][:10])
            )
        if inspection.get("duplicates_across"):
            warnings.append(
                f"{len(inspection['duplicates_across'])} image(s) appear in more "
                "than one split (leakage)"
            )
        for w in warnings:
            parts.append(f'<p class="warn">{html.escape(w)}</p>')
    n = m.get("n_images", {})
    parts.append(
        "<p>Images used: " + html.escape(", ".join(f"{k} {v}" for k, v in n.items())) + "</p>"
    )
    grids = [_img(figures[k], k) for k in ("samples", "augmented") if k in figures]
    if grids:
        parts.append(f'<div class="row">{"".join(grids)}</div>')
    parts.append('<h2 id="config">Configuration</h2>')
    cfg = run.config.to_dict()
    parts.append(_table(["setting", "value"], [[k, v] for k, v in cfg.items()]))
    parts.append(
        f"<p>Weights: {html.escape(str(run.weights.get('kind')))} "
        f"({html.escape(str(run.weights.get('detail')))}). Reproducibility record: "
        + html.escape(
            ", ".join(
                f"{k} {v}"
                for k, v in run.record.items()
                if k in ("seed", "torch", "timm", "headstart", "device", "python")
            )
        )
        + "</p>"
    )
    parts.append('<h2 id="parameters">Parameters</h2>')
    if params:
        parts.append(_table(["parameters", "count"], [[k, f"{v:,}"] for k, v in params.items()]))
    parts.append('<h2 id="history">Training history</h2>')
    if "history" in figures:
        parts.append(_img(figures["history"], "training history"))
    if m.get("timing"):
        t = m["timing"]
        parts.append(
            f"<p>Feature extraction {t.get('feature_extraction_seconds', 0):.1f}s "
            f"(once, then cached), head training {t.get('training_seconds', 0):.1f}s."
            "</p>"
        )
    if "parent" in figures:
        parts.append(
            f"<p>Continued from <code>{html.escape(str(run.parent))}</code>: the "
            "parent's validation accuracy and this run's, one after the other.</p>"
        )
        parts.append(_img(figures["parent"], "parent vs this run"))
    parts.append(extra_sections)
    parts.append('<h2 id="metrics">Metrics</h2>')
    if evaluation is not None:
        parts.append(_metrics_section(evaluation))
    else:
        parts.append("<p>No evaluation yet: run <code>headstart evaluate RUN_DIR</code>.</p>")
    parts.append('<h2 id="confusion">Confusion matrix</h2>')
    if "confusion" in figures:
        parts.append(_img(figures["confusion"], "confusion matrix"))
    parts.append('<h2 id="roc">ROC curves</h2>')
    if "roc" in figures:
        parts.append(_img(figures["roc"], "ROC curves"))
    parts.append('<h2 id="mistakes">Most confident mistakes</h2>')
    if "mistakes" in figures:
        parts.append(_img(figures["mistakes"], "most confident mistakes"))
    else:
        parts.append("<p>No misclassified images (or no images available to show).</p>")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>headstart: {html.escape(name)}</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(parts)}</main></body></html>"
    )


def _f1_ci(ci) -> str:
    return f"{ci[0]:.3f} - {ci[1]:.3f}" if ci else "-"


def _points(v: float) -> str:
    return "-" if v is None or v != v else f"{100 * v:+.1f}%"


def _metrics_section(evaluation: dict) -> str:
    """The Metrics section: accuracy-like numbers in %, F1 on 0-1, the paired comparison of
    compared runs, and any overlap of the evaluation images with the training images."""
    parts = [
        f"<p>Evaluated on {html.escape(evaluation['evaluated_on'])}: "
        f"{evaluation['n']:,} images. Intervals are 95% bootstrap intervals. Overlapping "
        "intervals do not settle whether two models differ; compared runs are judged pair by "
        "pair on the same images below.</p>"
    ]
    not_used = (evaluation.get("evaluation_data") or {}).get("not_used")
    if not_used:
        parts.append(
            "<p>Not used: "
            + html.escape(", ".join(f"{k} ({v:,} images)" for k, v in not_used.items()))
            + "</p>"
        )
    rows = [
        [
            r["name"],
            r["n"],
            _pct(r["accuracy"]),
            _ci(r.get("accuracy_ci95")),
            _pct(r.get("balanced_accuracy")),
            f"{r.get('macro_f1', float('nan')):.3f}",
            _f1_ci(r.get("macro_f1_ci95")),
        ]
        for r in evaluation["table"]
    ]
    header = [
        "model",
        "images",
        "accuracy (%)",
        "95% interval (%)",
        "balanced acc. (%)",
        "macro F1 (0-1)",
        "F1 95% interval (0-1)",
    ]
    parts.append(_table(header, rows))
    paired = evaluation.get("paired") or []
    if paired:
        parts.append(
            "<p>Paired comparison on the same images: the accuracy difference (this run minus "
            "the compared run, in percentage points) with its paired-bootstrap 95% interval, "
            "and McNemar's exact test on the images only one of the two gets right.</p>"
        )
        parts.append(
            _table(
                [
                    "compared run",
                    "images",
                    "only this run right",
                    "only compared run right",
                    "accuracy difference",
                    "95% interval",
                    "McNemar p",
                ],
                [
                    [
                        p["other"],
                        f"{p['n']:,}",
                        p["this_right_other_wrong"],
                        p["other_right_this_wrong"],
                        _points(p["accuracy_difference"]),
                        f"{_points(p['accuracy_difference_ci95'][0])} to "
                        f"{_points(p['accuracy_difference_ci95'][1])}",
                        f"{p['mcnemar_p']:.2g}",
                    ]
                    for p in paired
                ],
            )
        )
        parts.extend(f"<p>{html.escape(p['verdict'])}</p>" for p in paired)
    ov = evaluation.get("overlap")
    if ov is not None and not ov.get("checked"):
        parts.append(
            '<p class="warn">Overlap with the training images could not be checked: '
            f"{html.escape(str(ov.get('reason')))}.</p>"
        )
    elif ov is not None and ov["n_overlap"]:
        clean = ov.get("without_overlap")
        rest = (
            f" On the other {clean['n']:,} images: accuracy {_pct(clean['accuracy'])} "
            f"({_ci(clean['accuracy_ci95'])}), macro F1 {clean['macro_f1']:.3f} "
            f"({_f1_ci(clean['macro_f1_ci95'])})."
            if clean
            else " No image is left once they are set aside."
        )
        parts.append(
            f'<p class="warn">{ov["n_overlap"]:,} of the {ov["n_images"]:,} evaluation images '
            "are training images of this run (same pixels): the scores above are optimistic."
            f"{html.escape(rest)}</p>"
        )
    per = evaluation["per_class"]
    parts.append(
        _table(
            ["class", "precision (0-1)", "recall (0-1)", "F1 (0-1)", "support"],
            [
                [c, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", v["support"]]
                for c, v in per.items()
            ],
        )
    )
    parts.append(
        f"<p>Log loss {evaluation['log_loss']:.3f}; macro ROC AUC "
        f"{evaluation['macro_auc']:.3f}.</p>"
    )
    return "".join(parts)


def write_report(
    run, *, evaluation: dict | None = None, splits=None, parent=None, extra_sections: str = ""
) -> Path:
    """Figures + report.html (+ evaluation.json when given) in the run directory."""
    path = Path(run.path)
    if evaluation is not None:
        atomic_write_json(path / "evaluation.json", evaluation)
    inspection = None
    if (path / "inspection.json").is_file():
        inspection = json.loads((path / "inspection.json").read_text())
    figures = make_figures(run, evaluation, splits)
    if parent is None and run.parent:
        from headstart.runs import load_run

        try:
            parent = load_run(run.parent)
        except Exception:  # the parent moved or was deleted: the report goes on without it
            parent = None
    if parent is not None and parent.history is not None and run.history is not None:
        figures["parent"] = plots.plot_histories(
            {
                f"{parent.strategy.label()} (parent)": parent.history,
                run.strategy.label(): run.history,
            },
            path / "plots" / "parent_vs_this.png",
            title=f"Validation accuracy: {parent.strategy.label()} vs {run.strategy.label()}",
        )
    out = path / "report.html"
    atomic_write_text(out, render_html(run, evaluation, figures, inspection, extra_sections))
    return out


def advice_section(decisions: dict) -> str:
    """HTML for ``headstart advise`` results: the backbone ranking and the four-scenario advice."""
    from headstart.advise.scenarios import advice_flags

    parts = []
    ranking = decisions.get("ranking")
    if ranking:
        parts.append('<h2 id="ranking">Backbones ranked on your data (before training)</h2>')
        parts.append(
            "<p>Scored on frozen features of the training images: LogME evidence "
            "(higher is better), a 5-fold logistic-regression probe and a cosine kNN. "
            "No backbone was fine-tuned to produce this table.</p>"
        )
        rows = [
            [
                r["rank"],
                r["name"],
                f"{r['logme']:.3f}",
                _pct(r["probe"]),
                _pct(r["knn"]),
                f"{r['parameters'] / 1e6:.1f}M",
                "x".join(map(str, r["image_size"])),
                f"{r['feature_seconds']:.1f}",
            ]
            for r in ranking
        ]
        parts.append(
            _table(
                [
                    "rank",
                    "backbone",
                    "LogME",
                    "probe acc.",
                    "kNN acc.",
                    "params",
                    "input",
                    "seconds",
                ],
                rows,
            )
        )
    advice = decisions.get("advice")
    if advice:
        parts.append('<h2 id="advice">How much to retrain: the four scenarios</h2>')
        parts.append(
            f"<p><b>{html.escape(advice['scenario'])}</b> &rarr; "
            f"<code>{html.escape(advice_flags(advice))}</code></p><ul>"
            + "".join(f"<li>{html.escape(r)}</li>" for r in advice["reasons"])
            + "</ul>"
        )
    check = decisions.get("check")
    if isinstance(check, dict):
        parts.append(
            f"<p>Checked on validation: frozen {_pct(check['frozen_val_accuracy'])}, "
            f"{html.escape(check['candidate'])} "
            f"{_pct(check['candidate_val_accuracy'])}; kept "
            f"<b>{html.escape(check['kept'])}</b>.</p>"
        )
    elif check:
        parts.append(f"<p>Check: {html.escape(str(check))}.</p>")
    return "".join(parts)
