"""Prediction from a saved run on image files, folders or ``.npy`` arrays.

Inputs are decoded with the same safe decoder as training and preprocessed with the run's own
recorded preprocessing, so a saved run predicts identically in a fresh process. Unreadable
inputs are reported in the output rather than stopping the batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from headstart.core.predictions import Prediction, confidence_of, label_of
from headstart.errors import DataError
from headstart.modalities.image.data.decode import UnreadableImage, decode_image, is_image_path
from headstart.modalities.image.data.imageset import ImageSet, array_item_to_rgb
from headstart.modalities.image.data.sources import check_image_array, load_npy
from headstart.progress import progress_bar


def predict_proba(
    run, images: Sequence[np.ndarray] | ImageSet, *, batch_size: int = 32
) -> np.ndarray:
    """Probabilities (the softmax over classes; several labels per image: a sigmoid per
    label), one row per decoded image, in ``run.class_names`` order."""
    import torch

    from headstart.modalities.image.preprocess import prepare_batch

    model = run.model.eval()
    device = next(model.parameters()).device
    n = len(images)
    get = images.image if isinstance(images, ImageSet) else images.__getitem__
    out = np.zeros((n, len(run.class_names)), dtype=np.float32)
    with torch.inference_mode():
        bar = progress_bar(total=n, desc="predicting", unit="img")
        for s in range(0, n, batch_size):
            batch = [get(i) for i in range(s, min(s + batch_size, n))]
            x = prepare_batch(batch, run.preprocessing).to(device)
            out[s : s + len(batch)] = run.task.activate(model(x)).float().cpu().numpy()
            bar.update(len(batch))
        bar.close()
    return out


def _expand(inputs: Iterable[str | Path]) -> list[tuple[str, object]]:
    """(name, loader) pairs: a loader returns an RGB uint8 array or raises UnreadableImage."""
    items: list[tuple[str, object]] = []
    for raw in inputs:
        p = Path(raw).expanduser()
        if not p.exists():
            raise DataError(f"{p}: no such file or folder to predict on.")
        if p.is_dir():
            found = sorted(
                os.path.join(d, f)
                for d, _, files in os.walk(p)
                for f in files
                if is_image_path(f) and not f.startswith(".")
            )
            if not found:
                raise DataError(f"{p}: holds no image files to predict on.")
            items += [(f, (lambda f=f: decode_image(f))) for f in found]
        elif p.suffix.lower() == ".npy":
            arr = check_image_array(load_npy(p), str(p))
            items += [
                (f"{p}[{i}]", (lambda i=i, a=arr: array_item_to_rgb(a[i]))) for i in range(len(arr))
            ]
        else:
            items.append((str(p), (lambda f=p: decode_image(f))))
    return items


def predict_inputs(
    model, inputs: Iterable[str | Path], *, batch_size: int = 32
) -> list[Prediction]:
    """Predict on files, folders (recursively) and ``.npy`` arrays; bad files become errors.
    ``model``: a loaded run, or an exported one (:class:`~headstart.deploy.onnx_model.OnnxModel`):
    anything with ``class_names`` and ``predict_proba``."""
    items = _expand(inputs)
    results: list[Prediction] = []
    good_names, good_images = [], []
    for name, load in items:
        try:
            good_images.append(load())
            good_names.append(name)
        except UnreadableImage as e:
            results.append(Prediction(name, None, None, e.reason))
    probs = model.predict_proba(good_images, batch_size=batch_size)
    for name, p in zip(good_names, probs):
        results.append(Prediction(name, label_of(model, p), p, confidence=confidence_of(model, p)))
    order = {name: i for i, (name, _) in enumerate(items)}
    return sorted(results, key=lambda r: order[r.input])
