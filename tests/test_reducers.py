from __future__ import annotations

import numpy as np
import pytest

from embedviz.errors import ReducerError
from embedviz.reducers import TSNEParams, compute_embedding, make_params, param_specs, reduce


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_blobs

    x, y = make_blobs(n_samples=300, n_features=20, centers=4, random_state=0)
    return x.astype(np.float32), y


def _knn_purity(coords: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    from sklearn.neighbors import NearestNeighbors

    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(coords).kneighbors(coords)
    return float((labels[idx[:, 1:]] == labels[:, None]).mean())


@pytest.mark.parametrize("method", ["pca", "tsne"])
@pytest.mark.parametrize("dims", [2, 3])
def test_maps_keep_clusters_apart(blobs, method, dims):
    x, y = blobs
    embedding = reduce(x, method, n_components=dims, random_state=0)
    assert embedding.coords.shape == (300, dims)
    assert np.abs(embedding.coords).max() == pytest.approx(1.0)  # scaled for display
    assert _knn_purity(embedding.coords, y) > 0.95


def test_same_seed_same_map_other_seed_other_map(blobs):
    x, _ = blobs
    a = reduce(x, "tsne", {"n_iter": 200}, random_state=1).coords
    b = reduce(x, "tsne", {"n_iter": 200}, random_state=1).coords
    c = reduce(x, "tsne", {"n_iter": 200}, random_state=2).coords
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_perplexity_too_large_for_few_points_is_clamped_and_said(blobs):
    x, _ = blobs
    embedding = reduce(x[:20], "tsne", {"perplexity": 50})
    assert embedding.coords.shape == (20, 2)
    assert any("too large for 20 points" in note for note in embedding.notes)


def test_parameter_bounds_come_from_the_dataclass():
    specs = {s.name: s for s in param_specs(TSNEParams)}
    assert specs["perplexity"].low == 2 and specs["perplexity"].high == 100 and specs["perplexity"].default == 30
    assert specs["metric"].choices == ("euclidean", "cosine")
    assert make_params(TSNEParams, {"perplexity": "12"}).perplexity == 12.0
    with pytest.raises(ReducerError, match="outside 2–100"):
        make_params(TSNEParams, {"perplexity": 500})
    with pytest.raises(ReducerError, match="Unknown parameter n_neighbors"):
        make_params(TSNEParams, {"n_neighbors": 5})


def test_bad_input_is_refused_with_a_reason(blobs):
    x, _ = blobs
    with pytest.raises(ReducerError, match="choose one of pca, tsne, umap"):
        reduce(x, "isomap")
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ReducerError, match="1 feature rows contain NaN"):
        reduce(bad, "pca")
    with pytest.raises(ReducerError, match="too few"):
        reduce(x[:3], "pca")


def test_early_stop_returns_a_partial_map(blobs):
    x, _ = blobs
    embedding = reduce(x, "tsne", progress=lambda done, total, message: done >= 100)
    assert embedding.coords.shape == (300, 2)
    assert any("Stopped early" in note for note in embedding.notes)


def test_maps_are_cached_by_features_method_params_and_seed(blobs, tmp_path):
    x, _ = blobs
    first = compute_embedding(x, "pca", cache_dir=tmp_path)
    again = compute_embedding(x, "pca", cache_dir=tmp_path)
    assert not first.from_cache and again.from_cache
    np.testing.assert_array_equal(first.coords, again.coords)
    assert not compute_embedding(x + 1, "pca", cache_dir=tmp_path).from_cache
    assert not compute_embedding(x, "pca", n_components=3, cache_dir=tmp_path).from_cache


@pytest.mark.slow
def test_umap_2d_and_3d(blobs):
    x, y = blobs
    for dims in (2, 3):
        embedding = reduce(x, "umap", {"n_neighbors": 15}, n_components=dims)
        assert embedding.coords.shape == (300, dims)
        assert _knn_purity(embedding.coords, y) > 0.95
