"""What a frozen text encoder computes, once per text, cached exactly as image features are:
same store (memory, then disk; marker written last), a key that hashes everything the outputs
depend on (encoder, weights, pooling, maximum length, the cut, the dtype, the texts).

Two kinds of output:

* **pooled embeddings** (feature extraction): one vector per text;
* **a frozen prefix** (fine-tuning the top layers): the hidden states entering the first
  trained layer, one row per *token*, stored unpadded: a flat ``(tokens, hidden)`` array
  (float16 by default) and each text's offset into it. Nothing is spent on padding, and a
  batch is padded only to its own longest text when it is read (:class:`RaggedInputs`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator

import numpy as np
import torch

from headstart.core import distributed
from headstart.core.cache import CACHE_VERSION, FeatureSet, FeatureStore, shard_note
from headstart.core.inputs import (
    ArrayInputs,
    Part,
    length_grouped_batches,
    part_of,
    processes_of,
)
from headstart.errors import ConfigError
from headstart.modalities.text.encoder import LoadedEncoder
from headstart.modalities.text.textset import TextSet
from headstart.progress import progress_bar

Batch = tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]


class TextFeatureExtractor:
    """Outputs of a frozen text module, cached by key: the pooled encoder by default, or with
    ``module`` and ``cut`` a prefix of it (embeddings and the first layers). The interface of
    the image ``FeatureExtractor`` that training uses: ``extract``, ``cached``, ``key``,
    ``output_shape``, ``estimate_bytes``, ``inputs``, ``dtype``."""

    def __init__(
        self,
        loaded: LoadedEncoder,
        *,
        module: torch.nn.Module | None = None,
        cut: str = "pooled",
        device: torch.device | str = "cpu",
        batch_size: int = 32,
        cache: bool = True,
        progress: bool = True,
        dtype: np.dtype | type = np.float32,
    ):
        self.loaded = loaded
        self.cut = cut
        self.ragged = cut != "pooled"
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.cache = cache
        self.progress = progress
        self.dtype = np.dtype(dtype)
        self.store = FeatureStore(self.dtype)
        self.module = (module if module is not None else loaded.backbone).to(self.device).eval()
        self._encoded: dict[str, tuple[list[list[int]], list[bool]]] = {}

    def model_key(self) -> dict:
        enc = self.loaded.backbone
        return {
            "version": CACHE_VERSION,
            "modality": "text",
            "encoder": self.loaded.timm_name,
            "weights": self.loaded.weights.fingerprint,
            "pooling": enc.pooling,
            "normalise": enc.normalise,
            "preprocessing": self.loaded.preprocessing.to_dict(),
            "cut": self.cut,
            "dtype": self.dtype.name,
        }

    def output_shape(self) -> tuple[int, ...]:
        """Per text (pooled embeddings) or per token (a prefix)."""
        return (self.loaded.backbone.num_features,)

    def shape_per_example(self) -> list:
        """For the run's record: ``[width]``, or ``["tokens", width]`` for a prefix."""
        return ["tokens", *self.output_shape()] if self.ragged else list(self.output_shape())

    def encoded(self, texts: TextSet) -> tuple[list[list[int]], list[bool]]:
        """Token ids (truncated) and truncation flags of ``texts``, tokenised once."""
        key = texts.fingerprint()
        if key not in self._encoded:
            if len(self._encoded) >= 8:  # a run's splits, and a few more
                self._encoded.pop(next(iter(self._encoded)))
            self._encoded[key] = self.loaded.encode(texts.texts)
        return self._encoded[key]

    def _rows(self, texts: TextSet) -> int:
        """Rows of the stored array: one per text, or (a prefix) one per token."""
        return sum(len(i) for i in self.encoded(texts)[0]) if self.ragged else len(texts)

    def estimate_bytes(self, texts: TextSet, views: int = 1) -> int:
        """Disk the outputs for ``texts`` will take (a prefix: every token's hidden state)."""
        return int(self._rows(texts) * views * self.output_shape()[0] * self.dtype.itemsize)

    def key(self, texts: TextSet, view: int = 0, seed: int = 0) -> str:
        spec = {**self.model_key(), "data": texts.fingerprint()}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]

    def cached(self, texts: TextSet, view: int = 0, seed: int = 0) -> bool:
        return self.store.has(self.key(texts, view, seed))

    def extract(self, texts: TextSet, view: int = 0, seed: int = 0) -> FeatureSet:
        """Outputs for ``texts``; text has one view (no augmentation, no mirror)."""
        if view != 0:
            raise ConfigError(
                "text has no augmented or mirrored views: --augment, --views and --tta apply "
                "to images only."
            )
        key = self.key(texts)
        shape = (self._rows(texts), *self.output_shape())
        group = distributed.current()
        hit = self.store.load_shared(key, shape, group) if self.cache else None
        if hit is not None:
            return hit
        if not self.cache:  # every rank computes what it needs itself
            fs = self._compute(texts, key, np.empty(shape, self.dtype))
            self.store.remember(fs)
            return fs
        if group.distributed:  # each rank a shard of the texts (a prefix: their tokens' rows)
            offsets = self._offsets(texts)
            return self.store.save_sharded(
                key,
                shape,
                len(texts),
                (lambda lo, hi: (offsets[lo], offsets[hi]))
                if self.ragged
                else (lambda lo, hi: (lo, hi)),
                lambda lo, hi, out: self._compute(texts, key, out, range(lo, hi)),
                self.model_key(),
                group,
            )
        return self.store.save(
            key, shape, lambda out: self._compute(texts, key, out), self.model_key()
        )

    def _offsets(self, texts: TextSet) -> np.ndarray:
        """Where each text's rows start in a prefix entry (and, last, where the rows end)."""
        lengths = np.array([len(i) for i in self.encoded(texts)[0]], dtype=np.int64)
        return np.concatenate([[0], np.cumsum(lengths)])

    def inputs(self, sets: list[FeatureSet], labels: np.ndarray, rows: np.ndarray):
        """Training inputs over extracted outputs (text has one view: ``sets`` holds one)."""
        fs = sets[0]
        if self.ragged:
            return RaggedInputs(fs.features, np.asarray(fs.extra["offsets"]), labels, rows)
        return ArrayInputs([fs.features], labels, rows)

    @torch.inference_mode()
    def _compute(
        self, texts: TextSet, key: str, out: np.ndarray, items: range | None = None
    ) -> FeatureSet:
        """Batches of similar length (less padding), in order of length; rows land in place.
        ``items``: the texts to compute (all by default); ``out`` then starts at the first
        one's row."""
        start = time.perf_counter()
        ids, truncated = self.encoded(texts)
        items = range(len(texts)) if items is None else items
        n, bs = len(items), self.batch_size
        offsets = self._offsets(texts)
        lengths = np.diff(offsets)
        base = offsets[items.start] if self.ragged else items.start
        order = np.asarray(items)[np.argsort(lengths[items.start : items.stop], kind="stable")]
        what = "frozen prefix" if self.ragged else "features"
        bar = progress_bar(
            total=n, desc=f"{what} {texts.name}{shard_note()}", unit="text", enabled=self.progress
        )
        for s in range(0, n, bs):
            rows = order[s : s + bs]
            input_ids, mask = self.loaded.pad([ids[i] for i in rows])
            batch = (input_ids.to(self.device), mask.to(self.device))
            if self.ragged:
                hidden, _ = self.module(batch)
                hidden = hidden.float().cpu().numpy()
                for j, r in enumerate(rows):
                    out[offsets[r] - base : offsets[r + 1] - base] = hidden[j, : lengths[r]]
            else:
                out[rows - base] = self.module(batch).float().cpu().numpy().astype(self.dtype)
            bar.update(len(rows))
        bar.close()
        fs = FeatureSet(out, np.ones(n, dtype=bool), key, "", time.perf_counter() - start, [])
        fs.extra["truncated"] = int(sum(truncated[i] for i in items))
        if self.ragged:
            fs.extra["offsets"] = offsets.tolist()
        return fs


