"""The image feature extractor: a frozen module (the pooled backbone, or a prefix of it) run
once over an image set, its outputs kept in the feature cache (:mod:`headstart.core.cache`).

Images are decoded in a second thread while the network runs the previous batch; an unreadable
image becomes an invalid row (reported, never fatal). Augmented views are seeded per image, so
a view does not depend on the batch size; the mirror image is view ``MIRROR``. Every-depth
features also store their last-features slices (max- and average-pooled) under the last
features' keys, so a later ``--features last`` run of either pooling costs no pass.
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from headstart.choices import POOLINGS
from headstart.core import distributed
from headstart.core.cache import (
    CACHE_VERSION,
    MIRROR,
    FeatureSet,
    FeatureStore,
    data_fingerprint,
    shard_note,
    view_seed,
)
from headstart.core.inputs import ArrayInputs
from headstart.modalities.image.backbones.model import LoadedBackbone
from headstart.modalities.image.data.decode import UnreadableImage
from headstart.modalities.image.data.imageset import ImageSet
from headstart.modalities.image.preprocess import augmenter, prepare_batch
from headstart.progress import progress_bar


def decode_all(images: ImageSet, positions: range) -> list[np.ndarray | UnreadableImage]:
    out: list[np.ndarray | UnreadableImage] = []
    for i in positions:
        try:
            out.append(images.image(i))
        except UnreadableImage as e:
            out.append(e)
    return out


class FeatureExtractor:
    """Outputs of a frozen module (the pooled backbone, or a prefix of it), cached by key.

    ``module`` defaults to the whole pooled backbone; for a prefix pass it with ``cut`` naming
    the stage boundary (part of the key) and usually ``dtype=np.float16``.
    """

    def __init__(
        self,
        loaded: LoadedBackbone,
        *,
        module: torch.nn.Module | None = None,
        cut: str = "pooled",
        dtype: np.dtype | type = np.float32,
        device: torch.device | str = "cpu",
        batch_size: int = 32,
        cache: bool = True,
        augment_strength: float = 1.0,
        augment_flip: bool = True,
        named: bool = False,
    ):
        self.loaded = loaded
        self.cut = cut
        self.dtype = np.dtype(dtype)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.cache = cache
        self.augment_strength = augment_strength
        self.augment_flip = augment_flip
        #: name the network in the progress bar (several are read one after another)
        self.named = named
        self.module = (module if module is not None else loaded.backbone).to(self.device).eval()
        self.channels_last = not loaded.backbone.tokens
        if self.channels_last:
            self.module = self.module.to(memory_format=torch.channels_last)
        self._shape: tuple[int, ...] | None = None
        self.store = FeatureStore(self.dtype)

    def model_key(self, *, last_only: bool = False, pooling: str | None = None) -> dict:
        """What the outputs depend on; ``last_only``: the key of the last features alone (the
        slice of every-depth features that a ``--features last`` backbone gives), pooled by
        ``pooling`` (default: the backbone's)."""
        lb = self.loaded
        depth = lb.backbone.features
        return {
            "version": CACHE_VERSION,
            "backbone": lb.timm_name,
            "weights": lb.weights.fingerprint,
            # the pooling shapes pooled outputs only (a prefix's come before it), and
            # every-depth features only where they append its statistic (both otherwise)
            "pooling": pooling or lb.backbone.pooling
            if self.cut == "pooled" and (last_only or not depth.multi or lb.backbone.appends_pool())
            else "any",
            # every-depth features: which stages and statistics (absent for the last features,
            # so their cache entries stay valid)
            **(
                {"features": depth.to_dict()}
                if depth.multi and self.cut == "pooled" and not last_only
                else {}
            ),
            "preprocessing": lb.preprocessing.to_dict(),
            "cut": self.cut,
            "dtype": self.dtype.name,
        }

    @torch.inference_mode()
    def output_shape(self) -> tuple[int, ...]:
        """Shape of one image's output, from one forward pass at the input size."""
        if self._shape is None:
            h, w = self.loaded.preprocessing.input_size
            x = torch.zeros(1, 3, h, w, device=self.device)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            self._shape = tuple(self.module(x).shape[1:])
        return self._shape

    def estimate_bytes(self, images: ImageSet, views: int = 1) -> int:
        """Disk (and page cache) the outputs of ``images`` x ``views`` will take."""
        return int(len(images) * views * np.prod(self.output_shape()) * self.dtype.itemsize)

    def shape_per_example(self) -> list[int]:
        return list(self.output_shape())

    def inputs(self, sets: list[FeatureSet], labels: np.ndarray, rows: np.ndarray) -> ArrayInputs:
        """Training inputs over extracted outputs: one array per view of the same images."""
        return ArrayInputs([fs.features for fs in sets], labels, rows)

    def cached(self, images: ImageSet, view: int = 0, seed: int = 0) -> bool:
        return self.store.has(self.key(images, view, seed))

    def key(
        self, images: ImageSet, view: int = 0, seed: int = 0, *, last_only=False, pooling=None
    ) -> str:
        spec = {
            **self.model_key(last_only=last_only, pooling=pooling),
            "view": {"mirror": True}
            if view == MIRROR
            else {
                "index": view,
                "seed": seed,
                "strength": self.augment_strength,
                "flip": self.augment_flip,
            }
            if view
            else 0,
            "data": data_fingerprint(images),
        }
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]

    def extract(self, images: ImageSet, view: int = 0, seed: int = 0) -> FeatureSet:
        """Outputs for ``images`` (view 0 plain, view k >= 1 the k-th seeded augmentation,
        view ``MIRROR`` the mirror image)."""
        key = self.key(images, view, seed)
        shape = (len(images), *self.output_shape())
        group = distributed.current()
        if self.cache or self.store.remembers(key):
            hit = self.store.load_shared(key, shape, group)
            if hit is not None:
                return hit
        if not self.cache:  # every rank computes what it needs itself
            fs = self._compute(images, view, seed, key, np.empty(shape, self.dtype))
            self.store.remember(fs)
            return fs
        if group.distributed:  # each rank its shard, joined into the same entry
            fs = self.store.save_sharded(
                key,
                shape,
                len(images),
                lambda lo, hi: (lo, hi),
                lambda lo, hi, out: self._compute(images, view, seed, key, out, range(lo, hi)),
                self.model_key(),
                group,
            )
        else:
            fs = self.store.save(
                key,
                shape,
                lambda out: self._compute(images, view, seed, key, out),
                self.model_key(),
            )
        if self.cut == "pooled" and group.is_main:
            self._store_last_features(fs, images, view, seed)
        return fs

    def _store_last_features(self, fs: FeatureSet, images: ImageSet, view: int, seed: int):
        """Every-depth features hold the last features, average- and max-pooled (with the
        default ``avg+max`` statistics): store each under the last features' key too, so a
        later ``--features last`` run with either pooling (the lesson head's maximum, the
        probe's average) needs no forward pass of its own."""
        for pooling in POOLINGS:
            last = self.loaded.backbone.last_columns(pooling)
            if last is None:
                continue
            last_key = self.key(images, view, seed, last_only=True, pooling=pooling)
            if self.store.paths(last_key)[1].is_file():
                continue

            def copy(out: np.ndarray, last=last, last_key=last_key) -> FeatureSet:
                out[:] = fs.features[:, last]
                return FeatureSet(out, fs.valid, last_key, "", 0.0, fs.bad)

            n_last = len(range(*last.indices(fs.features.shape[1])))
            self.store.save(
                last_key,
                (len(images), n_last),
                copy,
                self.model_key(last_only=True, pooling=pooling),
                remember=False,
            )

    @torch.inference_mode()
    def _compute(
        self,
        images: ImageSet,
        view: int,
        seed: int,
        key: str,
        out: np.ndarray,
        items: range | None = None,
    ) -> FeatureSet:
        """Outputs of the examples ``items`` (all by default) into ``out``, whose row 0 is
        the first of them."""
        start = time.perf_counter()
        items = range(len(images)) if items is None else items
        first, n, bs = items.start, len(items), self.batch_size
        valid = np.zeros(n, dtype=bool)
        bad: list[dict[str, str]] = []
        prep = self.loaded.preprocessing
        aug = augmenter(self.augment_strength, self.augment_flip) if view > 0 else None
        batches = [range(s, min(s + bs, items.stop)) for s in range(first, items.stop, bs)]
        label = images.name + {0: "", MIRROR: " mirrored"}.get(view, f" view {view}")
        what = "features" if self.cut == "pooled" else "frozen prefix"
        bar = progress_bar(
            total=n,
            desc=f"{what} {label}{f' ({self.loaded.timm_name})' if self.named else ''}"
            f"{shard_note()}",
            unit="img",
        )
        with ThreadPoolExecutor(max_workers=2) as pool:
            pending = pool.submit(decode_all, images, batches[0]) if batches else None
            for b, positions in enumerate(batches):
                decoded = pending.result()
                if b + 1 < len(batches):  # decode the next batch while this one runs
                    pending = pool.submit(decode_all, images, batches[b + 1])
                ok = [p for p, d in zip(positions, decoded) if not isinstance(d, UnreadableImage)]
                for p, d in zip(positions, decoded):
                    if isinstance(d, UnreadableImage):
                        bad.append({"path": images.describe(p), "reason": d.reason})
                        out[p - first] = np.nan
                if ok:
                    imgs = [d for d in decoded if not isinstance(d, UnreadableImage)]
                    if view == MIRROR:
                        imgs = [np.ascontiguousarray(d[:, ::-1]) for d in imgs]
                    seeds = [view_seed(seed, view, p) for p in ok] if aug is not None else None
                    x = prepare_batch(imgs, prep, aug, seed=seeds)
                    x = x.to(self.device)
                    if self.channels_last:
                        x = x.contiguous(memory_format=torch.channels_last)
                    rows = np.asarray(ok) - first
                    out[rows] = self.module(x).float().cpu().numpy().astype(self.dtype, copy=False)
                    valid[rows] = True
                bar.update(len(positions))
                if bad:
                    bar.set_postfix(unreadable=len(bad))
        bar.close()
        return FeatureSet(out, valid, key, "", time.perf_counter() - start, bad)
