"""The Explore page's analyses: the confusion matrix and mistakes, clusters, and the map as a picture."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from embedviz.errors import DataError
from embedviz.explore.figures import MapStyle, confusion_figure
from embedviz.explore.mistakes import cell_rows, confident_errors, confusion_table, unsure_correct
from embedviz.explore.render import Frame, point_colours, points_image, thumbnail_map
from embedviz.maps.clusters import NOISE, cluster_points


@pytest.fixture
def scored() -> pd.DataFrame:
    label = ["1", "1", "1", "2", "2", "10", "10", "10", None]
    prediction = ["1", "2", "1", "2", "10", "10", "1", "10", "2"]
    confidence = [0.9, 0.95, 0.6, 0.8, 0.4, 0.99, 0.7, 0.51, 0.5]
    correct = pd.array([a == b if a else None for a, b in zip(label, prediction)], dtype="boolean")
    return pd.DataFrame({"sample_id": [f"s{i}" for i in range(9)], "label": label, "prediction": prediction,
                         "confidence": confidence, "correct": correct})


def test_confusion_matrix_counts_and_cells_select_their_samples(scored):
    table = confusion_table(scored)
    assert table.index.tolist() == table.columns.tolist() == ["1", "2", "10"]  # natural order, square
    assert table.loc["1", "1"] == 2 and table.loc["1", "2"] == 1 and table.loc["10", "1"] == 1
    assert int(table.to_numpy().sum()) == 8  # the unlabelled sample is not scored
    assert cell_rows(scored, [("1", "2"), ("10", "1")]).tolist() == [1, 6]
    fig = confusion_figure(table)
    cells = {tuple(c): int(t.replace(",", "")) for c, t in zip(fig.data[0].customdata, fig.data[0].text)}
    assert cells[("1", "1")] == 2 and ("2", "1") not in cells  # empty cells are not drawn


def test_error_lists_order_by_confidence(scored):
    assert confident_errors(scored)["sample_id"].tolist() == ["s1", "s6", "s4"]  # surest mistake first
    assert unsure_correct(scored, 2)["sample_id"].tolist() == ["s7", "s2"]  # least sure right answer first


def _blobs(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0]], dtype=np.float32)
    sizes = [50, 30, 20]
    return np.concatenate([c + rng.normal(0, 0.5, (n, 3)) for c, n in zip(centres, sizes)]).astype(np.float32)


def test_kmeans_finds_the_groups_names_them_by_size_and_is_repeatable():
    x = _blobs()
    truth = np.repeat([0, 1, 2], [50, 30, 20])
    clustering = cluster_points(x, "kmeans", k=3, seed=0, representatives=4)
    assert clustering.names[:50].tolist() == ["1"] * 50  # the largest group is cluster 1
    assert clustering.names[50:80].tolist() == ["2"] * 30 and clustering.names[80:].tolist() == ["3"] * 20
    for name, rows in clustering.representatives.items():
        assert len(rows) == 4 and set(clustering.names[rows]) == {name}
    assert np.array_equal(cluster_points(x, "kmeans", k=3, seed=0).names, clustering.names)
    summary = clustering.summary(pd.DataFrame({"label": truth.astype(str)}))
    assert summary["points"].tolist() == [50, 30, 20] and summary["share"].tolist() == [1.0, 1.0, 1.0]


def test_hdbscan_finds_groups_and_leaves_outliers_as_noise():
    x = np.concatenate([_blobs(), np.array([[50, 50, 50], [-40, 30, -20]], dtype=np.float32)])
    clustering = cluster_points(x, "hdbscan", min_cluster_size=10)
    assert sorted(set(clustering.names) - {NOISE}) == ["1", "2", "3"]
    assert clustering.names[-2:].tolist() == [NOISE, NOISE] and "belong to no cluster" in clustering.description
    with pytest.raises(DataError, match="Unknown clustering"):
        cluster_points(x, "spectral")


def test_points_image_puts_each_colour_where_its_point_is():
    coords = np.array([[0, 0], [1, 1], [0, 1]], dtype=np.float32)
    colours = np.array([[255, 0, 0], [0, 0, 255], [0, 128, 0]], dtype=np.uint8)
    frame = Frame.around(coords, 200)
    picture = np.asarray(points_image(coords, colours, frame=frame, radius=2))
    px, py = frame.pixels(coords)
    assert picture[py[0], px[0]].tolist() == [255, 0, 0]  # bottom left, as on the map (y up)
    assert picture[py[1], px[1]].tolist() == [0, 0, 255] and py[1] < py[0]
    assert picture[100, 100].tolist() == [255, 255, 255]


def test_colours_follow_the_map_including_the_users_choice():
    samples = pd.DataFrame({"label": ["a", "b", "a"], "score": [0.0, 0.5, 1.0]})
    mine = point_colours(samples, MapStyle(color="label", colors=(("b", "#00ff00"),)))
    assert mine[1].tolist() == [0, 255, 0] and mine[0].tolist() == mine[2].tolist() != [0, 255, 0]
    scale = point_colours(samples, MapStyle(color="score"))
    assert scale[0].tolist() == [0x44, 0x01, 0x54] and scale[2].tolist() == [0xfd, 0xe7, 0x25]  # viridis ends


def test_thumbnail_map_samples_above_its_limit_and_frames_in_class_colour(tmp_path):
    from PIL import Image

    for i in range(6):
        Image.new("RGB", (8, 8), (i * 40, i * 40, i * 40)).save(tmp_path / f"{i}.png")
    coords = np.array([[i, i % 2] for i in range(6)], dtype=np.float32)
    colours = np.tile(np.array([[255, 0, 0]], dtype=np.uint8), (6, 1))
    picture, drawn = thumbnail_map(coords, [f"{i}.png" for i in range(6)], tmp_path, colours, max_images=4,
                                   thumb=16, width=400)
    assert len(drawn) == 4 and len(set(drawn.tolist())) == 4
    pixels = np.asarray(picture)
    assert (pixels.reshape(-1, 3) == [255, 0, 0]).all(axis=1).sum() > 4 * 4 * 16  # the red frames
    again, same = thumbnail_map(coords, [f"{i}.png" for i in range(6)], tmp_path, colours, max_images=4, thumb=16,
                                width=400)
    assert same.tolist() == drawn.tolist() and np.array_equal(np.asarray(again), pixels)  # seeded sample


def test_clusters_of_the_points_the_filters_keep_describe_those_points():
    """Issue 17, item 14: clusters were found on every point while a filter showed two labels, and a
    cluster called "mostly 4 (41%)" showed six 9s as its typical images."""
    from embedviz.maps.clusters import make_up

    x = _blobs()
    labels = np.repeat(["a", "b", "c"], [50, 30, 20])
    kept = labels != "a"
    clustering = cluster_points(x, "kmeans", k=2, seed=0, representatives=4, rows=kept)
    assert clustering.names[:50].tolist() == [None] * 50 and clustering.clustered == 50  # the filtered-out: none
    assert set(clustering.names[50:80]) == {"1"} and set(clustering.names[80:]) == {"2"}
    assert "on the features of 50 of the 100 points" in clustering.description
    summary = clustering.summary(pd.DataFrame({"label": labels}))
    assert summary["points"].tolist() == [30, 20] and summary["most common label"].tolist() == ["b", "c"]
    for name, rows in clustering.representatives.items():  # the typical images are of the same points
        assert kept[rows].all() and set(clustering.names[rows]) == {name}
    assert summary["make-up"].tolist() == ["mostly b (100%)", "mostly c (100%)"]
    assert make_up(pd.Series({"4": 41, "9": 38, "7": 12, "1": 9})) == "mixed: 4 41%, 9 38%, 7 12%"  # not "mostly 4"
    assert make_up(pd.Series({"9": 61, "4": 39})) == "mostly 9 (61%)"
    with pytest.raises(DataError, match="the filters keep 1"):
        cluster_points(x, rows=np.arange(100) == 3)


def test_no_mistakes_says_why_in_two_different_ways():
    """Issue 17, item 12: no predictions and a model whose classes are not the labels read the same."""
    from embedviz.explore.mistakes import why_no_mistakes

    assert why_no_mistakes(pd.DataFrame({"sample_id": ["a"], "label": ["cat"]})).startswith(
        "No predictions to check: the model gives no class scores")
    mismatch = pd.DataFrame({"sample_id": list("abcd"), "label": ["cat", "dog", "cat", "dog"],
                             "prediction": ["3", "7", "0", "10"], "confidence": [0.9] * 4})
    said = why_no_mistakes(mismatch)
    assert said.startswith("The model's classes are not the labels: it predicts 4 classes (0, 3, 7, 10) and the "
                           "data has 2 labels (cat, dog)")
    assert "On Data & model, upload a class index" in said
    assert why_no_mistakes(mismatch.drop(columns="label")).startswith("No labels to check the predictions against")
    scored = mismatch.assign(label=["3", "7", "1", "1"], correct=pd.array([True, True, False, False], dtype="boolean"))
    assert why_no_mistakes(scored) is None
