"""Images decoded, resized and (optionally) augmented every epoch, in worker processes where
cores are spare: the inputs of a network that trains whole (:mod:`headstart.core.inputs` holds
the cached ones). Batches are drawn as the cached inputs draw theirs, so the two kinds of run
see identical batches.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from headstart.core.inputs import Batch, Part, batch_slices, part_of, processes_of
from headstart.modalities.image.backbones.model import Preprocessing
from headstart.modalities.image.data.decode import UnreadableImage
from headstart.modalities.image.data.imageset import ImageSet
from headstart.modalities.image.preprocess import augmenter, prepare_batch


class _ImageDataset(Dataset):
    """Item ``(i, epoch_seed)`` -> (normalised image tensor, label), or None if unreadable.

    The epoch's augmentation seed travels with the index, so persistent worker processes
    (which hold their own copy of this object) always augment as the main process asks.
    """

    def __init__(
        self, images: ImageSet, prep: Preprocessing, augment: bool, seed: int, flip: bool = True
    ):
        self.images, self.prep, self.seed = images, prep, seed
        self.augment = augmenter(flip=flip) if augment else None

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, item: tuple[int, int]):
        i, epoch_seed = item
        try:
            img = self.images.image(i)
        except UnreadableImage:
            return None
        seed = (self.seed * 1_000_003 + epoch_seed * 100_003 + i) % (2**31)
        x = prepare_batch([img], self.prep, self.augment, seed=seed)[0]
        return x, self.images.labels[i]  # a class, or a row of 0/1 labels


def _collate(items):
    items = [it for it in items if it is not None]
    if not items:
        return None
    labels = np.stack([np.asarray(y, np.int64) for _, y in items])
    return torch.stack([x for x, _ in items]), torch.from_numpy(labels)


class _EpochBatches(Sampler):
    """Yields the current epoch's batches of (index, augmentation seed); set before each epoch."""

    def __init__(self):
        self.batches: list[list[tuple[int, int]]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def default_workers() -> int:
    """Decoding processes beside the training process, only where cores are spare.

    Training already uses the cores through torch's threads; measured on 2 cores, one decoding
    worker made fine-tuning steps 1.5-2.2x slower (BENCHMARKS.md), so below 4 cores decoding
    stays in the training process. Above: one worker per 2 spare cores, at most 4.
    """
    return max(0, min(4, ((os.cpu_count() or 1) - 2) // 2))


class ImageInputs:
    """Images decoded, resized and (optionally) augmented in worker processes every epoch, so
    decoding overlaps compute (``workers=0`` decodes in the training process).

    Used when nothing before the trainable part can be cached: full fine-tuning, training from
    scratch, ``--augment on-the-fly``, or a backbone with no sequential cut.
    """

    def __init__(
        self,
        images: ImageSet,
        prep: Preprocessing,
        *,
        augment: bool = False,
        seed: int = 0,
        workers: int | None = None,
        flip: bool = True,
    ):
        self.dataset = _ImageDataset(images, prep, augment, seed, flip)
        self.labels = images.labels
        self.workers = default_workers() if workers is None or workers < 0 else workers
        self.batches = _EpochBatches()
        self._loader: DataLoader | None = None

    def __len__(self) -> int:
        return len(self.dataset)

    def _dataloader(self) -> DataLoader:
        if self._loader is None:  # kept across epochs: workers start once
            self._loader = DataLoader(
                self.dataset,
                batch_sampler=self.batches,
                num_workers=self.workers,
                collate_fn=_collate,
                generator=torch.Generator().manual_seed(0),  # never touch the global RNG
                persistent_workers=self.workers > 0,
            )
        return self._loader

    def epoch(
        self, rng: np.random.Generator | None, batch_size: int, part: Part = None
    ) -> Iterator[Batch]:
        n = len(self.dataset)
        order = rng.permutation(n) if rng is not None else np.arange(n)
        epoch_seed = 0
        if rng is not None and self.dataset.augment is not None:
            # fresh augmentation per epoch, drawn from the (checkpointed) generator so a
            # resumed run sees exactly the views an uninterrupted one would
            epoch_seed = int(rng.integers(2**31))
        items = [(int(i), epoch_seed) for i in order]
        self.batches.batches = [
            part_of(items[b], part) for b in batch_slices(n, batch_size, processes_of(part))
        ]
        for batch in self._dataloader():
            if batch is not None:
                yield batch
