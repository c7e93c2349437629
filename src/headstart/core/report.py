"""``report.html``: one self-contained page (figures embedded, no network) per run.

Sections: data (sample images, and the augmentation as training applied it when it used
any), configuration as resolved, parameters, training history (and the parent's, for a continued
run), metrics with intervals and baselines, confusion matrix, ROC, the most confident mistakes.
A section with nothing to show (no evaluation, images not recorded) is left out or says why.
Written at the end of ``headstart train`` and by ``headstart report RUN_DIR``.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from headstart.choices import (
    AUTO_TEST_MIN_MULTI_LABEL,
    AUTO_TEST_MIN_PER_CLASS,
    BACKBONE_SEP,
    DEFAULT_LABELS_SEP,
)
from headstart.core import plots, report_multilabel
from headstart.core.distributed import describe as describe_processes
from headstart.core.ensemble import ENSEMBLE_NAME
from headstart.core.evaluate import confident_mistakes
from headstart.core.heads import ENSEMBLE
from headstart.core.inspection import recorded_leakage
from headstart.core.modality import modality_of, other_settings
from headstart.core.probe import UNUSED_SETTINGS
from headstart.core.recipe import shown_settings as recipe_settings
from headstart.core.splits import TABLE_LAYOUTS, split_words
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
.good{background:#ecfdf3;border:1px solid #86d9a9;border-radius:6px;padding:8px 12px}
code{background:#eef1f5;padding:1px 4px;border-radius:3px}
table.kv td,table.kv th{text-align:left}
table.texts td,table.texts th{text-align:left}td.text{max-width:640px}
.row{display:flex;gap:12px;flex-wrap:wrap;align-items:flex-start}.row img{max-width:49%}
"""


def img_tag(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def pct(v: float) -> str:
    return "-" if v is None or v != v else f"{v:.1%}"


def ci_text(ci) -> str:
    """An accuracy-like interval in %; one with no width is "degenerate", never "x - x" (the
    page says why beside it)."""
    return _interval(ci, "{:.1%}")


def _interval(ci, fmt: str) -> str:
    if not ci or ci[0] != ci[0] or ci[1] != ci[1]:
        return "-"
    if ci[0] == ci[1]:
        return "degenerate"
    return f"{fmt.format(ci[0])} - {fmt.format(ci[1])}"


def html_table(header: list[str], rows: list[list[str]], css_class: str = "") -> str:
    """A table of escaped text; ``css_class="kv"`` aligns every column left (text tables)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows
    )
    attr = f' class="{css_class}"' if css_class else ""
    return f"<table{attr}><tr>{head}</tr>{body}</table>"


def make_figures(
    run, evaluation: dict | None, splits=None, captions: dict[str, str] | None = None
) -> dict[str, Path]:
    """Write the run's figures under RUN_DIR/plots and return them by name; ``captions`` (if
    given) receives the HTML caption of figures that need one."""
    out = Path(run.path) / "plots"
    captions = {} if captions is None else captions
    figs: dict[str, Path] = {}
    if run.history is not None and run.history.epochs:
        figs["history"] = plots.plot_history(
            run.history,
            out / "history.png",
            f"Training history: {run.backbone_name}",
            accuracy=run.task.accuracy_label,
        )
    elif (run.metrics.get("probe") or {}).get("tried"):  # fitted in one go: its C search
        figs["history"] = plots.plot_probe_path(
            run.metrics["probe"], out / "history.png", f"Linear probe: {run.backbone_name}"
        )
        words = probe_words(run.metrics["probe"])
        captions["history"] = words[0].upper() + words[1:] + "."
    if evaluation is not None and evaluation.get("task") == "multi-label":
        if evaluation["pr_curves"]:
            figs["pr"] = plots.plot_pr_curves(
                evaluation["pr_curves"], evaluation["per_label"], out / "pr.png"
            )
    elif evaluation is not None:
        figs["confusion"] = plots.plot_confusion(
            evaluation["confusion_matrix"], run.class_names, out / "confusion.png"
        )
        if evaluation["roc"]:
            figs["roc"] = plots.plot_roc(evaluation["roc"], out / "roc.png")
    if splits is not None:  # the modality's own: sample images, augmented views, mistakes
        figs.update(modality_of(run).report_figures(run, evaluation, splits, out, captions))
    return figs


def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def configuration_rows(run) -> list[list[str]]:
    """The run's settings as they were used: ``auto`` and backbone defaults resolved, the
    setting as asked kept in brackets. Settings the run did not use (``--unfreeze`` on a
    frozen run, ``--budget`` without ``--strategy auto``, views without cached augmentation)
    and settings for another kind of data (an image size for a text run) are left out
    (:func:`settings_left_out` names the former; ``config.json`` keeps every setting)."""
    shown = _used_settings(run)
    leave_out = other_settings(modality_of(run)) | {k for k, v in shown.items() if v is None}
    return _rows(run.config, shown, leave_out=leave_out)


def probe_words(probe: dict) -> str:
    """How a linear probe was fitted, from its ``metrics["probe"]`` record."""
    grid = probe.get("grid") or []
    span = f" ({len(grid)} values, {grid[0]:g} to {grid[-1]:g})" if grid else ""
    tail = "" if probe.get("converged", True) else "; L-BFGS stopped at its iteration limit"
    return (
        "logistic regression on standardised features, fitted by L-BFGS, its L2 strength "
        f"C {probe['C']:g} chosen on validation{span}{tail}"
    )


def settings_left_out(run) -> list[str]:
    """The settings of the run's own kind of data that it did not use, in configuration
    order: what :func:`configuration_rows` leaves out besides other modalities' settings."""
    unused = {k for k, v in _used_settings(run).items() if v is None}
    return [k for k in run.config.to_dict() if k in unused]


def run_decisions(run) -> dict:
    """What ``--backbone auto`` and ``--strategy auto`` decided for ``run``: its
    ``advice.json``, or the metrics of a run kept in memory; empty for another run."""
    if run.metrics.get("auto"):
        return run.metrics["auto"]
    path = Path(run.path) / "advice.json" if run.path is not None else None
    if path is not None and path.is_file():
        return json.loads(path.read_text())
    return {}


