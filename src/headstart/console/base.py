"""What every rendering shares: the console that never cuts a path, the lines a user copies,
messages, and the numbers' formats (intervals, points, counts)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text


class TerminalConsole(Console):
    """Never crops a line at the terminal's width: prose still wraps between words and tables
    and panels fit the width, but a :func:`path_line` runs on whole (a terminal shows it
    folded, a log keeps it on one line, and either way it is copied whole)."""

    def print(self, *objects, crop: bool = False, **kwargs) -> None:
        if objects and all(isinstance(o, Text) and o.no_wrap for o in objects):
            kwargs.setdefault("soft_wrap", True)  # rich wraps a lone Text whatever it says
        super().print(*objects, crop=crop, **kwargs)


def console(stderr: bool = False) -> Console:
    """Output for the command line (see :class:`TerminalConsole`)."""
    return TerminalConsole(stderr=stderr, highlight=False)


def path_line(text: str, style: str | None = None) -> Text:
    """A line holding a path or a name a user copies: never wrapped or cut."""
    return Text(text, style=style or "", no_wrap=True, overflow="ignore")


def message(label: str, text: str, style: str, *, stream=None) -> Text:
    """``label: text`` (an error or a note): wrapped between words on a terminal, one whole
    line in a log or a pipe (where a reader greps for it)."""
    import sys

    stream = stream if stream is not None else sys.stderr
    tty = bool(getattr(stream, "isatty", lambda: False)())
    return Text.assemble(
        (f"{label}: ", style), text, no_wrap=not tty, overflow=None if tty else "ignore"
    )


def path_lines(what: str, items: list[str], limit: int = 10) -> list[Text]:
    """``what`` and then one item per line, each whole (see :func:`path_line`)."""
    if not items:
        return []
    lines = [Text(f"{what}:", style="bold")] + [path_line(f"  {i}") for i in items[:limit]]
    if len(items) > limit:
        lines.append(Text(f"  ... and {len(items) - limit} more (see the JSON)", style="dim"))
    return lines


def thousands(n: int) -> str:
    return f"{n:,}"


def ci_text(ci) -> str:
    """An accuracy interval in %; one with no width (see evaluate.is_degenerate) is never
    printed as "x-x" but as "degenerate", and a note under the table says why."""
    return interval_text(ci, "{:.1%}")


def f1_ci_text(ci) -> str:
    return interval_text(ci, "{:.3f}")


def interval_text(ci, fmt: str) -> str:
    if not ci:
        return ""
    if ci[0] != ci[0] or ci[1] != ci[1]:
        return "-"
    if ci[0] == ci[1]:
        return "degenerate"
    return f"{fmt.format(ci[0])}-{fmt.format(ci[1])}"


def points(v: float) -> str:
    """A difference of two accuracies, in percentage points (the table's title says so)."""
    return f"{100 * v:+.1f}"


def difference_interval(ci) -> str:
    if ci[0] != ci[0] or ci[1] != ci[1]:
        return "-"
    return "{} to {}".format(*map(points, ci))


def verdict_style(paired: dict) -> str:
    """Green when the model is measurably better than the baseline, yellow when worse."""
    if not paired["distinguishable"]:
        return "dim"
    return "green" if paired["accuracy_difference"] > 0 else "yellow"


def fitted_table(
    title: str | None,
    columns: list[tuple[str, str, int]],
    rows: list[list[str]],
    width: int | None = None,
    *,
    min_wrapped: int = 10,
) -> Table:
    """A table that fits ``width`` without cutting what a user copies.

    ``columns`` are (header, justify, priority). Priority 0 columns hold names and paths: never
    wrapped or cut. Other columns may wrap, and when the names still do not fit, the columns
    with the highest priority number are left out first (so a narrow terminal loses the input
    size before it loses a name).
    """
    width = width or console().width
    keep = list(range(len(columns)))

    def needed(cols: list[int]) -> int:
        total = 1 + 3 * len(cols)  # borders and padding
        for c in cols:
            natural = max([len(columns[c][0]), *(len(str(r[c])) for r in rows)])
            total += natural if columns[c][2] == 0 else min(natural, min_wrapped)
        return total

    while needed(keep) > width and any(columns[c][2] > 0 for c in keep):
        keep.remove(max(keep, key=lambda c: (columns[c][2], c)))
    table = Table(title=title, title_justify="left")
    for c in keep:
        header, justify, priority = columns[c]
        table.add_column(header, justify=justify, no_wrap=priority == 0, overflow="fold")
    for r in rows:
        table.add_row(*[r[c] for c in keep])
    dropped = [columns[c][0] for c in range(len(columns)) if c not in keep]
    if dropped:
        table.caption = f"too narrow here for: {', '.join(dropped)} (a wider terminal shows them)"
        table.caption_justify = "left"
    return table
