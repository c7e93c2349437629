"""Terminal rendering (rich) of what the library returns; presentation only. One module per
command family: ``runs`` (a trained run), ``evaluation``, ``inspection``, ``listings`` (the
others), on ``base`` (the console, copyable lines, number formats)."""

from headstart.console.base import console, message, path_line
from headstart.console.evaluation import render_evaluation
from headstart.console.inspection import render_inspection
from headstart.console.listings import (
    render_advice,
    render_backbones,
    render_export,
    render_leaderboard,
    render_predictions,
    render_summary,
)
from headstart.console.runs import render_run

__all__ = [
    "console",
    "message",
    "path_line",
    "render_advice",
    "render_backbones",
    "render_evaluation",
    "render_export",
    "render_inspection",
    "render_leaderboard",
    "render_predictions",
    "render_run",
    "render_summary",
]
