"""Features computed elsewhere, in every form we accept, and every way they can be wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from embedviz.errors import DataError
from embedviz.precomputed import load_precomputed
from embedviz.store import load_feature_set


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
