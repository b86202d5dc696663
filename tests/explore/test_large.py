"""Large maps: a drawn sample over a layer of every point, and selections answered from the geometry."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd

from embedviz.explore.figures import MapStyle, scatter_figure
from embedviz.explore.large import DRAWN, POINTS_FROM, density_layer, plan
from embedviz.explore.selection import selected_rows
from tests.plotly_spec import figure_points, figure_rows, figures


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


def test_zooming_in_draws_every_point_of_the_region_and_nothing_outside_it():
    from embedviz.explore.large import in_box, zoom_box

    rng = np.random.default_rng(2)
    n = 120_000
    coords = rng.normal(0, 3, (n, 2)).astype(np.float32)
    samples = pd.DataFrame({"sample_id": [f"p{i}" for i in range(n)], "label": rng.integers(0, 5, n).astype(str)})
    mask = samples["label"].to_numpy() != "4"  # a filter: its points stay out, zoomed or not
    picked = np.flatnonzero((np.abs(coords[:, 0] - 1) < 0.3) & (np.abs(coords[:, 1] + 1) < 0.3))
    window = in_box(coords, zoom_box(coords, picked))
    assert window[picked].all() and 300 < window.sum() < 10_000
    fig = scatter_figure(coords, samples, MapStyle(color="label"), mask=mask, within=window)
    rows = figure_rows(fig.to_json())
    assert sorted(rows) == np.flatnonzero(mask & window).tolist()  # every point there, real points
    (x0, x1), (y0, y1) = fig.layout.xaxis.range, fig.layout.yaxis.range
    assert x0 <= coords[window, 0].min() and x1 >= coords[window, 0].max() and y1 - y0 < 3
    assert fig.layout.uirevision != "embedviz-map"  # the browser takes the new axes
    layer = density_layer(coords, np.zeros((n, 3), np.uint8), mask, within=window)
    whole = density_layer(coords, np.zeros((n, 3), np.uint8), mask)
    assert layer["sizex"] < whole["sizex"] / 5  # the layer of the region, at full resolution


def test_the_explore_page_zooms_a_large_map_to_a_selected_region(monkeypatch, tmp_path):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    root = Path(__file__).resolve().parents[2]
    rng = np.random.default_rng(3)
    n = 60_000
    centres = rng.uniform(-50, 50, (20, 2))
    labels = rng.integers(0, 20, n)
    xy = centres[labels] + rng.normal(0, 1.5, (n, 2))
    pd.DataFrame({"Paths": [f"img/{i}.png" for i in range(n)], "X-Coord": xy[:, 0], "Y-Coord": xy[:, 1],
                  "label": labels.astype(str)}).to_csv(tmp_path / "map.csv", index=False)
    monkeypatch.chdir(root)
    monkeypatch.setenv("EMBEDVIZ_DATA_ROOTS", str(tmp_path))
    at = AppTest.from_file(str(root / "app.py"), default_timeout=180)
    at.switch_page("pages/1_Data_and_model.py").run()
    at.radio[0].set_value("Path on this server").run()
    at.radio[1].set_value("Features or a map made elsewhere").run()
    at.text_input[0].input(str(tmp_path / "map.csv")).run()
    at.button[0].click().run()
    at.switch_page("pages/4_Explore.py").run()
    assert not at.exception and not at.error
    spec = [c for c in figures(at) if "embedviz-map" in c][0]
    assert figure_points(spec) <= DRAWN + 300  # a sample over the layer
    cluster = np.flatnonzero(labels == 7)
    at.session_state["_linked_sel"] = [f"img/{i}.png" for i in cluster[:150]]  # as a shared link's selection
    at.run()
    zoom = next(b for b in at.button if b.key == "zoom_in")
    assert "drawing every point there" in zoom.label
    zoom.click().run()
    assert not at.exception and not at.error
    spec = [c for c in figures(at) if "embedviz-map" in c][0]
    here = next(c.value for c in at.caption if c.value.startswith("Zoomed in:"))
    count = int(here.split(":")[1].split(" of ")[0].replace(",", ""))
    assert count >= (labels == 7).sum() * 0.95 and "every one drawn as a point" in here
    assert len(set(figure_rows(spec))) == count  # real points, all of them
    next(b for b in at.button if b.key == "zoom_out").click().run()
    spec = [c for c in figures(at) if "embedviz-map" in c][0]
    assert figure_points(spec) <= DRAWN + 300 and not any(c.value.startswith("Zoomed in:") for c in at.caption)


def test_a_map_of_more_than_200000_points_starts_as_a_stratified_sample_fit(monkeypatch, tmp_path):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    root = Path(__file__).resolve().parents[2]
    rng = np.random.default_rng(4)
    n = 210_000
    labels = rng.integers(0, 6, n)
    np.save(tmp_path / "f.npy", (rng.normal(size=(6, 8))[labels] * 4 + rng.normal(size=(n, 8))).astype(np.float32))
    pd.DataFrame({"label": [f"k{v}" for v in labels]}).to_parquet(tmp_path / "meta.parquet")
    monkeypatch.chdir(root)
    monkeypatch.setenv("EMBEDVIZ_DATA_ROOTS", str(tmp_path))
    at = AppTest.from_file(str(root / "app.py"), default_timeout=300)
    at.switch_page("pages/1_Data_and_model.py").run()
    at.radio[0].set_value("Path on this server").run()
    at.radio[1].set_value("Features or a map made elsewhere").run()
    at.text_input[0].input(str(tmp_path / "f.npy"))
    next(t for t in at.text_input if t.label.startswith("Metadata table")).input(str(tmp_path / "meta.parquet"))
    at.button[0].click().run()
    assert not at.exception and not at.error
    at.session_state["ev_method"] = "pca"  # quick to fit; t-SNE and UMAP take the same sample
    at.switch_page("pages/3_Reduce.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.toggle(key="ev_sample_on").value and at.number_input(key="ev_sample_size").value == 50_000
    assert at.selectbox(key="ev_stratify").value == "label"
    assert any("stratified by label sample of 50,00" in i.value and "placed" in i.value for i in at.info), \
        [i.value for i in at.info]
    spec = [c for c in figures(at) if "embedviz-map" in c][0]
    assert figure_points(spec) <= DRAWN  # drawn as a sample over the layer, as on Explore
    assert any("210,000 points: 10,000 of them" in c.value for c in at.caption)
