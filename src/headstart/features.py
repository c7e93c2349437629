"""Run the frozen backbone over an ImageSet once; keep the pooled features for every epoch.

This is why frozen training in headstart costs one forward pass instead of thirty. Features are
cached in memory and on disk under a key that hashes everything they depend on: the backbone,
its weights, pooling, the preprocessing, the view (plain, or augmented view k with its seed) and
the data itself. Change any of them and the key changes; nothing stale is ever reused.

Files are written atomically (array first, then the JSON that marks it complete), so an
interrupted extraction leaves nothing that a later run would trust.
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
from tqdm.auto import tqdm

from headstart.backbones.model import LoadedBackbone
from headstart.data.decode import UnreadableImage
from headstart.data.imageset import ImageSet
from headstart.io import atomic_write_json, atomic_write_with
from headstart.preprocess import augmenter, prepare_batch

CACHE_VERSION = 1
_MEMORY: OrderedDict[str, FeatureSet] = OrderedDict()
_MEMORY_ITEMS = 16


def cache_root() -> Path:
    """``$HEADSTART_CACHE_DIR``, else ``$XDG_CACHE_HOME/headstart``, else ``~/.cache/headstart``."""
    if os.environ.get("HEADSTART_CACHE_DIR"):
        return Path(os.environ["HEADSTART_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "headstart"


def data_fingerprint(images: ImageSet) -> str:
    """Hash of the items' identities and contents (file size + mtime, or array bytes)."""
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


def _decode_all(images: ImageSet, positions: range) -> list[np.ndarray | UnreadableImage]:
    out: list[np.ndarray | UnreadableImage] = []
    for i in positions:
        try:
            out.append(images.image(i))
        except UnreadableImage as e:
            out.append(e)
    return out


class FeatureExtractor:
    """Pooled features of a frozen backbone, cached by a key of everything they depend on."""

    def __init__(
        self,
        loaded: LoadedBackbone,
        *,
        device: torch.device | str = "cpu",
        batch_size: int = 32,
        cache: bool = True,
        progress: bool = True,
        augment_strength: float = 1.0,
    ):
        self.loaded = loaded
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.cache = cache
        self.progress = progress
        self.augment_strength = augment_strength
        self.backbone = loaded.backbone.to(self.device).eval()
        if not loaded.backbone.tokens:
            self.backbone = self.backbone.to(memory_format=torch.channels_last)

    def model_key(self) -> dict:
        lb = self.loaded
        return {
            "version": CACHE_VERSION,
            "backbone": lb.timm_name,
            "weights": lb.weights.fingerprint,
            "pooling": lb.backbone.pooling,
            "preprocessing": lb.preprocessing.to_dict(),
            "cut": "pooled",
        }

    def key(self, images: ImageSet, view: int = 0, seed: int = 0) -> str:
        spec = {
            **self.model_key(),
            "view": {"index": view, "seed": seed, "strength": self.augment_strength} if view else 0,
            "data": data_fingerprint(images),
        }
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]

    def _paths(self, key: str) -> tuple[Path, Path]:
        folder = cache_root() / "features" / key[:2]
        return folder / f"{key}.npy", folder / f"{key}.json"

    def extract(self, images: ImageSet, view: int = 0, seed: int = 0) -> FeatureSet:
        """Features of ``images`` (view 0 plain, view k >= 1 the k-th seeded augmentation)."""
        key = self.key(images, view, seed)
        if key in _MEMORY:
            _MEMORY.move_to_end(key)
            fs = _MEMORY[key]
            return FeatureSet(fs.features, fs.valid, key, "memory", 0.0, fs.bad)
        npy, meta = self._paths(key)
        if self.cache and meta.is_file() and npy.is_file():
            try:
                info = json.loads(meta.read_text())
                feats = np.load(npy, mmap_mode="r", allow_pickle=False)
                if feats.shape[0] == len(images):
                    fs = FeatureSet(
                        np.asarray(feats),
                        np.asarray(info["valid"], bool),
                        key,
                        "disk",
                        0.0,
                        info.get("bad", []),
                    )
                    self._remember(fs)
                    return fs
            except (ValueError, KeyError, OSError):
                pass  # unreadable cache entry: recompute and overwrite it
        fs = self._compute(images, view, seed, key)
        if self.cache:
            atomic_write_with(npy, lambda tmp: _save_npy(tmp, fs.features))
            atomic_write_json(
                meta,
                {
                    "valid": fs.valid.tolist(),
                    "bad": fs.bad,
                    "n": len(images),
                    "model": self.model_key(),
                },
            )
        self._remember(fs)
        return fs

    def _remember(self, fs: FeatureSet) -> None:
        _MEMORY[fs.key] = fs
        while len(_MEMORY) > _MEMORY_ITEMS:
            _MEMORY.popitem(last=False)

    @torch.inference_mode()
    def _compute(self, images: ImageSet, view: int, seed: int, key: str) -> FeatureSet:
        start = time.perf_counter()
        n, bs = len(images), self.batch_size
        width = self.loaded.backbone.num_features
        feats = np.full((n, width), np.nan, dtype=np.float32)
        valid = np.zeros(n, dtype=bool)
        bad: list[dict[str, str]] = []
        prep = self.loaded.preprocessing
        aug = augmenter(self.augment_strength) if view else None
        batches = [range(s, min(s + bs, n)) for s in range(0, n, bs)]
        label = images.name + (f" view {view}" if view else "")
        bar = tqdm(
            total=n, desc=f"features {label}", unit="img", disable=not self.progress, leave=False
        )
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
                if ok:
                    imgs = [d for d in decoded if not isinstance(d, UnreadableImage)]
                    x = prepare_batch(imgs, prep, aug, seed=_view_seed(seed, view, b))
                    x = x.to(self.device)
                    if not self.loaded.backbone.tokens:
                        x = x.contiguous(memory_format=torch.channels_last)
                    feats[ok] = self.backbone(x).float().cpu().numpy()
                    valid[ok] = True
                bar.update(len(positions))
        bar.close()
        return FeatureSet(feats, valid, key, "", time.perf_counter() - start, bad)


def _view_seed(seed: int, view: int, batch: int) -> int:
    """A distinct, reproducible seed for each (run seed, augmented view, batch)."""
    return (seed * 1_000_003 + view * 10_007 + batch) % (2**31)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # np.save(path) would append ".npy" to the temporary name
        np.save(f, array, allow_pickle=False)


def clear_memory_cache() -> None:
    _MEMORY.clear()
