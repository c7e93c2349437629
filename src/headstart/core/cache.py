"""Run the frozen part of the network over an ImageSet once; reuse its output every epoch.

This is why frozen training in headstart costs one forward pass instead of thirty, and why
fine-tuning the top stage costs only that stage per epoch. The frozen part is either the whole
backbone with pooling (``cut="pooled"``: feature extraction) or a prefix of it ending at a stage
boundary (fine-tuning); its outputs are cached in memory and on disk under a key that hashes
everything they depend on: the backbone, its weights, pooling, the preprocessing, the cut, the
view (plain, or augmented view k with its seed) and the data. Change any of them and the key
changes; nothing stale is ever reused.

Prefix outputs are stored as float16 (pooled features as float32) in ``.npy`` files written
row by row into a temporary file and renamed when complete; the JSON that marks an entry as
complete is written last. An interrupted extraction therefore leaves nothing a later run trusts.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from headstart.core.inputs import ArrayInputs
from headstart.io import atomic_write_json
from headstart.modalities.image.backbones.model import LoadedBackbone
from headstart.modalities.image.data.decode import UnreadableImage
from headstart.modalities.image.data.imageset import ImageSet
from headstart.modalities.image.preprocess import augmenter, prepare_batch
from headstart.progress import progress_bar

#: 2: augmented views gained colour jitter and the flip switch; 3: an augmented view is seeded
#: per image, no longer per extraction batch, so it no longer depends on the batch size;
#: 4: every-depth features gained the last feature map's average (entries of earlier builds
#: had the same spec and another shape). Entries are also checked against the output shape.
CACHE_VERSION = 4
_MEMORY: OrderedDict[str, FeatureSet] = OrderedDict()
_MEMORY_ITEMS = 16


#: The mirror image (horizontal flip, nothing else): the second view of test-time augmentation.
MIRROR = -1


def cache_root() -> Path:
    """``$HEADSTART_CACHE_DIR``, else ``$XDG_CACHE_HOME/headstart``, else ``~/.cache/headstart``."""
    if os.environ.get("HEADSTART_CACHE_DIR"):
        return Path(os.environ["HEADSTART_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "headstart"


def data_fingerprint(images: ImageSet) -> str:
    """Hash of the items' identities and contents (file size + mtime, or array bytes; a
    modality's own ``fingerprint()`` where it has one, as texts do)."""
    if hasattr(images, "fingerprint"):
        return images.fingerprint()
    cached = getattr(images, "_fingerprint", None)
    if cached:
        return cached
    h = hashlib.sha256()
    h.update(json.dumps(images.ids).encode())
    h.update(images.labels.tobytes())
    if images.paths is not None:
        for p in images.paths:
            try:
                st = os.stat(p)
                h.update(f"{st.st_size}:{st.st_mtime_ns};".encode())
            except OSError:
                h.update(b"missing;")
    else:
        for start in range(0, len(images.index), 512):
            rows = images.index[start : start + 512]
            h.update(np.ascontiguousarray(images.array[rows]).tobytes())
    images._fingerprint = h.hexdigest()[:24]
    return images._fingerprint


@dataclass
class FeatureSet:
    """Pooled features of one split and view; rows of unreadable images are marked invalid."""

    features: np.ndarray
    valid: np.ndarray
    key: str
    hit: str = ""  # "", "memory" or "disk"
    seconds: float = 0.0
    bad: list[dict[str, str]] = field(default_factory=list)
    #: what an extraction noticed beside the rows (text: how many were truncated)
    extra: dict = field(default_factory=dict)


