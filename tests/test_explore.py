"""Figures, filters and selections: the pieces the Explore page is made of."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from embedviz.errors import DataError
from embedviz.figures import categorical_palette, natural_order, scatter_figure
from embedviz.filters import CategoryFilter, RangeFilter, TextFilter, apply_filters
from embedviz.selection import rows_for_ids, selected_ids

from .plotly_spec import figure_points, figure_sample_ids


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


def test_every_point_carries_its_sample_id(samples):
    coords = np.random.default_rng(1).random((60, 2))
    fig = scatter_figure(coords, samples, "label")
    assert len(fig.data) == 12  # one trace per class
    assert sorted(figure_sample_ids(fig.to_json())) == sorted(samples["sample_id"])
    assert all(trace.type == "scattergl" for trace in fig.data)


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


def test_selection_maps_by_id_not_position(samples):
    # Two traces: point index 0 exists in both; only customdata tells them apart.
    event = {"selection": {"points": [
        {"curve_number": 0, "point_index": 0, "customdata": ["img/007.png"]},
        {"curve_number": 1, "point_index": 0, "customdata": ["img/003.png"]},
        {"curve_number": 1, "point_index": 0, "customdata": ["img/003.png"]},
    ]}}
    ids = selected_ids(event)
    assert ids == ["img/007.png", "img/003.png"]
    assert rows_for_ids(samples, ids)["sample_id"].tolist() == ids
    assert selected_ids(None) == [] and selected_ids({"selection": {"points": []}}) == []


def test_selection_export_keeps_selection_order(samples):
    from embedviz.export import selection_table

    rows = rows_for_ids(samples, ["img/009.png", "img/002.png"])
    table = selection_table(rows)
    assert table.columns.tolist() == ["sample_id", "path"]
    assert table["sample_id"].tolist() == ["img/009.png", "img/002.png"]
    assert selection_table(rows.drop(columns="path")).columns.tolist() == ["sample_id"]


def test_exported_text_never_runs_as_a_spreadsheet_formula(tmp_path):
    from embedviz.export import coordinates_table, escape_formulas, to_csv, write_map, write_projector
    from embedviz.reducers import Embedding

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

    from embedviz.export import write_projector

    with tempfile.TemporaryDirectory() as tmp:
        write_projector(np.ones((3, 2)), pd.DataFrame({"sample_id": ["a", "b", "c"]}), Path(tmp))
        assert (Path(tmp) / "metadata.tsv").read_text().splitlines() == ["a", "b", "c"]
