"""What the map component is given: the rows it draws, their hover columns as the file wrote them (the
browser sets them as text), each row's image in the atlas, and a selection read back as
``st.plotly_chart``'s was."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pandas as pd
from streamlit.testing.v1 import AppTest

from embedviz.explore.figures import MapStyle, scatter_figure
from embedviz.explore.selection import selected_rows
from embedviz.ui.map_component import _hover, drawn_rows
from tests.plotly_spec import map_payloads

ROOT = Path(__file__).resolve().parents[2]
_DT = {"f4": np.float32, "i4": np.int32, "u1": np.uint8}


def _array(spec: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(spec["bdata"]), dtype=_DT[spec["dtype"]])


def _samples(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"sample_id": [f"img/{i}.png" for i in range(n)], "path": [f"img/{i}.png" for i in range(n)],
                         "label": ["<b>cat</b>" if i % 2 else "dog & co" for i in range(n)],
                         "confidence": rng.random(n), "size_px": rng.integers(10, 99, n).astype(float)})


def test_the_component_draws_the_shown_rows_and_hovers_them_with_the_files_own_strings():
    samples = _samples()
    coords = np.random.default_rng(1).normal(size=(len(samples), 2)).astype(np.float32)
    mask = np.arange(len(samples)) % 4 != 0
    figure = scatter_figure(coords, samples, MapStyle(color="label"), mask=mask)
    rows = drawn_rows(figure)
    assert rows.tolist() == np.flatnonzero(mask).tolist()  # filtered-out points are not drawn (hidden)
    hover = _hover(samples, rows, "size_px", None)
    assert _array(hover["rows"]).tolist() == rows.tolist()
    columns = {c["name"]: c for c in hover["columns"]}
    assert set(columns) == {"label", "confidence", "size_px"}  # the colour column joins label, confidence
    label = columns["label"]
    shown = [label["categories"][code] for code in _array(label["codes"])]
    assert shown == samples["label"].iloc[rows].tolist()  # as written: the browser sets text, not HTML
    assert columns["confidence"]["share"] and not columns["size_px"]["share"]
    np.testing.assert_allclose(_array(columns["size_px"]["values"]), samples["size_px"].iloc[rows], rtol=1e-6)
    assert hover["ids"] == samples["sample_id"].iloc[rows].tolist()
    assert "atlas" not in hover  # no images: the preview shows the text only


def test_a_selection_from_the_component_reads_like_a_plotly_chart_event():
    coords = np.array([[0, 0], [1, 1], [2, 2], [5, 5], [9, 9]], dtype=np.float32)
    event = {"selection": {"points": [{"customdata": 4}], "box": [{"x": [0.5, 2.5], "y": [0.5, 2.5]}],
                           "lasso": [{"x": [4, 6, 6, 4], "y": [4, 4, 6, 6]}], "at": 1}}
    assert selected_rows(event, coords).tolist() == [4, 1, 2, 3]
    assert selected_rows({"selection": {}}, coords).tolist() == []


def test_explore_gives_the_map_its_atlas_and_each_row_its_image(monkeypatch):
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.switch_page("pages/4_Explore.py").run()
    assert not at.exception and not at.error, [e.value for e in at.exception]
    [payload] = map_payloads(at)
    hover = payload["hover"]
    rows = _array(hover["rows"])
    assert len(rows) == 1797 and payload["select"] and payload["pictures"] == 1500
    atlas = hover["atlas"]
    index = _array(atlas["index"])
    assert len(index) == 1797 and index.min() >= 0 and len(np.unique(index)) == 1797  # every digit its own cell
    assert len(atlas["urls"]) == -(-1797 // atlas["per_sheet"]) and all("/media/" in u for u in atlas["urls"])
    sizes = _array(atlas["sizes"]).reshape(-1, 2)
    assert (sizes == atlas["cell"]).all()  # square digits fill their cells
    assert atlas["sheet_sizes"][0] == [atlas["per_row"] * atlas["cell"]] * 2
