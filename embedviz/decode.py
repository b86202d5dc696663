"""Opening untrusted image files: allowed formats only, EXIF orientation, every mode made RGB.

An image that cannot be used raises :class:`ImageRejected` with a short reason that goes into
``skipped.csv``; the rest of the collection goes on.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

__all__ = ["ALLOWED_FORMATS", "ImageRejected", "open_image", "to_rgb"]

#: Pillow format names accepted (MPO is the multi-picture JPEG some cameras write).
ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "MPO", "WEBP", "GIF", "BMP", "TIFF"})
_BACKGROUND = (255, 255, 255)


class ImageRejected(ValueError):
    """This file is not an image embedviz will use; ``str()`` is the reason."""


def to_rgb(image: "Image.Image") -> "Image.Image":  # noqa: F821 - PIL type
    """8-bit RGB from any mode: 16-bit and 32-bit greys scaled (not clipped), alpha and palette
    transparency composited over white, CMYK and 1-bit converted."""
    from PIL import Image

    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image).astype(np.float64)
        if mode.startswith("I;16"):
            scale = 65535.0
        elif mode == "F":
            scale = 1.0 if array.size and np.nanmax(array) <= 1.0 else 255.0
        else:  # 32-bit integers: 16-bit PNGs open this way in some Pillow versions
            top = float(array.max()) if array.size else 0.0
            scale = 65535.0 if top > 255 else 255.0
        grey = np.clip(np.nan_to_num(array) / scale * 255.0, 0, 255).round().astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("LA", "La", "PA", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, _BACKGROUND)
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image if image.mode == "RGB" else image.convert("RGB")


def open_image(path: str | os.PathLike[str]) -> "Image.Image":  # noqa: F821 - PIL type
    """A fully decoded, upright RGB image, or :class:`ImageRejected` with the reason."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageRejected("empty file")
    except FileNotFoundError:
        raise ImageRejected("file not found") from None
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; we refuse both.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                if image.format not in ALLOWED_FORMATS:
                    raise ImageRejected(f"format {image.format} is not accepted")
                image.load()
                upright = ImageOps.exif_transpose(image)
                return to_rgb(upright)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageRejected(f"decompression bomb: more than {Image.MAX_IMAGE_PIXELS:,} pixels") from None
        except UnidentifiedImageError:
            raise ImageRejected("not an image (or a format embedviz does not read)") from None
        except OSError as exc:
            text = str(exc)
            reason = "truncated file" if "truncated" in text else f"cannot decode: {text[:100]}"
            raise ImageRejected(reason) from None
        except (ValueError, SyntaxError) as exc:
            if isinstance(exc, ImageRejected):
                raise
            raise ImageRejected(f"cannot decode: {str(exc)[:100]}") from None
