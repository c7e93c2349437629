"""Predicting with an exported run through ONNX Runtime, without PyTorch.

``OnnxModel(path)`` reads ``model.onnx`` (or a run directory holding ``onnx/model.onnx``) and
the metadata beside it, and offers what a loaded run offers for prediction: ``class_names``,
``modality`` and ``predict_proba(examples)``. Examples become the graph's input through the
modality's torch-free preprocessing (Pillow resizing for images, ``tokenizers`` for texts), so
this module and everything it imports run where torch is not installed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from headstart.errors import ConfigError, RunError

#: the metadata's format name, in ``metadata_props`` and the JSON beside the model
EXPORT_FORMAT = "headstart-onnx"
EXPORT_FORMAT_VERSION = 1
#: where ``headstart export RUN_DIR`` writes by default, inside the run
DEFAULT_EXPORT = Path("onnx") / "model.onnx"


def metadata_path(model_path: Path) -> Path:
    """The JSON beside ``model.onnx``: ``model.json``... named after the model file."""
    return model_path.with_suffix(".json")


def read_metadata(model_path: Path) -> dict | None:
    """The export's metadata, or None when ``model_path`` is not a headstart export."""
    side = metadata_path(model_path)
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == EXPORT_FORMAT else None


def find_export(path: str | Path) -> Path:
    """``path`` itself when it is an ``.onnx`` file, else the run directory's default export."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise RunError(f"{path}: no such ONNX model.")
        return path
    candidate = path / DEFAULT_EXPORT
    if path.is_dir() and candidate.is_file():
        return candidate
    if path.is_dir():
        raise RunError(
            f"{path}: has no {DEFAULT_EXPORT.as_posix()}; run `headstart export {path}` first "
            "(or give the .onnx file)."
        )
    raise RunError(f"{path}: no such run directory or ONNX model.")


def _embedded(session) -> dict | None:
    """The metadata ``headstart export`` wrote into the model's ``metadata_props``."""
    try:
        meta = json.loads(session.get_modelmeta().custom_metadata_map.get("headstart", ""))
    except ValueError:
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == EXPORT_FORMAT else None


class OnnxModel:
    """An exported run, predicting through ONNX Runtime."""

    def __init__(self, path: str | Path, *, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ConfigError(
                "the ONNX engine needs ONNX Runtime: pip install 'headstart[onnx]'."
            ) from None
        from headstart.core.modality import modality

        self.path = find_export(path)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # a corrupt or truncated file
            raise RunError(f"{self.path}: ONNX Runtime cannot load it ({str(e)[:200]}).") from None
        # the JSON beside the model, else the copy inside it (a model shipped alone)
        meta = read_metadata(self.path) or _embedded(self.session)
        if meta is None:
            raise RunError(
                f"{self.path}: carries no headstart metadata (neither inside it nor in "
                f"{metadata_path(self.path).name} beside it); export it with `headstart export`."
            )
        if meta.get("format_version", 0) > EXPORT_FORMAT_VERSION:
            raise RunError(f"{self.path}: exported by a newer headstart; upgrade to load it.")
        self.meta = meta
        self.class_names: tuple[str, ...] = tuple(meta["class_names"])
        #: a multi-label export's per-label thresholds (class_names order), else None
        self.thresholds = (
            np.array([meta["thresholds"][c] for c in self.class_names])
            if meta.get("thresholds")
            else None
        )
        self.modality: str = meta["modality"]
        kind = modality(self.modality)
        self.noun = kind.noun
        self.feed = kind.onnx_feed(meta, self.path.parent)

    def predict_proba(
        self, examples: Sequence, *, batch_size: int = 32, progress: bool | None = None
    ) -> np.ndarray:
        """(N, classes) probabilities: decoded images (HxWx3 uint8) or strings, as the
        exported run's modality takes them. ``progress``: a bar (None: as the caller's entry
        point set it, off unless it turned it on)."""
        from headstart.progress import enabled, progress_bar

        n = len(examples)
        out = np.zeros((n, len(self.class_names)), dtype=np.float32)
        order = getattr(self.feed, "order", None)
        positions = order(examples) if order is not None else np.arange(n)
        # a feed may group examples itself (texts: by their windows, so a batch of long
        # texts runs as many windows at once as the torch path does)
        grouped = getattr(self.feed, "batches", None)
        batches = (
            grouped(examples, positions, batch_size)
            if grouped is not None
            else [positions[s : s + batch_size] for s in range(0, n, batch_size)]
        )
        with (
            enabled(progress),
            progress_bar(total=n, desc="predicting (onnx)", unit=self.noun) as bar,
        ):
            for rows in batches:
                batch = [examples[int(k)] for k in rows]
                out[rows] = self.session.run(None, self.feed(batch))[0]
                bar.update(len(batch))
        return out


def check_engine_target(target: str | Path, engine: str) -> None:
    """Refuse, before anything heavy loads, an engine or a target it cannot run: a missing
    path, a folder that is not a run (``torch``), a run without an export (``onnx``)."""
    from headstart.choices import ENGINES
    from headstart.core.rundir import check_run_dir

    if engine not in ENGINES:
        raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}; got {engine!r}.")
    if engine == "onnx":
        find_export(target)
    elif Path(target).suffix.lower() == ".onnx":
        raise ConfigError(f"{target} is an ONNX model: add --engine onnx to use it.")
    else:
        check_run_dir(target)


def load_engine(target: str | Path, engine: str):
    """What ``predict`` and ``serve`` run: the saved run (``torch``) or its ONNX export
    (``onnx``, through :class:`OnnxModel`, never importing torch); both have ``class_names``,
    ``modality`` and ``predict_proba``."""
    check_engine_target(target, engine)
    if engine == "onnx":
        return OnnxModel(target)
    from headstart.core.runs import load_run

    return load_run(target)
