"""Pooled text embeddings computed once per text and cached, exactly as image features are:
same store (memory, then disk; marker written last), a key that hashes everything the vectors
depend on (encoder, weights, pooling, maximum length, the texts)."""

from __future__ import annotations

import hashlib
import json
import time

import numpy as np
import torch

from headstart.core.cache import CACHE_VERSION, FeatureSet, FeatureStore
from headstart.errors import ConfigError
from headstart.modalities.text.encoder import LoadedEncoder
from headstart.modalities.text.textset import TextSet
from headstart.progress import progress_bar


class TextFeatureExtractor:
    """Pooled embeddings of texts through a frozen encoder, cached by key. The interface of the
    image ``FeatureExtractor`` that training uses: ``extract``, ``cached``, ``key``,
    ``output_shape``, ``estimate_bytes``, ``dtype``."""

    cut = "pooled"

    def __init__(
        self,
        loaded: LoadedEncoder,
        *,
        device: torch.device | str = "cpu",
        batch_size: int = 32,
        cache: bool = True,
        progress: bool = True,
        dtype: np.dtype | type = np.float32,
    ):
        self.loaded = loaded
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.cache = cache
        self.progress = progress
        self.dtype = np.dtype(dtype)
        self.store = FeatureStore(self.dtype)
        self.module = loaded.backbone.to(self.device).eval()

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
        return (self.loaded.backbone.num_features,)

    def estimate_bytes(self, n_texts: int, views: int = 1) -> int:
        return int(n_texts * views * self.output_shape()[0] * self.dtype.itemsize)

    def key(self, texts: TextSet, view: int = 0, seed: int = 0) -> str:
        spec = {**self.model_key(), "data": texts.fingerprint()}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]

    def cached(self, texts: TextSet, view: int = 0, seed: int = 0) -> bool:
        return self.store.has(self.key(texts, view, seed))

    def extract(self, texts: TextSet, view: int = 0, seed: int = 0) -> FeatureSet:
        """Embeddings of ``texts``; text has one view (no augmentation, no mirror)."""
        if view != 0:
            raise ConfigError(
                "text has no augmented or mirrored views: --augment, --views and --tta apply "
                "to images only."
            )
        key = self.key(texts)
        shape = (len(texts), *self.output_shape())
        hit = self.store.load(key, shape) if self.cache else None
        if hit is not None:
            return hit
        if not self.cache:
            fs = self._compute(texts, key, np.empty(shape, self.dtype))
            self.store.remember(fs)
            return fs
        return self.store.save(
            key, shape, lambda out: self._compute(texts, key, out), self.model_key()
        )

    @torch.inference_mode()
    def _compute(self, texts: TextSet, key: str, out: np.ndarray) -> FeatureSet:
        """Batches of similar length (less padding), in order of length; rows land in place."""
        start = time.perf_counter()
        n, bs = len(texts), self.batch_size
        order = np.argsort([len(t) for t in texts.texts], kind="stable")
        truncated = 0
        bar = progress_bar(
            total=n, desc=f"features {texts.name}", unit="text", enabled=self.progress
        )
        for s in range(0, n, bs):
            rows = order[s : s + bs]
            batch, cut = self.loaded.tokenize([texts.texts[i] for i in rows])
            truncated += sum(cut)
            ids = batch["input_ids"].to(self.device)
            mask = batch["attention_mask"].to(self.device)
            out[rows] = self.module((ids, mask)).float().cpu().numpy().astype(self.dtype)
            bar.update(len(rows))
        bar.close()
        fs = FeatureSet(out, np.ones(n, dtype=bool), key, "", time.perf_counter() - start, [])
        fs.extra["truncated"] = truncated
        return fs
