"""Maps with more points than a browser draws and selects quickly.

Measured here (2 cores, headless Chromium, software WebGL; ``benchmarks/explore_browser.py``):
plotly's WebGL scatter draws 100,000 points in 1.5x the time of 1,000, and its first box
selection takes 5 s (11 s at 300,000) while it sets up its selection buffers. Above
:data:`POINTS_FROM` shown points, the map therefore draws a seeded sample of
:data:`DRAWN` points as points (hover, click) over a picture of *every* shown point (the
density layer, drawn with the same colours by :func:`embedviz.explore.render.points_image`, placed
in the plot's data coordinates so it pans and zooms with the axes), and a box or lasso
selects from all points by its geometry on the server (:func:`embedviz.explore.selection.rows_in_geometry`).
The page says so whenever it happens.
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass

import numpy as np

from embedviz.explore.render import Frame, points_image

__all__ = ["POINTS_FROM", "DRAWN", "DRAWN_3D", "LargeMap", "plan", "density_layer", "zoom_box", "in_box"]

POINTS_FROM = 50_000
DRAWN = 10_000
DRAWN_3D = 50_000  # 3-D has no layer beneath: more points are drawn, clicks select among them
LAYER_WIDTH = 1_800


@dataclass(frozen=True)
class LargeMap:
    """Which shown rows are drawn as points, and what to tell the user."""

    drawn: np.ndarray
    shown: int
    layer: bool

    def describe(self) -> str:
        if self.layer:
            return (f"{self.shown:,} points: {len(self.drawn):,} of them (a fixed random sample) are drawn as points "
                    f"you can hover and click, and all {self.shown:,} as the shaded layer beneath them. Box and lasso "
                    f"select from all {self.shown:,}; zoomed far in, the layer is coarser than the points.")
        return (f"{self.shown:,} points: a fixed random sample of {len(self.drawn):,} is drawn in 3-D; the 2-D map "
                "shows them all.")


def plan(shown: np.ndarray, dims: int, *, keep: np.ndarray | None = None, seed: int = 0) -> LargeMap | None:
    """``None`` when every shown point can be drawn; else the sample to draw (rows in ``keep``,
    e.g. highlighted ones, are always drawn). The same shown rows give the same sample."""
    rows = np.flatnonzero(shown)
    limit = DRAWN if dims == 2 else DRAWN_3D
    if len(rows) <= (POINTS_FROM if dims == 2 else DRAWN_3D):
        return None
    rng = np.random.default_rng(seed)
    drawn = np.sort(rng.choice(rows, limit, replace=False))
    if keep is not None and len(keep):
        drawn = np.union1d(drawn, np.intersect1d(np.asarray(keep, dtype=np.int64), rows))
    return LargeMap(drawn=drawn, shown=len(rows), layer=dims == 2)


def zoom_box(coords: np.ndarray, rows: np.ndarray, pad: float = 0.05) -> tuple[float, float, float, float]:
    """The rectangle around ``rows`` of a 2-D map, a little larger: ``(x0, x1, y0, y1)``."""
    xy = np.asarray(coords, dtype=np.float64)[np.asarray(rows, dtype=np.int64), :2]
    low, high = xy.min(axis=0), xy.max(axis=0)
    margin = np.maximum((high - low) * pad, 1e-3)
    return (float(low[0] - margin[0]), float(high[0] + margin[0]), float(low[1] - margin[1]),
            float(high[1] + margin[1]))


def in_box(coords: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Which points of a 2-D map lie inside ``box``."""
    x, y = coords[:, 0], coords[:, 1]
    return (x >= box[0]) & (x <= box[1]) & (y >= box[2]) & (y <= box[3])


def density_layer(coords: np.ndarray, colours: np.ndarray, shown: np.ndarray, *, radius: int = 1,
                  greyed: bool = False, within: np.ndarray | None = None) -> dict:
    """Every shown point as a picture placed in data coordinates: a plotly ``layout.images`` entry
    (with ``greyed``, the points the filters leave out in grey beneath them).

    The picture covers the bounding box of *all* points (not only the shown ones), so it lines
    up with the axes whatever the filters keep; zoomed in (``within``, a mask), only those points,
    at the picture's full resolution."""
    shown = np.asarray(shown, dtype=bool)
    if within is not None:
        within = np.asarray(within, dtype=bool)
        frame = Frame.around(coords[within], LAYER_WIDTH, pad=2, max_height=int(LAYER_WIDTH * 1.5))
        shown = shown & within
    else:
        frame = Frame.around(coords, LAYER_WIDTH, pad=2, max_height=int(LAYER_WIDTH * 1.5))
    rows = np.flatnonzero(shown)
    if greyed:  # grey first, the shown points on top
        rest = np.flatnonzero(~shown if within is None else within & ~shown)
        order = np.concatenate([rest, np.random.default_rng(0).permutation(rows)])
        colours = colours.copy()
        colours[rest] = (200, 200, 200)
        rows = order
    else:
        rows = np.random.default_rng(0).permutation(rows)
    picture = points_image(coords[rows], colours[rows], frame=frame, radius=radius, background=(255, 255, 255),
                           order=np.arange(len(rows)))
    rgba = np.asarray(picture.convert("RGBA")).copy()
    rgba[(rgba[:, :, :3] == 255).all(axis=2), 3] = 0  # the background is transparent
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgba).save(buffer, format="PNG", optimize=False, compress_level=3)
    # pixel column c shows x = x0 + (c - pad) / scale; row r shows y = y0 + (height - 1 - r - pad) / scale
    left = frame.x0 - (frame.pad + 0.5) / frame.scale
    top = frame.y0 + (frame.height - frame.pad - 0.5) / frame.scale
    return {"source": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"),
            "xref": "x", "yref": "y", "x": left, "y": top, "sizex": frame.width / frame.scale,
            "sizey": frame.height / frame.scale, "xanchor": "left", "yanchor": "top",
            "sizing": "stretch", "layer": "below", "opacity": 0.9}


def layer_key(*parts: object) -> str:
    """A short key for a density layer of these inputs (arrays by content)."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(part.tobytes() if isinstance(part, np.ndarray) else repr(part).encode())
    return digest.hexdigest()
