"""``headstart inspect``: counts per class and split, the baseline, findings worth acting on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from headstart.console.base import path_line, path_lines

if TYPE_CHECKING:
    from headstart.modalities.image.data.inspect import Inspection


def render_inspection(insp: Inspection, max_rows: int = 50) -> Group:
    """Counts per class and split, sizes, baseline, and the findings worth acting on."""
    # paths are printed on lines of their own (soft-wrapped: never cut, copyable whole)
    parts: list = [
        path_line(f"{insp.location}  ({insp.layout})", style="bold"),
        _counts_table(insp, max_rows),
        _facts(insp),
    ]
    warnings = insp.warnings()
    if warnings:
        lines = Text()
        for w in warnings:
            lines.append("! ", style="bold yellow").append(w + "\n")
        lines.rstrip()  # in place
        parts.append(Panel(lines, title="worth a look", border_style="yellow"))
        parts += path_lines("skipped", [f"{u['path']}  ({u['reason']})" for u in insp.unreadable])
        near_empty = getattr(insp, "near_empty", [])  # texts only: the ids the box counts
        parts += path_lines("near-empty", [f"{n['id']}  ({n['text']!r})" for n in near_empty])
        parts += path_lines(
            "in more than one split", ["  ".join(d["ids"]) for d in insp.duplicates_across]
        )
    else:
        parts.append(Text("no problems found", style="green"))
    return Group(*parts)


def _counts_table(insp: Inspection, max_rows: int) -> Table:
    """Examples per class (labels per label) and split, the planned splits beside."""
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
    return table


def _facts(insp: Inspection) -> Table:
    """What is particular to the modality, the baseline every model must beat, the split."""
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

    return facts
