"""``headstart export``: a saved run as one ONNX graph, checked before it is called done.

The graph takes what is cheap and exact to compute inside it (normalisation for images; the
whole encoder, its pooling and the head for texts) and returns class probabilities, with a
dynamic batch axis (and sequence axis, for texts). What cannot go in the graph (decoding and
resizing images, tokenising texts) is recorded in the metadata and done on the client by
headstart's torch-free code (:mod:`headstart.deploy.onnx_model`).

Export uses PyTorch's current exporter (``torch.onnx.export(..., dynamo=True)``), then:

1. ``onnx.checker.check_model(full_check=True)``;
2. ONNX Runtime on a sample (the run's validation examples when its data is still there,
   else generated ones) must give the same class on every input and probabilities within
   ``TOLERANCE`` of PyTorch on the same input arrays; a failure is an error naming the largest
   difference, and nothing is left at the destination.

The metadata (class names, preprocessing, backbone, headstart version, the run's data hash,
the check's result) is written into the model's ``metadata_props`` and as JSON beside it.
Files are staged in a hidden folder beside the destination and moved into place last.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from pathlib import Path

import numpy as np

from headstart.deploy.onnx_model import (
    DEFAULT_EXPORT,
    EXPORT_FORMAT,
    EXPORT_FORMAT_VERSION,
    metadata_path,
    read_metadata,
)
from headstart.errors import ConfigError, HeadstartError, RunError

#: largest difference in any probability between ONNX Runtime and PyTorch on the same input
TOLERANCE = 1e-4
#: examples the parity check runs
CHECK_EXAMPLES = 32
OUTPUT_NAME = "probabilities"


class ExportError(HeadstartError):
    """The exported graph failed its check; nothing was written."""


def check_export(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """The file an export of ``run_dir`` writes (``out``, default ``RUN_DIR/onnx/model.onnx``),
    after refusing what cannot be exported or written there: a missing path or a folder that
    is not a run, a name not ending in ``.onnx``, a file ``headstart export`` did not write.
    Reads only small files: answered before torch loads."""
    from headstart.core.rundir import check_run_dir

    check_run_dir(run_dir)
    out = Path(out) if out is not None else Path(run_dir) / DEFAULT_EXPORT
    if out.suffix.lower() != ".onnx":
        raise ConfigError(f"--out {out}: give a file name ending in .onnx.")
    side = metadata_path(out)
    for existing in (out, side):
        if existing.exists() and read_metadata(out) is None:
            raise RunError(
                f"{existing}: exists and was not written by `headstart export`; choose "
                "another --out (headstart never overwrites what it did not write)."
            )
    return out


def export_onnx(
    run_dir: str | Path,
    out: str | Path | None = None,
    *,
    check_examples: int = CHECK_EXAMPLES,
    say=None,
) -> dict:
    """Export the run at ``run_dir`` to ``out`` (default ``RUN_DIR/onnx/model.onnx``) and
    check it; returns the metadata written beside it, whose ``files`` lists every file written
    (what to ship). ``say`` hears when the export starts, after the arguments are checked."""
    from headstart import __version__
    from headstart.core.modality import modality_of
    from headstart.core.runs import load_run

    out = check_export(run_dir, out)
    side = metadata_path(out)
    run = load_run(run_dir)
    refuse_interrupted(run, run_dir, "exporting")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = out.parent / f".{out.name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
    except OSError as e:
        raise RunError(f"{out}: cannot write there ({e.strerror or e}).") from None
    try:
        kind = modality_of(run)
        parts = kind.export_parts()
        stem = out.stem
        parts.copy_files(run, staging, stem)
        # the graph's inputs, in its forward's order (a blended text run adds its TF-IDF)
        graph, axes = parts.graph(run)
        names = tuple(axes)
        meta = {
            "format": EXPORT_FORMAT,
            "format_version": EXPORT_FORMAT_VERSION,
            "headstart_version": __version__,
            "modality": run.modality,
            "class_names": list(run.class_names),
            "backbone": run.backbone_name,
            "strategy": run.describe_model(),  # a text run's blend included
            "inputs": list(names),
            "output": OUTPUT_NAME,
            "preprocessing": run.preprocessing.to_dict(),
            "client": parts.client_meta(run, stem),
            "tta": bool(run.model.tta),
            "run": str(Path(run_dir).resolve()),
            "data_hash": (run.record or {}).get("data_hash"),
            "headline": (run.metrics or {}).get("headline"),
            **({"cost": run.cost_note()} if run.cost_note() else {}),
            "task": run.task.name,
        }
        if run.thresholds is not None:  # several labels per example: each label's threshold
            meta["thresholds"] = dict(zip(run.class_names, run.thresholds.tolist()))
        if run.modality == "image":
            meta["preprocessing"]["in_graph"] = "mean/std normalisation (input: pixels in 0-1)"
        meta["files"] = sorted([out.name, side.name, *(f.name for f in staging.iterdir())])
        if say is not None:
            say("exporting (torch.onnx, dynamo) and checking with ONNX Runtime...")
        feed = kind.onnx_feed(meta, staging)
        samples, where = parts.samples(run, _validation(run), check_examples)
        start = time.perf_counter()
        onnx_file = staging / out.name
        _export(graph, feed(samples[:2]), axes, names, onnx_file)
        seconds = time.perf_counter() - start
        meta["check"], onnx_probs = _check(graph, onnx_file, feed, samples, where, run.thresholds)
        meta["check"]["export_seconds"] = round(seconds, 1)
        meta["check"]["end_to_end"] = _end_to_end(run, onnx_probs, samples)
        _write_metadata(onnx_file, meta)
        (staging / side.name).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        for f in sorted(staging.iterdir(), key=lambda p: p.suffix == ".json"):  # JSON last
            f.replace(out.parent / f.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return meta


def refuse_interrupted(run, run_dir, doing: str) -> None:
    """An interrupted run has no final weights: shipping its best epoch so far would be a
    model nobody chose."""
    if run.metrics.get("interrupted"):
        raise RunError(
            f"{run_dir}: training was interrupted after {run.metrics.get('epochs_run', 0)} "
            f"epoch(s) and has no final weights; finish it with `headstart train --resume "
            f"{run_dir}` before {doing} it."
        )


def _validation(run):
    """The run's validation split when its data can still be read, else None."""
    from headstart.core.overlap import run_splits

    if not (run.config.data and run.split):
        return None
    try:
        return run_splits(run).val
    except Exception:  # moved, changed or gone: the check runs on generated examples
        return None


