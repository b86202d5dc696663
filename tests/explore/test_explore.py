"""Figures, filters and selections: the pieces the Explore page is made of."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from embedviz.data.classes import natural_order
from embedviz.errors import DataError
from embedviz.explore.figures import MapStyle, categorical_palette, scatter_figure
from embedviz.explore.filters import CategoryFilter, RangeFilter, TextFilter, TopKFilter, apply_filters
from embedviz.explore.selection import ids_for_rows, points_in_polygon, rows_for_ids, rows_in_geometry, selected_rows
from tests.plotly_spec import figure_points, figure_rows


@pytest.fixture
def samples() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 60
    return pd.DataFrame({
        "sample_id": [f"img/{i:03d}.png" for i in range(n)],
        "path": [f"img/{i:03d}.png" for i in range(n)],
        "label": pd.Series([str(i % 12) for i in range(n)], dtype="string"),
        "confidence": rng.random(n),
        "correct": pd.array([i % 5 != 0 for i in range(n)], dtype="boolean"),
    })


def test_every_point_carries_its_row(samples):
    coords = np.random.default_rng(1).random((60, 2))
    fig = scatter_figure(coords, samples, "label")
    assert len(fig.data) == 12  # one trace per class
    assert sorted(figure_rows(fig.to_json())) == list(range(60))
    assert all(trace.type == "scattergl" for trace in fig.data)
    for trace in fig.data:  # each trace holds the points of its class
        assert set(samples["label"].iloc[trace.customdata[:, 0].astype(int)]) == {trace.name}


def test_mask_hides_points_and_3d_works(samples):
    coords = np.random.default_rng(1).random((60, 3))
    mask = samples["correct"].to_numpy(dtype=bool)
    fig = scatter_figure(coords, samples, "confidence", mask=mask)
    assert figure_points(fig.to_json()) == int(mask.sum())
    assert fig.data[0].type == "scatter3d"


def test_palette_stays_distinct_for_many_classes():
    colours = categorical_palette(150)
    assert len(colours) == len(set(colours)) == 150


def test_labels_sort_like_numbers():
    assert natural_order(["10", "2", "1", "b", "a"]) == ["1", "2", "10", "a", "b"]


def test_filters_combine_with_and(samples):
    mask = apply_filters(samples, [CategoryFilter("label", ("0", "1")), RangeFilter("confidence", 0.0, 0.5)])
    expected = samples["label"].isin(["0", "1"]) & (samples["confidence"] <= 0.5)
    assert mask.tolist() == expected.tolist()
    mistakes = apply_filters(samples, [CategoryFilter("correct", ("False",))])
    assert mistakes.sum() == 12
    assert apply_filters(samples, [TextFilter("path", r"00[0-4]\.png", regex=True)]).sum() == 5
    assert apply_filters(samples, []).all()


def test_filter_errors_are_user_errors(samples):
    with pytest.raises(DataError, match="no column"):
        apply_filters(samples, [RangeFilter("size", 0, 1)])
    with pytest.raises(DataError, match="not a valid regular expression"):
        apply_filters(samples, [TextFilter("path", "([", regex=True)])


def test_a_clicked_point_is_selected_in_the_form_streamlit_sends_it():
    coords = np.random.default_rng(1).random((60, 2))
    # A click arrives with customdata as an object keyed by position, not a list (issue 17, item 1).
    click = {"selection": {"points": [{"curve_number": 2, "point_index": 4, "customdata": {"0": 12}}],
                           "box": [], "lasso": []}}
    assert selected_rows(click, coords).tolist() == [12]
    several = {"selection": {"points": [{"customdata": {"0": 5, "1": 0.9}}, {"customdata": {0: 6}},
                                        {"customdata": {}}]}}
    assert selected_rows(several, coords).tolist() == [5, 6]


def test_selection_maps_by_row_not_position(samples):
    coords = np.random.default_rng(1).random((60, 2))
    # Two traces: point index 0 exists in both; only customdata tells them apart.
    event = {"selection": {"points": [
        {"curve_number": 0, "point_index": 0, "customdata": 7},
        {"curve_number": 1, "point_index": 0, "customdata": 3},
        {"curve_number": 1, "point_index": 0, "customdata": [3]},
        {"curve_number": 1, "point_index": 5, "customdata": 999},  # not a row of this map: dropped
    ]}}
    rows = selected_rows(event, coords)
    assert rows.tolist() == [7, 3]
    assert ids_for_rows(samples, rows) == ["img/007.png", "img/003.png"]
    assert rows_for_ids(samples, ids_for_rows(samples, rows))["sample_id"].tolist() == ["img/007.png", "img/003.png"]
    assert selected_rows(None, coords).tolist() == []
    assert selected_rows({"selection": {"points": []}}, coords).tolist() == []
    hidden = np.ones(60, dtype=bool)
    hidden[7] = False
    assert selected_rows(event, coords, hidden).tolist() == [3]  # filtered-out points are never selected


def test_lasso_and_box_are_answered_from_the_coordinates():
    grid = np.array([[x, y] for x in range(10) for y in range(10)], dtype=np.float32)
    box = {"selection": {"points": [], "box": [{"x": [1.5, 3.5], "y": [-1, 1.2]}], "lasso": []}}
    assert grid[rows_in_geometry(grid, box)].tolist() == [[2, 0], [2, 1], [3, 0], [3, 1]]
    # an L-shaped (concave) lasso: the notch is left out
    xs, ys = [-0.5, 4.5, 4.5, 1.5, 1.5, -0.5], [-0.5, -0.5, 1.5, 1.5, 5.5, 5.5]
    inside = grid[points_in_polygon(grid, xs, ys)].tolist()
    assert [0, 5] in inside and [4, 1] in inside and [3, 3] not in inside and [4, 2] not in inside
    assert len(inside) == 5 * 2 + 2 * 4  # rows y=0,1 for x=0..4; x=0,1 for y=2..5
    lasso = {"selection": {"points": [{"customdata": 99}], "box": [], "lasso": [{"x": xs, "y": ys}]}}
    rows = selected_rows(lasso, grid)
    assert rows[0] == 99
    assert sorted(rows[1:].tolist()) == sorted(set(np.flatnonzero(points_in_polygon(grid, xs, ys))) - {99})
    assert rows_in_geometry(np.zeros((4, 3)), lasso).tolist() == []  # 3-D maps have no lasso


def test_a_colour_scale_and_the_ringed_points_legend_do_not_share_the_right_edge(samples):
    """Colour by a number (similarity, a score) with points ringed: the colour bar keeps the right edge and
    the legend goes under the plot; by categories the legend stays where it was."""
    coords = np.random.default_rng(2).random((60, 2))
    scored = samples.assign(similarity=np.linspace(-0.05, 0.0, 60))
    fig = scatter_figure(coords, scored, MapStyle(color="similarity"), highlight=np.array([3, 4]))
    assert any(t.marker.showscale for t in fig.data) and any(t.name == "highlighted (2)" for t in fig.data)
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.yanchor == "top" and fig.layout.legend.y == 0
    by_label = scatter_figure(coords, scored, MapStyle(color="label"), highlight=np.array([3, 4]))
    assert by_label.layout.legend.orientation is None


def test_styling_reaches_the_figure(samples):
    coords = np.random.default_rng(1).random((60, 2))
    samples = samples.assign(split=["train", "test", "val"] * 20, label=samples["label"].astype(object))
    samples.loc[15, "label"] = "<b>bold</b>"
    samples["prediction"] = ["<i>x</i>"] + ["1"] * 59
    style = MapStyle(color="label", symbol="split", size=9, opacity=0.5, colors=(("3", "#123456"),), filtered="grey")
    mask = np.arange(60) >= 10
    fig = scatter_figure(coords, samples, style, mask=mask, highlight=np.array([20, 21]))
    by_name = {t.name: t for t in fig.data}
    assert by_name["3"].marker.color == "#123456" and by_name["3"].marker.opacity == 0.5
    assert by_name["3"].marker.size == 9
    assert set(by_name["3"].marker.symbol) <= {"circle", "square", "diamond"}
    assert len(by_name["filtered out (10)"].x) == 10  # greyed, not hidden
    assert sorted(by_name["highlighted (2)"].customdata[:, 0].tolist()) == [20, 21]
    assert {"train", "test", "val"} <= set(by_name)  # the symbols' legend
    first = [t for t in fig.data if t.customdata is not None and 0 in t.customdata[:, 0]][0]
    assert first.name == "filtered out (10)" and "&lt;i&gt;x&lt;/i&gt;" in first.hovertext[0]  # not markup
    assert "&lt;b&gt;bold&lt;/b&gt;" in by_name  # nor in the legend
    assert "split " in first.hovertext[0] and "confidence %{customdata[1]:.1%}" in first.hovertemplate
    hidden = scatter_figure(coords, samples, style.__class__(color="label"), mask=mask)
    assert figure_points(hidden.to_json()) == 50


def test_top_k_filter_finds_labels_among_the_best_guesses():
    samples = pd.DataFrame({"sample_id": list("abcd"), "label": ["cat", "dog", "cat", None],
                            "prediction": ["cat", "cat", "dog", "cat"], "prediction_2": ["dog", "bird", "bird", "dog"],
                            "prediction_3": ["bird", "dog", "cat", "bird"]})
    assert apply_filters(samples, [TopKFilter(2)]).tolist() == [True, False, False, False]
    assert apply_filters(samples, [TopKFilter(3)]).tolist() == [True, True, True, False]
    assert apply_filters(samples, [TopKFilter(2, contains=False)]).tolist() == [False, True, True, False]
    with pytest.raises(DataError, match="Top-4 is not available"):
        apply_filters(samples, [TopKFilter(4)])


def test_selection_export_keeps_selection_order(samples):
    from embedviz.explore.export import selection_table

    rows = rows_for_ids(samples, ["img/009.png", "img/002.png"])
    table = selection_table(rows)
    assert table.columns.tolist() == ["sample_id", "path"]
    assert table["sample_id"].tolist() == ["img/009.png", "img/002.png"]
    assert selection_table(rows.drop(columns="path")).columns.tolist() == ["sample_id"]


def test_exported_text_never_runs_as_a_spreadsheet_formula(tmp_path):
    from embedviz.explore.export import coordinates_table, escape_formulas, to_csv, write_map, write_projector
    from embedviz.maps.reducers import Embedding

    samples = pd.DataFrame({"sample_id": ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "ok", "\tx"],
                            "label": ["cat", "=cmd|' /C calc'!A0", "dog", "dog", "cat", "cat"],
                            "confidence": [-0.5, 0.2, 0.3, 0.4, 0.5, 0.6]})
    escaped = escape_formulas(samples)
    assert escaped["sample_id"].tolist() == ["'=HYPERLINK(\"http://x\")", "'+1", "'-2", "'@SUM(A1)", "ok", "'\tx"]
    assert escaped["label"][1].startswith("'=") and escaped["confidence"].tolist() == samples["confidence"].tolist()
    embedding = Embedding(np.zeros((6, 2), np.float32), "pca", {}, 2, 0, 0.0)
    text = to_csv(coordinates_table(embedding, samples))
    for line in text.splitlines()[1:]:
        for cell in line.split(","):
            assert not cell.lstrip('"').startswith(("=", "+", "@")), cell
    out = write_map(embedding, samples, tmp_path / "map.csv")
    assert "'=HYPERLINK" in out.read_text()
    write_projector(np.ones((6, 3)), samples, tmp_path / "tb")
    rows = (tmp_path / "tb" / "metadata.tsv").read_text().splitlines()
    assert rows[0] == "sample_id\tlabel\tconfidence" and rows[2].startswith("'+1\t'=cmd")
    assert rows[6].startswith("' x")  # a tab inside a cell would split the row: it becomes a space
    assert "sprite" not in (tmp_path / "tb" / "projector_config.pbtxt").read_text()  # no images, no sprite


def test_projector_metadata_with_one_column_has_no_header():
    import tempfile
    from pathlib import Path

    from embedviz.explore.export import write_projector

    with tempfile.TemporaryDirectory() as tmp:
        write_projector(np.ones((3, 2)), pd.DataFrame({"sample_id": ["a", "b", "c"]}), Path(tmp))
        assert (Path(tmp) / "metadata.tsv").read_text().splitlines() == ["a", "b", "c"]


def test_the_view_exports_as_offline_html_parquet_and_png(samples):
    import io

    from PIL import Image

    from embedviz.explore.export import coordinates_table, map_png, table_parquet, view_html
    from embedviz.maps.reducers import Embedding

    coords = np.random.default_rng(2).random((60, 2)).astype(np.float32)
    embedding = Embedding(coords, "tsne", {}, 2, 0, 0.0)
    mask = samples["correct"].to_numpy(dtype=bool)
    page = view_html(embedding, samples, MapStyle(color="label"), mask)
    assert len(page) > 3_000_000 and "src=\"https://cdn.plot.ly" not in page  # plotly.js is in the page
    assert "t-SNE · 48 of 60 samples" in page  # the view: only the points the filters keep
    back = pd.read_parquet(io.BytesIO(table_parquet(coordinates_table(embedding, samples))))
    assert back["sample_id"].tolist() == samples["sample_id"].tolist() and np.allclose(back["x"], coords[:, 0])
    picture = Image.open(io.BytesIO(map_png(coords, samples, MapStyle(color="label", size=4), mask, width=300)))
    assert picture.width == 300 and len(picture.getcolors(10_000)) > 5  # coloured dots on white
    three = Embedding(np.random.default_rng(3).random((60, 3)).astype(np.float32), "pca", {}, 3, 0, 0.0)
    assert "scatter3d" in view_html(three, samples, MapStyle(), mask)


def test_exports_are_titled_with_what_the_map_is_and_the_picture_has_a_legend(samples):
    """Issue 17, item 11: the HTML's title read "tsne map of 1,991 samples" and the PNG had no legend."""
    import io

    from PIL import Image

    from embedviz.explore.export import map_png, map_title, view_html
    from embedviz.maps.reducers import Embedding

    coords = np.random.default_rng(2).random((60, 2)).astype(np.float32)
    embedding = Embedding(coords, "tsne", {}, 2, 0, 0.0)
    mask = samples["label"].isin(["4", "9"]).to_numpy()
    title = map_title(embedding, int(mask.sum()), source="digits · demo CNN/fc1", total=60)
    assert title == "t-SNE of digits · demo CNN/fc1 · 10 of 60 samples"
    page = view_html(embedding, samples.assign(label=samples["label"].replace("4", "<b>4</b>")),
                     MapStyle(color="label"), mask, source="digits <i>x</i> · demo CNN/fc1",
                     note="Shown: label is 4 or 9").replace("\\u002f", "/")
    assert "t-SNE of digits &lt;i&gt;x&lt;/i&gt; · demo CNN/fc1 · 10 of 60 samples" in page  # a name is text
    assert "Shown: label is 4 or 9" in page and "tsne map" not in page

    style = MapStyle(color="label", size=4)
    picture = Image.open(io.BytesIO(map_png(coords, samples, style, mask, width=600, title=title)))
    pixels = np.asarray(picture.convert("RGB"))
    assert picture.width == 600
    from embedviz.explore.render import point_colours

    colours = point_colours(samples, style)
    four, nine = colours[samples["label"].eq("4").to_numpy()][0], colours[samples["label"].eq("9").to_numpy()][0]
    legend = pixels[:, 600 - 600 // 5:]  # the panel on the right: a swatch per label shown
    for colour in (four, nine):
        assert (legend.reshape(-1, 3) == colour).all(axis=1).sum() > 20
    three = colours[samples["label"].eq("3").to_numpy()][0]
    assert not (legend.reshape(-1, 3) == three).all(axis=1).any()  # a label the filters hide is not listed
    text = (pixels[:20] < 100).all(axis=2).sum()
    assert text > 30  # dark title text at the top


def test_a_filter_that_keeps_nothing_says_which_and_what_to_do(samples):
    """Issue 17, item 16e: an empty map came without a word."""
    from embedviz.explore.filters import why_nothing_shown

    assert why_nothing_shown(samples, [CategoryFilter("label", ("1",))]) is None
    assert why_nothing_shown(samples, [CategoryFilter("label", ())]) == (
        "The filters keep none of the 60 points: no value of label is chosen. Pick some, or take label out of "
        "\"Filter on\".")
    assert "no point has confidence from 2 to 3" in why_nothing_shown(samples, [RangeFilter("confidence", 2, 3)])
    both = why_nothing_shown(samples, [RangeFilter("confidence", 0, 0.5), RangeFilter("confidence", 0.6, 1)])
    assert both.startswith("The filters keep none of the 60 points: each filter keeps some")
    assert "confidence from 0 to 0.5; confidence from 0.6 to 1" in both


@pytest.mark.slow
def test_explore_page_clusters_the_filtered_points_shows_every_label_and_says_when_nothing_is_left(monkeypatch):
    """Issue 17 on the page (AppTest): items 14, 16d and 16e."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)
    at = AppTest.from_file(str(root / "app.py"), default_timeout=180).run()
    at.switch_page("pages/4_Explore.py").run()
    at.multiselect(key="ev_f_columns").set_value(["label"]).run()
    assert at.multiselect(key="ev_f_label").proto.wrap  # every chip shows: they wrap onto more rows (16d)
    at.multiselect(key="ev_f_label").set_value(["4", "9"]).run()
    kept = int(at.metric[0].value.replace(",", ""))
    at.number_input(key="ev_cluster_k").set_value(4)
    at.session_state["explore_tab"] = "Clusters"  # the tab a user presses the button on, open
    at.button[[b.label for b in at.button].index("Find clusters")].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    said = " ".join(c.value for c in at.caption)
    assert f"on the features of {kept:,} of the 1,797 points (the points kept by: label is 4 or 9)" in said  # 14
    lines = [m.value for m in at.markdown if m.value.startswith("**Cluster ")]
    assert len(lines) == 4 and all("· mostly 4 " in line or "· mostly 9 " in line or "mixed" in line for line in lines)

    at.multiselect(key="ev_f_label").set_value([]).run()
    assert any("The filters keep none of the 1,797 points: no value of label is chosen" in w.value
               for w in at.warning)  # 16e
    assert any("The filters have changed since these clusters were found" in i.value for i in at.info)
