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
import secrets
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from headstart.choices import POOLINGS
from headstart.core import distributed
from headstart.core.inputs import ArrayInputs
from headstart.errors import RunError
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

    def load_shared(
        self, key: str, shape: tuple[int, ...], group: distributed.Group
    ) -> FeatureSet | None:
        """:meth:`load` decided once for all ranks: rank 0 looks, every rank follows (a rank
        that looked alone could see an entry another rank is still finishing). A rank that
        cannot read what rank 0 found is told the cache folder must be shared."""
        if not group.distributed:
            return self.load(key, shape)
        fs = self.load(key, shape) if group.is_main else None
        if not group.broadcast(fs is not None):
            return None
        if fs is None:
            fs = self.load(key, shape)
        group.raise_together(None if fs else _not_shared(self.paths(key)[1], group.rank))
        return fs

    def save_sharded(
        self,
        key: str,
        shape: tuple,
        n_items: int,
        rows_of,
        compute,
        model_key: dict,
        group: distributed.Group,
    ) -> FeatureSet:
        """The entry ``key`` computed by every rank in parallel, as :meth:`save` writes it.

        Each rank computes a contiguous shard of the ``n_items`` examples,
        ``compute(lo, hi, out)``, into a part file of its own (rows ``rows_of(lo, hi)`` of the
        entry: one per example, or a text's tokens). Rank 0 then joins the parts into the entry
        (a temporary file renamed into place) and writes the marker last; the parts are
        removed. An entry is therefore complete or absent whatever rank dies when, and it is
        the entry a single process writes under the same key (the key has no process count).
        ``FeatureSet.extra`` values that are counts (ints, also inside a dict) add up over
        shards; the others are the same on every rank.
        """
        npy, meta = self.paths(key)
        npy.parent.mkdir(parents=True, exist_ok=True)
        token = group.broadcast(secrets.token_hex(6))  # two runs may build the same entry
        lo, hi = group.shard(n_items)
        r0, r1 = (int(r) for r in rows_of(lo, hi))  # plain ints: numpy writes them in the header
        part = npy.with_name(f".{npy.stem}.{token}.part{group.rank}.npy")
        out = np.lib.format.open_memmap(
            part, mode="w+", dtype=self.dtype, shape=(r1 - r0, *map(int, shape[1:]))
        )
        fs = compute(lo, hi, out)
        out.flush()
        del out
        shards = group.all_gather(
            {"valid": fs.valid, "bad": fs.bad, "extra": fs.extra, "seconds": fs.seconds}
        )
        error = None
        if group.is_main:
            try:
                self._join(npy, meta, shape, token, shards, model_key, group)
            except RunError as e:
                error = str(e)
        group.raise_together(error)
        done = self.load(key, shape)
        group.raise_together(None if done else _not_shared(meta, group.rank))
        done.hit, done.seconds = "", max(s["seconds"] for s in shards)
        return done

    def _join(self, npy: Path, meta: Path, shape, token, shards, model_key, group) -> None:
        tmp = npy.with_name(f".{npy.name}.{token}.tmp")
        parts = [npy.with_name(f".{npy.stem}.{token}.part{r}.npy") for r in range(len(shards))]
        missing = [r for r, p in enumerate(parts) if not p.is_file()]
        try:
            if missing:
                raise RunError(_not_shared(parts[missing[0]], missing[0], writer=True))
            full = np.lib.format.open_memmap(tmp, mode="w+", dtype=self.dtype, shape=shape)
            row = 0
            for p in parts:  # in slices: a large prefix never has to fit in memory
                piece = np.load(p, mmap_mode="r", allow_pickle=False)
                for s in range(0, len(piece), 4096):
                    chunk = piece[s : s + 4096]
                    full[row + s : row + s + len(chunk)] = chunk
                row += len(piece)
            full.flush()
            del full
            os.replace(tmp, npy)
        finally:
            tmp.unlink(missing_ok=True)
            for p in parts:
                p.unlink(missing_ok=True)
        extra = add_counts([s["extra"] for s in shards])
        atomic_write_json(
            meta,
            {
                "valid": np.concatenate([s["valid"] for s in shards]).tolist(),
                "bad": [b for s in shards for b in s["bad"]],
                "extra": extra,
                "n": shape[0],
                "shape": list(shape),
                "model": model_key,
                "bytes": npy.stat().st_size,
                "written_by_processes": group.world_size,
            },
        )

    @staticmethod
    def remember(fs: FeatureSet) -> None:
        _MEMORY[fs.key] = fs
        while len(_MEMORY) > _MEMORY_ITEMS:
            _MEMORY.popitem(last=False)


def _not_shared(path: Path, rank: int, *, writer: bool = False) -> str:
    if writer:
        who = f"rank 0 cannot read what rank {rank} wrote"
    else:
        who = f"rank {rank} cannot read what rank 0 wrote"
    return (
        f"{path}: {who}. A run on several machines needs the cache on a file system every "
        "machine sees: set HEADSTART_CACHE_DIR to a shared folder (a network file system), "
        "or run on one machine."
    )


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
        if self.cache or key in _MEMORY:
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
            total=n, desc=f"{what} {label}{shard_note()}", unit="img", enabled=self.progress
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


def add_counts(parts: list[dict]) -> dict:
    """Shards' ``FeatureSet.extra`` joined: counts (ints, not booleans) added, dicts joined the
    same way, anything else the first shard's."""
    out: dict = {}
    for part in parts:
        for k, v in part.items():
            if k not in out:
                out[k] = add_counts([v]) if isinstance(v, dict) else v
            elif isinstance(v, dict) and isinstance(out[k], dict):
                out[k] = add_counts([out[k], v])
            elif isinstance(v, int) and not isinstance(v, bool):
                out[k] = out[k] + v
    return out


def shard_note() -> str:
    """Beside a progress bar of a distributed extraction: whose shard it counts."""
    group = distributed.current()
    return f" (shard {group.rank + 1} of {group.world_size})" if group.distributed else ""


def view_seed(seed: int, view: int, position: int) -> int:
    """A distinct, reproducible seed for each (run seed, augmented view, image position): the
    same image gets the same view whatever the extraction batch size (the cache key has no
    batch size)."""
    digest = hashlib.blake2b(f"{seed}:{view}:{position}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % (2**31)


def clear_memory_cache() -> None:
    _MEMORY.clear()
