"""Progress of every step that can take more than a moment, wherever headstart runs.

On a terminal (and in a notebook) a step is a live tqdm bar with its rate and time left. When
the output is not a terminal (CI, a log file, a pipe) a redrawn bar would only fill the log
with carriage returns, so each step prints one line when it ends instead::

    features train: 1,438 img in 12.3s (117 img/s)

Whether bars are shown is set once, at the entry point, for everything it calls:
``with enabled(True):`` (the command line for every command; ``headstart.train(progress=...)``,
the estimators' ``verbose``, ``inspect_source(progress=...)`` and ``predict_proba(progress=...)``
for the duration of the call). Below them no function takes a ``progress`` flag:
:func:`progress_bar` reads the setting, off unless an entry point turned it on. It is a context
variable, so a thread started meanwhile (a server's prediction thread) begins with bars off.
A step that is never shown (the hashing behind a split) runs under ``enabled(False)``.
Every bar in the package comes from here, so the two behaviours cannot drift apart.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO

#: Whether steps show their progress here: set by the entry points through :func:`enabled`.
SHOWN: ContextVar[bool] = ContextVar("headstart_progress", default=False)


@contextmanager
def enabled(flag: bool | None) -> Iterator[None]:
    """For the duration (in this thread or task): progress shown, or not, as ``flag`` says;
    None leaves the setting as it is (a public function's ``progress=None``: as its caller
    set it)."""
    if flag is None:
        yield
        return
    token = SHOWN.set(bool(flag))
    try:
        yield
    finally:
        SHOWN.reset(token)


def interactive(stream: TextIO | None = None) -> bool:
    """True on a terminal that can redraw a bar, or in a Jupyter kernel."""
    if "ipykernel" in sys.modules:
        return True
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class LineProgress:
    """tqdm's interface, reporting one line at the end of the step (for logs and CI)."""

    def __init__(
        self,
        iterable: Iterable | None = None,
        *,
        total: int | None = None,
        desc: str = "",
        unit: str = "it",
        initial: int = 0,
        file: TextIO | None = None,
    ):
        self.iterable = iterable
        self.total = total if total is not None else _len(iterable)
        self.desc, self.unit, self.n = desc, unit, initial
        self.initial = initial
        self.file = file
        self.postfix: dict[str, Any] = {}
        self.start = time.perf_counter()
        self.closed = False

    def __iter__(self) -> Iterator:
        for item in self.iterable or ():
            self.n += 1  # counted when started: a loop left with break still counts its last
            yield item
        self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.closed = True  # an interrupted step prints nothing: it did not finish

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **kwargs) -> None:
        self.postfix.update(ordered_dict or {}, **kwargs)

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        seconds = time.perf_counter() - self.start
        done = self.n - self.initial
        rate = ""
        if seconds > 0 and done:  # slow work reads better as seconds per item
            per = done / seconds
            rate = (
                f" ({per:,.1f} {self.unit}/s)" if per >= 1 else f" ({1 / per:,.1f} s/{self.unit})"
            )
        extra = "".join(f", {k} {v}" for k, v in self.postfix.items())
        count = f"{self.n:,} {plural(self.unit, self.n)}"
        if self.initial:  # resumed: the time is this part's, so say which part it was
            count = f"{plural(self.unit, 2)} {self.initial + 1:,}-{self.n:,} of {count}"
        line = f"{self.desc}: {count} in {seconds:.1f}s{rate}{extra}"
        print(line, file=self.file or sys.stderr, flush=True)


def plural(unit: str, n: int) -> str:
    """``"epoch"`` -> ``"epochs"`` for a count other than one; abbreviations (``img``, ``it``)
    and rates keep their form."""
    return unit + "s" if n != 1 and len(unit) > 3 and not unit.endswith("s") else unit


def _len(iterable) -> int | None:
    try:
        return len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return None


def progress_bar(
    iterable: Iterable | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    initial: int = 0,
    leave: bool = False,
):
    """A live bar on a terminal, one line per step elsewhere, nothing when progress is not
    :func:`enabled`."""
    from tqdm.auto import tqdm

    if not SHOWN.get():
        return tqdm(iterable, total=total, disable=True)
    if not interactive():
        return LineProgress(iterable, total=total, desc=desc, unit=unit, initial=initial)
    # a terminal that reports no width (some IDE consoles) would get an empty bar: use 80
    ncols = None if shutil.get_terminal_size((0, 0)).columns > 0 else 80
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        initial=initial,
        leave=leave,
        ncols=ncols,
        dynamic_ncols=ncols is None,
    )
