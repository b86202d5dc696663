"""Small images for galleries and atlases: tiny inputs (8x8 digits) are enlarged with crisp pixels."""

from __future__ import annotations

from pathlib import Path

__all__ = ["thumbnail"]

_GREY = (200, 200, 200)


def thumbnail(path: str | Path, size: int = 96, placeholder: tuple[int, int, int] | None = _GREY
              ) -> "Image.Image | None":  # noqa: F821 - PIL type
    """An RGB image whose longer side is ``size``; an unreadable file gives a square of the
    ``placeholder`` colour (``None``: gives ``None``). JPEGs are decoded at the smallest of their
    built-in reduced scales that is still at least ``size``, which is several times faster."""
    from PIL import Image

    from embedviz.data.decode import ImageRejected, open_image

    try:
        image = open_image(path, draft=size)
    except ImageRejected:
        return None if placeholder is None else Image.new("RGB", (size, size), placeholder)
    scale = size / max(image.size)
    resample = Image.Resampling.NEAREST if scale >= 2 else Image.Resampling.LANCZOS
    # reducing_gap: a fast box reduction first, then the filter over the last factor of 3 (as Image.thumbnail)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), resample,
                        reducing_gap=None if resample == Image.Resampling.NEAREST else 3.0)
