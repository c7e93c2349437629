"""The report's configuration table: each setting as the run used it (``auto`` and the
backbone's defaults resolved, the setting as asked in brackets), the settings it did not use
left out, and what ``--backbone auto`` / ``--strategy auto`` decided (:func:`run_decisions`)."""

from __future__ import annotations

import json
from pathlib import Path

from headstart.choices import (
    AUTO_TEST_MIN_MULTI_LABEL,
    AUTO_TEST_MIN_PER_CLASS,
    BACKBONE_SEP,
    DEFAULT_LABELS_SEP,
)
from headstart.core.distributed import describe as describe_processes
from headstart.core.heads import ENSEMBLE
from headstart.core.modality import modality_of, other_settings
from headstart.core.probe import UNUSED_SETTINGS
from headstart.core.recipe import shown_settings as recipe_settings
from headstart.core.report_words import probe_words
from headstart.core.splits import TABLE_LAYOUTS, split_words


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
