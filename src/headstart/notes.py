"""Where headstart's notes go: Python's ``logging``, configured at the entry points only.

Every module writes through ``logging.getLogger(__name__)``, under the ``headstart`` logger:
notes on the work (what was carved for validation, which backbone the ladder keeps) at INFO,
warnings about the data or the settings at WARNING. No layer below the entry points takes a
callback for them. The library configures no logger but its own, and the root never: the
``headstart`` logger holds a ``NullHandler``, so a program that configures nothing sees no
stray warnings from Python's last-resort handler.

Who shows the notes:

* the command line, for the whole command (:func:`speaking` with its ``note:`` printer on
  standard error, in the process that speaks for a distributed run);
* the Python API, for the duration of a call: ``headstart.train(..., say=print)`` and the
  estimators' ``verbose=True`` print them (:func:`speaking`), as in a notebook or a script;
* a program that configured logging itself (``logging.basicConfig(level=logging.INFO)``, or a
  handler and level for ``"headstart"``): its handlers receive the records, and the API prints
  nothing of its own, so no note appears twice. :func:`routed` tells these cases apart.

While a call prints its notes (:func:`speaking`), the ``headstart`` logger takes INFO records
and does not pass them on to the root's handlers: a program whose logging shows only warnings
would otherwise get every note a second time, and a warning would be printed twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager

#: The logger every headstart module's logger sits under.
LOG = logging.getLogger("headstart")
LOG.addHandler(logging.NullHandler())


class Said(logging.Handler):
    """Hands each record's message to ``say`` (``print``, or the command line's note)."""

    def __init__(self, say: Callable[[str], object]):
        super().__init__(logging.INFO)
        self.say = say

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.say(record.getMessage())
        except Exception:  # as every logging handler: a failing output never stops the work
            self.handleError(record)


def routed() -> bool:
    """True when headstart's INFO records already reach a handler: the program configured
    logging (a level and a handler on the way to the root), or an entry point further out
    is speaking."""
    if LOG.getEffectiveLevel() > logging.INFO:
        return False
    logger: logging.Logger | None = LOG
    while logger is not None:
        if any(not isinstance(h, logging.NullHandler) for h in logger.handlers):
            return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False


@contextmanager
def speaking(say: Callable[[str], object] | None) -> Iterator[None]:
    """For the duration: headstart's notes and warnings reach ``say``, one message each,
    unless ``say`` is None or they are :func:`routed` already (then nothing changes)."""
    if say is None or routed():
        yield
        return
    handler = Said(say)
    level, propagate = LOG.level, LOG.propagate
    LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
    LOG.propagate = False
    try:
        yield
    finally:
        LOG.removeHandler(handler)
        LOG.setLevel(level)
        LOG.propagate = propagate


@contextmanager
def silenced(quiet: bool = True) -> Iterator[None]:
    """For the duration, when ``quiet``: headstart says nothing (a distributed run's ranks
    but the first: rank 0 speaks for them)."""
    if not quiet:
        yield
        return
    level = LOG.level
    LOG.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        LOG.setLevel(level)


class Unsaid(logging.Filter):
    """Drops the records whose message is one of ``texts``."""

    def __init__(self, texts: Collection[str]):
        super().__init__()
        self.texts = set(texts)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in self.texts


@contextmanager
def leaving_out(logger: logging.Logger, texts: Collection[str]) -> Iterator[None]:
    """For the duration: ``logger`` does not say ``texts`` (notes said once already)."""
    unsaid = Unsaid(texts)
    logger.addFilter(unsaid)
    try:
        yield
    finally:
        logger.removeFilter(unsaid)
