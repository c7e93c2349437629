"""The feature cache: a frozen module's outputs, computed once per example and reused every
epoch, by every modality's extractor (images: :mod:`headstart.modalities.image.features`;
texts: :mod:`headstart.modalities.text.features`).

This is why frozen training in headstart costs one forward pass instead of thirty, and why
fine-tuning the top stage costs only that stage per epoch. Entries are kept in memory and on
disk under a key that hashes everything they depend on: the network, its weights, pooling, the
preprocessing, the cut, the view (plain, or augmented view k with its seed) and the data (the
example set's ``fingerprint()``). Change any of them and the key changes; nothing stale is
ever reused.

Prefix outputs are stored as float16 (pooled features as float32) in ``.npy`` files written
row by row into a temporary file and renamed when complete; the JSON that marks an entry as
complete is written last. An interrupted extraction therefore leaves nothing a later run trusts.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from headstart.core import distributed
from headstart.errors import RunError
from headstart.io import atomic_write_json

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


def data_fingerprint(examples) -> str:
    """The data part of a cache key: the example set's own ``fingerprint()`` (a hash of its
    items' identities, labels and contents, as each modality defines them)."""
    return examples.fingerprint()


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

    @staticmethod
    def remembers(key: str) -> bool:
        """Whether the entry ``key`` is in this process's memory (the last few)."""
        return key in _MEMORY

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
