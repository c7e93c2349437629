"""Built-in data that needs no download: real images shipped inside installed packages.

``digits``: scikit-learn's 1,797 handwritten digits (8x8 greyscale, 10 classes), the default for
the README's main command. ``lfw``: scikit-image's ``lfw_subset`` (200 25x25 greyscale crops,
faces vs non-faces), when scikit-image is installed.

Each gives its images as the training split and a note saying what they are;
``headstart.load_source("demo:NAME")`` makes them a data source.
"""

from __future__ import annotations

import numpy as np

from headstart.errors import DataError
from headstart.modalities.image.data.imageset import ImageSet

DEMO_NAMES = ("digits", "lfw")


def digits() -> tuple[ImageSet, str]:
    """scikit-learn's bundled digits as uint8 images (pixel values 0..16 scaled to 0..255)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)
    train = ImageSet(
        labels=d.target,
        class_names=tuple(str(n) for n in d.target_names),
        array=images,
        name="train",
        origin="digits",
    )
    return train, "scikit-learn's bundled handwritten digits (8x8, greyscale)"


def lfw() -> tuple[ImageSet, str]:
    """scikit-image's ``lfw_subset``: 100 faces and 100 non-faces, 25x25 greyscale."""
    try:
        from skimage.data import lfw_subset
    except ImportError:
        raise DataError(
            "demo:lfw needs scikit-image; install it with: pip install scikit-image"
        ) from None
    images = lfw_subset()
    labels = np.array([0] * 100 + [1] * 100)
    train = ImageSet(
        labels=labels,
        class_names=("face", "non-face"),
        array=images.astype(np.float32),
        name="train",
        origin="lfw_subset",
    )
    return train, "scikit-image's lfw_subset (25x25 greyscale, faces vs non-faces)"


def demo_images(name: str) -> tuple[ImageSet, str]:
    if name == "digits":
        return digits()
    if name == "lfw":
        return lfw()
    raise DataError(f"unknown demo data set {name!r}; choose one of: {', '.join(DEMO_NAMES)}.")
