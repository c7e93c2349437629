"""``headstart compare``: the tutorials' "try other pre-trained networks", in one command.

Every backbone is trained with the frozen strategy on the *same* split (same seed, same
images), each reusing its cached features, and the results go into one leaderboard: accuracy
with its 95% Clopper-Pearson interval, macro F1, parameters, feature-extraction and training
time; every count is of the examples scored (an unreadable one in the split is left out).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from headstart.api import train
from headstart.core.classic import baseline_class
from headstart.core.config import TrainConfig
from headstart.core.data import Splits
from headstart.core.evaluate import evaluate_run
from headstart.core.report_words import cache_status
from headstart.core.splits import OPTIMISTIC, example_noun
from headstart.core.statistics import INTERVAL_METHODS, difference_text
from headstart.core.training import split_data
from headstart.io import atomic_write_json, atomic_write_text
from headstart.progress import enabled

log = logging.getLogger(__name__)


def compare_backbones(
    config: TrainConfig,
    backbones: Sequence[str],
    out: str | Path,
    *,
    overwrite: bool = False,
) -> dict:
    """Train ``config`` once per backbone on one split; write leaderboard JSON, chart, HTML.

    Each run goes to ``out/NAME``; an earlier run there is replaced only with ``overwrite``.
    Notes which backbone starts (before its progress lines); each run notes its own."""
    out = Path(out)
    splits: Splits = split_data(config, None)
    rows = []
    baseline = classic_row = None
    for i, name in enumerate(backbones, 1):
        log.info(f"compare: {name} ({i} of {len(backbones)})")
        cfg = replace(config, backbone=name)
        if baseline_class(splits.train) is not None:
            # each backbone alone: a blend with the classic baseline would rank blends, not
            # backbones (the baseline is shown beside them)
            cfg = replace(cfg, blend="none")
        run = train(
            cfg,
            data=splits,
            out=out / name.replace("/", "_"),
            progress=None,  # (as the caller set it)
            overwrite=overwrite,
            say=None,  # (its notes go where the caller sends them)
        )
        # select on validation (each run's early stopping used it too), report on test
        held_out = splits.test if splits.test is not None else splits.val
        described = "test split" if splits.test is not None else OPTIMISTIC
        with enabled(False):  # scored without bars, as the report scores a run
            ev = evaluate_run(run, held_out, described=described)
        baseline = ev["table"][1]["accuracy"]
        rows.append(_leaderboard_row(name, run, ev, described))
        if "classic_baseline" in ev:  # paired with the baseline on the same examples
            rows[-1]["vs_classic_baseline"] = vs_baseline(ev["classic_baseline"]["paired"])
            classic_row = _classic_row(ev, run)
    rows.sort(key=lambda r: (-r["val_accuracy"], -r["accuracy"]))
    for rank, r in enumerate(rows, 1):
        r["rank"] = rank
    result = {
        "data": str(config.data),
        "split_seed": config.seed,
        "ranked_by": "validation accuracy",
        "evaluated_on": described,
        "n": ev["n"],  # the examples scored: an unreadable one in the split is left out
        "n_unreadable": len(ev["unreadable"]),
        # the ranking's validation split, as the runs used it (an unreadable one left out)
        "n_val": int(run.metrics.get("n_examples", {}).get("val", 0)),
        "n_val_unreadable": int(run.metrics.get("n_unreadable", {}).get("val", 0)),
        "interval_method": INTERVAL_METHODS["accuracy"],
        "noun": example_noun(splits.train),  # what one example is: image, text
        "majority_baseline_accuracy": baseline,
        "leaderboard": rows,
    }
    if classic_row is not None:  # fitted on the same train split as every backbone
        result["classic_baseline"] = classic_row
    atomic_write_json(out / "leaderboard.json", result)
    from headstart.core.plots import plot_leaderboard

    chart = plot_leaderboard(
        rows,
        out / "leaderboard.png",
        baseline,
        xlabel=f"accuracy on the {described}",
        classic=classic_row,
    )
    atomic_write_text(out / "compare.html", _html(result, chart))
    result["report"] = str(out / "compare.html")
    return result


def _leaderboard_row(name: str, run, ev: dict, described: str) -> dict:
    """One backbone's row: its validation accuracy (what ranks), its held-out scores, size,
    input and where its time went."""
    t = run.metrics["timing"]
    hits = sorted(set(run.metrics["feature_cache"].get("hits", [])))
    return {
        "name": name,
        "timm_name": run.backbone_name,
        "run_dir": str(run.path),
        "val_accuracy": run.metrics["val_accuracy"],
        "evaluated_on": described,
        "n": ev["n"],
        "accuracy": ev["accuracy"],
        "accuracy_ci95": ev["accuracy_ci95"],
        "macro_f1": ev["macro_f1"],
        "parameters": run.metrics["parameters"]["total"],
        "input": run.preprocessing.short(),
        "feature_extraction_seconds": t["feature_extraction_seconds"],
        "training_seconds": t["training_seconds"],
        "feature_cache": hits,
        "feature_cache_status": cache_status(hits),
    }


def _classic_row(ev: dict, run) -> dict:
    """The classic baseline's row, fitted on the same train split as every backbone."""
    classic = ev["classic_baseline"]
    shown = next(r for r in ev["table"] if r["kind"] == "classic baseline")
    return {
        "name": classic["name"],
        "description": classic["description"],
        "accuracy": shown["accuracy"],
        "accuracy_ci95": shown["accuracy_ci95"],
        "n": shown["n"],
        "val_accuracy": (run.metrics.get("classic_baseline") or {}).get("val_accuracy"),
    }


