"""The map as a picture: every point as a coloured dot, or the images themselves at their places.

Plotly draws the interactive map; these draw what it cannot carry or save by itself: a PNG of
the map for a report (any number of points, rasterised with numpy), the thumbnails of up to a
few thousand points at their coordinates with a border in their class colour, and the shaded
layer of all points under a large map's drawn sample (:mod:`embedviz.explore.large`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from embedviz.explore.figures import GREY, MapStyle, category_colours, is_categorical
from embedviz.progress import ProgressCallback

__all__ = ["point_colours", "points_image", "thumbnail_map", "Frame", "MAX_THUMBNAILS"]

MAX_THUMBNAILS = 5_000  # the most the page offers to draw
_VIRIDIS = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b",
            "#fde725")


def _rgb(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    if colour.startswith("rgb"):
        parts = colour[colour.index("(") + 1 : colour.index(")")].split(",")
        return tuple(int(float(p)) for p in parts[:3])  # type: ignore[return-value]
    return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)


def point_colours(samples: pd.DataFrame, style: MapStyle) -> np.ndarray:
    """An ``(n, 3)`` uint8 colour per point, as the interactive map colours it."""
    n = len(samples)
    column = style.color if style.color and style.color in samples.columns else None
    if column is None:
        return np.tile(np.array(_rgb("#4c78a8"), dtype=np.uint8), (n, 1))
    if is_categorical(samples[column]):
        colours = category_colours(samples, style)
        names = samples[column].astype("string").fillna("(none)")
        codes = pd.Categorical(names, categories=list(colours)).codes
        palette = np.array([_rgb(c) for c in colours.values()], dtype=np.uint8).reshape(-1, 3)
        return palette[codes]
    values = pd.to_numeric(samples[column], errors="coerce").to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    out = np.tile(np.array(_rgb(GREY), dtype=np.uint8), (n, 1))
    if finite.any():
        low, high = values[finite].min(), values[finite].max()
        t = (values[finite] - low) / (high - low) if high > low else np.zeros(finite.sum())
        stops = np.array([_rgb(c) for c in _VIRIDIS], dtype=np.float64)
        position = t * (len(stops) - 1)
        left = np.clip(np.floor(position).astype(int), 0, len(stops) - 2)
        frac = (position - left)[:, None]
        out[finite] = np.round(stops[left] * (1 - frac) + stops[left + 1] * frac).astype(np.uint8)
    return out


@dataclass(frozen=True)
class Frame:
    """Where data coordinates land on a ``width`` x ``height`` picture (y grows upwards in data)."""

    x0: float
    y0: float
    scale: float
    width: int
    height: int
    pad: int

    @classmethod
    def around(cls, coords: np.ndarray, width: int, pad: int = 20, max_height: int | None = None) -> "Frame":
        lo, hi = coords[:, :2].min(axis=0), coords[:, :2].max(axis=0)
        span = np.where(hi - lo > 0, hi - lo, 1.0)
        scale = (width - 2 * pad) / span[0]
        height = int(round(span[1] * scale)) + 2 * pad
        if max_height is not None and height > max_height:
            scale = (max_height - 2 * pad) / span[1]
            height = max_height
        return cls(float(lo[0]), float(lo[1]), float(scale), int(width), int(height), pad)

    def pixels(self, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        px = np.round((coords[:, 0] - self.x0) * self.scale).astype(np.int64) + self.pad
        py = self.height - 1 - (np.round((coords[:, 1] - self.y0) * self.scale).astype(np.int64) + self.pad)
        return px, py


def points_image(coords: np.ndarray, colours: np.ndarray, *, width: int = 1600, radius: int = 2,
                 order: np.ndarray | None = None, background: tuple[int, int, int] = (255, 255, 255),
                 frame: Frame | None = None) -> "Image.Image":  # noqa: F821 - PIL type
    """Every point as a round dot of ``radius`` pixels, later points on top (``order`` sets it;
    by default a fixed shuffle, so no class hides another). A million points take about a second."""
    from PIL import Image

    frame = frame or Frame.around(coords, width, max_height=int(width * 1.5))
    canvas = np.empty((frame.height, frame.width, 3), dtype=np.uint8)
    canvas[:] = background
    if order is None:
        order = np.random.default_rng(0).permutation(len(coords))
    px, py = frame.pixels(coords[order])
    colour = colours[order]
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dx * dx + dy * dy > radius * radius + radius:
                continue
            x, y = px + dx, py + dy
            ok = (x >= 0) & (x < frame.width) & (y >= 0) & (y < frame.height)
            canvas[y[ok], x[ok]] = colour[ok]
    return Image.fromarray(canvas)


def thumbnail_map(coords: np.ndarray, paths: Sequence[str | None], root: Path | None, colours: np.ndarray, *,
                  max_images: int = 1_000, thumb: int = 40, width: int = 2400, seed: int = 0,
                  progress: ProgressCallback | None = None) -> tuple["Image.Image", np.ndarray]:  # noqa: F821
    """The images of up to ``max_images`` points (a seeded random sample above that) drawn at their
    coordinates, ``thumb`` pixels on their longer side, each framed in its point's colour.
    Returns the picture and the rows drawn."""
    from PIL import Image, ImageDraw

    from embedviz.data.thumbnails import thumbnail

    rows = np.flatnonzero([p is not None and not (isinstance(p, float) and np.isnan(p)) for p in paths])
    if len(rows) > max_images:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_images, replace=False))
    frame = Frame.around(coords, width, pad=thumb, max_height=int(width * 1.5))
    picture = Image.new("RGB", (frame.width, frame.height), (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    px, py = frame.pixels(coords[rows])
    border = 2
    for i, row in enumerate(rows):
        image = thumbnail(Path(root or ".") / str(paths[row]), thumb)
        left, top = int(px[i] - image.width // 2), int(py[i] - image.height // 2)
        colour = tuple(int(c) for c in colours[row])
        draw.rectangle([left - border, top - border, left + image.width + border - 1, top + image.height + border - 1],
                       fill=colour)
        picture.paste(image, (left, top))
        if progress is not None and (i % 50 == 0 or i == len(rows) - 1):
            progress(i + 1, len(rows), "images")
    return picture, rows
