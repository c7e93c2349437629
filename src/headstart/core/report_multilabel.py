"""The report's parts for a multi-label run (several labels per example): the headline cards,
the Metrics section (every score with its interval beside the baselines, the paired
comparisons, the per-label table with each label's threshold) and the words under them. The
page around them is :mod:`headstart.core.report`'s."""

from __future__ import annotations

import html

from headstart.core.multilabel import NAMES, SCORES


def _pct(v) -> str:
    return "-" if v is None or v != v else f"{100 * v:.1f}%"


def _ci(ci) -> str:
    if not ci:
        return "-"
    return f"{100 * ci[0]:.1f}-{100 * ci[1]:.1f}%"


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


def warnings(evaluation: dict, noun: str) -> list[tuple[str, str]]:
    """(css class, HTML) lines under the cards: no better than the label-frequency baseline;
    the classic baseline's verdict when the data can tell the two apart."""
    out = []
    base = next((r for r in evaluation["table"] if r["kind"] == "baseline"), None)
    if base and evaluation["micro_f1"] <= base["micro_f1"]:
        out.append(
            (
                "warn",
                f"No better than the label-frequency baseline on the same {noun}s ("
                f"{html.escape(base['name'])}): not yet a useful model (more labelled {noun}s?).",
            )
        )
    versus = evaluation.get("classic_baseline")
    if versus and versus["paired"]["distinguishable"]:
        p = versus["paired"]
        css, verb = ("good", "beats") if p["micro_f1_difference"] > 0 else ("warn", "loses to")
        out.append(
            (
                css,
                f"This model {verb} the classic baseline ({html.escape(versus['name'])}) on the "
                f"same {noun}s: {html.escape(p['verdict'])}",
            )
        )
    return out


def metrics_section(evaluation: dict, noun: str, table) -> str:
    """The Metrics section of a multi-label evaluation (``table``: the report's HTML table
    maker)."""
    n_boot = evaluation["intervals"]["bootstrap_resamples"]
    parts = [
        f"<p>Evaluated on {html.escape(evaluation['evaluated_on'])}: {evaluation['n']:,} "
        f"{noun}s, {evaluation['label_cardinality']:.2f} labels per {noun} on average "
        f"({evaluation['predicted_cardinality']:.2f} predicted). Each label is predicted where "
        "its probability reaches its threshold, chosen on validation. Micro-F1 counts every "
        f"({noun}, label) decision once; macro-F1 each label once; mean average precision "
        "ranks without thresholds; subset accuracy is the share of "
        f"{noun}s whose whole label set is right; Hamming loss the share of wrong decisions "
        f"(lower is better). 95% intervals: percentile bootstrap over {noun}s, {n_boot:,} "
        "resamples.</p>"
    ]
    bad = evaluation.get("unreadable") or []
    if bad:
        parts.append(
            f'<p class="warn">{len(bad)} unreadable {noun}(s) left out of every count: '
            + html.escape(", ".join(f"{b['path']} ({b['reason']})" for b in bad[:20]))
            + "</p>"
        )
    header = ["model", f"{noun}s"] + [f"{NAMES[s]} (%)" for s in SCORES]
    rows = [
        [r["name"], f"{r['n']:,}"] + [f"{_pct(r[s])} ({_ci(r.get(f'{s}_ci95'))})" for s in SCORES]
        for r in evaluation["table"]
    ]
    parts.append(table(header, rows))
    classic = evaluation.get("classic_baseline")
    if classic:
        parts.append(
            f"<p><b>Against the classic baseline</b> ({html.escape(classic['description'])}; "
            f"one logistic regression per label, fitted on this run's train {noun}s, "
            f"thresholds chosen on validation): {html.escape(classic['paired']['verdict'])}</p>"
        )
    for p in evaluation.get("paired") or []:
        parts.append(f"<p>{html.escape(p['verdict'])}</p>")
    ov = evaluation.get("overlap")
    if ov is not None and ov.get("checked") and ov["n_overlap"]:
        clean = ov.get("without_overlap")
        rest = (
            f" On the other {clean['n']:,}: micro-F1 {_pct(clean['micro_f1'])} "
            f"({_ci(clean['micro_f1_ci95'])})."
            if clean
            else ""
        )
        parts.append(
            f'<p class="warn">{ov["n_overlap"]:,} of the {ov["n_images"]:,} evaluation {noun}s '
            f"are training {noun}s of this run: the scores above are optimistic."
            f"{html.escape(rest)}</p>"
        )
    parts.append(_per_label(evaluation["per_label"], table))
    return "".join(parts)


def _per_label(per: dict, table) -> str:
    """Each label's threshold, precision, recall, F1, average precision, support and how often
    it was predicted."""
    return table(
        [
            "label",
            "threshold",
            "precision (0-1)",
            "recall (0-1)",
            "F1 (0-1)",
            "average precision",
            "support",
            "predicted",
        ],
        [
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
    )
