"""Where training batches come from: cached tensors (``ArrayInputs``), or examples a
modality prepares on the fly (images: ``headstart.modalities.image.inputs.ImageInputs``).

Both kinds shuffle the same way from the same seeded generator (a permutation per epoch, then
one view per image when several are cached), so a run on the cached prefix and a run through
the whole network see identical batches -- which is what makes their equivalence testable.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

Batch = tuple[torch.Tensor, torch.Tensor]


def batch_slices(n: int, batch_size: int, processes: int = 1) -> list[slice]:
    """Consecutive batches of ``batch_size`` over ``n`` items, every item in one. A last batch
    too small to give each of ``processes`` at least two items (one process: a single item)
    joins the one before it: BatchNorm cannot train on one sample, and skipping the batch
    would leave its items out of the epoch. (So on several processes the last batch of an
    epoch can be larger than on one, when it would hold fewer than two items per process.)"""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] < 2 * processes:
        starts.pop()
    return [slice(s, e) for s, e in zip(starts, [*starts[1:], n])]


#: A distributed run's share of each batch: (rank, world size), or None for the whole batch.
Part = tuple[int, int] | None


def part_of(positions, part: Part):
    """This rank's share of a global batch: every ``world size``-th example from its rank.
    Every rank draws the same global batches (same seeded generator), so the shares are
    disjoint and together the whole batch: ``--batch-size`` is the global batch."""
    return positions if part is None else positions[part[0] :: part[1]]


def processes_of(part: Part) -> int:
    """How many processes share each batch."""
    return 1 if part is None else part[1]


def inference_positions(n: int, batch_size: int, part: Part) -> np.ndarray:
    """The positions a rank's ``epoch(None, batch_size, part)`` yields, in its order: to put
    the ranks' predictions back in the examples' order."""
    return np.concatenate(
        [part_of(np.arange(n)[b], part) for b in batch_slices(n, batch_size, processes_of(part))]
        or [[]]
    ).astype(np.int64)


#: Batches are formed within groups of this many batches' worth of examples (see below).
LENGTH_GROUP_BATCHES = 50


def length_grouped_batches(
    rng: np.random.Generator | None, lengths: np.ndarray, batch_size: int, processes: int = 1
) -> list[np.ndarray]:
    """An epoch's batches (positions) for examples of varying length (texts): shuffled, then
    sorted by length within groups of ``LENGTH_GROUP_BATCHES`` batches, so a batch holds
    texts of similar length and little time goes to padding; the batches' order is shuffled
    again. This is Hugging Face's ``group_by_length`` sampler. Without ``rng`` (inference),
    batches keep the examples' order: predictions line up with the examples they belong to.
    Every example is in exactly one batch, as with :func:`batch_slices`."""
    n = len(lengths)
    lengths = np.asarray(lengths)
    if rng is None:
        return [np.arange(n)[b] for b in batch_slices(n, batch_size, processes)]
    order = rng.permutation(n)
    group = batch_size * LENGTH_GROUP_BATCHES
    for start in range(0, n, group):
        chunk = order[start : start + group]
        order[start : start + group] = chunk[np.argsort(-lengths[chunk], kind="stable")]
    batches = [order[b] for b in batch_slices(n, batch_size, processes)]
    return [batches[i] for i in rng.permutation(len(batches))]


class ArrayInputs:
    """Cached inputs: pooled features or prefix outputs, one array per view (memory-mapped ok).

    ``rows`` selects the usable rows (unreadable images are dropped); each epoch draws one view
    per image at random when there are several.
    """

    def __init__(self, views: list[np.ndarray], labels: np.ndarray, rows: np.ndarray | None = None):
        self.views = views
        self.rows = np.arange(len(labels)) if rows is None else np.asarray(rows)
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def stacked(self, views: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(features, labels) of every usable row in every view (or the first ``views``),
        one row per example and view: what a model fitted in one go (the linear probe) reads."""
        chosen = self.views if views is None else self.views[:views]
        order = np.sort(self.rows)  # memory maps read fastest in order
        x = np.concatenate([np.asarray(v[order], dtype=np.float32) for v in chosen])
        return x, np.tile(self.labels[order], len(chosen))

    def _gather(self, positions: np.ndarray, pick: np.ndarray | None) -> torch.Tensor:
        rows = self.rows[positions]
        if pick is None:
            x = np.asarray(self.views[0][np.sort(rows)] if len(rows) > 1 else self.views[0][rows])
            if len(rows) > 1:  # memory maps read fastest in order; restore the batch order
                x = x[np.argsort(np.argsort(rows))]
        else:
            x = np.stack([np.asarray(self.views[v][r]) for v, r in zip(pick, rows)])
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def epoch(
        self, rng: np.random.Generator | None, batch_size: int, part: Part = None
    ) -> Iterator[Batch]:
        n = len(self.rows)
        order = rng.permutation(n) if rng is not None else np.arange(n)
        pick = None
        if rng is not None and len(self.views) > 1:
            pick = rng.integers(len(self.views), size=n)
        for batch in batch_slices(n, batch_size, processes_of(part)):
            pos = part_of(order[batch], part)
            x = self._gather(pos, None if pick is None else pick[pos])
            yield x, torch.from_numpy(self.labels[self.rows[pos]])
