"""The report's parts for a single-label run (one class per example): the headline cards, the
warnings under them and the Metrics section (accuracy and macro-F1 with intervals beside the
baselines, compared runs pair by pair, overlap with training, the per-class table). Data here,
markup in ``templates/report/single_label.html.j2``; :mod:`headstart.core.report_multilabel`
is its twin for label sets, and :mod:`headstart.core.report` the page around them."""

from __future__ import annotations

from headstart.core.report_words import ci_text, classic_verdict, f1_ci, pct, points
from headstart.core.splits import score_label

#: The macros of this task's parts of the page (``metrics``, ``mistakes_heading``).
TEMPLATE = "report/single_label.html.j2"


def figures(run, evaluation: dict, out) -> dict:
    """The confusion matrix and, where it is defined, the ROC curves."""
    from headstart.core.plots import plot_confusion, plot_roc

    matrix = evaluation["confusion_matrix"]
    figs = {"confusion": plot_confusion(matrix, run.class_names, out / "confusion.png")}
    if evaluation["roc"]:
        figs["roc"] = plot_roc(evaluation["roc"], out / "roc.png")
    return figs


def cards(evaluation: dict, metrics: dict, noun: str) -> list[tuple[str, str]]:
    """(caption, value) of the headline cards: accuracy, its interval and the baselines, all
    on the same examples, and validation's accuracy when the evaluation was on another split."""
    baseline = _row(evaluation, "baseline")
    out = [
        (
            f"accuracy on the {evaluation['evaluated_on']} ({evaluation['n']:,} {noun}s), "
            f"95% interval {ci_text(evaluation.get('accuracy_ci95'))}",
            pct(evaluation["accuracy"]),
        ),
        (
            f"majority-class baseline on the same {noun}s",
            pct(baseline["accuracy"]) if baseline else "-",
        ),
    ]
    classic = _row(evaluation, "classic baseline")
    if classic:
        out.append(
            (
                f"{classic['name']} on the same {noun}s, 95% interval "
                f"{ci_text(classic.get('accuracy_ci95'))}",
                pct(classic["accuracy"]),
            )
        )
    if not evaluation["evaluated_on"].startswith("val"):
        out.append((score_label("val"), pct(metrics.get("val_accuracy"))))
    return out


def unevaluated_cards(metrics: dict) -> list[tuple[str, str]]:
    """The headline cards of a run with no evaluation: its validation scores."""
    return [
        (score_label("val"), pct(metrics.get("val_accuracy"))),
        ("majority-class baseline", pct(metrics.get("majority_baseline_val_accuracy"))),
    ]


def _row(evaluation: dict, kind: str) -> dict | None:
    return next((r for r in evaluation["table"] if r["kind"] == kind), None)


def warnings(evaluation: dict, metrics: dict, noun: str) -> list[tuple[str, str]]:
    """(css class, text) lines under the cards: no better than always answering the majority
    class; the classic baseline's verdict when the data can tell the two apart."""
    out = []
    baseline = _row(evaluation, "baseline")
    if baseline and evaluation["accuracy"] <= baseline["accuracy"]:
        out.append(
            (
                "warn",
                f"No better than the majority-class baseline on the same {noun}s: always "
                f"answering {str(metrics.get('majority_class'))!r} scores as well. Not yet a "
                f"useful model (more labelled {noun}s?).",
            )
        )
    out += classic_verdict(evaluation.get("classic_baseline"), "accuracy_difference", noun)
    return out


