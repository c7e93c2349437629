"""A trained run's summary: where it is, its score beside the baselines, how it was fitted
and where its time went."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from headstart.console.base import ci_text, message, path_line, path_lines, thousands, verdict_style


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


def _device_words(device: str) -> str:
    if device.startswith("cuda"):
        return f"GPU ({device}) is available and was used"
    if device == "cpu":
        return "cpu (no GPU found: training used the CPU)"
    return device


def render_run(run) -> Group:
    """After training: where the run is, accuracy against the baseline, parameters, timing."""
    from headstart.core.modality import modality_of

    noun = modality_of(run).noun
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for row in [
        *_setup_rows(run, noun),
        *_score_rows(run.metrics, noun),
        *_blend_rows(run.metrics.get("blend")),
        *_fitting_rows(run, noun),
    ]:
        grid.add_row(*row)
    parts: list = [grid]
    leaks = _leaks(run.path)
    if leaks:
        import sys

        parts.append(message("warning", leaks, "bold yellow", stream=sys.stdout))
    parts += path_lines(
        f"{noun}s skipped",
        [f"{b['path']}  ({b['reason']})" for b in run.skipped_examples],
    )
    # where things are, last and unwrapped, so they can be copied whole
    parts.append(path_line(f"run     {run.path}" if run.path else "run     (not saved)"))
    report = run.path / "report.html" if run.path else None
    if report is not None and report.is_file():
        parts.append(path_line(f"report  {report}", style="bold"))
    return Group(*parts)


def _setup_rows(run, noun: str) -> list[tuple]:
    """Where it ran, on which network and input, and the examples it used."""
    from headstart.core.distributed import describe as describe_processes
    from headstart.core.splits import left_out_text

    m = run.metrics
    rows: list[tuple] = []
    rows.append(("device", _device_words(run.record.get("device", "cpu"))))
    processes = describe_processes(run.record.get("distributed"))
    if processes:
        rows.append(("processes", processes))
    rows.append(
        (
            "backbone",
            f"{run.backbone_name} ({run.weights.get('kind')}: {run.weights.get('detail')})",
        )
    )
    rows.append(
        (
            "input",
            f"{run.preprocessing.describe()}, "
            f"pooling={run.model.backbone.pooling}, head={run.head_spec.kind}"
            + (", every-depth features" if run.model.backbone.features.multi else "")
            + (", TTA" if run.model.tta else ""),
        )
    )
    skipped = len(run.skipped_examples)
    unreadable = m.get("n_unreadable") or {}
    left_out = left_out_text(unreadable, (run.split or {}).get("method", {}))
    elsewhere = skipped - sum(unreadable.values())
    notes = [f"unreadable, left out: {left_out}"] if left_out else []
    if elsewhere > 0:
        notes.append(f"{elsewhere} skipped")  # read but unusable (an empty text): in no split
    rows.append(
        (
            f"{noun}s used",
            ", ".join(f"{k} {v:,}" for k, v in run.n_examples.items())
            + (f" ({'; '.join(notes)}, listed below)" if notes else ""),
        )
    )
    cut = m.get("truncation")
    if cut:  # what of each example the network read (texts longer than its window)
        rows.append(("length", Text(cut["summary"], style="yellow" if cut["longer"] else None)))
        if cut.get("advice"):
            rows.append(("", Text(cut["advice"], style="dim")))
    return rows


def _score_rows(m: dict, noun: str) -> list[tuple]:
    """The held-out scores beside the majority-class (or label-frequency) and classic
    baselines, each with what it is a score of."""
    from headstart.core.splits import score_label

    rows: list[tuple] = []
    head = m.get("headline") or {}
    rows += multilabel_rows(m, noun)
    for split, name in (("test", "test accuracy"), ("val", "val accuracy")):
        if f"{split}_accuracy" in m:
            ci = head.get("accuracy_ci95") if head.get("split") == split else None
            # the method's short name; a run from before exact intervals had a bootstrap one
            interval = f", 95% interval {ci_text(ci)}" if ci else ""
            rows.append(
                (
                    name,
                    f"{m[f'{split}_accuracy']:.1%}{interval}   (majority-class baseline "
                    f"{m[f'majority_baseline_{split}_accuracy']:.1%})",
                )
            )
            # the interval's method, once; a run from before exact intervals had a bootstrap
            method = head.get("interval_method", "bootstrap") if ci else ""
            label = score_label(split) + (f"; interval: {method}" if method else "")
            rows.append(("", Text(label, style="dim")))
            if m[f"{split}_accuracy"] <= m[f"majority_baseline_{split}_accuracy"]:
                rows.append(
                    (
                        "",
                        Text(
                            f"no better than always answering {m.get('majority_class')!r}: not "
                            f"yet a useful model (more labelled {noun}s?)",
                            style="yellow",
                        ),
                    )
                )
            classic = m.get("classic_baseline")
            if classic and split == head.get("split"):
                rows += classic_rows(classic, noun)
    return rows


def _blend_rows(blend: dict | None) -> list[tuple]:
    """Text: how the model was blended with the classic baseline, and what the blend hides."""
    rows: list[tuple] = []
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
        rows.append(("blend", text + (f"; the model alone: {scores}" if mixed and scores else "")))
        alone = blend.get("model_alone_vs_baseline")
        if alone:  # what the blend hides: the model alone against the baseline
            rows.append(("", Text(alone["verdict"], style=verdict_style(alone))))
    return rows


def _fitting_rows(run, noun: str) -> list[tuple]:
    """How it was fitted (epochs, probe or ensemble), its size, strategy and time."""
    m = run.metrics
    rows: list[tuple] = []
    if m.get("probe"):
        from headstart.core.report_words import probe_words

        rows.append(("fitting", f"linear probe: {probe_words(m['probe'])}"))
    elif m.get("ensemble"):
        members = ", ".join(
            f"{x['candidate']} ({x['weight']:.0%})" for x in m["ensemble"]["members"]
        )
        rows.append(("fitting", f"ensemble selection (Caruana et al.) of {members}"))
    else:
        stop = " (early stop)" if m.get("stopped_early") else ""
        rows.append(
            ("epochs", f"{m['epochs_run']}{stop}, best weights from epoch {m['best_epoch']}")
        )
    p = m.get("parameters", {})
    if p:
        rows.append(
            (
                "parameters",
                f"{thousands(p['total'])} total, "
                f"{thousands(p['trainable'])} trainable, "
                f"{thousands(p['frozen'])} frozen",
            )
        )
    t = m.get("timing", {})
    cache = m.get("feature_cache", {})
    if cache.get("mode") == "cached":
        hits = ", ".join(sorted(set(cache.get("hits", []))))
        where = f"cached at {cache.get('cut')} ({hits})"
    else:
        where = f"on the fly ({cache.get('reason')})"
    rows.append(("strategy", f"{run.strategy.label()}; frozen part {where}"))
    if m.get("fit_recipe") and run.strategy.trains_backbone:  # how the network was fitted
        from headstart.core.recipe import summary

        rows.append(("fitting", summary(m["fit_recipe"])))
    setfit = m.get("setfit")
    rows.append(
        (
            "time",
            (
                f"SetFit's contrastive stage {setfit['seconds']:.0f}s (the whole encoder, "
                f"{setfit['steps_run']} steps), then "
                if setfit
                else ""
            )
            + _time_text(t, cache, m.get("probe"), bool(m.get("ensemble"))),
        )
    )
    if m.get("skipped_training_samples"):
        rows.append(
            (
                "note",
                f"{m['skipped_training_samples']} training sample-steps skipped: their batch (or a "
                f"process's share of it) held one {noun}, on which BatchNorm cannot train",
            )
        )
    return rows


def multilabel_rows(m: dict, noun: str) -> list[tuple[str, Text | str]]:
    """A multi-label run's rows of its summary (none for one class per example): micro-F1 on
    each held-out split beside the label-frequency baseline's, its interval on the headline
    split, the classic baseline's with the paired verdict, and how thresholds were chosen."""
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
        interval = (
            f", 95% interval {ci_text(mine['micro_f1_ci95'])}" if split == head["split"] else ""
        )
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
                    f"interval {ci_text(theirs['micro_f1_ci95'])}, on the same {theirs['n']:,} "
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
        rows.append(("thresholds", _thresholds_said(t, noun)))
    return rows


def _thresholds_said(t: dict, noun: str) -> str:
    """How a multi-label run's thresholds were chosen."""
    from headstart.core.multilabel import MIN_VAL_POSITIVES

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
    return said


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
            f"{ci_text(head['accuracy_ci95'])}, on the same {head['n']:,} {noun}s (fitted on "
            f"the train {noun}s in {fit.get('seconds', 0):.1f} s)",
        )
    ]
    rows.append(("", Text(paired["verdict"], style=verdict_style(paired))))
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


def _leaks(path) -> str:
    """The leakage warning of the run's inspection (the same sentence as ``inspect``), if any."""
    import json

    from headstart.core.inspection import recorded_leakage

    if path is None or not (path / "inspection.json").is_file():
        return ""
    warning = recorded_leakage(json.loads((path / "inspection.json").read_text()))
    return f"{warning} (see the report's Data section)" if warning else ""
