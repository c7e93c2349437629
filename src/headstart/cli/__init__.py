"""The ``headstart`` command line: parse, call the Python API, print. No logic lives here.

One module per family of commands (:mod:`~headstart.cli.training`, :mod:`~headstart.cli.data`,
:mod:`~headstart.cli.runs`, :mod:`~headstart.cli.shipping`), each registering its commands on
:data:`~headstart.cli.base.app`; the settings' options come from :mod:`~headstart.cli.options`.
"""

from headstart.cli import data, runs, shipping, training  # noqa: F401  (they register commands)
from headstart.cli.base import app


def main() -> None:
    app()


__all__ = ["app", "main"]