def _used_settings(run) -> dict[str, str | None]:
    """How the run used each setting that needs saying (None: not used by this run)."""
    cfg = run.config
    mod = modality_of(run)
    m = run.metrics
    cache = m.get("feature_cache") or {}
    shown: dict[str, str | None] = {}
    shown["data"] = cfg.data if cfg.data else f"in-memory {mod.noun}s (not recorded)"
    if cfg.modality != mod.name:
        shown["modality"] = f"{mod.name} ({cfg.modality})"
    if cfg.backbone != run.backbone_name:
        shown["backbone"] = f"{run.backbone_name} ({cfg.backbone})"
    shown.update(recipe_settings(cfg, m.get("fit_recipe")))  # optimizer, rates, schedule
    if not run.strategy.trains_backbone:
        shown["backbone_lr"] = None  # the backbone is frozen
    elif cfg.strategy == "scratch":
        shown["backbone_lr"] = f"{cfg.lr:g} (scratch: the whole network learns at lr)"
    kind = run.strategy.kind
    if kind != "fine-tune":
        shown["unfreeze"] = None
    if kind != "freeze-first":
        shown["layers"] = None
    if not cfg.cache or cache.get("mode") == "on-the-fly":
        shown["cache_budget"] = None  # nothing was written to the feature cache
    elif cfg.cache_budget == "auto" and cache.get("budget_bytes"):
        shown["cache_budget"] = f"{_bytes(cache['budget_bytes'])} (auto)"
    if cfg.head == "linear":  # a single linear layer: no hidden layer, no dropout
        shown["hidden"] = shown["dropout"] = None
    layout = (run.split.get("method") or {}).get("layout")
    if layout and layout not in TABLE_LAYOUTS:  # the columns name a table's cells
        shown["filename_column"] = shown["label_column"] = None
    if not cfg.candidates:  # --candidates: the backbones --backbone auto ranked
        shown["candidates"] = None
    shown["budget"] = None  # --budget: only --strategy auto has one
    shown["ensemble_backbones"] = None  # and only it adds other backbones
    shown.update(mod.used_settings(run))
    blend = m.get("blend") or {}
    if blend.get("tried"):  # what the blend became
        kept = "joint" if run.classic_joint else f"mix, the baseline's weight {blend['weight']:g}"
        shown["blend"] = kept if cfg.blend == blend.get("kind") else f"{kept} ({cfg.blend})"
    if run.thresholds is not None:  # several labels per example: the baseline is beside, not in
        shown["blend"] = None
    probe = m.get("probe")
    if probe:  # fitted by L-BFGS on cached features: no optimizer, rates, epochs
        for key in UNUSED_SETTINGS:
            shown[key] = None
        shown["head"] = f"linear: {probe_words(probe)}"
    if run.head_spec.kind == ENSEMBLE:
        shown["head"] = "ensemble: " + ", ".join(
            f"{x['candidate']} ({x['weight']:.0%})" for x in run.head_spec.members
        )
        backbones = run.backbone_name.split(BACKBONE_SEP)
        passes = (
            f"one every-depth pass per backbone: {', '.join(backbones)}"
            if len(backbones) > 1
            else "one every-depth pass"
        )
        shown["features"] = f"multi ({passes}; each member reads its columns)"
        shown["hidden"] = shown["dropout"] = None
    if run.classic_joint:
        shown["head"] = f"{cfg.head} (trained, then replaced by the joint model's linear layer)"
    elif run.head_spec.kind not in (cfg.head, ENSEMBLE):  # a parent's head, continued
        shown["head"] = f"{run.head_spec.kind} (the parent's head, continued)"
    if m.get("chosen_by") == "auto":
        flags = str((run_decisions(run).get("auto") or {}).get("kept_flags", "")).split()
        chosen = ["strategy", "features", "head"]
        chosen += [k for k in ("backbone", "image_size") if f"--{k.replace('_', '-')}" in flags]
        for key in chosen:  # (the backbone and input size only where another was kept)
            shown[key] = f"{shown.get(key) or getattr(cfg, key)} (chosen by --strategy auto)"
        shown["budget"] = f"{cfg.budget:g} minutes (--strategy auto)"
        shown["ensemble_backbones"] = f"{cfg.ensemble_backbones} (--strategy auto)"
        if "flip" in shown and shown["flip"] is None:  # it decides whether TTA is tried
            del shown["flip"]
    return {**shown, **_shared_settings(run)}


def _shared_settings(run) -> dict[str, str]:
    """The settings every modality resolves the same way: test split, device, epochs, weight
    decay, workers."""
    cfg, m = run.config, run.metrics
    shown: dict[str, str | None] = {}
    method = run.split.get("method") or {}
    test = split_words(method, "test")
    if cfg.test_split is None:
        noun = modality_of(run).noun
        few = (
            f"fewer than {AUTO_TEST_MIN_MULTI_LABEL} {noun}s"
            if run.thresholds is not None
            else f"a class has fewer than {AUTO_TEST_MIN_PER_CLASS} {noun}s"
        )
        test += " (auto)" if test != "none" else f" (auto: {few})"
    elif cfg.test_split == 0:
        test = "none (--test-split 0)"
    elif method.get("test") == "given":
        test += f" (--test-split {cfg.test_split:g} not used)"
    shown["test_split"] = test
    if cfg.task == "auto":  # what the labels decided
        shown["task"] = f"{run.task.name} (auto)"
    if run.thresholds is None and cfg.labels_sep == DEFAULT_LABELS_SEP:
        shown["labels_sep"] = None  # (one class per example: no cell was split)
    if run.thresholds is None and not cfg.label_columns:
        shown["label_columns"] = None
    if run.thresholds is None:
        shown["thresholds"] = None  # (one class per example: the most probable is predicted)
    elif cfg.thresholds == "auto":
        shown["thresholds"] = f"{run.metrics['thresholds'].get('chosen', 'per-label')} (auto)"
    if method.get("val") == "given":
        shown["val_split"] = split_words(method, "val") + " (--val-split not used)"
    elif method.get("val"):
        shown["val_split"] = split_words(method, "val")
    device = run.record.get("device")
    if device and cfg.device == "auto":
        shown["device"] = f"{device} (auto)"
    elif device and device != cfg.device:
        shown["device"] = f"{device} (asked {cfg.device})"
    processes = describe_processes(run.record.get("distributed"))
    if processes:
        shown["processes"] = processes
    world = (run.record.get("distributed") or {}).get("world_size", 1)
    if world > 1:
        share = cfg.batch_size / world
        shown["batch_size"] = f"{cfg.batch_size} (the global batch: {share:g} per process)"
    fitted = m.get("fit_recipe") or {}
    if m.get("probe"):  # fitted by L-BFGS: no epochs (see _used_settings)
        shown["epochs"] = None
    elif m.get("ensemble"):  # its members trained, each as the candidates' table says
        asked = "auto" if cfg.epochs is None else cfg.epochs
        shown["epochs"] = f"{asked} (for the members trained by epochs)"
    elif "epochs_run" in m:
        stop = ", stopped early" if m.get("stopped_early") else ""
        auto = f"auto: {fitted['recipe']}; " if "epochs" in fitted.get("auto", ()) else ""
        shown["epochs"] = f"{fitted.get('epochs', cfg.epochs)} ({auto}ran {m['epochs_run']}{stop})"
    decay = m.get("weight_decay") or {}  # (a probe has none: its C is in the head's row)
    if decay.get("chosen") == "validation":  # (runs saved before the probe: SGD's decay)
        shown["weight_decay"] = f"{decay['value']:g} (auto: chosen on validation)"
    elif decay.get("chosen") == "default" and fitted.get("optimizer") == "adamw":
        shown["weight_decay"] = (
            f"{decay['value']:g} (auto: AdamW's, decoupled; none on biases and LayerNorm)"
        )
    elif decay.get("chosen") == "default":
        shown["weight_decay"] = f"{decay['value']:g} (auto: 0 for the {cfg.head} head)"
    if cfg.workers == -1:
        shown["workers"] = "-1 (auto)"
    cache = m.get("feature_cache") or {}
    if cache.get("mode") == "on-the-fly":
        shown["cache_dtype"] = None  # nothing was cached
    elif cache.get("dtype") and cache["dtype"] != cfg.cache_dtype:
        # --cache-dtype sets the fine-tuning prefix cache; pooled features keep full precision
        shown["cache_dtype"] = None
    return shown


