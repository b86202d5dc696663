"""Opening untrusted image files: allowed formats only, EXIF orientation, every mode made RGB.

An image that cannot be used raises :class:`ImageRejected` with a short reason that goes into
``skipped.csv``; the rest of the collection goes on.
"""

from __future__ import annotations

import functools
import logging
import os
import struct
import warnings
from pathlib import Path

import numpy as np

from embedviz.errors import first_line

__all__ = ["ALLOWED_FORMATS", "ImageRejected", "accepted_formats", "image_suffixes", "open_image", "to_rgb"]

log = logging.getLogger(__name__)

#: Formats Pillow opens that are not pictures to map, or that hand the file to another program:
#: PostScript/PDF (Ghostscript), video, scientific containers and Pillow's stubs (BUFR, GRIB, HDF5,
#: WMF, which need a handler), IPTC metadata, GIMP brushes.
_NOT_PICTURES = frozenset({"EPS", "PDF", "MPEG", "BUFR", "GRIB", "HDF5", "WMF", "IPTC", "FITS", "GBR"})
#: What Pillow's decoders raise for a hostile or damaged file besides ``OSError`` (its fuzzers see
#: all of these): each one means "this file cannot be used", never "the server is broken".
_DECODER_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, LookupError, TypeError,
                   ArithmeticError, MemoryError, RuntimeError, NotImplementedError)
_BACKGROUND = (255, 255, 255)


def _register_plugins() -> None:
    """Optional openers (HEIC/HEIF via ``pillow-heif``, AVIF via ``pillow-avif-plugin`` on old Pillow)."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        pass
    else:
        register_heif_opener()
    try:
        import pillow_avif  # noqa: F401 - registers itself
    except ImportError:
        pass


@functools.cache
def accepted_formats() -> frozenset[str]:
    """Pillow format names embedviz decodes: every raster format this Pillow (and its installed
    plugins) can open, less :data:`_NOT_PICTURES`. AVIF and HEIC count where they are available."""
    from PIL import Image

    _register_plugins()
    Image.init()
    formats = set(Image.OPEN) - _NOT_PICTURES
    if "JPEG" in formats:  # the JPEG opener returns MPO (the multi-picture JPEG some cameras write)
        formats.add("MPO")
    return frozenset(formats)


@functools.cache
def image_suffixes() -> frozenset[str]:
    """File suffixes (``.png``, ``.avif``, ...) of :func:`accepted_formats`, lower case."""
    from PIL import Image

    formats = accepted_formats()
    return frozenset(ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in formats)


#: Pillow format names accepted, as found at import.
ALLOWED_FORMATS = accepted_formats()


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


def open_image(path: str | os.PathLike[str], draft: int | None = None) -> "Image.Image":  # noqa: F821 - PIL type
    """A fully decoded, upright RGB image, or :class:`ImageRejected` with the reason.

    ``draft``: a JPEG may be decoded at a reduced scale (1/2, 1/4 or 1/8) whose sides stay at least
    ``draft`` pixels, for thumbnails; other formats are decoded whole.
    """
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
                if draft and image.format == "JPEG":
                    image.draft("RGB", (draft, draft))
                image.load()
                upright = ImageOps.exif_transpose(image)
        except ImageRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageRejected(f"decompression bomb: more than {Image.MAX_IMAGE_PIXELS:,} pixels") from None
        except UnidentifiedImageError:
            raise ImageRejected("not an image (or a format embedviz does not read)") from None
        except MemoryError:
            raise ImageRejected("too large to decode in the memory this server has") from None
        except _DECODER_ERRORS as exc:
            raise ImageRejected(_reason(exc)) from None
    try:
        return to_rgb(upright)
    except (ValueError, OSError) as exc:  # a mode Pillow cannot convert to RGB
        raise ImageRejected(f"cannot convert to RGB: {first_line(exc, 100)}") from None


def _reason(exc: BaseException) -> str:
    """One line for ``skipped.csv``; the exception's type is logged for whoever debugs a codec."""
    log.debug("decoder raised %s: %s", type(exc).__name__, exc)
    text = first_line(exc, 100)
    return "truncated file" if "truncated" in text.lower() else f"cannot decode: {text}"
