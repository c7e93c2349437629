"""``headstart evaluate``: the models table with intervals, baselines, paired comparisons,
and the notes on what the numbers can and cannot say."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from headstart.console.base import (
    ci_text,
    console,
    difference_interval,
    f1_ci_text,
    fitted_table,
    path_lines,
    points,
    verdict_style,
)


def _degenerate_notes(rows, noun: str) -> list[str]:
    """Why each degenerate macro F1 interval in ``rows`` (evaluation table rows) has no width
    (accuracy intervals never have none)."""
    from headstart.core.statistics import degenerate_note, is_degenerate

    return [
        f"{r['name']}: {degenerate_note('macro F1', r['macro_f1'], r['n'], noun)}"
        for r in rows
        if is_degenerate(r.get("macro_f1_ci95"))
    ]


def _name_width(names, headers: list[str], rows: list[list[str]]) -> int:
    """Width of a name column: its longest word (names wrap between words, never inside one),
    unless the numbers beside it (which never wrap) leave less room on the terminal."""
    longest = max([12, *(len(w) for t in names for w in str(t).split())])
    numbers = 1 + 3 * (len(headers) + 1)
    for c, header in enumerate(headers):
        numbers += max([*(len(line) for line in header.split("\n")), *(len(r[c]) for r in rows)])
    return min(longest, max(12, console().width - numbers))


def _models_table(table: Table, entries: list[dict], headers, rows, drop) -> list[int]:
    """Fill an evaluation's table: the model column (a name wraps between words; a word
    longer than 20 characters folds), then the number columns that fit the terminal, those
    in ``drop`` left out first in that order (numbers never wrap or get cut short: a
    truncated "21.7%-45.…" is no number); baselines dimmed. Returns the columns kept."""
    names = [r["name"] for r in entries]
    longest = min(20, max([12, *(len(w) for t in names for w in str(t).split())]))
    keep = list(range(len(headers)))

    def width() -> int:
        return _name_width(names, [headers[k] for k in keep], [[r[k] for k in keep] for r in rows])

    for c in drop:
        if width() >= longest:
            break
        keep.remove(c)
    table.add_column("model", min_width=width(), overflow="fold")
    for k in keep:
        table.add_column(headers[k], justify="right", no_wrap=True)
    for r, name, cells in zip(entries, names, rows):
        table.add_row(
            name, *[cells[k] for k in keep], style="dim" if "baseline" in r["kind"] else None
        )
    return keep


def render_multilabel_evaluation(ev: dict, noun: str) -> Group:
    """A multi-label evaluation: every score (in %) beside the baselines, the least important
    columns left out first on a narrow terminal, then the per-label table, the classic
    baseline's and compared runs' verdicts, overlap with training and unreadable examples."""
    table = Table(
        title=f"evaluated on {ev['evaluated_on']} ({ev['n']:,} {noun}s)", title_justify="left"
    )
    headers = [
        "micro-F1\n(%)",
        "95% interval\n(%)",
        "macro-F1\n(%)",
        "mean avg.\nprecision (%)",
        "subset\nacc. (%)",
        "Hamming\nloss (%)",
    ]
    rows = [
        [
            f"{r['micro_f1']:.1%}",
            ci_text(r.get("micro_f1_ci95")),
            f"{r['macro_f1']:.1%}",
            "-" if r["mean_average_precision"] is None else f"{r['mean_average_precision']:.1%}",
            f"{r['subset_accuracy']:.1%}",
            f"{r['hamming_loss']:.1%}",
        ]
        for r in ev["table"]
    ]
    keep = _models_table(table, ev["table"], headers, rows, drop=(5, 4, 2, 3))
    n_boot = ev["intervals"]["bootstrap_resamples"]
    captions = [
        f"95% intervals: percentile bootstrap over {noun}s ({n_boot:,} resamples; Wilson's "
        "where every resample scores alike); a label is predicted where its probability "
        "reaches its threshold, chosen on validation"
    ]
    dropped = [headers[k].replace("\n", " ") for k in range(len(headers)) if k not in keep]
    if dropped:
        captions.append(f"too narrow here for: {', '.join(dropped)} (a wider terminal shows them)")
    table.caption = "\n".join(captions)
    table.caption_justify = "left"
    parts: list = [table, _per_label_table(ev)]
    parts += _multilabel_notes(ev, noun)
    return Group(*parts)


def _per_label_table(ev: dict) -> Table:
    """Each label's threshold, precision, recall, F1, average precision and support; on a
    narrow terminal the least telling columns make room first, and the caption says which."""
    columns = [  # (header, justify, priority: 0 never left out, higher numbers first)
        ("label", "left", 0),
        ("threshold", "right", 3),
        ("precision", "right", 2),
        ("recall", "right", 2),
        ("F1", "right", 1),
        ("AP", "right", 2),
        ("support", "right", 3),
        ("predicted", "right", 4),
    ]
    rows = []
    for name, v in ev["per_label"].items():
        ap = v["average_precision"]
        rows.append(
            [
                name,
                f"{v['threshold']:.2f}",
                *("-" if v[k] is None else f"{v[k]:.3f}" for k in ("precision", "recall", "f1")),
                "-" if ap is None else f"{ap:.3f}",
                str(v["support"]),
                str(v["predicted"]),
            ]
        )
    return fitted_table("per label", columns, rows)


def _multilabel_notes(ev: dict, noun: str) -> list:
    """What follows a multi-label evaluation's tables: unreadable examples, the classic
    baseline's and compared runs' verdicts, overlap with the training examples."""
    parts: list = []
    bad = ev.get("unreadable") or []
    parts += path_lines(
        f"{len(bad)} unreadable {noun}(s) of the {ev['evaluated_on']} left out of every count",
        [f"{b['path']}  ({b['reason']})" for b in bad],
    )
    classic = ev.get("classic_baseline")
    if classic:
        p = classic["paired"]
        style = None
        if p["distinguishable"]:
            style = "green" if p["micro_f1_difference"] > 0 else "yellow"
        parts.append(Text("against the classic baseline: " + p["verdict"], style=style))
    for p in ev.get("paired") or []:
        parts.append(Text(p["verdict"]))
    ov = ev.get("overlap")
    if ov is not None and ov.get("checked") and ov["n_overlap"]:
        text = Text()
        text.append(
            f"{ov['n_overlap']:,} of the {ov['n_images']:,} evaluation {noun}s are training "
            f"{noun}s of this run (same content): the scores above are optimistic.",
            style="yellow",
        )
        clean = ov.get("without_overlap")
        if clean:
            ap = clean["mean_average_precision"]
            text.append(
                f"\n  On the other {clean['n']:,} {noun}s: micro-F1 {clean['micro_f1']:.1%} "
                f"(95% interval {ci_text(clean['micro_f1_ci95'])}), macro-F1 "
                f"{clean['macro_f1']:.1%}, mean average precision "
                + ("-" if ap is None else f"{ap:.1%}")
                + "."
            )
        else:
            text.append(f"\n  Every evaluation {noun} is a training {noun}: no honest score left.")
        parts.append(text)
    return parts


def render_evaluation(ev: dict, noun: str = "image") -> Group:
    """Metrics against the baseline (accuracy-like in %, F1 on 0-1), the paired comparison of
    compared runs, any overlap with the training examples, and which examples were used.
    ``noun`` names an example (the run's modality's: image, text)."""
    if ev.get("task") == "multi-label":
        return render_multilabel_evaluation(ev, noun)
    parts: list = [_scores_table(ev, noun), *_data_notes(ev, noun)]
    classic = ev.get("classic_baseline")
    if classic:  # the model against the baseline every model of its kind must beat
        p = classic["paired"]
        parts.append(
            Text(
                f"against the classic baseline ({p['this_right_other_wrong']} "
                f"{noun if p['this_right_other_wrong'] == 1 else noun + 's'} only this run gets "
                f"right, {p['other_right_this_wrong']} only the baseline): " + p["verdict"],
                style=verdict_style(p),
            )
        )
    paired = ev.get("paired") or []
    if paired:
        parts.append(_paired_table(paired, noun))
        parts.append(Text("\n".join(p["verdict"] for p in paired)))
    ov = ev.get("overlap")
    if ov is not None:
        parts.append(_overlap_text(ov, noun))
    per = Table(title="per class (precision, recall, F1 on the 0-1 scale)", title_justify="left")
    for col in ("class", "precision", "recall", "F1", "support"):
        per.add_column(col, justify="left" if col == "class" else "right")
    for name, v in ev["per_class"].items():
        per.add_row(
            name, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", str(v["support"])
        )
    facts = Text(f"log loss {ev['log_loss']:.3f}, macro ROC AUC {ev['macro_auc']:.3f}")
    return Group(*parts, per, facts)


def _scores_table(ev: dict, noun: str) -> Table:
    """Each model's and baseline's scores with intervals, fitted to the terminal's width."""
    table = Table(
        title=f"evaluated on {ev['evaluated_on']} ({ev['n']:,} {noun}s)", title_justify="left"
    )
    # numbers never wrap or get cut short (a truncated "21.7%-45.…" is no number)
    headers = [
        "accuracy\n(%)",
        "95% interval\n(%)",
        "balanced\nacc. (%)",
        "macro F1\n(0-1)",
        "F1 95%\ninterval\n(0-1)",
    ]
    rows = [
        [
            f"{r['accuracy']:.1%}",
            ci_text(r.get("accuracy_ci95")),
            f"{r['balanced_accuracy']:.1%}",
            f"{r['macro_f1']:.3f}",
            f1_ci_text(r.get("macro_f1_ci95")),
        ]
        for r in ev["table"]
    ]
    # on a narrow terminal the least important numbers make room first: the F1 interval, then
    # the accuracy interval, macro F1 and balanced accuracy last (they matter on imbalanced data)
    keep = _models_table(table, ev["table"], headers, rows, drop=(4, 1, 3, 2))
    dropped = [headers[k].replace("\n", " ") for k in range(len(headers)) if k not in keep]
    from headstart.core.statistics import intervals_footnote

    n_boot = (ev.get("intervals") or {}).get("bootstrap_resamples", 1000)
    captions = [intervals_footnote(n_boot, f1=4 in keep)] if 1 in keep or 4 in keep else []
    if 4 in keep:
        captions += _degenerate_notes(ev["table"], noun)
    if dropped:
        captions.append(f"too narrow here for: {', '.join(dropped)} (a wider terminal shows them)")
    table.caption = "\n".join(captions)
    table.caption_justify = "left"
    return table


