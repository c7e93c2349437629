"""Terminal rendering (rich tables) for what the library returns. Presentation only."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from headstart.data.inspect import Inspection


def render_inspection(insp: Inspection, max_rows: int = 50) -> Group:
    """Counts per class and split, sizes, baseline, and the findings worth acting on."""
    splits = list(insp.counts)
    planned = {k: v for k, v in insp.planned_split.items() if insp.counts.get(k) != v}
    table = Table(title=f"{insp.location}  ({insp.layout})", title_justify="left")
    table.add_column("class")
    for s in splits:
        table.add_column(s, justify="right")
    for s in planned:
        table.add_column(f"{s} (planned)", justify="right", style="cyan")
    rows = list(enumerate(insp.class_names))
    for i, name in rows[:max_rows]:
        table.add_row(
            name,
            *[str(insp.counts[s][i]) for s in splits],
            *[str(planned[s][i]) for s in planned],
        )
    if len(rows) > max_rows:
        table.add_row(
            f"... {len(rows) - max_rows} more classes", *[""] * (len(splits) + len(planned))
        )
    table.add_row(
        Text("total", style="bold"),
        *[Text(str(sum(insp.counts[s])), style="bold") for s in splits],
        *[Text(str(sum(planned[s])), style="bold") for s in planned],
    )

    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    sizes = insp.image_sizes
    if sizes:
        common = ", ".join(f"{h}x{w} ({n})" for h, w, n in sizes["most_common"][:3])
        facts.add_row("image sizes (HxW)", f"{sizes['distinct']} distinct; most common {common}")
        facts.add_row(
            "",
            f"min {sizes['min_hw'][0]}x{sizes['min_hw'][1]}, "
            f"max {sizes['max_hw'][0]}x{sizes['max_hw'][1]}",
        )
    facts.add_row("modes", ", ".join(f"{m} ({n})" for m, n in insp.modes.items()) or "-")
    b = insp.majority_baseline
    facts.add_row(
        "majority-class baseline",
        f"{b['accuracy']:.1%} (always '{b['class']}', on {b['evaluated_on']}): every model must "
        "beat this",
    )
    facts.add_row("imbalance (largest/smallest)", f"{insp.imbalance_ratio:.2f}x")
    if insp.split_method and not insp.split_method.get("error"):
        m = insp.split_method
        facts.add_row("split", f"val: {m.get('val')}; test: {m.get('test')}; seed {m.get('seed')}")
    if insp.ignored_files:
        facts.add_row("ignored", f"{insp.ignored_files} non-image file(s)")
    for note in insp.notes:
        facts.add_row("note", note)

    parts: list = [table, facts]
    warnings = insp.warnings()
    if warnings:
        lines = Text()
        for w in warnings:
            lines.append("! ", style="bold yellow").append(w + "\n")
        for item in insp.unreadable[:10]:
            lines.append(f"  unreadable: {item['path']}: {item['reason']}\n", style="dim")
        for d in insp.duplicates_across[:10]:
            lines.append(f"  across splits: {', '.join(d['ids'])}\n", style="dim")
        lines.rstrip()  # in place
        parts.append(Panel(lines, title="worth a look", border_style="yellow"))
    else:
        parts.append(Text("no problems found", style="green"))
    return Group(*parts)


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False)


def _fmt_count(n: int) -> str:
    return f"{n:,}"


def _device_words(device: str) -> str:
    if device.startswith("cuda"):
        return f"GPU ({device}) is available and was used"
    if device == "cpu":
        return "cpu (no GPU found: training used the CPU)"
    return device


def render_run(run) -> Group:
    """After training: where the run is, accuracy against the baseline, parameters, timing."""
    m = run.metrics
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("run", str(run.path) if run.path else "(not saved)")
    grid.add_row("device", _device_words(run.record.get("device", "cpu")))
    grid.add_row(
        "backbone", f"{run.backbone_name} ({run.weights.get('kind')}: {run.weights.get('detail')})"
    )
    h, w = run.preprocessing.input_size
    grid.add_row(
        "input",
        f"{h}x{w}, resize={run.preprocessing.resize}, "
        f"pooling={run.model.backbone.pooling}, head={run.head_spec.kind}",
    )
    n = m.get("n_images", {})
    grid.add_row("images", ", ".join(f"{k} {v}" for k, v in n.items()))
    grid.add_row(
        "val accuracy",
        f"{m['val_accuracy']:.1%}   (majority-class baseline "
        f"{m['majority_baseline_val_accuracy']:.1%})",
    )
    if "test_accuracy" in m:
        grid.add_row(
            "test accuracy",
            f"{m['test_accuracy']:.1%}   (baseline {m['majority_baseline_test_accuracy']:.1%})",
        )
    stop = " (early stop)" if m.get("stopped_early") else ""
    grid.add_row("epochs", f"{m['epochs_run']}{stop}, best weights from epoch {m['best_epoch']}")
    p = m.get("parameters", {})
    if p:
        grid.add_row(
            "parameters",
            f"{_fmt_count(p['total'])} total, "
            f"{_fmt_count(p['trainable'])} trainable, "
            f"{_fmt_count(p['frozen'])} frozen",
        )
    t = m.get("timing", {})
    cache = m.get("feature_cache", {})
    if cache.get("mode") == "cached":
        hits = ", ".join(sorted(set(cache.get("hits", []))))
        where = f"cached at {cache.get('cut')} ({hits})"
    else:
        where = f"on the fly ({cache.get('reason')})"
    grid.add_row("strategy", f"{run.strategy.label()}; frozen part {where}")
    grid.add_row(
        "time",
        f"frozen part {t.get('feature_extraction_seconds', 0):.1f}s once, "
        f"training {t.get('training_seconds', 0):.1f}s "
        f"({t.get('seconds_per_epoch', 0):.2f}s per epoch)",
    )
    bad = m.get("unreadable_images", [])
    parts: list = [grid]
    if bad:
        lines = Text(f"{len(bad)} unreadable image(s) skipped:\n", style="yellow")
        for b in bad[:10]:
            lines.append(f"  {b['path']}: {b['reason']}\n", style="dim")
        parts.append(lines)
    return Group(*parts)


def render_predictions(preds, max_rows: int = 200) -> Table:
    table = Table()
    table.add_column("input", overflow="fold")
    table.add_column("predicted")
    table.add_column("confidence", justify="right")
    for p in preds[:max_rows]:
        if p.error:
            table.add_row(p.input, Text("unreadable", style="red"), p.error)
        else:
            table.add_row(p.input, p.label, f"{p.probabilities.max():.1%}")
    if len(preds) > max_rows:
        table.add_row(f"... {len(preds) - max_rows} more (use --out FILE.csv)", "", "")
    return table


def render_backbones(rows: list[dict]) -> Table:
    table = Table(title="backbones (any timm model name works too)", title_justify="left")
    for col, just in (
        ("Keras name", "left"),
        ("timm name", "left"),
        ("params", "right"),
        ("input", "right"),
        ("ImageNet weights", "left"),
    ):
        table.add_column(col, justify=just)
    for r in rows:
        name = r["timm_name"] + (" (default)" if r["default"] else "")
        size = "x".join(map(str, r["input_size"])) if r["parameters"] else "?"
        table.add_row(r["alias"], name, f"{r['parameters'] / 1e6:.1f}M", size, r["weights"])
    return table


def render_summary(s: dict) -> Table:
    table = Table(
        title=f"{s['backbone']} + head, {s['n_classes']} classes "
        f"({s['num_features']} pooled features)",
        title_justify="left",
    )
    table.add_column("parameters")
    table.add_column("count", justify="right")
    table.add_row("total", _fmt_count(s["total"]))
    table.add_row("trainable", _fmt_count(s["trainable"]))
    table.add_row("frozen", _fmt_count(s["frozen"]))
    table.add_row(
        Text("total as Keras counts it (+ BN statistics)", style="dim"),
        Text(_fmt_count(s["keras_style_total"]), style="dim"),
    )
    return table


def _ci(ci) -> str:
    return f"{ci[0]:.1%}-{ci[1]:.1%}" if ci else ""


def render_evaluation(ev: dict) -> Group:
    table = Table(
        title=f"evaluated on {ev['evaluated_on']} ({ev['n']} images)", title_justify="left"
    )
    for col in ("model", "accuracy", "95% interval", "balanced acc.", "macro F1", "F1 95%"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in ev["table"]:
        style = "dim" if r["kind"] == "baseline" else None
        table.add_row(
            r["name"],
            f"{r['accuracy']:.1%}",
            _ci(r.get("accuracy_ci95")),
            f"{r['balanced_accuracy']:.1%}",
            f"{r['macro_f1']:.3f}",
            _ci(r.get("macro_f1_ci95")).replace("%", ""),
            style=style,
        )
    per = Table(title="per class", title_justify="left")
    for col in ("class", "precision", "recall", "F1", "support"):
        per.add_column(col, justify="left" if col == "class" else "right")
    for name, v in ev["per_class"].items():
        per.add_row(
            name, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", str(v["support"])
        )
    facts = Text(f"log loss {ev['log_loss']:.3f}, macro ROC AUC {ev['macro_auc']:.3f}")
    return Group(table, per, facts)


def render_leaderboard(result: dict) -> Table:
    from headstart.report import cache_footnote, seconds_cell

    table = Table(title="backbones on your data (frozen, same split)", title_justify="left")
    for col in (
        "backbone",
        "val acc.",
        "95% interval",
        "macro F1",
        "params",
        "features s",
        "train s",
    ):
        table.add_column(col, justify="left" if col == "backbone" else "right", overflow="fold")
    for r in result["leaderboard"]:
        table.add_row(
            r["name"],
            f"{r['accuracy']:.1%}",
            _ci(r["accuracy_ci95"]),
            f"{r['macro_f1']:.3f}",
            f"{r['parameters'] / 1e6:.1f}M",
            seconds_cell(r["feature_extraction_seconds"], r.get("feature_cache")),
            f"{r['training_seconds']:.1f}",
        )
    notes = []
    b = result.get("majority_baseline_accuracy")
    if b is not None:
        notes.append(f"majority-class baseline {b:.1%}")
    notes.append(cache_footnote(r.get("feature_cache") for r in result["leaderboard"]))
    notes = [n for n in notes if n]
    if notes:
        table.caption = "\n".join(notes)
        table.caption_justify = "left"
    return table


def render_advice(decisions: dict) -> Group:
    from headstart.report import cache_footnote, seconds_cell

    table = Table(
        title="backbones ranked on your data (frozen features, no training)", title_justify="left"
    )
    for col in (
        "rank",
        "backbone",
        "LogME",
        "probe acc.",
        "kNN acc.",
        "params",
        "input",
        "seconds",
    ):
        table.add_column(col, justify="left" if col == "backbone" else "right", overflow="fold")
    for r in decisions.get("ranking", []):
        table.add_row(
            str(r["rank"]),
            r["name"],
            f"{r['logme']:.3f}",
            f"{r['probe']:.1%}",
            f"{r['knn']:.1%}",
            f"{r['parameters'] / 1e6:.1f}M",
            "x".join(map(str, r["image_size"])),
            seconds_cell(r["feature_seconds"], r.get("feature_cache")),
        )
    ranking = decisions.get("ranking", [])
    if ranking:
        note = "seconds: loading the backbone and extracting its features. " + cache_footnote(
            r.get("feature_cache") for r in ranking
        )
        table.caption = note.strip()
        table.caption_justify = "left"
    parts: list = [table]
    advice = decisions.get("advice")
    if advice:
        from headstart.advise.scenarios import advice_flags

        flags = advice_flags(advice)
        text = Text()
        text.append(f"{advice['scenario']}: ", style="bold").append(flags + "\n", style="cyan")
        for reason in advice["reasons"]:
            text.append(f"  - {reason}\n")
        text.rstrip()  # in place
        parts.append(Panel(text, title="how much to retrain", border_style="cyan"))
    return Group(*parts)
