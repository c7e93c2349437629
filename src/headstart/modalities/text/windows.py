"""How a text longer than the encoder's window is read (``--long-texts``), without torch: the
one place that turns a text's token ids into the windows the encoder sees, shared by training,
prediction and the ONNX client (:mod:`.tokens_np`), so all of them read a text the same way.

A text is tokenised whole, without special tokens; ``room`` is the window's length less the
encoder's special tokens (``[CLS] ... [SEP]``: 254 of 256). A text that fits is one window,
whatever the mode. A longer one is read by the mode:

* ``window`` (mean) and ``window-max``: overlapping windows of ``room`` tokens, each starting
  half a window after the one before (``STRIDE``), the last one ending at the text's end;
  every window is encoded and pooled as a short text is, and the window embeddings are pooled
  into one vector per text (their mean, or their element-wise maximum), normalised again when
  the encoder normalises its embeddings. At most ``MAX_WINDOWS`` windows a text: a longer
  text's windows are spread evenly over it (gaps between them, counted as dropped tokens), so
  one huge text cannot stall a batch or a server.
* ``head-tail``: one window of the text's first and last tokens (Sun et al. 2019, "How to
  Fine-Tune BERT for Text Classification?": the first 128 and last 382 of 510, scaled to the
  window).
* ``truncate``: one window of the first ``room`` tokens (what headstart did before).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from headstart.choices import LONG_TEXTS

#: A window starts this fraction of a window after the one before (half: every token but the
#: first and last half-window's is read twice, once in each of two windows).
STRIDE = 0.5
#: The most windows one text is read in (at 256 tokens about 8,000 tokens read contiguously).
MAX_WINDOWS = 64
#: Sun et al.'s head share at 512 tokens: 128 of the 510 content tokens.
HEAD_SHARE = 128 / 510
#: How the window embeddings of a text are pooled, by mode (single-window modes: "mean" of one).
WINDOW_POOLING = {"window": "mean", "window-max": "max", "head-tail": "mean", "truncate": "mean"}


def check_mode(mode: str) -> str:
    if mode not in LONG_TEXTS:
        raise ValueError(f"long-text mode must be one of {', '.join(LONG_TEXTS)}; got {mode!r}")
    return mode


def window_starts(n: int, room: int) -> np.ndarray:
    """Where the windows of a text of ``n`` content tokens start (``n > room``): every
    ``STRIDE`` of a window, the last one ending at the text's end; at most ``MAX_WINDOWS``,
    spread evenly over the text when it needs more."""
    stride = max(1, int(room * STRIDE))
    starts = list(range(0, n - room, stride)) + [n - room]
    if len(starts) > MAX_WINDOWS:
        starts = np.unique(np.linspace(0, n - room, MAX_WINDOWS).round().astype(np.int64))
    return np.asarray(starts, dtype=np.int64)


def window_count(n: int, mode: str, room: int) -> int:
    """How many windows a text of ``n`` content tokens is read in."""
    if n <= room or mode in ("truncate", "head-tail"):
        return 1
    return len(window_starts(n, room))


def split_text(content: Sequence[int], mode: str, room: int) -> tuple[list[list[int]], int]:
    """(windows of content token ids, tokens dropped) of one text under ``mode``."""
    content = list(content)
    n = len(content)
    if n <= room:
        return [content], 0
    if mode == "truncate":
        return [content[:room]], n - room
    if mode == "head-tail":
        head = int(round(room * HEAD_SHARE))
        return [content[:head] + content[n - (room - head) :]], n - room
    starts = window_starts(n, room)
    read = np.zeros(n, dtype=bool)
    for s in starts:
        read[s : s + room] = True
    return [content[s : s + room] for s in starts], int(n - read.sum())


def membership(counts: Sequence[int]) -> np.ndarray:
    """(texts, windows) float32: row ``t`` is 1 where a window belongs to text ``t`` (windows
    listed text after text, ``counts[t]`` of them for text ``t``): the graph's ``windows``
    input, from which it pools each text's window embeddings."""
    counts = np.asarray(counts, dtype=np.int64)
    owner = np.repeat(np.arange(len(counts)), counts)
    out = np.zeros((len(counts), int(counts.sum())), dtype=np.float32)
    out[owner, np.arange(len(owner))] = 1.0
    return out


class Reading:
    """How a list of texts is read: each text's windows (token ids with the encoder's special
    tokens), how many content tokens it has and how many were left unread."""

    def __init__(self, windows: list[list[list[int]]], tokens: list[int], dropped: list[int]):
        self.windows = windows
        self.tokens = tokens
        self.dropped = dropped

    def __len__(self) -> int:
        return len(self.windows)

    def counts(self) -> np.ndarray:
        return np.array([len(w) for w in self.windows], dtype=np.int64)


def read_texts(
    contents: Sequence[Sequence[int]],
    mode: str,
    max_length: int,
    prefix: Sequence[int],
    suffix: Sequence[int],
) -> Reading:
    """The windows of texts given as content token ids (tokenised without special tokens):
    each window ``prefix + ids + suffix``, at most ``max_length`` tokens in all."""
    check_mode(mode)
    prefix, suffix = list(prefix), list(suffix)
    room = max_length - len(prefix) - len(suffix)
    if room < 1:
        raise ValueError(f"a window of {max_length} tokens has no room beside the special tokens")
    windows, tokens, dropped = [], [], []
    for content in contents:
        parts, lost = split_text(content, mode, room)
        windows.append([prefix + p + suffix for p in parts])
        tokens.append(len(content))
        dropped.append(lost)
    return Reading(windows, tokens, dropped)


def summary(reading: Reading, items: Sequence[int], mode: str, room: int) -> dict:
    """What the run records of how ``items`` (positions in ``reading``) were read: the number
    of texts longer than the window, the windows read, the tokens left unread."""
    longer = [i for i in items if reading.tokens[i] > room]
    return {
        "mode": mode,
        "longer": len(longer),
        "windows": int(sum(len(reading.windows[i]) for i in items)),
        "windows_of_longer": int(sum(len(reading.windows[i]) for i in longer)),
        "tokens_dropped": int(sum(reading.dropped[i] for i in items)),
        "overlap": 1 - STRIDE,  # a float: shards' counts add up, this does not
    }
