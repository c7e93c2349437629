"""Terminal rendering (rich tables) for what the library returns. Presentation only."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from headstart.data.inspect import Inspection


def render_inspection(insp: Inspection, max_rows: int = 50) -> Group:
    """Counts per class and split, sizes, baseline, and the findings worth acting on."""
    splits = list(insp.counts)
    planned = {k: v for k, v in insp.planned_split.items() if insp.counts.get(k) != v}
    table = Table(title=f"{insp.location}  ({insp.layout})", title_justify="left")
    table.add_column("class")
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
    table.add_row(
        Text("total", style="bold"),
        *[Text(str(sum(insp.counts[s])), style="bold") for s in splits],
        *[Text(str(sum(planned[s])), style="bold") for s in planned],
    )

    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    sizes = insp.image_sizes
    if sizes:
        common = ", ".join(f"{h}x{w} ({n})" for h, w, n in sizes["most_common"][:3])
        facts.add_row("image sizes (HxW)", f"{sizes['distinct']} distinct; most common {common}")
        facts.add_row(
            "",
            f"min {sizes['min_hw'][0]}x{sizes['min_hw'][1]}, "
            f"max {sizes['max_hw'][0]}x{sizes['max_hw'][1]}",
        )
    facts.add_row("modes", ", ".join(f"{m} ({n})" for m, n in insp.modes.items()) or "-")
    b = insp.majority_baseline
    facts.add_row(
        "majority-class baseline",
        f"{b['accuracy']:.1%} (always '{b['class']}', on {b['evaluated_on']}): every model must "
        "beat this",
    )
    facts.add_row("imbalance (largest/smallest)", f"{insp.imbalance_ratio:.2f}x")
    if insp.split_method and not insp.split_method.get("error"):
        m = insp.split_method
        facts.add_row("split", f"val: {m.get('val')}; test: {m.get('test')}; seed {m.get('seed')}")
    if insp.ignored_files:
        facts.add_row("ignored", f"{insp.ignored_files} non-image file(s)")
    for note in insp.notes:
        facts.add_row("note", note)

    parts: list = [table, facts]
    warnings = insp.warnings()
    if warnings:
        lines = Text()
        for w in warnings:
            lines.append("! ", style="bold yellow").append(w + "\n")
        for item in insp.unreadable[:10]:
            lines.append(f"  unreadable: {item['path']}: {item['reason']}\n", style="dim")
        for d in insp.duplicates_across[:10]:
            lines.append(f"  across splits: {', '.join(d['ids'])}\n", style="dim")
        parts.append(Panel(lines.rstrip(), title="worth a look", border_style="yellow"))
    else:
        parts.append(Text("no problems found", style="green"))
    return Group(*parts)


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False)
