"""Features computed elsewhere, in every form we accept, and every way they can be wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from embedviz.data.precomputed import load_feature_set, load_precomputed
from embedviz.errors import DataError


@pytest.fixture
def matrix() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(12, 5)).astype(np.float32)


def test_npy_with_metadata_joined_on_an_id_column(tmp_path, matrix):
    np.save(tmp_path / "f.npy", matrix)
    pd.DataFrame({"图像路径": [f"img/{i}.png" for i in range(12)], "类别": ["猫", "狗"] * 6}).to_csv(
        tmp_path / "meta.csv", index=False)
    result = load_precomputed(tmp_path / "f.npy", tmp_path / "meta.csv", id_column="图像路径")
    np.testing.assert_array_equal(result.features, matrix)
    assert result.samples["sample_id"].tolist()[:2] == ["img/0.png", "img/1.png"]
    assert result.samples["类别"].tolist()[:2] == ["猫", "狗"]


def test_npz_by_name_and_parquet_vector_column(tmp_path, matrix):
    np.savez(tmp_path / "f.npz", labels=np.arange(12), features=matrix)
    np.testing.assert_array_equal(load_precomputed(tmp_path / "f.npz").features, matrix)
    table = pd.DataFrame({"id": [f"s{i}" for i in range(12)], "embedding": list(matrix), "label": ["a"] * 12})
    table.to_parquet(tmp_path / "f.parquet")
    result = load_feature_set(tmp_path / "f.parquet")
    np.testing.assert_allclose(result.features, matrix)
    assert result.samples.columns.tolist()[:1] == ["sample_id"] and result.samples["sample_id"].iat[3] == "s3"
    assert "label" in result.samples.columns


def test_tensorboard_projector_files(tmp_path, matrix):
    np.savetxt(tmp_path / "tensors.tsv", matrix, delimiter="\t")
    (tmp_path / "metadata.tsv").write_text("\n".join(["cat", "dog"] * 6) + "\n")  # one column: no header
    result = load_feature_set(tmp_path)
    assert result.features.shape == (12, 5) and result.samples["label"].tolist()[:2] == ["cat", "dog"]
    (tmp_path / "metadata.tsv").write_text("name\tsplit\n" + "\n".join(f"n{i}\ttest" for i in range(12)) + "\n")
    assert load_feature_set(tmp_path / "tensors.tsv").samples.columns.tolist() == ["sample_id", "name", "split"]


def test_object_arrays_are_never_unpickled(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="Python objects"):
        load_precomputed(tmp_path / "obj.npy")


def test_wrong_shapes_nan_rows_and_count_mismatches(tmp_path, matrix):
    np.save(tmp_path / "flat.npy", matrix[:, 0])
    with pytest.raises(DataError, match="is 1-D"):
        load_precomputed(tmp_path / "flat.npy")
    np.save(tmp_path / "cube.npy", matrix.reshape(12, 5, 1))
    with pytest.raises(DataError, match=r"shape \(12, 5, 1\); flatten"):
        load_precomputed(tmp_path / "cube.npy")
    bad = matrix.copy()
    bad[4, 1], bad[7, 0] = np.nan, np.inf
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(DataError, match="2 feature rows contain NaN or infinite values \\(first: 4, 7\\)"):
        load_precomputed(tmp_path / "nan.npy")
    np.save(tmp_path / "f.npy", matrix)
    pd.DataFrame({"id": range(10)}).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(DataError, match="12 feature rows but the metadata has 10 rows"):
        load_precomputed(tmp_path / "f.npy", tmp_path / "short.csv")
    pd.DataFrame({"id": [1] * 12}).to_csv(tmp_path / "same.csv", index=False)
    with pytest.raises(DataError, match="appears more than once"):
        load_precomputed(tmp_path / "f.npy", tmp_path / "same.csv")
    pd.DataFrame({"v": [[1.0, 2.0], [1.0]]}).to_parquet(tmp_path / "ragged.parquet")
    with pytest.raises(DataError, match="different lengths"):
        load_precomputed(tmp_path / "ragged.parquet")


def test_a_metascatter_map_keeps_its_coordinates_and_never_follows_paths_out(tmp_path):
    from embedviz.data.precomputed import images_of
    from embedviz.maps.reducers import compute_embedding

    table = pd.DataFrame({"Paths": ["cats/1.png", "dogs/2.png", "/etc/passwd.png", "../up.png", "http://x/y.png"],
                          "X-Coord": [10.0, -3.5, 0.0, 2.0, 7.25], "Y-Coord": [1.0, 2.0, 3.0, 4.0, 5.0],
                          "top-1-预测名称": ["猫", "狗", "猫", "狗", "猫"]})
    table.to_csv(tmp_path / "map.csv", index=False, sep=";")
    features = load_precomputed(tmp_path / "map.csv")
    assert features.manifest["given_coordinates"] and features.features.shape == (5, 2)
    assert list(features.samples["top-1-预测名称"]) == ["猫", "狗", "猫", "狗", "猫"]
    assert features.samples["path"].isna().tolist() == [False, False, True, True, True]
    assert images_of(features).root == tmp_path.resolve()

    shown = compute_embedding(features.features, "precomputed", n_components=2, cache_dir=tmp_path)
    np.testing.assert_array_equal(shown.coords, table[["X-Coord", "Y-Coord"]].to_numpy(np.float32))
    with pytest.raises(Exception, match="given coordinates are 2-D; choose 2-D"):
        compute_embedding(features.features, "precomputed", n_components=3, cache_dir=tmp_path)

    table.to_parquet(tmp_path / "map.parquet")
    assert load_precomputed(tmp_path / "map.parquet").manifest["given_coordinates"]
    table.assign(**{"Y-Coord": ["1", "2", "x", "4", "5"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match="1 rows of bad.csv have a missing or non-numeric coordinate"):
        load_precomputed(tmp_path / "bad.csv")
    table.drop(columns=["X-Coord"]).to_csv(tmp_path / "plain.csv", index=False)
    with pytest.raises(DataError, match="no X-Coord and Y-Coord columns"):
        load_precomputed(tmp_path / "plain.csv")


def test_wide_features_are_not_offered_as_given_coordinates(matrix):
    from embedviz.maps.reducers import available_methods, compute_embedding

    assert "precomputed" not in available_methods(5) and "precomputed" in available_methods(3)
    with pytest.raises(Exception, match="5 dimensions, not 2 or 3"):
        compute_embedding(matrix, "precomputed", n_components=2)
