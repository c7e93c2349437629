"""The data of the run report's sections that every task and modality share (the header, the
blend, Data, Configuration, Training history, no evaluation, mistakes), as display strings for
the templates under ``templates/report``; :mod:`headstart.core.report` assembles the page."""

from __future__ import annotations

from pathlib import Path

from headstart.core.evaluate import confident_mistakes
from headstart.core.inspection import recorded_leakage
from headstart.core.modality import modality_of
from headstart.core.report_settings import configuration_rows, settings_left_out
from headstart.core.report_words import pct, timing_sentence

#: The reproducibility record's entries the Configuration section lists.
RECORDED = ("seed", "torch", "timm", "transformers", "headstart", "device", "python")


def header(run, cards: list, warnings: list) -> dict:
    """What the run is, its headline cards (with its parameter count), the warnings under
    them and its blend."""
    params = run.metrics.get("parameters", {})
    if params:
        cards = [
            *cards,
            ("trainable / total parameters", f"{params['trainable']:,} / {params['total']:,}"),
        ]
    blend = run.metrics.get("blend") or {}
    return {
        "backbone": run.backbone_name,
        "model": run.describe_model(),
        "n_classes": f"{len(run.class_names)} "
        + ("labels" if run.thresholds is not None else "classes"),
        "created": str(run.record.get("created", "")),
        "cards": cards,
        "warnings": warnings,
        "blend": blend_context(blend) if blend.get("tried") else None,
    }


def blend_context(blend: dict) -> dict:
    """How a text run's probabilities mix in the classic baseline's (``metrics["blend"]``)."""
    alone = ", ".join(
        f"{k.split('_')[0]} {pct(v)}"
        for k, v in (blend.get("model_alone") or {}).items()
        if v is not None
    )
    joint = blend.get("joint") or {}
    versus = blend.get("model_alone_vs_baseline")
    shown = {
        "by_weight": ", ".join(
            f"{t['weight']:g}: {pct(t['val_accuracy'])}" for t in blend["tried"]
        ),
        "joint_kept": blend.get("kind") == "joint",
        "joint_val": pct(joint["val_accuracy"]) if joint else None,
        "alone": alone,
        "versus": versus["verdict"] if versus else None,
    }
    if shown["joint_kept"]:
        shown.update(
            alpha=f"{joint['alpha']:g}",
            C=f"{joint['C']:g}",
            temperature=f"{joint.get('temperature', 1.0):.2f}",
            asked_joint=blend.get("chosen_on") == "--blend joint",
            mix_val=pct(joint["mix_val_accuracy"]),
            tie=bool(blend.get("log_loss_decided")),
        )
    else:
        shown.update(baseline_alone=blend["weight"] >= 1, weight=f"{blend['weight']:g}")
    return shown


def data_context(run, inspection, figures: dict, captions: dict, examples: dict) -> dict:
    """The Data section: what inspection counted, the examples used, skipped and cut, the
    modality's samples and the augmentation."""
    from headstart.core.splits import left_out_text

    m = run.metrics
    noun = modality_of(run).noun
    skipped = None
    if run.skipped_examples:
        listed = [f"{b['path']} ({b['reason']})" for b in run.skipped_examples]
        where = left_out_text(m.get("n_unreadable") or {}, (run.split or {}).get("method", {}))
        skipped = {
            "n": len(listed),
            "listed": ", ".join(listed[:20]) + (", ..." if len(listed) > 20 else ""),
            "where": where,
        }
    return {
        "inspection": _inspection(run, inspection, noun) if inspection else None,
        "used": ", ".join(f"{k} {v:,}" for k, v in run.n_examples.items()),
        "length": _length(m.get("truncation")),
        "skipped": skipped,
        "source": run.config.data,
        "samples": examples.get("samples"),
        "grids": [figures[k] for k in ("samples", "augmented") if k in figures],
        "augmented": captions.get("augmented"),
        "no_augmentation": run.config.augment == "none" and noun == "image",
    }


def _inspection(run, inspection: dict, noun: str) -> dict:
    """Counts per class (or label) and split, the source, and what else inspection found."""
    counts = inspection.get("counts", {})
    b = inspection.get("majority_baseline", {})
    sets = inspection.get("label_sets")
    described = (
        f"{sets['cardinality']:.2f} labels per {noun} on average in train, "
        f"{sets['distinct_sets']} distinct label sets, {sets['no_label']} {noun}s with no label"
        if sets
        else "Imbalance (largest/smallest class in this run's train split) "
        f"{inspection.get('imbalance_ratio', 1):.2f}x; majority class '{b.get('class')}'"
    )
    warnings = []
    # what the run skipped is listed below; here only what else inspection found
    # unreadable (a file in a split the run did not read)
    listed = {s["path"] for s in run.skipped_examples}
    extra = [u for u in inspection.get("unreadable", []) if u["path"] not in listed]
    if extra:
        warnings.append(
            f"{len(extra)} unreadable {noun}(s) found by inspection: "
            + ", ".join(f"{u['path']} ({u['reason']})" for u in extra[:10])
        )
    leak = recorded_leakage(inspection)
    if leak:
        warnings.append(f"{leak} (leakage)")
    return {
        "header": ["label" if sets else "class", *counts],
        "rows": [
            [c, *[counts[s][i] for s in counts]]
            for i, c in enumerate(inspection.get("class_names", []))
        ],
        "location": str(inspection.get("location")),
        "layout": str(inspection.get("layout")),
        "described": described,
        "warnings": warnings,
    }


def _length(cut: dict | None) -> dict | None:
    """Texts longer than the encoder's window: how much of them it read, by split."""
    if not cut:
        return None
    return {
        "longer": bool(cut["longer"]),
        "summary": cut["summary"][0].upper() + cut["summary"][1:],
        "by_split": ", ".join(
            f"{k} {v['longer']:,} of {v['texts']:,}" for k, v in cut.get("by_split", {}).items()
        ),
        "advice": cut.get("advice"),
    }


def configuration_context(run) -> dict:
    """The Configuration section: the settings as used, those left out, weights and record."""
    return {
        "rows": configuration_rows(run),
        "unused": settings_left_out(run),
        "weights_kind": str(run.weights.get("kind")),
        "weights_detail": str(run.weights.get("detail")),
        "record": ", ".join(f"{k} {v}" for k, v in run.record.items() if k in RECORDED),
    }


def history_context(run, captions: dict) -> dict:
    """The Training history section's words: the figure's caption, the timing, the parent's."""
    m = run.metrics
    return {
        "caption": captions.get("history"),
        "timing": timing_sentence(m, run.config.cache) if m.get("timing") else None,
        "parent": captions.get("parent", ""),
    }


def no_evaluation_context(run) -> dict:
    """Where a run with no evaluation can be scored: its held-out data, or data to give it."""
    return {
        "has_data": bool(run.config.data),
        "where": str(run.path) if run.path else "RUN_DIR",
    }


def mistakes_context(evaluation: dict | None, examples: dict) -> dict | None:
    """The mistakes section under the task's heading (None without an evaluation)."""
    if evaluation is None:
        return None
    return {
        "examples": examples.get("mistakes"),
        "any": bool(confident_mistakes(evaluation, k=1)),
        "evaluated_on": evaluation["evaluated_on"],
    }


def figure(path: Path, alt: str) -> dict:
    """An embedded figure as the templates' ``img`` macro takes it."""
    import base64

    return {"alt": alt, "data": base64.b64encode(Path(path).read_bytes()).decode()}
