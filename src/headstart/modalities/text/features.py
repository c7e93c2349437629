"""What a frozen text encoder computes, once per text, cached exactly as image features are:
same store (memory, then disk; marker written last), a key that hashes everything the outputs
depend on (encoder, weights, pooling, maximum length and how a longer text is read, the cut,
the dtype, the texts).

A text longer than the encoder's window is read as ``--long-texts`` says
(:mod:`headstart.modalities.text.windows`): by default in overlapping windows, each encoded
as a short text is; a short text is one window.

Two kinds of output:

* **pooled embeddings** (feature extraction): one vector per text, pooled from its windows'
  (:meth:`TextEncoder.join <headstart.modalities.text.encoder.TextEncoder.join>`);
* **a frozen prefix** (fine-tuning the top layers): the hidden states entering the first
  trained layer, one row per *token* of each window, stored unpadded: a flat
  ``(tokens, hidden)`` array (float16 by default), each window's offset into it and each
  text's number of windows. Nothing is spent on padding, and a batch is padded only to its
  own longest window when it is read (:class:`RaggedInputs`).
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
from headstart.modalities.text.windows import Reading, membership, summary
from headstart.progress import progress_bar

#: ((input_ids or hidden states, attention mask, membership of windows in texts), labels)
Batch = tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


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
        dtype: np.dtype | type = np.float32,
    ):
        self.loaded = loaded
        self.cut = cut
        self.ragged = cut != "pooled"
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.cache = cache
        self.dtype = np.dtype(dtype)
        self.store = FeatureStore(self.dtype)
        self.module = (module if module is not None else loaded.backbone).to(self.device).eval()
        self._read: dict[str, Reading] = {}

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

    def reading(self, texts: TextSet) -> Reading:
        """How ``texts`` are read (:mod:`.windows`): each one's windows of token ids, its
        length and the tokens left unread; tokenised once."""
        key = texts.fingerprint()
        if key not in self._read:
            if len(self._read) >= 8:  # a run's splits, and a few more
                self._read.pop(next(iter(self._read)))
            self._read[key] = self.loaded.read(texts.texts)
        return self._read[key]

    def _window_starts(self, texts: TextSet) -> np.ndarray:
        """Where each text's windows start in the list of all windows (and, last, the end)."""
        return np.concatenate([[0], np.cumsum(self.reading(texts).counts())]).astype(np.int64)

    def _rows(self, texts: TextSet) -> int:
        """Rows of the stored array: one per text, or (a prefix) one per token of each window."""
        if not self.ragged:
            return len(texts)
        return sum(len(w) for ws in self.reading(texts).windows for w in ws)

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
            offsets, first = self._offsets(texts), self._window_starts(texts)
            return self.store.save_sharded(
                key,
                shape,
                len(texts),
                (lambda lo, hi: (offsets[first[lo]], offsets[first[hi]]))
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
        """Where each window's rows start in a prefix entry (and, last, where the rows end)."""
        lengths = [len(w) for ws in self.reading(texts).windows for w in ws]
        return np.concatenate([[0], np.cumsum(np.asarray(lengths, dtype=np.int64))])

    def inputs(self, sets: list[FeatureSet], labels: np.ndarray, rows: np.ndarray):
        """Training inputs over extracted outputs (text has one view: ``sets`` holds one)."""
        fs = sets[0]
        if self.ragged:
            return RaggedInputs(
                fs.features,
                np.asarray(fs.extra["offsets"]),
                labels,
                rows,
                windows=np.asarray(fs.extra["window_counts"]),
            )
        return ArrayInputs([fs.features], labels, rows)

    @torch.inference_mode()
    def _compute(
        self, texts: TextSet, key: str, out: np.ndarray, items: range | None = None
    ) -> FeatureSet:
        """Windows in batches of ``batch_size`` windows of similar length (texts in order of
        length, so little padding), however many windows each text has; a text's vector is
        pooled from its windows' as soon as its last window is encoded, and lands in place.
        A prefix stores each window's token states. ``items``: the texts to compute (all by
        default); ``out`` then starts at the first one's row."""
        start = time.perf_counter()
        reading = self.reading(texts)
        items = range(len(texts)) if items is None else items
        counts = reading.counts()
        size = np.array([sum(len(w) for w in ws) for ws in reading.windows], dtype=np.int64)
        order = np.asarray(items)[np.argsort(size[items.start : items.stop], kind="stable")]
        what = "frozen prefix" if self.ragged else "features"
        bar = progress_bar(
            total=len(items),
            desc=f"{what} {texts.name}{shard_note()}",
            unit="text",
        )
        flat = [(int(r), k) for r in order for k in range(counts[r])]
        if self.ragged:
            self._compute_prefix(texts, out, items, flat, bar)
        else:
            self._compute_pooled(reading, out, items, order, flat, bar)
        bar.close()
        n = len(items)
        fs = FeatureSet(out, np.ones(n, dtype=bool), key, "", time.perf_counter() - start, [])
        room = self.loaded.max_length - sum(len(t) for t in self.loaded.special_tokens())
        fs.extra["long_texts"] = summary(reading, items, self.loaded.preprocessing.long_texts, room)
        fs.extra["truncated"] = fs.extra["long_texts"]["longer"]  # texts longer than a window
        if self.ragged:
            fs.extra["offsets"] = self._offsets(texts).tolist()
            fs.extra["window_counts"] = counts.tolist()
        return fs

    def _compute_pooled(self, reading: Reading, out, items: range, order, flat, bar) -> None:
        counts = reading.counts()
        encoder = self.loaded.backbone
        pending: list[torch.Tensor] = []  # encoded windows of texts not yet pooled
        held, next_text = 0, 0  # windows pending; the first text (in ``order``) not yet pooled
        for s in range(0, len(flat), self.batch_size):
            chunk = flat[s : s + self.batch_size]
            input_ids, mask = self.loaded.pad([reading.windows[r][k] for r, k in chunk])
            pending.append(self.module((input_ids.to(self.device), mask.to(self.device))))
            held += len(chunk)
            done, used = next_text, 0
            while done < len(order) and used + counts[order[done]] <= held:
                used += counts[order[done]]
                done += 1
            if done == next_text:
                continue
            windows = torch.cat(pending)
            rows = order[next_text:done]
            member = torch.from_numpy(membership(counts[rows])).to(self.device)
            pooled = encoder.join(windows[:used].float(), member)
            out[rows - items.start] = pooled.cpu().numpy().astype(self.dtype)
            pending, held, next_text = [windows[used:]], held - used, done
            bar.update(len(rows))

    def _compute_prefix(self, texts: TextSet, out, items: range, flat, bar) -> None:
        reading = self.reading(texts)
        offsets, first = self._offsets(texts), self._window_starts(texts)
        base = offsets[first[items.start]]
        finished: dict[int, int] = {}
        for s in range(0, len(flat), self.batch_size):
            chunk = flat[s : s + self.batch_size]
            windows = [reading.windows[r][k] for r, k in chunk]
            input_ids, mask = self.loaded.pad(windows)
            hidden, _ = self.module((input_ids.to(self.device), mask.to(self.device)))
            hidden = hidden.float().cpu().numpy()
            for j, (r, k) in enumerate(chunk):
                w = first[r] + k
                out[offsets[w] - base : offsets[w + 1] - base] = hidden[j, : len(windows[j])]
                finished[r] = finished.get(r, 0) + 1
                if finished[r] == len(reading.windows[r]):
                    bar.update(1)


class RaggedInputs:
    """A cached prefix of texts as training inputs: each window's hidden states (unpadded rows
    of ``flat``, between its offsets), padded per batch to the batch's longest window and given
    with the attention mask and the windows' membership of the batch's texts (each text one
    window unless it is longer than the encoder's window, see :mod:`.windows`). Batches group
    texts of similar length (less padding) and are drawn exactly as :class:`TextInputs` draws
    them, so cached and uncached runs see the same batches."""

    def __init__(self, flat: np.ndarray, offsets: np.ndarray, labels, rows=None, windows=None):
        self.flat = flat
        self.offsets = np.asarray(offsets, dtype=np.int64)  # per window
        self.labels = np.asarray(labels, dtype=np.int64)
        self.rows = np.arange(len(self.labels)) if rows is None else np.asarray(rows)
        counts = np.ones(len(self.labels), np.int64) if windows is None else np.asarray(windows)
        self.counts = counts.astype(np.int64)
        self.first = np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)
        self.lengths = self.offsets[self.first[1:]] - self.offsets[self.first[:-1]]

    def __len__(self) -> int:
        return len(self.rows)

    def _gather(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        windows = np.concatenate([np.arange(self.first[r], self.first[r + 1]) for r in rows])
        starts, ends = self.offsets[windows], self.offsets[windows + 1]
        width = int((ends - starts).max())
        x = np.zeros((len(windows), width, self.flat.shape[1]), dtype=np.float32)
        mask = np.zeros((len(windows), width), dtype=np.int64)
        for j, (a, b) in enumerate(zip(starts, ends)):
            x[j, : b - a] = self.flat[a:b]
            mask[j, : b - a] = 1
        member = torch.from_numpy(membership(self.counts[rows]))
        return torch.from_numpy(x), torch.from_numpy(mask), member

    def epoch(
        self, rng: np.random.Generator | None, batch_size: int, part: Part = None
    ) -> Iterator[Batch]:
        lengths = self.lengths[self.rows]
        for batch in length_grouped_batches(rng, lengths, batch_size, processes_of(part)):
            rows = self.rows[part_of(batch, part)]
            yield self._gather(rows), torch.from_numpy(self.labels[rows])


class TextInputs:
    """Texts tokenised once (in windows, as ``--long-texts`` reads them) and run through the
    whole encoder every step: full fine-tuning, training from scratch, ``--no-cache``, or a
    family with no verified cut. A batch is the windows of its texts, with their membership:
    the encoder pools each text's windows as prediction does."""

    def __init__(self, texts: TextSet, loaded: LoadedEncoder):
        reading = loaded.read(texts.texts)
        self.windows = reading.windows
        self.counts = reading.counts()
        self.lengths = np.array([sum(len(w) for w in ws) for ws in self.windows], np.int64)
        self.loaded = loaded
        self.labels = np.asarray(texts.labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def epoch(
        self, rng: np.random.Generator | None, batch_size: int, part: Part = None
    ) -> Iterator[Batch]:
        for batch in length_grouped_batches(rng, self.lengths, batch_size, processes_of(part)):
            rows = part_of(batch, part)
            ids, mask = self.loaded.pad([w for r in rows for w in self.windows[r]])
            member = torch.from_numpy(membership(self.counts[rows]))
            yield (ids, mask, member), torch.from_numpy(self.labels[rows])
