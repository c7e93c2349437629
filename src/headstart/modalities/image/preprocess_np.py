"""Images -> the exported graph's input, without PyTorch: what an ONNX client runs.

The same geometry as :mod:`.preprocess` (``pad``, ``resize``, ``crop`` to the run's input size),
resampled by Pillow on float32 channels: torch's antialiased bicubic and bilinear resampling
follows Pillow's kernels, and the two agree within about 1e-5 per pixel (tested). Mean/std
normalisation is not done here: the exported graph does it (exact, and one place to keep right).
Nothing here imports torch, so ``predict --engine onnx`` and ``serve --engine onnx`` run where
it is not installed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image

_RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}


def _resize(x: np.ndarray, size: tuple[int, int], interpolation: str) -> np.ndarray:
    """(h, w, 3) float32 in [0, 1] -> (H, W, 3), channel by channel in Pillow's float mode."""
    H, W = size
    if x.shape[:2] == (H, W):
        return x
    method = _RESAMPLE.get(interpolation, Image.Resampling.BILINEAR)
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(x[..., c])).resize((W, H), method))
        for c in range(3)
    ]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0)


def resize_image_np(img: np.ndarray, prep: Mapping) -> np.ndarray:
    """One (H, W, 3) uint8 image -> (3, h, w) float32 in [0, 1] at the run's input size, by
    the run's resize mode (``prep``: the preprocessing dict a run or an export records)."""
    x = np.asarray(img, dtype=np.float32) / 255.0
    H, W = (int(v) for v in prep["input_size"])
    h, w = x.shape[:2]
    interpolation = prep.get("interpolation", "bilinear")
    mode = prep.get("resize", "pad")
    if mode == "resize":
        out = _resize(x, (H, W), interpolation)
    elif mode == "crop":
        scale = max(H, W) / float(prep.get("crop_pct", 0.875)) / min(h, w)
        x = _resize(x, (max(H, round(h * scale)), max(W, round(w * scale))), interpolation)
        top, left = (x.shape[0] - H) // 2, (x.shape[1] - W) // 2
        out = x[top : top + H, left : left + W]
    else:  # pad: fit inside, keep the aspect ratio, black around
        scale = min(H / h, W / w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        x = _resize(x, (nh, nw), interpolation)
        out = np.zeros((H, W, 3), dtype=np.float32)
        top, left = (H - nh) // 2, (W - nw) // 2
        out[top : top + nh, left : left + nw] = x
    return np.ascontiguousarray(out.transpose(2, 0, 1), dtype=np.float32)


def pixel_batch(images: Sequence[np.ndarray], prep: Mapping) -> np.ndarray:
    """Decoded images -> the (N, 3, H, W) float32 batch in [0, 1] an exported graph takes."""
    return np.stack([resize_image_np(img, prep) for img in images])
