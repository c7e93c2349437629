"""The words and numbers the run report, the terminal and ``compare`` share: percentages and
intervals, feature-cache marks, where a run's time went, how a linear probe was fitted and
``--strategy auto``'s seconds and budget."""

from __future__ import annotations


def pct(v: float) -> str:
    return "-" if v is None or v != v else f"{v:.1%}"


def ci_text(ci) -> str:
    """An accuracy-like interval in %; one with no width is "degenerate", never "x - x" (the
    page says why beside it)."""
    return interval(ci, "{:.1%}")


def interval(ci, fmt: str) -> str:
    if not ci or ci[0] != ci[0] or ci[1] != ci[1]:
        return "-"
    if ci[0] == ci[1]:
        return "degenerate"
    return f"{fmt.format(ci[0])} - {fmt.format(ci[1])}"


def probe_words(probe: dict) -> str:
    """How a linear probe was fitted, from its ``metrics["probe"]`` record."""
    grid = probe.get("grid") or []
    span = f" ({len(grid)} values, {grid[0]:g} to {grid[-1]:g})" if grid else ""
    tail = "" if probe.get("converged", True) else "; L-BFGS stopped at its iteration limit"
    return (
        "logistic regression on standardised features, fitted by L-BFGS, its L2 strength "
        f"C {probe['C']:g} chosen on validation{span}{tail}"
    )


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


def f1_ci(ci) -> str:
    return interval(ci, "{:.3f}")


def points(v: float) -> str:
    """A difference of two accuracies, in percentage points (as the terminal says it)."""
    return "-" if v is None or v != v else f"{100 * v:+.1f}"


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


def classic_verdict(versus: dict | None, difference: str, noun: str) -> list[tuple[str, str]]:
    """The report's warning line on the classic baseline, when the paired comparison tells
    the two apart: (css class, sentence), or none. ``difference``: the paired record's key of
    the score's difference (accuracy's, or micro-F1's)."""
    if not versus or not versus["paired"]["distinguishable"]:
        return []
    p = versus["paired"]
    css, verb = ("good", "beats") if p[difference] > 0 else ("warn", "loses to")
    return [
        (
            css,
            f"This model {verb} the classic baseline ({versus['name']}, the baseline every "
            f"{noun} model must beat) on the same {noun}s: {p['verdict']}",
        )
    ]
