"""Small images for galleries: tiny inputs (8x8 digits) are enlarged with crisp pixels."""

from __future__ import annotations

from pathlib import Path

__all__ = ["thumbnail"]


def thumbnail(path: str | Path, size: int = 96) -> "Image.Image":  # noqa: F821 - PIL type
    """An RGB image whose longer side is ``size``; unreadable files give a grey placeholder."""
    from PIL import Image

    from embedviz.data.decode import ImageRejected, open_image

    try:
        image = open_image(path)
    except ImageRejected:
        return Image.new("RGB", (size, size), (200, 200, 200))
    scale = size / max(image.size)
    resample = Image.Resampling.NEAREST if scale >= 2 else Image.Resampling.LANCZOS
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), resample)
