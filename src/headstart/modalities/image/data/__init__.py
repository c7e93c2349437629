"""Image data: sources (three layouts + arrays) -> ImageSet, safe decoding, inspection.

Users load data through :mod:`headstart.core.data` (``headstart.load_data``), which detects the
modality and splits; this package is what it calls for images.
"""

from headstart.modalities.image.data.decode import UnreadableImage, decode_image
from headstart.modalities.image.data.imageset import ImageSet
from headstart.modalities.image.data.inspect import Inspection, inspect_source, scan_unreadable
from headstart.modalities.image.data.sources import (
    from_array_folder,
    from_arrays,
    from_csv,
    from_image_folder,
    load_image_source,
)

__all__ = [
    "ImageSet",
    "Inspection",
    "UnreadableImage",
    "decode_image",
    "from_array_folder",
    "from_arrays",
    "from_csv",
    "from_image_folder",
    "inspect_source",
    "load_image_source",
    "scan_unreadable",
]
