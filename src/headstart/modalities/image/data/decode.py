"""Safe image decoding: one bad file is a value to report, never a crash.

Every image that enters headstart from disk goes through :func:`decode_image`, which returns an
RGB ``uint8`` array of shape (H, W, 3) or raises :class:`UnreadableImage` with a short reason.
It honours EXIF orientation (phone photos), converts every PIL mode sensibly (palette, 16-bit,
CMYK, RGBA, greyscale) and refuses images whose *declared* size is absurd before decoding a
single pixel (decompression bombs).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from headstart.choices import MAX_PIXELS

#: File extensions treated as images when scanning folders (lower case).
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)


class UnreadableImage(Exception):
    """An image file that cannot be decoded; ``reason`` says why in a few words."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def is_image_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    """Convert any PIL mode to RGB uint8, scaling high bit depths instead of clipping them."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16"):
            top = 65535.0
        else:  # 32-bit int or float: scale by the observed range
            lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
            arr = arr - lo
            top = hi - lo if hi > lo else 1.0
        grey = np.clip(np.nan_to_num(arr) / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("P", "PA", "LA", "La", "RGBa") or (mode == "L" and "transparency" in img.info):
        img = img.convert("RGBA")
    if img.mode != "RGB":
        img = img.convert("RGB")  # RGBA drops alpha, CMYK/YCbCr/L/1 convert as PIL defines
    return np.asarray(img, dtype=np.uint8)


def decode_image(
    path: str | Path, max_pixels: int = MAX_PIXELS, info: dict | None = None
) -> np.ndarray:
    """Decode ``path`` to an (H, W, 3) uint8 RGB array, upright per its EXIF orientation.

    If ``info`` is a dict it receives the file's original ``mode`` and ``format``.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise UnreadableImage(path, e.strerror or type(e).__name__) from None
    return _decode(path, path, size, max_pixels, info)


def decode_image_bytes(data: bytes, name: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """:func:`decode_image` for bytes in memory (an upload), named ``name`` in errors."""
    return _decode(io.BytesIO(data), name, len(data), max_pixels, None)


def _decode(source, name, size: int, max_pixels: int, info: dict | None) -> np.ndarray:
    try:
        if size == 0:
            raise UnreadableImage(name, "empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's bomb *warning*; our own guard is below
            with Image.open(source) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise UnreadableImage(
                        name,
                        f"declared size {w}x{h} exceeds the {max_pixels:,}-pixel safety limit "
                        "(possible decompression bomb)",
                    )
                if w == 0 or h == 0:
                    raise UnreadableImage(name, f"image has zero size ({w}x{h})")
                img.load()
                if info is not None:
                    info.update(mode=img.mode, format=img.format)
                img = ImageOps.exif_transpose(img)
                return _to_rgb_array(img)
    except UnreadableImage:
        raise
    except UnidentifiedImageError:
        raise UnreadableImage(name, "not an image (unrecognised format)") from None
    except Image.DecompressionBombError:  # Pillow's own, far larger limit tripped first
        raise UnreadableImage(
            name,
            f"declared size exceeds the {max_pixels:,}-pixel safety limit (possible "
            "decompression bomb)",
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        reason = str(e) or type(e).__name__
        if "truncated" in reason.lower():
            reason = "truncated file"
        raise UnreadableImage(name, reason) from None