class FeatureStore:
    """Cache entries by key: in memory (the last few) and on disk under :func:`cache_root`, as
    an ``.npy`` of rows plus a JSON marker written last, so an interrupted write is never
    trusted. Every modality's extractor keeps its outputs here."""

    def __init__(self, dtype: np.dtype | type = np.float32):
        self.dtype = np.dtype(dtype)

    @staticmethod
    def paths(key: str) -> tuple[Path, Path]:
        folder = cache_root() / "features" / key[:2]
        return folder / f"{key}.npy", folder / f"{key}.json"

    def has(self, key: str) -> bool:
        return key in _MEMORY or self.paths(key)[1].is_file()

    def load(self, key: str, shape: tuple[int, ...]) -> FeatureSet | None:
        """The entry ``key`` if it is in memory, or complete on disk with ``shape`` and this
        store's dtype (anything else is recomputed and overwritten)."""
        if key in _MEMORY:
            _MEMORY.move_to_end(key)
            fs = _MEMORY[key]
            return FeatureSet(fs.features, fs.valid, key, "memory", 0.0, fs.bad, fs.extra)
        npy, meta = self.paths(key)
        if not (meta.is_file() and npy.is_file()):
            return None
        try:
            info = json.loads(meta.read_text())
            feats = np.load(npy, mmap_mode="r", allow_pickle=False)
            if feats.shape != tuple(shape) or feats.dtype != self.dtype:
                return None
            fs = FeatureSet(
                feats,
                np.asarray(info["valid"], bool),
                key,
                "disk",
                0.0,
                info.get("bad", []),
                info.get("extra", {}),
            )
        except (ValueError, KeyError, OSError):
            return None  # unreadable entry: recompute and overwrite it
        self.remember(fs)
        return fs

    def save(
        self, key: str, shape: tuple, fill, model_key: dict, *, remember: bool = True
    ) -> FeatureSet:
        """Write the rows ``fill(out)`` puts in a memory map, then the JSON that marks the
        entry complete (written last: an interrupted write is never trusted)."""
        npy, meta = self.paths(key)
        npy.parent.mkdir(parents=True, exist_ok=True)
        tmp = npy.with_name(f".{npy.name}.{os.getpid()}.tmp")
        try:  # rows go straight to disk: a large prefix cache never has to fit in memory
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=self.dtype, shape=shape)
            fs = fill(out)
            out.flush()
            del out
            os.replace(tmp, npy)
        finally:
            if tmp.exists():
                tmp.unlink()
        atomic_write_json(
            meta,
            {
                "valid": fs.valid.tolist(),
                "bad": fs.bad,
                "extra": fs.extra,
                "n": shape[0],
                "shape": list(shape),
                "model": model_key,
                "bytes": npy.stat().st_size,
            },
        )
        fs = FeatureSet(
            np.load(npy, mmap_mode="r", allow_pickle=False),
            fs.valid,
            key,
            "",
            fs.seconds,
            fs.bad,
            fs.extra,
        )
        if remember:
            self.remember(fs)
        return fs

    @staticmethod
    def remember(fs: FeatureSet) -> None:
        _MEMORY[fs.key] = fs
        while len(_MEMORY) > _MEMORY_ITEMS:
            _MEMORY.popitem(last=False)


