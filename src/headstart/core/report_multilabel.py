"""The report's parts for a multi-label run (several labels per example): the headline cards,
the warnings under them and the Metrics section (every score with its interval beside the
baselines, the paired comparisons, the per-label table with each label's threshold). Data here,
markup in ``templates/report/multilabel.html.j2``; :mod:`headstart.core.report_single_label`
is its twin for one class per example, and :mod:`headstart.core.report` the page around them."""

from __future__ import annotations

from headstart.core.multilabel import NAMES, SCORES
from headstart.core.report_words import classic_verdict, pct
from headstart.core.splits import score_label

#: The macros of this task's parts of the page (``metrics``, ``mistakes_heading``).
TEMPLATE = "report/multilabel.html.j2"


def _pct(v) -> str:
    return "-" if v is None or v != v else f"{100 * v:.1f}%"


def _ci(ci) -> str:
    if not ci:
        return "-"
    return f"{100 * ci[0]:.1f}-{100 * ci[1]:.1f}%"


def figures(run, evaluation: dict, out) -> dict:
    """Each label's precision-recall curve with its threshold marked."""
    from headstart.core.plots import plot_pr_curves

    if not evaluation["pr_curves"]:
        return {}
    path = out / "pr.png"
    return {"pr": plot_pr_curves(evaluation["pr_curves"], evaluation["per_label"], path)}


def cards(evaluation: dict, metrics: dict, noun: str) -> list[tuple[str, str]]:
    """(caption, value) of the page's headline cards: micro-F1 with its interval, the
    label-frequency baseline's and the classic baseline's on the same examples."""
    where = f"the {evaluation['evaluated_on']} ({evaluation['n']:,} {noun}s)"
    rows = {r["kind"]: r for r in evaluation["table"]}
    out = [
        (
            f"micro-F1 on {where}, 95% interval {_ci(evaluation['micro_f1_ci95'])}",
            _pct(evaluation["micro_f1"]),
        ),
        (
            f"label-frequency baseline on the same {noun}s",
            _pct(rows["baseline"]["micro_f1"]) if "baseline" in rows else "-",
        ),
    ]
    if "classic baseline" in rows:
        r = rows["classic baseline"]
        out.append(
            (
                f"{r['name']} on the same {noun}s, 95% interval {_ci(r['micro_f1_ci95'])}",
                _pct(r["micro_f1"]),
            )
        )
    out.append(
        (
            "mean average precision, 95% interval "
            + _ci(evaluation["mean_average_precision_ci95"]),
            _pct(evaluation["mean_average_precision"]),
        )
    )
    return out


def unevaluated_cards(metrics: dict) -> list[tuple[str, str]]:
    """The headline cards of a run with no evaluation: its validation scores."""
    return [
        (score_label("val") + " (micro-F1)", pct(metrics.get("val_micro_f1"))),
        ("label-frequency baseline", pct(metrics.get("frequency_baseline_val_micro_f1"))),
    ]


def warnings(evaluation: dict, metrics: dict, noun: str) -> list[tuple[str, str]]:
    """(css class, text) lines under the cards: no better than the label-frequency baseline;
    the classic baseline's verdict when the data can tell the two apart."""
    out = []
    base = next((r for r in evaluation["table"] if r["kind"] == "baseline"), None)
    if base and evaluation["micro_f1"] <= base["micro_f1"]:
        out.append(
            (
                "warn",
                f"No better than the label-frequency baseline on the same {noun}s ("
                f"{base['name']}): not yet a useful model (more labelled {noun}s?).",
            )
        )
    out += classic_verdict(evaluation.get("classic_baseline"), "micro_f1_difference", noun)
    return out


def metrics_context(evaluation: dict, noun: str) -> dict:
    """What the Metrics section of a multi-label evaluation shows, as display strings."""
    bad = evaluation.get("unreadable") or []
    classic = evaluation.get("classic_baseline")
    return {
        "evaluated_on": evaluation["evaluated_on"],
        "n": f"{evaluation['n']:,}",
        "cardinality": f"{evaluation['label_cardinality']:.2f}",
        "predicted": f"{evaluation['predicted_cardinality']:.2f}",
        "n_boot": f"{evaluation['intervals']['bootstrap_resamples']:,}",
        "unreadable": len(bad),
        "unreadable_list": ", ".join(f"{b['path']} ({b['reason']})" for b in bad[:20]),
        "table": {
            "header": ["model", f"{noun}s"] + [f"{NAMES[s]} (%)" for s in SCORES],
            "rows": [
                [r["name"], f"{r['n']:,}"]
                + [f"{_pct(r[s])} ({_ci(r.get(f'{s}_ci95'))})" for s in SCORES]
                for r in evaluation["table"]
            ],
        },
        "classic": {"description": classic["description"], "verdict": classic["paired"]["verdict"]}
        if classic
        else None,
        "verdicts": [p["verdict"] for p in evaluation.get("paired") or []],
        "overlap": _overlap(evaluation.get("overlap")),
        "per_label": _per_label(evaluation["per_label"]),
    }


def _overlap(ov: dict | None) -> dict | None:
    """Evaluation examples that are training examples: how many, and micro-F1 without them."""
    if ov is None or not ov.get("checked") or not ov["n_overlap"]:
        return None
    clean = ov.get("without_overlap")
    rest = (
        f" On the other {clean['n']:,}: micro-F1 {_pct(clean['micro_f1'])} "
        f"({_ci(clean['micro_f1_ci95'])})."
        if clean
        else ""
    )
    return {"n": f"{ov['n_overlap']:,}", "of": f"{ov['n_images']:,}", "rest": rest}


def _per_label(per: dict) -> dict:
    """Each label's threshold, precision, recall, F1, average precision, support and how often
    it was predicted."""
    return {
        "header": [
            "label",
            "threshold",
            "precision (0-1)",
            "recall (0-1)",
            "F1 (0-1)",
            "average precision",
            "support",
            "predicted",
        ],
        "rows": [
            [
                c,
                f"{v['threshold']:.2f}",
                *("-" if v[k] is None else f"{v[k]:.3f}" for k in ("precision", "recall", "f1")),
                "-" if v["average_precision"] is None else f"{v['average_precision']:.3f}",
                v["support"],
                v["predicted"],
            ]
            for c, v in per.items()
        ],
    }
