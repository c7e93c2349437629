"""``report.html``: one self-contained page (figures embedded, no network) per run.

Sections: data (sample images, and the augmentation as training applied it when it used
any), configuration as resolved, parameters, training history (and the parent's, for a continued
run), metrics with intervals and baselines, confusion matrix, ROC, the most confident mistakes.
A section with nothing to show (no evaluation, images not recorded) is left out or says why.
Written at the end of ``headstart train`` and by ``headstart report RUN_DIR``.

The markup is in Jinja2 templates (``templates/report``, one per section); the data they show
is prepared by :mod:`headstart.core.report_sections` (every run's sections), the task's module
(:mod:`headstart.core.report_single_label`, :mod:`headstart.core.report_multilabel`: cards,
warnings, the Metrics section), the modality (its figures and example tables) and
:mod:`headstart.core.report_advice` (``--backbone auto`` / ``--strategy auto``).
"""

from __future__ import annotations

import json
from pathlib import Path

from markupsafe import Markup

from headstart.core import plots, report_multilabel, report_sections, report_single_label
from headstart.core.modality import modality_of
from headstart.core.pages import macros, render
from headstart.core.report_advice import advice_section
from headstart.core.report_settings import run_decisions
from headstart.core.report_words import probe_words
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


#: The alternative text of each figure the page embeds, by name.
FIGURE_ALT = {
    "history": "training history",
    "parent": "parent, then this run",
    "confusion": "confusion matrix",
    "roc": "ROC curves",
    "pr": "precision-recall curves",
    "mistakes": "most confident mistakes",
}


def img_tag(path: Path, alt: str) -> str:
    """An ``<img>`` with the PNG at ``path`` embedded."""
    return str(macros().img(report_sections.figure(path, alt)))


def html_table(header: list[str], rows: list[list[str]], css_class: str = "") -> str:
    """A table of escaped text; ``css_class="kv"`` aligns every column left (text tables)."""
    return str(macros().table(header, rows, css_class))


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
    if evaluation is not None:  # the task's own: confusion and ROC, or precision-recall
        figs.update(task_part(evaluation, run.metrics).figures(run, evaluation, out))
    if splits is not None:  # the modality's own: sample images, augmented views, mistakes
        figs.update(modality_of(run).report_figures(run, evaluation, splits, out, captions))
    return figs


def task_part(evaluation: dict | None, metrics: dict):
    """The module of the run's task that supplies its parts of the page: the evaluation's
    task, or the run's when there is no evaluation."""
    task = evaluation.get("task") if evaluation is not None else metrics.get("task")
    return report_multilabel if task == "multi-label" else report_single_label


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
    (``samples``, ``mistakes``; from the modality's ``report_examples``)."""
    m = run.metrics
    examples = {k: Markup(v) for k, v in (examples or {}).items()}
    noun = modality_of(run).noun
    captions = captions or {}
    part = task_part(evaluation, m)
    if evaluation is not None:
        cards = part.cards(evaluation, m, noun)
        warnings = part.warnings(evaluation, m, noun)
    else:
        cards, warnings = part.unevaluated_cards(m), []
    shown = {k: report_sections.figure(p, FIGURE_ALT.get(k, k)) for k, p in figures.items()}
    params = m.get("parameters", {})
    if params:
        from headstart.core.model import parameter_rows

        params = [[label, f"{n:,}"] for label, n in parameter_rows(params)]
    return render(
        "report/page.html.j2",
        css=Markup(CSS),
        name=Path(run.path).name if run.path else "run",
        noun=noun,
        task_template=part.TEMPLATE,
        header=report_sections.header(run, cards, warnings),
        data=report_sections.data_context(run, inspection, shown, captions, examples),
        config=report_sections.configuration_context(run),
        parameters=params,
        figures=shown,
        history=report_sections.history_context(run, captions),
        extra_sections=Markup(extra_sections),
        metrics=part.metrics_context(evaluation, noun) if evaluation is not None else None,
        no_evaluation=report_sections.no_evaluation_context(run),
        mistakes=report_sections.mistakes_context(evaluation, examples),
    )


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


def advice_page(decisions: dict, data: str) -> str:
    """``advice.html`` of ``headstart advise --out``: a title, what was advised on and when,
    then :func:`~headstart.core.report_advice.advice_section`."""
    from datetime import datetime

    when = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")
    return render(
        "report/advice_page.html.j2",
        css=Markup(CSS),
        data=data,
        when=when,
        advice=Markup(advice_section(decisions)),
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