def _decode_all(images: ImageSet, positions: range) -> list[np.ndarray | UnreadableImage]:
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
        progress: bool = True,
        augment_strength: float = 1.0,
        augment_flip: bool = True,
    ):
        self.loaded = loaded
        self.cut = cut
        self.dtype = np.dtype(dtype)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.cache = cache
        self.progress = progress
        self.augment_strength = augment_strength
        self.augment_flip = augment_flip
        self.module = (module if module is not None else loaded.backbone).to(self.device).eval()
        self.channels_last = not loaded.backbone.tokens
        if self.channels_last:
            self.module = self.module.to(memory_format=torch.channels_last)
        self._shape: tuple[int, ...] | None = None
        self.store = FeatureStore(self.dtype)

    def model_key(self, *, last_only: bool = False) -> dict:
        """What the outputs depend on; ``last_only``: the key of the last features alone (the
        slice of every-depth features that a ``--features last`` backbone gives)."""
        lb = self.loaded
        depth = lb.backbone.features
        return {
            "version": CACHE_VERSION,
            "backbone": lb.timm_name,
            "weights": lb.weights.fingerprint,
            "pooling": lb.backbone.pooling,
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

    def key(self, images: ImageSet, view: int = 0, seed: int = 0, *, last_only=False) -> str:
        spec = {
            **self.model_key(last_only=last_only),
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
        if self.cache or key in _MEMORY:
            hit = self.store.load(key, (len(images), *self.output_shape()))
            if hit is not None:
                return hit
        shape = (len(images), *self.output_shape())
        if not self.cache:
            fs = self._compute(images, view, seed, key, np.empty(shape, self.dtype))
            self.store.remember(fs)
            return fs
        fs = self.store.save(
            key, shape, lambda out: self._compute(images, view, seed, key, out), self.model_key()
        )
        last = self.loaded.backbone.last_columns()
        if last is not None and self.cut == "pooled":
            # every-depth features hold the last features: store them under the last
            # features' key too, so a later --features last run needs no forward pass
            last_key = self.key(images, view, seed, last_only=True)
            if not self.store.paths(last_key)[1].is_file():

                def copy(out: np.ndarray) -> FeatureSet:
                    out[:] = fs.features[:, last]
                    return FeatureSet(out, fs.valid, last_key, "", 0.0, fs.bad)

                n_last = len(range(*last.indices(fs.features.shape[1])))
                self.store.save(
                    last_key,
                    (len(images), n_last),
                    copy,
                    self.model_key(last_only=True),
                    remember=False,
                )
        return fs

    @torch.inference_mode()
    def _compute(
        self, images: ImageSet, view: int, seed: int, key: str, out: np.ndarray
    ) -> FeatureSet:
        start = time.perf_counter()
        n, bs = len(images), self.batch_size
        valid = np.zeros(n, dtype=bool)
        bad: list[dict[str, str]] = []
        prep = self.loaded.preprocessing
        aug = augmenter(self.augment_strength, self.augment_flip) if view > 0 else None
        batches = [range(s, min(s + bs, n)) for s in range(0, n, bs)]
        label = images.name + {0: "", MIRROR: " mirrored"}.get(view, f" view {view}")
        what = "features" if self.cut == "pooled" else "frozen prefix"
        bar = progress_bar(total=n, desc=f"{what} {label}", unit="img", enabled=self.progress)
        with ThreadPoolExecutor(max_workers=2) as pool:
            pending = pool.submit(_decode_all, images, batches[0]) if batches else None
            for b, positions in enumerate(batches):
                decoded = pending.result()
                if b + 1 < len(batches):  # decode the next batch while this one runs
                    pending = pool.submit(_decode_all, images, batches[b + 1])
                ok = [p for p, d in zip(positions, decoded) if not isinstance(d, UnreadableImage)]
                for p, d in zip(positions, decoded):
                    if isinstance(d, UnreadableImage):
                        bad.append({"path": images.describe(p), "reason": d.reason})
                        out[p] = np.nan
                if ok:
                    imgs = [d for d in decoded if not isinstance(d, UnreadableImage)]
                    if view == MIRROR:
                        imgs = [np.ascontiguousarray(d[:, ::-1]) for d in imgs]
                    seeds = [view_seed(seed, view, p) for p in ok] if aug is not None else None
                    x = prepare_batch(imgs, prep, aug, seed=seeds)
                    x = x.to(self.device)
                    if self.channels_last:
                        x = x.contiguous(memory_format=torch.channels_last)
                    out[ok] = self.module(x).float().cpu().numpy().astype(self.dtype, copy=False)
                    valid[ok] = True
                bar.update(len(positions))
                if bad:
                    bar.set_postfix(unreadable=len(bad))
        bar.close()
        return FeatureSet(out, valid, key, "", time.perf_counter() - start, bad)


def view_seed(seed: int, view: int, position: int) -> int:
    """A distinct, reproducible seed for each (run seed, augmented view, image position): the
    same image gets the same view whatever the extraction batch size (the cache key has no
    batch size)."""
    digest = hashlib.blake2b(f"{seed}:{view}:{position}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % (2**31)


def clear_memory_cache() -> None:
    _MEMORY.clear()
