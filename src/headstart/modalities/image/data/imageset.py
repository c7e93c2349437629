"""``ImageSet``: one split of labelled images, decoded lazily.

An ImageSet never holds decoded images for a folder of files: it keeps paths and decodes one on
request, so a folder of a million images costs a list of strings. Array-backed sets keep a
reference to the (possibly memory-mapped) array plus an index vector, so subsets are free.
Every item comes out the same way: an (H, W, 3) ``uint8`` RGB array.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from headstart.core.tasks import label_counts
from headstart.modalities.image.data.decode import decode_image


def array_item_to_rgb(item: np.ndarray) -> np.ndarray:
    """One array image, (H,W), (H,W,1), (H,W,3) or (H,W,4), uint8 or float in [0,1] -> RGB uint8."""
    a = np.asarray(item)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.dtype.kind in "iu":  # validated to lie in 0..255 by the loader
        a = a.astype(np.uint8, copy=False)
    elif a.dtype != np.uint8:
        a = np.clip(a.astype(np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        a = a[:, :, :3]
    return np.ascontiguousarray(a)


@dataclass
class ImageSet:
    """Labelled images of one split. ``labels[i]`` indexes ``class_names``.

    Exactly one of ``paths`` (image files) or ``array`` (N-first image array, validated by the
    loader) is set. ``index`` maps positions in this set to rows of ``array``; ``ids`` names each
    item stably (a path relative to the data root, or ``#row`` for arrays) so splits can be
    recorded and replayed.
    """

    labels: np.ndarray
    class_names: tuple[str, ...]
    paths: list[str] | None = None
    array: np.ndarray | None = None
    index: np.ndarray | None = None
    root: Path | None = None
    name: str = "train"
    origin: str = "X"
    ids: list[str] = field(default_factory=list)
    _fingerprint: str | None = field(default=None, init=False, repr=False, compare=False)

    modality = "image"
    noun = "image"  # one example, in messages
    #: what ``--strategy auto`` may try on images: features from every depth, the mirror image
    #: (test-time augmentation), fine-tuning at the data's own resolution
    capabilities = frozenset({"every-depth", "mirror", "resolution"})

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.array is not None and self.index is None:
            self.index = np.arange(len(self.array))
        if not self.ids:
            if self.paths is not None:
                self.ids = [_relative_id(p, self.root) for p in self.paths]
            else:
                self.ids = [f"{self.origin}#{int(r)}" for r in self.index]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def is_array(self) -> bool:
        return self.array is not None

    def image(self, i: int) -> np.ndarray:
        """Decode item ``i``; raises :class:`~.decode.UnreadableImage` if broken."""
        if self.array is not None:
            return array_item_to_rgb(self.array[int(self.index[i])])
        return decode_image(self.paths[i])

    def fingerprint(self) -> str:
        """Hash of the items' identities, labels and contents (file size + mtime, or the
        array bytes): the data part of a feature-cache key, computed once per set."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(json.dumps(self.ids).encode())
            h.update(self.labels.tobytes())
            if self.paths is not None:
                for p in self.paths:
                    try:
                        st = os.stat(p)
                        h.update(f"{st.st_size}:{st.st_mtime_ns};".encode())
                    except OSError:
                        h.update(b"missing;")
            else:
                for start in range(0, len(self.index), 512):
                    rows = self.index[start : start + 512]
                    h.update(np.ascontiguousarray(self.array[rows]).tobytes())
            self._fingerprint = h.hexdigest()[:24]
        return self._fingerprint

    def describe(self, i: int) -> str:
        """Where item ``i`` comes from, for messages: a path or ``train_images.npy[12]``."""
        if self.paths is not None:
            return self.paths[i]
        return f"{self.origin}[{int(self.index[i])}]"

    def subset(self, positions: Sequence[int] | np.ndarray, name: str | None = None) -> ImageSet:
        pos = np.asarray(positions, dtype=np.int64)
        return ImageSet(
            labels=self.labels[pos],
            class_names=self.class_names,
            paths=[self.paths[i] for i in pos] if self.paths is not None else None,
            array=self.array,
            index=self.index[pos] if self.index is not None else None,
            root=self.root,
            name=name or self.name,
            origin=self.origin,
            ids=[self.ids[i] for i in pos],
        )

    def class_counts(self) -> np.ndarray:
        return label_counts(self.labels, len(self.class_names))

    @staticmethod
    def concat(sets: Sequence[ImageSet], name: str) -> ImageSet:
        return concat(sets, name)


def concat(sets: Sequence[ImageSet], name: str) -> ImageSet:
    """Join sets that share storage kind and classes (used to merge a recorded split)."""
    first = sets[0]
    if first.paths is not None:
        return ImageSet(
            labels=np.concatenate([s.labels for s in sets]),
            class_names=first.class_names,
            paths=[p for s in sets for p in s.paths],
            root=first.root,
            name=name,
            ids=[i for s in sets for i in s.ids],
        )
    if any(s.array is not first.array for s in sets):
        raise ValueError("cannot concatenate ImageSets backed by different arrays")
    return ImageSet(
        labels=np.concatenate([s.labels for s in sets]),
        class_names=first.class_names,
        array=first.array,
        index=np.concatenate([s.index for s in sets]),
        name=name,
        origin=first.origin,
        ids=[i for s in sets for i in s.ids],
    )


def _relative_id(path: str, root: Path | None) -> str:
    if root is None:
        return str(path)
    return Path(os.path.relpath(path, root)).as_posix()
