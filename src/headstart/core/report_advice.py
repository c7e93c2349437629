"""The report's and the advice page's sections for ``headstart advise`` and ``--strategy
auto``: the backbone ranking, the four scenarios, the candidates tried and what each backbone
added (data here, markup in ``templates/report/advice.html.j2`` and ``auto.html.j2``)."""

from __future__ import annotations

from headstart.core.ensemble import ENSEMBLE_NAME
from headstart.core.pages import render
from headstart.core.report_words import (
    cache_footnote,
    few_seconds,
    pct,
    seconds_cell,
    spent_sentence,
)


def advice_section(decisions: dict, headline: dict | None = None) -> str:
    """HTML for ``headstart advise`` results: the backbone ranking and the four-scenario advice
    (and, for ``--strategy auto``, the candidates tried; ``headline``: the run's
    ``metrics["headline"]``, which split its headline score is on)."""
    from headstart.core.scenarios import advice_flags

    noun = decisions.get("noun", "image")
    advice = decisions.get("advice")
    auto = decisions.get("auto")
    return render(
        "report/advice.html.j2",
        noun=noun,
        ranking=_ranking(decisions.get("ranking")),
        advice={**advice, "flags": advice_flags(advice)} if advice else None,
        auto=auto_context(auto, noun, headline) if auto else None,
    )


def _ranking(ranking: list[dict] | None) -> dict | None:
    """The ranking table's header, rows and footnote (what its seconds count)."""
    if not ranking:
        return None
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
    header = ["rank", "backbone", "LogME", "probe acc.", "kNN acc.", "params", "input", "seconds"]
    note = "seconds: loading the backbone and extracting its features. " + cache_footnote(
        r.get("feature_cache") for r in ranking
    )
    return {"header": header, "rows": rows, "note": note.strip()}


def auto_section(auto: dict, noun: str = "image", headline: dict | None = None) -> str:
    """HTML for ``--strategy auto``'s ladder: every candidate, its validation accuracy, cost
    and fate, and the rule that chose."""
    return render("report/auto.html.j2", noun=noun, auto=auto_context(auto, noun, headline))


def auto_context(auto: dict, noun: str, headline: dict | None) -> dict:
    """What the ladder's section shows, as display strings (``auto``: ``decisions["auto"]``)."""
    budget = auto["budget"]
    multi = any("val_micro_f1" in r for r in auto["candidates"])  # several labels per example
    spent = spent_sentence(budget)
    tta = auto.get("tta")
    ens = auto.get("ensemble")
    return {
        "spent": spent[0].upper() + spent[1:],
        "forward_seconds": f"{budget.get('forward_seconds_per_example', 0):.3g}",
        "measured_on": budget.get("forward_measured_on", "this run"),
        "score": "micro-F1" if multi else "accuracy",
        "stopped": auto.get("stopped"),
        "tta": _tta(tta) if tta else None,
        "ensemble": _ensemble(ens) if ens else None,
        "kept": auto["kept"],
        "kept_flags": auto["kept_flags"],
        "on_test": (headline or {}).get("split") == "test",
        "header": [
            "candidate",
            "rung",
            "flags",
            "val. acc." if not multi else "val. micro-F1",
            "vs best so far (points ± noise)",
            "estimated s",
            "seconds",
            "outcome",
        ],
        "rows": [_candidate_row(r) for r in auto["candidates"]],
        "backbones": backbones_context(auto.get("backbones"), auto["kept"]),
    }


def _tta(tta: dict) -> dict:
    """Mirror-image test-time augmentation's outcome: why it was not tried, or its verdict."""
    if tta["outcome"] == "not tried":
        return {"reason": tta["reason"]}
    return {
        "reason": None,
        "verdict": "kept on validation" if tta["outcome"] == "kept" else "rejected on validation",
        "difference": f"{tta['difference'] * 100:+.1f}",
        "noise": f"{tta['noise'] * 100:.1f}",
    }


def _ensemble(ens: dict) -> dict:
    """Ensemble selection's verdict, its validation score and the optimism of scoring it there."""
    from headstart.core.ensemble import verdict_words

    return {
        "rounds": ens["rounds"],
        "words": verdict_words(ens),
        "val_accuracy": pct(ens["val_accuracy"]),
        "optimism": f"{ens['optimism'] * 100:+.1f}",
    }


def _candidate_row(r: dict) -> list[str]:
    """One candidate of the ladder: its name, rung, flags, score, difference, cost and fate."""
    estimate = few_seconds(r["estimate_seconds"]) if "estimate_seconds" in r else "(always)"
    if r["status"] == "skipped":
        estimate = estimate if "estimate_seconds" in r else ""
        return [
            r["candidate"],
            r["rung"],
            r["flags"],
            "",
            "",
            estimate,
            "",
            f"skipped: {r['reason']}",
        ]
    acc = pct(r["val_accuracy"] if "val_accuracy" in r else r["val_micro_f1"])
    diff = (
        "the same examples right"
        if r.get("same_examples_right")
        else f"{r['difference'] * 100:+.1f} ± {r['noise'] * 100:.1f}"
        if "difference" in r
        else "first"
    )
    fate = r["status"] if r["status"] == "kept" else "not kept"
    if "cross_fitted_val_accuracy" in r:  # the ensemble: decided cross-fitted
        estimate = ""
        diff += " (cross-fitted)"
    if r["status"] != "kept" and "--tta" in r["flags"].split():
        fate = "rejected on validation"
    if r.get("out_of_time"):
        n = r.get("epochs_run", 0)
        fate += f" (stopped at the budget after {n} epoch{'' if n == 1 else 's'})"
    secs = few_seconds(r["seconds"])
    return [r["candidate"], r["rung"], r["flags"], acc, diff, estimate, secs, fate]


def backbones_table(backbones: list[dict] | None, noun: str, kept: str) -> str:
    """What each backbone added to ``--strategy auto`` (``decisions["backbones"]``): its
    pass, its best candidate, its share of the selected ensemble, whether the kept model
    (named ``kept``) reads it; why one was left out ("" without other backbones)."""
    shown = backbones_context(backbones, kept)
    if shown is None:
        return ""
    return render("report/backbones.html.j2", noun=noun, backbones=shown)


def backbones_context(backbones: list[dict] | None, kept: str) -> dict | None:
    """The rows of :func:`backbones_table`, with its header; None without other backbones."""
    if not backbones:
        return None
    header = [
        "backbone",
        "operations per image (x the first)",
        "its pass",
        "its best candidate (val. acc.)",
        "share of the selected ensemble",
        "outcome",
    ]
    return {"header": header, "rows": [_backbone_row(b, kept) for b in backbones]}


def _backbone_row(b: dict, kept: str) -> list[str]:
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
        f"{b['best_candidate']} ({pct(b['best_val_accuracy'])})" if b.get("best_candidate") else ""
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
    return [b["backbone"], cost, spent, best, share, fate]