def _data_notes(ev: dict, noun: str) -> list:
    """The examples left out of the counts (unreadable) and the data not used."""
    parts: list = []
    bad = ev.get("unreadable") or []
    parts += path_lines(
        f"{len(bad)} unreadable {noun}(s) of the {ev['evaluated_on']} left out of every count",
        [f"{b['path']}  ({b['reason']})" for b in bad],
    )
    not_used = (ev.get("evaluation_data") or {}).get("not_used")
    if not_used:
        listed = ", ".join(f"{k} ({v:,} {noun}s)" for k, v in not_used.items())
        parts.append(Text(f"not used from {ev['evaluation_data']['location']}: {listed}"))
    return parts


def _paired_table(paired: list[dict], noun: str) -> Table:
    """This run against each compared run on the same examples, in percentage points."""
    # one count for every pair (the usual case) goes in the title, leaving the names room
    counts = {p["n"] for p in paired}
    same = f"{next(iter(counts)):,} " if len(counts) == 1 else ""
    pt = Table(
        title=f"paired comparison on the same {same}{noun}s (this run minus the compared "
        "run, in percentage points)",
        title_justify="left",
    )
    headers = [
        "only\nthis\nright",
        "only\nother\nright",
        "acc.\ndiff.",
        "95%\ninterval",
        "McNemar\np",
    ]
    rows = [
        [
            str(p["this_right_other_wrong"]),
            str(p["other_right_this_wrong"]),
            points(p["accuracy_difference"]),
            difference_interval(p["accuracy_difference_ci95"]),
            f"{p['mcnemar_p']:.2g}",
        ]
        for p in paired
    ]
    if not same:
        headers.insert(0, f"{noun}s")
        for p, row in zip(paired, rows):
            row.insert(0, f"{p['n']:,}")
    names = [p["other"] for p in paired]
    pt.add_column("compared run", min_width=_name_width(names, headers, rows), overflow="fold")
    for col in headers:
        pt.add_column(col, justify="right", no_wrap=True)
    for name, cells in zip(names, rows):
        pt.add_row(name, *cells)
    from headstart.core.statistics import INTERVAL_METHODS

    pt.caption = f"95% interval: {INTERVAL_METHODS['accuracy_difference']}; p: McNemar's exact test"
    pt.caption_justify = "left"
    return pt


def _overlap_text(ov: dict, noun: str = "image") -> Text:
    if not ov.get("checked"):
        return Text(
            f"overlap with the training {noun}s could not be checked: {ov.get('reason')}",
            style="yellow",
        )
    k, n = ov["n_overlap"], ov["n_images"]
    same = "same pixels" if noun == "image" else "same content"
    if k == 0:
        return Text(f"none of the {n:,} {noun}s is a training {noun} of this run ({same})")
    text = Text()
    text.append("! ", style="bold yellow").append(
        f"{k:,} of the {n:,} evaluation {noun}s are training {noun}s of this run ({same}): "
        "the scores above are optimistic.",
        style="yellow",
    )
    clean = ov.get("without_overlap")
    if clean:
        text.append(
            f"\n  On the other {clean['n']:,} {noun}s: accuracy {clean['accuracy']:.1%} "
            f"(95% interval {ci_text(clean['accuracy_ci95'])}), macro F1 {clean['macro_f1']:.3f} "
            f"({f1_ci_text(clean['macro_f1_ci95'])}); majority-class baseline "
            f"{clean['majority_accuracy']:.1%}."
        )
    else:
        text.append(f"\n  Every evaluation {noun} is a training {noun}: no honest score is left.")
    return text
