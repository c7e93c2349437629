"""The Jinja2 environment the HTML pages render with (the run report, the advice page): their
templates ship as package data under ``headstart/core/templates``.

Autoescape is on: every value a template writes is escaped, once, unless it is already HTML
(:class:`markupsafe.Markup`, such as a modality's tables or a macro's output). Values are
escaped as :func:`html.escape` escapes them (``&#x27;`` for a quote), as the pages always were.
"""

from __future__ import annotations

import html

from jinja2 import Environment, PackageLoader, StrictUndefined
from jinja2.ext import Extension
from markupsafe import Markup


def escaped(value) -> Markup:
    """``value`` as a template writes it: HTML kept, anything else as escaped text."""
    if hasattr(value, "__html__"):
        return Markup(value.__html__())
    return Markup(html.escape(str(value)))


class WrappedProse(Extension):
    """Templates wrap their sentences like prose: a line break inside text is one space
    (the page reads "a b", not "a\\n    b"). Lines that end a tag, a block or a comment, and
    lines that start a block or a comment, keep their line break."""

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        lines = source.split("\n")
        out = [lines[0]]
        for line in lines[1:]:
            before, after = out[-1].rstrip(), line.lstrip()
            ends = before.endswith((">", "%}", "#}")) or not before
            starts = after.startswith(("{%", "{#")) or not after
            if ends or starts:
                out.append(line)
            else:
                out[-1] = before + " " + after
        return "\n".join(out)


ENV = Environment(
    loader=PackageLoader("headstart.core", "templates"),
    extensions=[WrappedProse],
    autoescape=True,
    finalize=escaped,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(template: str, /, **context) -> Markup:
    """The template named ``template`` (under ``templates/``) rendered with ``context``."""
    return Markup(ENV.get_template(template).render(**context))


def macros():
    """The report's macros (``table``, ``img``), callable from Python."""
    return ENV.get_template("report/macros.html.j2").module