def vs_baseline(paired: dict) -> dict:
    """A backbone against the classic baseline, in a leaderboard row: the accuracy difference
    (backbone minus baseline), its 95% interval, McNemar's p and the verdict."""
    return {
        "accuracy_difference": paired["accuracy_difference"],
        "accuracy_difference_ci95": paired["accuracy_difference_ci95"],
        "mcnemar_p": paired["mcnemar_p"],
        "distinguishable": paired["distinguishable"],
        "verdict": paired["verdict"],
    }


def _val_counted(result: dict, noun: str) -> str:
    """`` (on N images; K unreadable left out)`` for the validation split that ranked."""
    n_val, bad = result.get("n_val"), result.get("n_val_unreadable")
    if not n_val or result.get("evaluated_on") != "test split":
        return ""  # no test split: the scored split is the validation split, counted below
    left_out = f"; {bad} unreadable {noun}(s) in it left out" if bad else ""
    return f" (on {n_val:,} {noun}s{left_out})"


def _html(result: dict, chart: Path) -> str:
    from headstart.core.report import CSS, html_table, img_tag
    from headstart.core.report_words import cache_footnote, ci_text, pct, seconds_cell

    classic = result.get("classic_baseline")
    rows = [
        [
            r["name"],
            pct(r["val_accuracy"]),
            pct(r["accuracy"]),
            ci_text(r["accuracy_ci95"]),
            f"{r['macro_f1']:.3f}",
            f"{r['parameters'] / 1e6:.1f}M",
            r.get("input") or "x".join(map(str, r["input_size"])),
            seconds_cell(r["feature_extraction_seconds"], r.get("feature_cache")),
            f"{r['training_seconds']:.1f}",
            *([difference_text(r.get("vs_classic_baseline"))] if classic else []),
        ]
        for r in result["leaderboard"]
    ]
    noun, n = result.get("noun", "image"), result.get("n")
    bad = result.get("n_unreadable")
    left_out = f"; {bad} unreadable {noun}(s) in it left out" if bad else ""
    footnote = cache_footnote(r.get("feature_cache") for r in result["leaderboard"])
    note = f'<p class="sub">{html.escape(footnote)}</p>' if footnote else ""
    table = html_table(
        [
            "backbone",
            "val accuracy (ranks)",
            f"accuracy on the {result['evaluated_on']}",
            "95% interval",
            "macro F1",
            "params",
            "input",
            "features s",
            "training s",
            *(["minus the classic baseline (points, 95% interval)"] if classic else []),
        ],
        rows,
    )
    against = (
        f" Classic baseline ({html.escape(classic['description'])}; fitted on the same train "
        f"split, the baseline every {noun} model must beat): {pct(classic['accuracy'])} "
        f"({ci_text(classic['accuracy_ci95'])}) on the same {noun}s. The last column is each "
        "backbone's accuracy minus the baseline's, paired on the same "
        f"{noun}s (Newcombe's interval; ~: McNemar's test cannot tell the two apart)."
        if classic
        else ""
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>headstart compare"
        f"</title><style>{CSS}</style></head><body><main><h1>Backbones compared</h1>"
        f"<p>Data <code>{html.escape(result['data'])}</code>; every backbone frozen, same "
        f"split (seed {result['split_seed']}); majority-class baseline "
        f"{pct(result['majority_baseline_accuracy'])}. Ranked by validation accuracy"
        f"{_val_counted(result, noun)}; accuracy "
        f"and its 95% interval on the {html.escape(result.get('evaluated_on', 'test split'))}"
        f"{f' ({n:,} {noun}s scored{left_out})' if n else ''}. Intervals are "
        f"{html.escape(result.get('interval_method', INTERVAL_METHODS['accuracy']))} "
        "intervals of a proportion. "
        "Intervals that do not overlap separate two backbones; overlapping ones alone do not "
        "settle it (<code>headstart evaluate RUN --compare OTHER</code> compares two runs "
        f"pair by pair on the same {noun}s).{against}</p>{table}{note}"
        f"{img_tag(chart, 'leaderboard')}"
        "</main></body></html>"
    )
