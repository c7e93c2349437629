"""Real data sets that ship inside installed packages, usable with no download."""

from headstart.core.data import DataSource, load_source
from headstart.modalities.image.data.demo import DEMO_NAMES


def digits() -> DataSource:
    """scikit-learn's 1,797 handwritten digits (8x8 greyscale, 10 classes)."""
    return load_source("demo:digits")


def lfw() -> DataSource:
    """scikit-image's ``lfw_subset``: 100 faces and 100 non-faces, 25x25 greyscale."""
    return load_source("demo:lfw")


__all__ = ["DEMO_NAMES", "digits", "lfw"]