def _tensors(arrays: dict[str, np.ndarray], names) -> tuple:
    import torch

    return tuple(torch.from_numpy(np.ascontiguousarray(arrays[n])) for n in names)


def _export(graph, example: dict, axes: dict, names, path: Path) -> None:
    import torch
    from torch.export import Dim

    dims: dict[str, Dim] = {}
    shapes = tuple(
        {axis: dims.setdefault(label, Dim(label)) for axis, label in axes.get(n, {}).items()}
        for n in names
    )
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # the exporter's own deprecation notes are not the user's to act on
            warnings.filterwarnings("ignore", module=r"torch(\..*)?$")
            program = torch.onnx.export(
                graph,
                _tensors(example, names),
                dynamo=True,
                input_names=list(names),
                output_names=[OUTPUT_NAME],
                dynamic_shapes=shapes,
                external_data=False,
                verbose=False,
                optimize=True,
            )
        program.save(str(path))
    except ImportError as e:
        raise ConfigError(
            f"exporting needs onnx and onnxscript ({e.name} is missing): "
            "pip install 'headstart[onnx]'."
        ) from None
    except Exception as e:
        raise ExportError(f"torch.onnx.export failed: {type(e).__name__}: {str(e)[:400]}") from None


def _check(
    graph, path: Path, feed, samples: list, where: str, thresholds=None
) -> tuple[dict, np.ndarray]:
    """onnx.checker, then ONNX Runtime against PyTorch on the same input arrays (the same
    classes, or with ``thresholds`` the same label sets); returns the result and ONNX
    Runtime's probabilities for ``samples``."""
    import onnx
    import onnxruntime as ort
    import torch

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as e:
        raise ExportError(f"onnx.checker rejected the exported graph: {str(e)[:400]}") from None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    worst, classes_differ, outputs = 0.0, 0, []
    for s in range(0, len(samples), 8):  # batches of different sizes and lengths
        arrays = feed(samples[s : s + 8])
        got = session.run(None, {k: arrays[k] for k in names})[0]
        with torch.no_grad():
            want = graph(*_tensors(arrays, names)).numpy()
        worst = max(worst, float(np.abs(got - want).max()))
        classes_differ += _differ(got, want, thresholds)
        outputs.append(got)
    n = len(samples)
    if worst > TOLERANCE or classes_differ:
        raise ExportError(
            f"ONNX Runtime disagrees with PyTorch on {where}: largest probability difference "
            f"{worst:.2e} (tolerance {TOLERANCE:g}), {classes_differ} of {n} predicted classes "
            "differ. Nothing was written."
        )
    result = {
        "checker": "onnx.checker full check passed",
        "examples": where,
        "max_abs_difference": worst,
        "tolerance": TOLERANCE,
        "onnxruntime": ort.__version__,
    }
    return result, np.concatenate(outputs)


def _differ(got: np.ndarray, want: np.ndarray, thresholds=None) -> int:
    """How many examples two probability arrays predict differently: their classes, or with
    ``thresholds`` (several labels per example) their label sets."""
    if thresholds is None:
        return int((got.argmax(1) != want.argmax(1)).sum())
    t = np.asarray(thresholds)[None, :]
    return int(((got >= t) != (want >= t)).any(axis=1).sum())


def _end_to_end(run, got: np.ndarray, samples: list) -> dict:
    """How the whole ONNX client path (``got``: ONNX Runtime on the client's torch-free
    preprocessing of ``samples``) compares with ``run.predict_proba``: recorded, not enforced
    (image resampling by Pillow differs from torch's by about 1e-5 per pixel)."""
    want = run.predict_proba(samples, progress=False)
    return {
        "max_abs_difference": float(np.abs(got - want).max()),
        "same_class": len(samples) - _differ(got, want, run.thresholds),
        "of": len(samples),
    }


def _write_metadata(path: Path, meta: dict) -> None:
    """The metadata into the model's ``metadata_props`` (a client with only the .onnx file
    still finds class names and preprocessing)."""
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = "headstart", json.dumps(meta)
    for key in ("class_names", "modality"):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, json.dumps(meta[key])
    onnx.save(model, str(path))
