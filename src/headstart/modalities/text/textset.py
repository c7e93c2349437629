"""``TextSet``: one split of labelled texts.

The text counterpart of ``ImageSet``, with the same protocol the core uses (``labels``,
``class_names``, ``ids``, ``name``, ``subset``, ``class_counts``, ``describe``): splits, the
feature cache and evaluation take either. Texts are held as Python strings (a few hundred MB
of reviews is still a list of strings); nothing in them is ever executed or evaluated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from headstart.core.tasks import label_counts


@dataclass
class TextSet:
    """Labelled texts of one split. ``labels[i]`` indexes ``class_names``; ``ids`` names each
    text stably (``file.csv row 12`` for data row 12, a path relative to the data root,
    ``texts#12`` for in-memory lists) so splits can be recorded and replayed."""

    texts: list[str]
    labels: np.ndarray
    class_names: tuple[str, ...]
    name: str = "train"
    origin: str = "texts"
    ids: list[str] = field(default_factory=list)

    modality = "text"
    noun = "text"  # one example, in messages
    #: what ``--strategy auto`` may try beyond the last features and fine-tuning: SetFit's
    #: contrastive stage (few texts), the whole encoder fine-tuned even when its top layer
    #: alone did not pay (no every-depth features, mirror image or resolution for text yet);
    #: and that duplicates are found without decoding anything, so carved splits keep them
    #: together
    capabilities = frozenset({"group-duplicates", "contrastive", "whole-network"})

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")
        if not self.ids:
            self.ids = [f"{self.origin}#{i}" for i in range(len(self.texts))]

    def __len__(self) -> int:
        return len(self.labels)

    def text(self, i: int) -> str:
        return self.texts[i]

    def describe(self, i: int) -> str:
        """Where text ``i`` comes from, for messages: ``reviews.csv row 12`` or a file path."""
        return self.ids[i]

    def subset(self, positions: Sequence[int] | np.ndarray, name: str | None = None) -> TextSet:
        pos = np.asarray(positions, dtype=np.int64)
        return TextSet(
            texts=[self.texts[i] for i in pos],
            labels=self.labels[pos],
            class_names=self.class_names,
            name=name or self.name,
            origin=self.origin,
            ids=[self.ids[i] for i in pos],
        )

    def class_counts(self) -> np.ndarray:
        return label_counts(self.labels, len(self.class_names))

    def fingerprint(self) -> str:
        """Hash of the texts, their ids and labels: the feature cache's data key."""
        h = hashlib.sha256()
        for item_id, text in zip(self.ids, self.texts):
            h.update(item_id.encode("utf-8", "surrogatepass"))
            h.update(b"\0")
            h.update(text.encode("utf-8", "surrogatepass"))
            h.update(b"\1")
        h.update(self.labels.tobytes())
        return h.hexdigest()[:24]

    @staticmethod
    def concat(sets: Sequence[TextSet], name: str) -> TextSet:
        """Join sets with the same classes (used to merge a recorded split)."""
        return TextSet(
            texts=[t for s in sets for t in s.texts],
            labels=np.concatenate([s.labels for s in sets]),
            class_names=sets[0].class_names,
            name=name,
            origin=sets[0].origin,
            ids=[i for s in sets for i in s.ids],
        )


def normalised(text: str) -> str:
    """Whitespace collapsed and case folded: what counts as "the same text" for duplicates."""
    return " ".join(text.split()).casefold()
