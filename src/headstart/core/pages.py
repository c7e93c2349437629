"""The Jinja2 environment the HTML pages render with (the run report, the advice page): their
templates ship as package data under ``headstart/core/templates``.

Autoescape is on: every value a template writes is escaped, once, unless it is already HTML
(:class:`markupsafe.Markup`, such as a modality's tables or a macro's output). Values are
escaped as :func:`html.escape` escapes them (``&#x27;`` for a quote), as the pages always were.
"""

from __future__ import annotations

import html

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup


def escaped(value) -> Markup:
    """``value`` as a template writes it: HTML kept, anything else as escaped text."""
    if hasattr(value, "__html__"):
        return Markup(value.__html__())
    return Markup(html.escape(str(value)))


ENV = Environment(
    loader=PackageLoader("headstart.core", "templates"),
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