def metrics_context(evaluation: dict, noun: str) -> dict:
    """What the Metrics section shows: the scores table, the classic baseline, compared runs
    pair by pair, overlap with training and each class's scores, as display strings."""
    from headstart.core.statistics import degenerate_note, intervals_sentence, is_degenerate

    paired = evaluation.get("paired") or []
    n_boot = (evaluation.get("intervals") or {}).get("bootstrap_resamples", 1000)
    bad = evaluation.get("unreadable") or []
    not_used = (evaluation.get("evaluation_data") or {}).get("not_used")
    return {
        "evaluated_on": evaluation["evaluated_on"],
        "n": f"{evaluation['n']:,}",
        "methods": intervals_sentence(noun, n_boot, paired=bool(paired))
        if "intervals" in evaluation
        else "Intervals are 95% bootstrap intervals (this evaluation was written before "
        "headstart's exact ones; headstart evaluate rewrites it).",
        "unreadable": len(bad),
        "unreadable_list": ", ".join(f"{b['path']} ({b['reason']})" for b in bad[:20]),
        "not_used": ", ".join(f"{k} ({v:,} {noun}s)" for k, v in not_used.items())
        if not_used
        else "",
        "table": _scores_table(evaluation, noun),
        "degenerate": [
            (r["name"], degenerate_note("macro F1", r["macro_f1"], r["n"], noun))
            for r in evaluation["table"]
            if is_degenerate(r.get("macro_f1_ci95"))
        ],
        "classic": _classic(evaluation.get("classic_baseline"), noun),
        "paired": _paired(paired, noun) if paired else None,
        "overlap": _overlap(evaluation.get("overlap"), noun),
        "per_class": _per_class(evaluation["per_class"]),
        "log_loss": f"{evaluation['log_loss']:.3f}",
        "macro_auc": f"{evaluation['macro_auc']:.3f}",
    }


def _scores_table(evaluation: dict, noun: str) -> dict:
    """Each model's accuracy, balanced accuracy and macro-F1 with their intervals."""
    rows = [
        [
            r["name"],
            r["n"],
            pct(r["accuracy"]),
            ci_text(r.get("accuracy_ci95")),
            pct(r.get("balanced_accuracy")),
            f"{r.get('macro_f1', float('nan')):.3f}",
            f1_ci(r.get("macro_f1_ci95")),
        ]
        for r in evaluation["table"]
    ]
    header = [
        "model",
        f"{noun}s",
        "accuracy (%)",
        "95% interval (%)",
        "balanced acc. (%)",
        "macro F1 (0-1)",
        "F1 95% interval (0-1)",
    ]
    return {"header": header, "rows": rows}


def _classic(classic: dict | None, noun: str) -> dict | None:
    """The paired comparison with the classic baseline, in words."""
    if not classic:
        return None
    p = classic["paired"]
    mine = p["this_right_other_wrong"]
    return {
        "warn": p["distinguishable"] and p["accuracy_difference"] < 0,
        "description": classic["description"],
        "only_this": f"{mine} {noun if mine == 1 else noun + 's'}",
        "only_other": p["other_right_this_wrong"],
        "verdict": p["verdict"],
    }


def _paired(paired: list[dict], noun: str) -> dict:
    """Compared runs pair by pair: the table and each verdict."""
    header = [
        "compared run",
        f"{noun}s",
        "only this run right",
        "only compared run right",
        "accuracy difference (points)",
        "95% interval (points)",
        "McNemar p",
    ]
    rows = [
        [
            p["other"],
            f"{p['n']:,}",
            p["this_right_other_wrong"],
            p["other_right_this_wrong"],
            points(p["accuracy_difference"]),
            " to ".join(map(points, p["accuracy_difference_ci95"])),
            f"{p['mcnemar_p']:.2g}",
        ]
        for p in paired
    ]
    return {"header": header, "rows": rows, "verdicts": [p["verdict"] for p in paired]}


def _overlap(ov: dict | None, noun: str) -> dict | None:
    """Evaluation examples that are training examples: why it could not be checked, or how
    many and the scores without them (None: nothing to say)."""
    if ov is None or (ov.get("checked") and not ov["n_overlap"]):
        return None
    if not ov.get("checked"):
        return {"reason": str(ov.get("reason"))}
    clean = ov.get("without_overlap")
    rest = (
        f" On the other {clean['n']:,} {noun}s: accuracy {pct(clean['accuracy'])} "
        f"({ci_text(clean['accuracy_ci95'])}), macro F1 {clean['macro_f1']:.3f} "
        f"({f1_ci(clean['macro_f1_ci95'])})."
        if clean
        else f" No {noun} is left once they are set aside."
    )
    return {"reason": None, "n": f"{ov['n_overlap']:,}", "of": f"{ov['n_images']:,}", "rest": rest}


def _per_class(per: dict) -> dict:
    """Each class's precision, recall, F1 and support."""
    return {
        "header": ["class", "precision (0-1)", "recall (0-1)", "F1 (0-1)", "support"],
        "rows": [
            [c, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", v["support"]]
            for c, v in per.items()
        ],
    }