def _rows(cfg, shown: dict[str, str | None], leave_out=frozenset()) -> list[list[str]]:
    rows = []
    for k, v in cfg.to_dict().items():
        if k in leave_out:
            continue
        rows.append([k, shown.get(k, "none" if v is None else str(v))])
        if k == "device" and "processes" in shown:  # not a setting: how the run was started
            rows.append(["processes", shown["processes"]])
    return rows


def cache_status(hits) -> str:
    """``computed``, ``cached`` (every part read from the feature cache) or ``partly cached``,
    from a run's or a ranking row's feature-cache hits ("computed", "memory", "disk")."""
    hits = {hits} if isinstance(hits, str) else set(hits or ())
    if not hits - {"computed"}:
        return "computed"
    return "partly cached" if "computed" in hits else "cached"


def seconds_cell(seconds: float, hits) -> str:
    """Seconds, marked when the figure is a cache read rather than a computation."""
    status = cache_status(hits)
    return f"{seconds:.1f}" + ("" if status == "computed" else f" ({status})")


def cache_footnote(hits_per_row) -> str:
    """The footnote for a table whose feature times may be cache reads ("" when none is)."""
    statuses = {cache_status(h) for h in hits_per_row}
    notes = []
    if "cached" in statuses:
        notes.append(
            "(cached): the features were read from headstart's feature cache (an earlier run "
            "computed them), so the figure is not what computing them costs"
        )
    if "partly cached" in statuses:
        notes.append("(partly cached): some of them were read from the cache, the rest computed")
    return "; ".join(notes) + "." if notes else ""


def timing_sentence(metrics: dict, cache_kept: bool = True) -> str:
    """Where the run's time went, saying whether the frozen outputs were computed or read
    (``cache_kept``: the run's ``cache`` setting, whether computed outputs stay on disk)."""
    t = metrics.get("timing") or {}
    cache = metrics.get("feature_cache") or {}
    train_s = (
        f"fitting the linear probe {t.get('training_seconds', 0):.1f} s"
        if metrics.get("probe")
        else f"training its members {t.get('training_seconds', 0):.1f} s"
        if metrics.get("ensemble")
        else f"training {t.get('training_seconds', 0):.1f} s"
    )
    extract = t.get("feature_extraction_seconds", 0)
    if cache.get("mode") == "on-the-fly":
        return (
            f"No feature cache ({cache.get('reason')}): the network ran on every image each "
            f"epoch; {train_s}."
        )
    status = cache_status(cache.get("hits", ["computed"]))
    if status != "computed" and cache.get("computed_this_run"):  # (--strategy auto)
        return (
            "Frozen outputs: computed by this run before its candidates trained (strategy "
            "auto's frozen forward pass and advice, timed in its section below), then read back "
            f"from the feature cache for this model in {extract:.1f} s; {train_s}."
        )
    how = {
        "computed": "computed once and cached for later runs"
        if cache_kept
        else "computed for this run only (--no-cache)",
        "cached": "read from the feature cache, where an earlier computation with the same "
        "network, preprocessing and data had put them: this is the cost of reading them",
        "partly cached": "partly read from the feature cache",
    }[status]
    setfit = metrics.get("setfit")
    before = (
        f"SetFit's contrastive stage (the whole encoder): {setfit['seconds']:.0f} s; "
        if setfit and setfit.get("seconds") is not None
        else ""
    )
    return f"{before}Frozen outputs: {extract:.1f} s ({how}); {train_s}."


def _no_evaluation(run) -> str:
    where = html.escape(str(run.path)) if run.path else "RUN_DIR"
    if run.config.data:
        return (
            f"<p>No evaluation yet: run <code>headstart evaluate {where}</code> to score it "
            f"on its held-out {modality_of(run).noun}s.</p>"
        )
    return (
        "<p>No evaluation: this run was fitted on in-memory arrays, which the run does not keep, "
        f"so there is nothing here to score it on. Run <code>headstart evaluate {where} "
        "DATA</code> with labelled data (a folder, CSV or arrays with the same classes): it "
        "writes <code>evaluation_external.json</code>, which <code>headstart report</code> "
        "then shows here.</p>"
    )


