"""Images -> normalised tensors, exactly as the backbone's pretrained config asks.

Three ways to reach the input size: ``pad`` (the lesson's ``tf.image.resize_with_pad``: keep the
aspect ratio, scale to fit, pad with black), ``resize`` (stretch) and ``crop`` (timm's eval
transform: scale the short side to size / crop_pct, centre crop). Mean, std and interpolation
always come from :class:`~.backbones.Preprocessing`, never from per-backbone code.

Augmentation (random flip, rotation, zoom, translation) acts on the resized image before
normalisation, seeded per image and view so cached augmented views are reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from headstart.modalities.image.backbones.model import Preprocessing

_MODES = {"bicubic": "bicubic", "bilinear": "bilinear", "nearest": "nearest"}


def _resize(t: torch.Tensor, size: tuple[int, int], interpolation: str) -> torch.Tensor:
    mode = _MODES.get(interpolation, "bilinear")
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    kwargs = {} if mode == "nearest" else {"align_corners": False, "antialias": True}
    out = F.interpolate(t[None], size=size, mode=mode, **kwargs)[0]
    return out.clamp_(0.0, 1.0)


def resize_image(img: np.ndarray, prep: Preprocessing) -> torch.Tensor:
    """One (H, W, 3) uint8 image -> (3, h, w) float tensor in [0, 1] at the input size."""
    if not img.flags.writeable:  # memory-mapped arrays are read-only; torch wants its own copy
        img = np.array(img)
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255.0)
    H, W = prep.input_size
    h, w = t.shape[-2:]
    if prep.resize == "resize":
        return _resize(t, (H, W), prep.interpolation)
    if prep.resize == "crop":
        scale = max(H, W) / prep.crop_pct / min(h, w)
        t = _resize(t, (max(H, round(h * scale)), max(W, round(w * scale))), prep.interpolation)
        top, left = (t.shape[1] - H) // 2, (t.shape[2] - W) // 2
        return t[:, top : top + H, left : left + W]
    scale = min(H / h, W / w)  # pad: fit inside, keep aspect ratio
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    t = _resize(t, (nh, nw), prep.interpolation)
    top, left = (H - nh) // 2, (W - nw) // 2
    return F.pad(t, (left, W - nw - left, top, H - nh - top))


def normalise(batch: torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    mean = torch.tensor(prep.mean, dtype=batch.dtype).view(1, 3, 1, 1)
    std = torch.tensor(prep.std, dtype=batch.dtype).view(1, 3, 1, 1)
    return (batch - mean) / std


def augmenter(strength: float = 1.0, flip: bool = True) -> v2.Transform:
    """Random flip, rotation, zoom, translation (the tutorials' ImageDataGenerator set) and
    colour. ``flip=False`` for data whose mirror image is another class (digits, text)."""
    steps: list[v2.Transform] = [v2.RandomHorizontalFlip()] if flip else []
    steps += [
        v2.RandomAffine(
            degrees=15 * strength,
            translate=(0.1 * strength, 0.1 * strength),
            scale=(1 - 0.15 * strength, 1 + 0.15 * strength),
        ),
        v2.ColorJitter(
            brightness=0.2 * strength, contrast=0.2 * strength, saturation=0.2 * strength
        ),
    ]
    return v2.Compose(steps)


def prepare_batch(
    images: Sequence[np.ndarray],
    prep: Preprocessing,
    augment: v2.Transform | None = None,
    seed: int | Sequence[int] | None = None,
) -> torch.Tensor:
    """Decoded images -> (N, 3, H, W) normalised batch; ``augment`` applied with ``seed``: one
    seed for the batch, or one per image (then each image's view is independent of the batch
    it happens to be in)."""
    resized = [resize_image(img, prep) for img in images]
    if augment is not None:
        with torch.random.fork_rng(devices=[]):
            if seed is None or isinstance(seed, int):
                if seed is not None:
                    torch.manual_seed(seed)
                resized = [augment(t) for t in resized]
            else:
                seeds = list(seed)
                if len(seeds) != len(resized):
                    raise ValueError(f"{len(resized)} images but {len(seeds)} seeds")
                views = []
                for t, s in zip(resized, seeds):
                    torch.manual_seed(s)
                    views.append(augment(t))
                resized = views
    return normalise(torch.stack(resized), prep)
