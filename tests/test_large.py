"""Large maps: a drawn sample over a layer of every point, and selections answered from the geometry."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd

from embedviz.figures import MapStyle, scatter_figure
from embedviz.large import DRAWN, POINTS_FROM, density_layer, plan
from embedviz.selection import selected_rows

from .plotly_spec import figure_points, figure_rows


def test_small_maps_draw_every_point_and_large_ones_a_fixed_sample():
    assert plan(np.ones(POINTS_FROM, dtype=bool), 2) is None
    shown = np.ones(120_000, dtype=bool)
    shown[:20_000] = False  # filtered out: never drawn
    large = plan(shown, 2, keep=np.array([5, 20_001, 119_999]))
    assert len(large.drawn) <= DRAWN + 2 and large.drawn.min() >= 20_000 and large.layer
    assert {20_001, 119_999} <= set(large.drawn.tolist()) and 5 not in large.drawn  # kept, if shown
    assert np.array_equal(plan(shown, 2, keep=np.array([5, 20_001, 119_999])).drawn, large.drawn)
    assert "100,000 points" in large.describe() and "select from all 100,000" in large.describe()
    assert not plan(shown, 3).layer  # 3-D: a sample, no layer


def test_the_layer_puts_each_point_where_the_axes_have_it():
    from PIL import Image

    rng = np.random.default_rng(0)
    coords = rng.normal(0, 5, (2_000, 2)).astype(np.float32)
    colours = np.zeros((2_000, 3), dtype=np.uint8)
    colours[0] = (255, 0, 0)
    shown = np.zeros(2_000, dtype=bool)
    shown[0] = True  # one red point alone
    layer = density_layer(coords, colours, shown, radius=1)
    picture = np.asarray(Image.open(io.BytesIO(base64.b64decode(layer["source"].split(",", 1)[1]))))
    red = np.argwhere((picture[:, :, 0] == 255) & (picture[:, :, 3] > 0))
    row, col = red.mean(axis=0)
    height, width = picture.shape[:2]
    x = layer["x"] + (col + 0.5) / width * layer["sizex"]  # where plotly places that pixel
    y = layer["y"] - (row + 0.5) / height * layer["sizey"]
    pixel = layer["sizex"] / width
    assert abs(x - coords[0, 0]) <= pixel and abs(y - coords[0, 1]) <= pixel
    assert picture[0, 0, 3] == 0  # the background is transparent


def test_a_large_figure_draws_the_sample_and_selects_from_all_points():
    rng = np.random.default_rng(1)
    n = 80_000
    coords = rng.uniform(0, 10, (n, 2)).astype(np.float32)
    samples = pd.DataFrame({"sample_id": [f"p{i}" for i in range(n)], "label": rng.integers(0, 5, n).astype(str)})
    shown = np.ones(n, dtype=bool)
    large = plan(shown, 2)
    layer = {"source": "data:image/png;base64,", "xref": "x", "yref": "y", "x": 0, "y": 10, "sizex": 10, "sizey": 10}
    fig = scatter_figure(coords, samples, MapStyle(color="label"), mask=shown, drawn=large.drawn, underlay=layer)
    spec = fig.to_json()
    assert figure_points(spec) == len(large.drawn) and sorted(figure_rows(spec)) == large.drawn.tolist()
    assert len(fig.layout.images) == 1
    # the browser reports the drawn points in the box; the geometry finds all of them
    box = {"x": [2.0, 4.0], "y": [2.0, 4.0]}
    inside = np.flatnonzero((coords[:, 0] >= 2) & (coords[:, 0] <= 4) & (coords[:, 1] >= 2) & (coords[:, 1] <= 4))
    listed = [{"customdata": [float(r), 0.0]} for r in np.intersect1d(inside, large.drawn)]
    rows = selected_rows({"selection": {"points": listed, "box": [box], "lasso": []}}, coords, shown)
    assert sorted(rows.tolist()) == inside.tolist() and len(rows) > 3 * len(listed)