def render_html(
    run,
    evaluation: dict | None,
    figures: dict[str, Path],
    inspection: dict | None = None,
    extra_sections: str = "",
    captions: dict[str, str] | None = None,
    examples: dict[str, str] | None = None,
) -> str:
    """The report page. ``examples``: ready HTML showing a text run's examples by section
    (``samples``, ``mistakes``; from :func:`text_examples`)."""
    m = run.metrics
    examples = examples or {}
    noun = modality_of(run).noun
    captions = captions or {}
    params = m.get("parameters", {})
    name = Path(run.path).name if run.path else "run"
    from headstart.core.splits import left_out_text, score_label

    multi = (evaluation or {}).get("task") == "multi-label"
    if multi:  # several labels per example: micro-F1 and the label-frequency baseline
        cards = report_multilabel.cards(evaluation, m, noun)
    elif evaluation is not None:
        # the headline: accuracy, its interval and the baseline, all on the same images
        baseline = next((r for r in evaluation["table"] if r["kind"] == "baseline"), None)
        cards = [
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
        classic = next((r for r in evaluation["table"] if r["kind"] == "classic baseline"), None)
        if classic:
            cards.append(
                (
                    f"{classic['name']} on the same {noun}s, 95% interval "
                    f"{ci_text(classic.get('accuracy_ci95'))}",
                    pct(classic["accuracy"]),
                )
            )
        if not evaluation["evaluated_on"].startswith("val"):
            cards.append((score_label("val"), pct(m.get("val_accuracy"))))
    elif m.get("task") == "multi-label":
        cards = [
            (score_label("val") + " (micro-F1)", pct(m.get("val_micro_f1"))),
            ("label-frequency baseline", pct(m.get("frequency_baseline_val_micro_f1"))),
        ]
    else:
        cards = [
            (score_label("val"), pct(m.get("val_accuracy"))),
            ("majority-class baseline", pct(m.get("majority_baseline_val_accuracy"))),
        ]
    if params:
        cards.append(
            ("trainable / total parameters", f"{params['trainable']:,} / {params['total']:,}")
        )
    parts = [
        f"<h1>headstart run: {html.escape(name)}</h1>",
        f'<div class="sub">{html.escape(run.backbone_name)} &middot; '
        f"{html.escape(run.describe_model())} &middot; "
        f"{len(run.class_names)} {'labels' if run.thresholds is not None else 'classes'} "
        "&middot; created "
        f"{html.escape(str(run.record.get('created', '')))}</div>",
        '<div class="cards">'
        + "".join(
            f'<div class="card"><b>{html.escape(v)}</b><span>{html.escape(k)}</span></div>'
            for k, v in cards
        )
        + "</div>",
    ]
    if multi:
        parts += [
            f'<p class="{c}">{t}</p>' for c, t in report_multilabel.warnings(evaluation, noun)
        ]
    elif evaluation is not None and baseline and evaluation["accuracy"] <= baseline["accuracy"]:
        parts.append(
            f'<p class="warn">No better than the majority-class baseline on the same {noun}s: '
            f"always answering {html.escape(repr(str(m.get('majority_class'))))} scores as "
            f"well. Not yet a useful model (more labelled {noun}s?).</p>"
        )
    versus = (evaluation or {}).get("classic_baseline")
    if versus and not multi and versus["paired"]["distinguishable"]:
        p = versus["paired"]
        css, verb = ("good", "beats") if p["accuracy_difference"] > 0 else ("warn", "loses to")
        parts.append(
            f'<p class="{css}">This model {verb} the classic baseline '
            f"({html.escape(versus['name'])}, the baseline every {noun} model must beat) on "
            f"the same {noun}s: "
            f"{html.escape(p['verdict'])}</p>"
        )
    blend = m.get("blend") or {}
    if blend.get("tried"):  # text: the run's probabilities mix in the classic baseline's
        alone = ", ".join(
            f"{k.split('_')[0]} {pct(v)}"
            for k, v in (blend.get("model_alone") or {}).items()
            if v is not None
        )
        by_weight = ", ".join(f"{t['weight']:g}: {pct(t['val_accuracy'])}" for t in blend["tried"])
        joint = blend.get("joint")
        if blend.get("kind") == "joint":
            decided = blend.get("log_loss_decided")
            tie = ", equal accuracy: the lower log loss decided" if decided else ""
            how = (
                "with one logistic regression on the classic baseline's features and the model's "
                f"side by side (the model's scaled by {joint['alpha']:g}, C {joint['C']:g}: "
                f"{pct(joint['val_accuracy'])} on validation; its probabilities calibrated at "
                f"temperature {joint.get('temperature', 1.0):.2f}, fitted on validation log "
                "loss, which changes no prediction); its model part replaced the trained head. "
                + (
                    "--blend joint asked for it"
                    if blend.get("chosen_on") == "--blend joint"
                    else "It was chosen on validation over averaging the two models' probabilities"
                )
                + f" (the best weight's accuracy: {pct(joint['mix_val_accuracy'])}{tie}; by "
                f"weight: {html.escape(by_weight)})"
            )
        else:
            how = (
                "with the classic baseline alone (its weight 1"
                if blend["weight"] >= 1
                else "with its model's probabilities averaged with the classic baseline's (the "
                f"baseline's weight {blend['weight']:g}"
            ) + (
                f"; 0 would be the model alone), chosen on validation (accuracy by weight: "
                f"{html.escape(by_weight)})"
            )
            if joint:
                how += (
                    f"; a joint logistic regression on both models' features validated at "
                    f"{pct(joint['val_accuracy'])}"
                )
        versus = blend.get("model_alone_vs_baseline")
        parts.append(
            f"<p><b>Blend.</b> This run predicts {how}."
            + (f" The model alone scored {html.escape(alone)}." if alone else "")
            + (f" {html.escape(versus['verdict'])}" if versus else "")
            + " <code>--blend none</code> keeps the model alone.</p>"
        )
    parts.append('<h2 id="data">Data</h2>')
    if inspection:
        counts = inspection.get("counts", {})
        header = ["label" if inspection.get("label_sets") else "class", *counts]
        rows = [
            [c, *[counts[s][i] for s in counts]]
            for i, c in enumerate(inspection.get("class_names", []))
        ]
        parts.append(html_table(header, rows))
        b = inspection.get("majority_baseline", {})
        sets = inspection.get("label_sets")
        described = (
            f"{sets['cardinality']:.2f} labels per {noun} on average in train, "
            f"{sets['distinct_sets']} distinct label sets, {sets['no_label']} {noun}s with no "
            "label"
            if sets
            else "Imbalance (largest/smallest class in this run's train split) "
            f"{inspection.get('imbalance_ratio', 1):.2f}x; majority class "
            f"'{b.get('class')}'"
        )
        parts.append(
            f"<p>Source: <code>{html.escape(str(inspection.get('location')))}</code> "
            f"({html.escape(str(inspection.get('layout')))}). {html.escape(described)}.</p>"
        )
        warnings = []
        # what the run skipped is listed below; here only what else inspection found
        # unreadable (a file in a split the run did not read)
        listed = {b["path"] for b in run.skipped_examples}
        extra = [u for u in inspection.get("unreadable", []) if u["path"] not in listed]
        if extra:
            warnings.append(
                f"{len(extra)} unreadable {noun}(s) found by inspection: "
                + ", ".join(f"{u['path']} ({u['reason']})" for u in extra[:10])
            )
        leak = recorded_leakage(inspection)
        if leak:
            warnings.append(f"{leak} (leakage)")
        for w in warnings:
            parts.append(f'<p class="warn">{html.escape(w)}</p>')
    parts.append(
        f"<p>{noun.capitalize()}s used: "
        + html.escape(", ".join(f"{k} {v:,}" for k, v in run.n_examples.items()))
        + "</p>"
    )
    cut = m.get("truncation")
    if cut:  # texts longer than the encoder's window: how much of them it read
        by_split = ", ".join(
            f"{k} {v['longer']:,} of {v['texts']:,}" for k, v in cut.get("by_split", {}).items()
        )
        parts.append(
            ('<p class="warn">' if cut["longer"] else "<p>")
            + "<b>Length.</b> "
            + html.escape(cut["summary"][0].upper() + cut["summary"][1:])
            + "."
            + (f" By split: {html.escape(by_split)}." if cut["longer"] else "")
            + (f" What to do: {html.escape(cut['advice'])}." if cut.get("advice") else "")
            + "</p>"
        )
    if run.skipped_examples:
        listed = [f"{b['path']} ({b['reason']})" for b in run.skipped_examples]
        where = left_out_text(m.get("n_unreadable") or {}, (run.split or {}).get("method", {}))
        parts.append(
            f'<p class="warn">{len(listed)} {noun}(s) skipped: '
            + html.escape(", ".join(listed[:20]) + (", ..." if len(listed) > 20 else ""))
            + (f". Unreadable, left out: {html.escape(where)}." if where else "")
            + "</p>"
        )
    if not inspection:
        source = run.config.data
        parts.append(
            f"<p>Source: <code>{html.escape(source)}</code>.</p>"
            if source
            else "<p>Source: in-memory arrays (not recorded): the model was fitted from "
            "Python on arrays, so this report cannot show or re-read the images.</p>"
        )
    if "samples" in examples:
        parts.append(examples["samples"])
    grids = [img_tag(figures[k], k) for k in ("samples", "augmented") if k in figures]
    if grids:
        parts.append(f'<div class="row">{"".join(grids)}</div>')
    if "augmented" in captions:
        parts.append(f"<p>{html.escape(captions['augmented'])}</p>")
    elif run.config.augment == "none" and noun == "image":
        parts.append("<p>No augmentation: training saw each image as it is (resized).</p>")
    parts.append('<h2 id="config">Configuration</h2>')
    parts.append(
        "<p>Values as used: where the setting was <code>auto</code> or left to the backbone, "
        "the resolved value is shown with the setting in brackets.</p>"
    )
    parts.append(
        html_table(["setting", "value"], configuration_rows(run)).replace(
            "<table>", '<table class="kv">', 1
        )
    )
    unused = ", ".join(f"<code>{k}</code>" for k in settings_left_out(run))
    parts.append(
        f"<p>Left out: {f'the settings this run did not use ({unused}) and ' if unused else ''}"
        f"those only other kinds of data have; <code>config.json</code> keeps every "
        "setting.</p>"
    )
    parts.append(
        f"<p>Weights: {html.escape(str(run.weights.get('kind')))} "
        f"({html.escape(str(run.weights.get('detail')))}). Reproducibility record: "
        + html.escape(
            ", ".join(
                f"{k} {v}"
                for k, v in run.record.items()
                if k in ("seed", "torch", "timm", "transformers", "headstart", "device", "python")
            )
        )
        + "</p>"
    )
    parts.append('<h2 id="parameters">Parameters</h2>')
    if params:
        from headstart.core.model import parameter_rows

        rows = [[label, f"{n:,}"] for label, n in parameter_rows(params)]
        parts.append(html_table(["parameters", "count"], rows))
    parts.append('<h2 id="history">Training history</h2>')
    if "history" in figures:
        parts.append(img_tag(figures["history"], "training history"))
    if captions.get("history"):
        parts.append(f"<p>{html.escape(captions['history'])}</p>")
    if m.get("timing"):
        parts.append(f"<p>{html.escape(timing_sentence(m, run.config.cache))}</p>")
    if "parent" in figures:
        parts.append(f"<p>{html.escape(captions.get('parent', ''))}</p>")
        parts.append(img_tag(figures["parent"], "parent, then this run"))
    parts.append(extra_sections)
    parts.append('<h2 id="metrics">Metrics</h2>')
    if multi:
        parts.append(report_multilabel.metrics_section(evaluation, noun, html_table))
    elif evaluation is not None:
        parts.append(_metrics_section(evaluation, noun))
    else:
        parts.append(_no_evaluation(run))
    if "confusion" in figures:
        parts.append('<h2 id="confusion">Confusion matrix</h2>')
        parts.append(img_tag(figures["confusion"], "confusion matrix"))
    if "roc" in figures:
        parts.append('<h2 id="roc">ROC curves</h2>')
        parts.append(img_tag(figures["roc"], "ROC curves"))
    if "pr" in figures:
        parts.append('<h2 id="pr">Precision-recall curves</h2>')
        parts.append(img_tag(figures["pr"], "precision-recall curves"))
    if evaluation is not None:
        parts.append(
            '<h2 id="mistakes">Most confident wrong label sets</h2><p>Examples whose predicted '
            "label set is not their true one, most confident first; the percentage is the "
            "probability of exactly the predicted set (each label's sigmoid, or one minus it "
            "for a label left out, multiplied).</p>"
            if multi
            else '<h2 id="mistakes">Most confident mistakes</h2>'
        )
        if "mistakes" in figures:
            parts.append(img_tag(figures["mistakes"], "most confident mistakes"))
        elif "mistakes" in examples:
            parts.append(examples["mistakes"])
        elif confident_mistakes(evaluation, k=1):
            parts.append(
                f"<p>There are misclassified {noun}s, but their data is not available to "
                "this report (the run's data was not recorded or has moved).</p>"
            )
        else:
            parts.append(f"<p>No misclassified {noun}s on the {evaluation['evaluated_on']}.</p>")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>headstart: {html.escape(name)}</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(parts)}</main></body></html>"
    )


