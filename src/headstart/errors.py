"""The project's error types.

Every error a user can cause is raised as a :class:`HeadstartError` whose message names the
file or value at fault and says what to do. The command line prints that message on one line
instead of a traceback; Python users can catch the whole family with one ``except``.
"""

from __future__ import annotations


class HeadstartError(Exception):
    """Base class: something the user can fix, with a message that says how."""


class DataError(HeadstartError, ValueError):
    """The data cannot be used as given (layout, labels, arrays, files)."""


class BackboneError(HeadstartError, ValueError):
    """A backbone name or its weights cannot be resolved."""


class RunError(HeadstartError):
    """A run directory is missing, incomplete or not ours."""


class ConfigError(HeadstartError, ValueError):
    """An option or configuration value is out of range or inconsistent."""