class RaggedInputs:
    """A cached prefix of texts as training inputs: each text's hidden states (unpadded rows
    of ``flat``, between its offsets), padded per batch to the batch's longest text and given
    with the attention mask. Batches group texts of similar length (less padding) and are
    drawn exactly as :class:`TextInputs` draws them, so cached and uncached runs see the same
    batches."""

    def __init__(self, flat: np.ndarray, offsets: np.ndarray, labels, rows=None):
        self.flat = flat
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.rows = np.arange(len(self.labels)) if rows is None else np.asarray(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def _gather(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        width = int((ends - starts).max())
        x = np.zeros((len(rows), width, self.flat.shape[1]), dtype=np.float32)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for j, (a, b) in enumerate(zip(starts, ends)):
            x[j, : b - a] = self.flat[a:b]
            mask[j, : b - a] = 1
        return torch.from_numpy(x), torch.from_numpy(mask)

    def epoch(
        self, rng: np.random.Generator | None, batch_size: int, part: Part = None
    ) -> Iterator[Batch]:
        lengths = np.diff(self.offsets)[self.rows]
        for batch in length_grouped_batches(rng, lengths, batch_size, processes_of(part)):
            rows = self.rows[part_of(batch, part)]
            yield self._gather(rows), torch.from_numpy(self.labels[rows])


class TextInputs:
    """Texts tokenised once and run through the whole encoder every step: full fine-tuning,
    training from scratch, ``--no-cache``, or a family with no verified cut."""

    def __init__(self, texts: TextSet, loaded: LoadedEncoder):
        self.ids, _ = loaded.encode(texts.texts)
        self.lengths = np.array([len(i) for i in self.ids], dtype=np.int64)
        self.loaded = loaded
        self.labels = np.asarray(texts.labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def epoch(
        self, rng: np.random.Generator | None, batch_size: int, part: Part = None
    ) -> Iterator[Batch]:
        for batch in length_grouped_batches(rng, self.lengths, batch_size, processes_of(part)):
            rows = part_of(batch, part)
            yield self.loaded.pad([self.ids[i] for i in rows]), torch.from_numpy(self.labels[rows])