def _f1_ci(ci) -> str:
    return _interval(ci, "{:.3f}")


def _points(v: float) -> str:
    """A difference of two accuracies, in percentage points (as the terminal says it)."""
    return "-" if v is None or v != v else f"{100 * v:+.1f}"


def _metrics_section(evaluation: dict, noun: str = "image") -> str:
    """The Metrics section: accuracy-like numbers in %, F1 on 0-1, the paired comparison of
    compared runs, and any overlap of the evaluation images with the training images."""
    from headstart.core.evaluate import degenerate_note, intervals_sentence, is_degenerate

    paired = evaluation.get("paired") or []
    n_boot = (evaluation.get("intervals") or {}).get("bootstrap_resamples", 1000)
    methods = (
        intervals_sentence(noun, n_boot, paired=bool(paired))
        if "intervals" in evaluation
        else "Intervals are 95% bootstrap intervals (this evaluation was written before "
        "headstart's exact ones; headstart evaluate rewrites it)."
    )
    parts = [
        f"<p>Evaluated on {html.escape(evaluation['evaluated_on'])}: "
        f"{evaluation['n']:,} {noun}s. "
        + html.escape(methods)
        + (
            " Overlapping intervals do not settle whether two models differ; compared runs are "
            f"judged pair by pair on the same {noun}s below.</p>"
            if paired
            else " Overlapping intervals do not settle whether two models differ: <code>"
            "headstart evaluate RUN --compare OTHER_RUN</code> judges two runs pair by pair on "
            f"the same {noun}s.</p>"
        )
    ]
    bad = evaluation.get("unreadable") or []
    if bad:
        parts.append(
            f'<p class="warn">{len(bad)} unreadable {noun}(s) of the '
            f"{html.escape(evaluation['evaluated_on'])} left out of every count: "
            + html.escape(", ".join(f"{b['path']} ({b['reason']})" for b in bad[:20]))
            + "</p>"
        )
    not_used = (evaluation.get("evaluation_data") or {}).get("not_used")
    if not_used:
        parts.append(
            "<p>Not used: "
            + html.escape(", ".join(f"{k} ({v:,} {noun}s)" for k, v in not_used.items()))
            + "</p>"
        )
    rows = [
        [
            r["name"],
            r["n"],
            pct(r["accuracy"]),
            ci_text(r.get("accuracy_ci95")),
            pct(r.get("balanced_accuracy")),
            f"{r.get('macro_f1', float('nan')):.3f}",
            _f1_ci(r.get("macro_f1_ci95")),
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
    parts.append(html_table(header, rows))
    for r in evaluation["table"]:
        if is_degenerate(r.get("macro_f1_ci95")):
            note = degenerate_note("macro F1", r["macro_f1"], r["n"], noun)
            parts.append(f'<p class="sub">{html.escape(r["name"])}: {html.escape(note)}.</p>')
    classic = evaluation.get("classic_baseline")
    if classic:
        p = classic["paired"]
        css = ' class="warn"' if p["distinguishable"] and p["accuracy_difference"] < 0 else ""
        parts.append(
            f"<p{css}><b>Against the classic baseline</b> ({html.escape(classic['description'])}"
            f"; fitted on this run's train {noun}s, the baseline every {noun} model must beat): "
            f"{p['this_right_other_wrong']} "
            f"{noun if p['this_right_other_wrong'] == 1 else noun + 's'} only this run gets right, "
            f"{p['other_right_this_wrong']} only the baseline. {html.escape(p['verdict'])}</p>"
        )
    if paired:
        parts.append(
            f"<p>Paired comparison on the same {noun}s: the accuracy difference (this run minus "
            "the compared run, in percentage points) with its 95% interval, and McNemar's "
            f"exact test on the {noun}s only one of the two gets right.</p>"
        )
        parts.append(
            html_table(
                [
                    "compared run",
                    f"{noun}s",
                    "only this run right",
                    "only compared run right",
                    "accuracy difference (points)",
                    "95% interval (points)",
                    "McNemar p",
                ],
                [
                    [
                        p["other"],
                        f"{p['n']:,}",
                        p["this_right_other_wrong"],
                        p["other_right_this_wrong"],
                        _points(p["accuracy_difference"]),
                        " to ".join(map(_points, p["accuracy_difference_ci95"])),
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
            f'<p class="warn">Overlap with the training {noun}s could not be checked: '
            f"{html.escape(str(ov.get('reason')))}.</p>"
        )
    elif ov is not None and ov["n_overlap"]:
        clean = ov.get("without_overlap")
        rest = (
            f" On the other {clean['n']:,} {noun}s: accuracy {pct(clean['accuracy'])} "
            f"({ci_text(clean['accuracy_ci95'])}), macro F1 {clean['macro_f1']:.3f} "
            f"({_f1_ci(clean['macro_f1_ci95'])})."
            if clean
            else f" No {noun} is left once they are set aside."
        )
        parts.append(
            f'<p class="warn">{ov["n_overlap"]:,} of the {ov["n_images"]:,} evaluation {noun}s '
            f"are training {noun}s of this run (the same content): the scores above are optimistic."
            f"{html.escape(rest)}</p>"
        )
    per = evaluation["per_class"]
    parts.append(
        html_table(
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
    """Figures + report.html (+ evaluation.json when given) in the run directory.

    Without ``evaluation``, an ``evaluation_external.json`` the run holds (from ``headstart
    evaluate RUN_DIR DATA``) is shown instead, if there is one. Without ``extra_sections``,
    the run's ``advice.json`` (written by ``--strategy auto`` and ``--backbone auto``) gives
    them, so a report rewritten by ``report`` or ``evaluate`` keeps them."""
    path = Path(run.path)
    decisions = run_decisions(run) if not extra_sections else None
    if decisions:
        extra_sections = advice_section(decisions, run.metrics.get("headline"))
    if evaluation is not None:
        atomic_write_json(path / "evaluation.json", evaluation)
    shown = evaluation
    if shown is None and (path / "evaluation_external.json").is_file():
        shown = json.loads((path / "evaluation_external.json").read_text())
    inspection = None
    if (path / "inspection.json").is_file():
        inspection = json.loads((path / "inspection.json").read_text())
    captions: dict[str, str] = {}
    figures = make_figures(run, shown, splits, captions)
    if parent is None and run.parent:
        from headstart.core.runs import load_run

        try:
            parent = load_run(run.parent)
        except Exception:  # the parent moved or was deleted: the report goes on without it
            parent = None
    if (
        parent is not None
        and parent.history is not None
        and parent.history.epochs
        and run.history is not None
        and run.history.epochs
    ):
        figures["parent"] = plots.plot_histories(
            {
                f"{parent.strategy.label()} (parent)": parent.history,
                f"{run.strategy.label()} (this run)": run.history,
            },
            path / "plots" / "parent_vs_this.png",
            title=(f"Validation accuracy: {parent.strategy.label()}, then {run.strategy.label()}"),
        )
        captions["parent"] = continuation_caption(run, parent)
    out = path / "report.html"
    examples = modality_of(run).report_examples(run, shown, splits) if splits is not None else {}
    page = render_html(run, shown, figures, inspection, extra_sections, captions, examples)
    atomic_write_text(out, page)
    return out


def continuation_caption(run, parent) -> str:
    """What the parent-then-this-run plot draws, in words (see plots.continuation_layout)."""
    n, k = len(parent.history.epochs), len(run.history.epochs)
    best = parent.history.best_epoch or n
    which = (
        f"its best epoch ({best}), which was also its last"
        if best == n
        else f"its best epoch ({best}), not its last ({n})"
    )
    return (
        f"Continued from {run.parent}. Validation accuracy per epoch: the parent's training on "
        f"epochs 1-{n}, then this run's on epochs {n + 1}-{n + k}, after the dotted line. "
        f"This run started from the parent's weights of {which}; the dashed line joins that "
        "epoch (circled) to this run's first epoch."
    )


def advice_section(decisions: dict, headline: dict | None = None) -> str:
    """HTML for ``headstart advise`` results: the backbone ranking and the four-scenario advice
    (and, for ``--strategy auto``, the candidates tried; ``headline``: the run's
    ``metrics["headline"]``, which split its headline score is on)."""
    from headstart.core.scenarios import advice_flags

    parts = []
    ranking = decisions.get("ranking")
    noun = decisions.get("noun", "image")
    if ranking:
        parts.append('<h2 id="ranking">Backbones ranked on your data (before training)</h2>')
        parts.append(
            f"<p>Scored on frozen features of the training {noun}s: LogME evidence "
            "(higher is better), a 5-fold logistic-regression probe and a cosine kNN. "
            "No backbone was fine-tuned to produce this table.</p>"
        )
        rows = [
            [
                r["rank"],
                r["name"],
                f"{r['logme']:.3f}",
                pct(r["probe"]),
                pct(r["knn"]),
                f"{r['parameters'] / 1e6:.1f}M",
                r.get("input") or "x".join(map(str, r["image_size"])),
                seconds_cell(r["feature_seconds"], r.get("feature_cache")),
            ]
            for r in ranking
        ]
        parts.append(
            html_table(
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
        note = "seconds: loading the backbone and extracting its features. " + cache_footnote(
            r.get("feature_cache") for r in ranking
        )
        parts.append(f'<p class="sub">{html.escape(note.strip())}</p>')
    advice = decisions.get("advice")
    if advice:
        parts.append('<h2 id="advice">How much to retrain: the four scenarios</h2>')
        parts.append(
            f"<p><b>{html.escape(advice['scenario'])}</b> &rarr; "
            f"<code>{html.escape(advice_flags(advice))}</code></p><ul>"
            + "".join(f"<li>{html.escape(r)}</li>" for r in advice["reasons"])
            + "</ul>"
        )
    auto = decisions.get("auto")
    if auto:
        parts.append(auto_section(auto, noun, headline))
    return "".join(parts)


def auto_section(auto: dict, noun: str = "image", headline: dict | None = None) -> str:
    """HTML for ``--strategy auto``'s ladder: every candidate, its validation accuracy, cost
    and fate, and the rule that chose."""
    budget = auto["budget"]
    on_test = (headline or {}).get("split") == "test"
    after = (
        "the headline above is the test split's."
        if on_test
        else f"this data has no test split, so the headline above is that optimistic "
        f"validation score too: score it on {noun}s it has not seen "
        "(<code>headstart evaluate RUN NEW_DATA</code>)."
    )
    rows = []
    multi = any("val_micro_f1" in r for r in auto["candidates"])  # several labels per example
    for r in auto["candidates"]:
        estimate = few_seconds(r["estimate_seconds"]) if "estimate_seconds" in r else "(always)"
        if r["status"] == "skipped":
            acc, diff, secs = "", "", ""
            estimate = estimate if "estimate_seconds" in r else ""
            fate = f"skipped: {r['reason']}"
        else:
            acc = pct(r["val_accuracy"] if "val_accuracy" in r else r["val_micro_f1"])
            diff = (
                "the same examples right"
                if r.get("same_examples_right")
                else f"{r['difference'] * 100:+.1f} ± {r['noise'] * 100:.1f}"
                if "difference" in r
                else "first"
            )
            secs = few_seconds(r["seconds"])
            fate = r["status"] if r["status"] == "kept" else "not kept"
            if "cross_fitted_val_accuracy" in r:  # the ensemble: decided cross-fitted
                estimate = ""
                diff += " (cross-fitted)"
            if r["status"] != "kept" and "--tta" in r["flags"].split():
                fate = "rejected on validation"
            if r.get("out_of_time"):
                n = r.get("epochs_run", 0)
                fate += f" (stopped at the budget after {n} epoch{'' if n == 1 else 's'})"
        rows.append([r["candidate"], r["rung"], r["flags"], acc, diff, estimate, secs, fate])
    table = html_table(
        [
            "candidate",
            "rung",
            "flags",
            "val. acc." if not multi else "val. micro-F1",
            "vs best so far (points ± noise)",
            "estimated s",
            "seconds",
            "outcome",
        ],
        rows,
        css_class="kv",
    )
    notes = []
    if auto.get("stopped"):
        notes.append(f"The climb stopped early: {auto['stopped']}.")
    tta = auto.get("tta")
    if tta:
        if tta["outcome"] == "not tried":
            what = f"not tried ({tta['reason']})"
        else:
            verdict = "kept on validation" if tta["outcome"] == "kept" else "rejected on validation"
            what = (
                f"tried and {verdict} ({tta['difference'] * 100:+.1f} ± "
                f"{tta['noise'] * 100:.1f} points against the same model without it). Nothing "
                f"in the data or its inspection says whether a mirrored {noun} keeps its class, "
                "so validation decided; where mirroring changes the class (digits, text), "
                "<code>--no-flip</code> leaves it out"
            )
        notes.append(f"Mirror-image test-time augmentation: {what}.")
    ens = auto.get("ensemble")
    if ens:
        from headstart.core.ensemble import verdict_words

        words = verdict_words(ens)
        notes.append(
            f"Ensemble selection (Caruana et al. 2004, {ens['rounds']} rounds with "
            f"replacement over the frozen candidates' validation probabilities): "
            f"{html.escape(words)}. Selected and scored on the same validation {noun}s it "
            f"reads {pct(ens['val_accuracy'])}, {ens['optimism'] * 100:+.1f} points above its "
            "cross-fitted score (selected on one half, scored on the other): that optimism "
            "is why the decision is cross-fitted."
        )
    budget_words = html.escape(spent_sentence(budget))
    backbones = backbones_table(auto.get("backbones"), noun, auto["kept"])
    return (
        '<h2 id="auto">Strategy auto: the candidates tried</h2>'
        f"<p>{budget_words[0].upper() + budget_words[1:]}. The budget counts everything the "
        "strategy does (saving the run and writing this report come after). Candidates go "
        "cheapest first. The first, the plain train model, always trains to its end, so that "
        "auto never returns less than plain train; each later one starts only when its "
        "estimate, from the measured cost of a forward pass "
        f"({budget.get('forward_seconds_per_example', 0):.3g} s per {noun}; measured on "
        f"{html.escape(budget.get('forward_measured_on', 'this run'))}) fits in what is "
        "left, and stops at the budget's deadline with its best epoch. A candidate replaces "
        f"the best so far only when its validation {'micro-F1' if multi else 'accuracy'} is "
        "higher by more than one "
        f"standard error of the paired difference on the same validation {noun}s; costlier "
        "rungs are climbed only while the last one paid. "
        + " ".join(notes)
        + f" Kept: <b>{html.escape(auto['kept'])}</b> "
        f"(<code>{html.escape(auto['kept_flags'])}</code>). Validation chose it, so its "
        f"validation score is optimistic: {after}</p>" + table + backbones
    )


def backbones_table(backbones: list[dict] | None, noun: str, kept: str) -> str:
    """What each backbone added to ``--strategy auto`` (``decisions["backbones"]``): its
    pass, its best candidate, its share of the selected ensemble, whether the kept model
    (named ``kept``) reads it; why one was left out."""
    if not backbones:
        return ""
    rows = []
    for b in backbones:
        if b["status"] == "first":
            cost, spent = "1", "the frozen pass above"
        elif b["status"] == "tried":
            cost = f"{b['relative_cost']:.2f}"
            spent = (
                f"{few_seconds(b['pass_seconds'])} s"
                if b.get("computed")
                else "0 s (read from the cache)"
            )
        else:
            cost = f"{b['relative_cost']:.2f}" if "relative_cost" in b else ""
            spent = ""
        best = (
            f"{b['best_candidate']} ({pct(b['best_val_accuracy'])})"
            if b.get("best_candidate")
            else ""
        )
        share = pct(b["ensemble_weight"]) if "ensemble_weight" in b else ""
        if b["status"] not in ("first", "tried"):
            fate = f"skipped: {b.get('reason', '')}"
        elif kept in b.get("candidates", []):
            fate = "the kept model reads it"
        elif kept == ENSEMBLE_NAME and b.get("ensemble_weight"):
            fate = "the kept ensemble reads it"
        else:
            fate = "not kept"
        rows.append([b["backbone"], cost, spent, best, share, fate])
    table = html_table(
        [
            "backbone",
            "operations per image (x the first)",
            "its pass",
            "its best candidate (val. acc.)",
            "share of the selected ensemble",
            "outcome",
        ],
        rows,
        css_class="kv",
    )
    return (
        '<h3 id="auto-backbones">What each backbone added</h3>'
        f"<p>Each other backbone read the same {noun}s at the first one's input size, in one "
        "forward pass of its own (cached), and its frozen candidates joined the ladder above; "
        "its share is its weight in the ensemble the selection chose, whether or not the "
        "ensemble was kept (a head on several backbones side by side counts for each "
        "equally).</p>" + table
    )


def few_seconds(seconds: float) -> str:
    """Seconds as ``--strategy auto`` shows them: a tenth under 10 s, whole above."""
    return f"{seconds:.1f}" if seconds < 10 else f"{seconds:.0f}"


def spent_sentence(budget: dict) -> str:
    """Where ``--strategy auto``'s time went, against its budget (``decisions["budget"]``):
    the one wording the terminal and the report share."""
    parts = [
        f"{name} {few_seconds(budget[key])} s"
        for name, key in (
            ("frozen forward pass", "frozen_pass_seconds"),
            ("advice", "advice_seconds"),
            ("timing a forward pass", "timing_seconds"),
            ("loading other backbones", "backbones_seconds"),
            ("candidates", "candidates_seconds"),
        )
        if budget.get(key)
    ]
    total = budget.get("seconds", budget["minutes"] * 60)  # (older advice.json records lack it)
    words = (
        f"spent {budget['spent_seconds']:.0f} s of the {budget['minutes']:g}-minute budget "
        f"({total:.0f} s)"
    )
    if parts:
        words += ": " + ", ".join(parts)
    if budget.get("over_because"):
        words += f"; {budget['over_seconds']:.0f} s over it: {budget['over_because']}"
    return words


def advice_page(decisions: dict, data: str) -> str:
    """``advice.html`` of ``headstart advise --out``: a title, what was advised on and when,
    then :func:`advice_section`."""
    from datetime import datetime

    when = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>headstart advise: {html.escape(data)}</title><style>{CSS}</style></head>"
        "<body><main><h1>headstart advise: which backbone, and how much to retrain</h1>"
        f'<div class="sub">Data <code>{html.escape(data)}</code> &middot; {when}</div>'
        f"{advice_section(decisions)}</main></body></html>"
    )


def write_run_report(run, splits=None, *, parent=None) -> Path:
    """inspection.json, train_hashes.json, evaluation.json, figures and report.html for a
    freshly trained, saved run. ``splits`` defaults to the ones it trained on (``run.data``);
    ``parent``, the run it continued, is compared with it on the same images."""
    from headstart.core.data import DataSource, inspect_source
    from headstart.core.evaluate import evaluate_run
    from headstart.core.overlap import write_train_hashes
    from headstart.core.splits import score_label
    from headstart.progress import enabled

    splits = splits if splits is not None else run.data
    if run.path is None or splits is None:
        raise ValueError("write_run_report needs a saved run and the splits it trained on")
    source = DataSource(
        train=splits.train,
        val=splits.val,
        test=splits.test,
        layout="split used by this run",
        location=str(run.config.data or "<arrays>"),
    )
    # for the report, after training: said so, or the line reads as training starting over
    inspection = inspect_source(source, progress=None, desc="report: data summary")
    atomic_write_json(run.path / "inspection.json", inspection.to_dict())
    write_train_hashes(run.path, inspection.item_hashes["train"])  # hashed once, by inspect
    images = splits.test if splits.test is not None else splits.val
    compare = [parent] if parent is not None else []
    described = "test split" if splits.test is not None else score_label("val")
    with enabled(False):  # (the data summary's line stands for the report)
        evaluation = evaluate_run(run, images, described=described, compare=compare)
    return write_report(run, evaluation=evaluation, splits=splits, parent=parent)
