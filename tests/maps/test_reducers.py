from __future__ import annotations

import numpy as np
import pytest

from embedviz.errors import ReducerError
from embedviz.maps.reducers import TSNEParams, compute_embedding, make_params, param_specs, reduce


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


def test_the_perplexity_bound_is_the_one_the_page_offers():
    # t-SNE needs perplexity < (n - 1) / 3: the slider's top and the reducer's clamp are one number
    from embedviz.maps.reducers.params import perplexity_limit

    assert [perplexity_limit(n) for n in (4, 20, 100, 101, 1797)] == [1, 6, 32, 33, 598]
    assert all(perplexity_limit(n) < (n - 1) / 3 for n in range(5, 500))


def test_parameter_bounds_come_from_the_dataclass():
    specs = {s.name: s for s in param_specs(TSNEParams)}
    assert specs["perplexity"].low == 2 and specs["perplexity"].high == 100 and specs["perplexity"].default == 30
    assert specs["metric"].choices == ("euclidean", "cosine", "manhattan")
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
    with pytest.raises(ReducerError, match="no points"):
        reduce(x[:0], "pca")


def test_early_stop_returns_a_partial_map(blobs):
    x, _ = blobs
    embedding = reduce(x, "tsne", progress=lambda done, total, message: done >= 100)
    assert embedding.coords.shape == (300, 2)
    assert embedding.partial
    assert any("Stopped at iteration 100" in note for note in embedding.notes)


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


# --- issue 5: the shared neighbour graph, warm starts, frames, samples, clamping, parameters -------

def _disparity(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.spatial import procrustes

    return float(procrustes(a, b)[2])


@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_one_to_five_points_still_give_a_map_with_a_notice(blobs, method, n):
    x, _ = blobs
    embedding = reduce(x[:n], method, n_components=2)
    assert embedding.coords.shape == (n, 2) and np.isfinite(embedding.coords).all()
    if method != "pca":
        assert any("too few for" in note and "PCA" in note for note in embedding.notes)
    if n == 2:  # two different points are drawn apart
        assert np.abs(embedding.coords[0] - embedding.coords[1]).max() > 0.5


def test_identical_and_repeated_rows_are_said(blobs):
    x, _ = blobs
    same = np.repeat(x[:1], 50, axis=0)
    embedding = reduce(same, "tsne")
    assert np.allclose(embedding.coords, 0)
    assert any("All 50 points have identical features" in note for note in embedding.notes)
    repeated = np.vstack([x[:100], x[:40]])
    embedding = reduce(repeated, "tsne", {"n_iter": 100})
    assert np.isfinite(embedding.coords).all()
    assert any("40 points repeat another point" in note for note in embedding.notes)
    np.testing.assert_allclose(embedding.coords[:40], embedding.coords[100:], atol=0.05)


@pytest.mark.parametrize("dtype, width", [(np.float32, 7), (np.float64, 3), (np.uint8, 5), (np.float32, 1)])
def test_repeated_rows_are_counted_exactly_whatever_the_row_width(dtype, width):
    from embedviz.maps.reducers.embedding import _duplicates

    x = np.random.default_rng(width).integers(0, 3, (2000, width)).astype(dtype)  # many exact repeats
    distinct = len(np.unique(x, axis=0))
    assert _duplicates(x) == len(x) - distinct
    assert _duplicates(np.unique(x, axis=0)) == 0


def test_umap_n_neighbors_beyond_the_points_is_clamped_and_said(blobs):
    x, _ = blobs
    from embedviz.maps.reducers.methods import Context, _fit_umap
    from embedviz.maps.reducers.params import UMAPParams

    class Stop(Exception):
        pass

    ctx = Context(n_components=2, seed=0, progress=lambda *a: (_ for _ in ()).throw(Stop()))
    with pytest.raises(Stop):  # stop before umap is imported: only the clamping is under test
        _fit_umap(x[:12], UMAPParams(n_neighbors=40), ctx)
    assert ctx.notes == ["n_neighbors 40 is too large for 12 points; used 11."]


def test_tsne_parameters_reach_opentsne_unchanged(blobs, monkeypatch):
    import openTSNE
    from openTSNE import affinity

    x, _ = blobs
    seen: dict = {"optimize": []}
    real_affinity, real_optimize = affinity.PerplexityBasedNN, openTSNE.TSNEEmbedding.optimize

    class Recording(real_affinity):
        def __init__(self, *args, **kwargs):
            seen["perplexity"] = kwargs["perplexity"]
            seen["k"] = kwargs["knn_index"].k
            super().__init__(*args, **kwargs)

    def optimize(self, n_iter, **kwargs):
        seen["optimize"].append((n_iter, kwargs))
        return real_optimize(self, n_iter, **kwargs)

    monkeypatch.setattr(affinity, "PerplexityBasedNN", Recording)
    monkeypatch.setattr(openTSNE.TSNEEmbedding, "optimize", optimize)
    reduce(x, "tsne", {"perplexity": 17, "early_exaggeration": 9, "learning_rate": 350, "n_iter": 150,
                       "pca_components": 0})
    assert seen["perplexity"] == 17 and seen["k"] == 51
    (n1, first), (n2, second) = seen["optimize"]
    assert n1 == 250 and first["exaggeration"] == 9 and first["learning_rate"] == 350
    assert n2 == 150 and second["learning_rate"] == 350


@pytest.mark.slow
def test_umap_parameters_reach_umap_learn_unchanged(blobs, monkeypatch):
    from embedviz.maps.reducers.methods import import_umap

    umap = import_umap()
    x, _ = blobs
    seen = {}
    real = umap.UMAP

    class Recording(real):
        def __init__(self, **kwargs):
            seen.update(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(umap, "UMAP", Recording)
    reduce(x, "umap", {"n_neighbors": 12, "min_dist": 0.3, "spread": 1.5, "metric": "cosine", "densmap": True},
           n_components=3, random_state=7)
    assert {k: seen[k] for k in ("n_neighbors", "min_dist", "spread", "metric", "densmap", "n_components",
                                 "random_state")} == {"n_neighbors": 12, "min_dist": 0.3, "spread": 1.5,
                                                      "metric": "cosine", "densmap": True, "n_components": 3,
                                                      "random_state": 7}
    indices, distances = seen["precomputed_knn"]
    assert indices.shape == (300, 12) and (indices[:, 0] == np.arange(300)).all() and (distances[:, 0] == 0).all()
    # the graph is umap-learn's own exact cosine neighbours, so the fuzzy graph matches its own
    from sklearn.neighbors import NearestNeighbors

    _, exact = NearestNeighbors(n_neighbors=12, metric="cosine").fit(x).kneighbors(x)
    assert (np.sort(indices[:, 1:], axis=1) == np.sort(exact[:, 1:], axis=1)).mean() > 0.99


def test_neighbour_graph_is_computed_once_and_reused_for_new_perplexities(blobs, tmp_path):
    from embedviz.maps.reducers import neighbours

    x, _ = blobs
    neighbours.forget()
    before = dict(neighbours.graph_stats)
    a = compute_embedding(x, "tsne", {"perplexity": 30, "n_iter": 100}, features_key="blobs", cache_dir=tmp_path)
    b = compute_embedding(x, "tsne", {"perplexity": 45, "n_iter": 100}, features_key="blobs", cache_dir=tmp_path)
    assert neighbours.graph_stats["computed"] - before["computed"] == 1
    assert neighbours.graph_stats["reused"] - before["reused"] == 1
    # reuse changes nothing: the same map as with a graph computed for it alone
    neighbours.forget()
    fresh = reduce(x, "tsne", {"perplexity": 45, "n_iter": 100})
    np.testing.assert_array_equal(b.coords, fresh.coords)
    assert not np.allclose(a.coords, b.coords)
    # a new process finds the graph on disk
    neighbours.forget()
    computed = neighbours.graph_stats["computed"]
    compute_embedding(x, "tsne", {"perplexity": 20, "n_iter": 100}, features_key="blobs", cache_dir=tmp_path)
    assert neighbours.graph_stats["computed"] == computed


def test_a_rerun_starts_from_the_previous_map_unless_fresh(blobs, tmp_path):
    x, _ = blobs
    first = compute_embedding(x, "tsne", {"perplexity": 30}, features_key="blobs", cache_dir=tmp_path)
    warm = compute_embedding(x, "tsne", {"perplexity": 40}, features_key="blobs", cache_dir=tmp_path, init=first)
    fresh = compute_embedding(x, "tsne", {"perplexity": 40}, features_key="blobs", cache_dir=tmp_path,
                              random_state=3)
    assert warm.init_from == first.key and not fresh.init_from
    assert any("previous map" in d for d in warm.details)
    assert _disparity(first.coords, warm.coords) < 0.05
    assert _disparity(first.coords, warm.coords) < _disparity(first.coords, fresh.coords)
    # the start is part of the cache key, and the same start gives the same map
    again = compute_embedding(x, "tsne", {"perplexity": 40}, features_key="blobs", cache_dir=tmp_path, init=first)
    assert again.from_cache and again.key == warm.key
    assert compute_embedding(x, "tsne", {"perplexity": 40}, features_key="blobs", cache_dir=tmp_path).key != warm.key


def test_tsne_shows_frames_and_a_stopped_map_is_partial_and_not_cached(blobs, tmp_path):
    x, _ = blobs
    frames = []
    embedding = compute_embedding(x, "tsne", {"n_iter": 200}, cache_dir=tmp_path,
                                  on_frame=lambda coords, done, total: frames.append((coords, done, total)))
    assert len(frames) >= 10 and all(c.shape == (300, 2) for c, _, _ in frames)
    assert frames[0][1] < frames[-1][1] and frames[0][2] == 450
    assert np.abs(frames[-1][0]).max() == pytest.approx(1.0)  # scaled like the final map
    assert not np.allclose(frames[0][0], frames[-1][0])  # the map moves
    stopped = compute_embedding(x, "tsne", {"n_iter": 300}, cache_dir=tmp_path,
                                progress=lambda done, total, message: done >= 60)
    assert stopped.partial and not list(tmp_path.glob(f"{stopped.key}.npz"))
    assert not compute_embedding(x, "tsne", {"n_iter": 300}, cache_dir=tmp_path).from_cache
    assert embedding.key  # the finished one was stored
    assert compute_embedding(x, "tsne", {"n_iter": 200}, cache_dir=tmp_path).from_cache


def test_tsne_stops_once_converged_and_says_so(blobs):
    x, _ = blobs
    embedding = reduce(x, "tsne", {"n_iter": 2000})
    converged = [d for d in embedding.details if d.startswith("Converged after")]
    assert converged and int(converged[0].split()[2]) < 2250


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_fit_on_a_sample_places_the_rest_and_says_so(blobs, method):
    x, y = blobs
    from embedviz.maps.reducers import Sample

    embedding = reduce(x, method, sample=Sample(120, "label"), strata=y.astype(str))
    assert embedding.coords.shape == (300, 2) and np.isfinite(embedding.coords).all()
    assert any("stratified by label sample of 120 of 300 points" in n and "180 were placed" in n
               for n in embedding.notes)
    assert _knn_purity(embedding.coords, y) > 0.9  # placed points land with their cluster


def test_stratified_samples_keep_each_groups_share():
    from embedviz.maps.reducers import Sample
    from embedviz.maps.reducers.embedding import sample_rows

    strata = np.array(["a"] * 900 + ["b"] * 90 + ["c"] * 10)
    rows = sample_rows(1000, Sample(100, "group"), strata, seed=0)
    counts = {g: int((strata[rows] == g).sum()) for g in "abc"}
    assert counts == {"a": 90, "b": 9, "c": 1}
    assert (np.sort(rows) == rows).all() and len(set(rows)) == len(rows)
    np.testing.assert_array_equal(rows, sample_rows(1000, Sample(100, "group"), strata, seed=0))


def test_scaling_options_do_what_they_say(blobs):
    x, _ = blobs
    rng = np.random.default_rng(0)
    rows_scaled = x * rng.uniform(0.5, 5, (len(x), 1)).astype(np.float32)
    a = reduce(np.abs(x), "pca", {"scaling": "l2"}).coords
    b = reduce(np.abs(rows_scaled), "pca", {"scaling": "l2"}).coords
    np.testing.assert_allclose(np.abs(a), np.abs(b), atol=1e-4)  # row length no longer matters
    cols_scaled = x * rng.uniform(0.1, 10, (1, x.shape[1])).astype(np.float32)
    c = reduce(x, "pca", {"scaling": "standardise"}).coords
    d = reduce(cols_scaled, "pca", {"scaling": "standardise"}).coords
    np.testing.assert_allclose(np.abs(c), np.abs(d), atol=1e-4)  # column units no longer matter
    assert not np.allclose(np.abs(reduce(x, "pca").coords), np.abs(reduce(cols_scaled, "pca").coords), atol=1e-2)


def test_torch_pca_equals_scikit_learns(blobs):
    from sklearn.decomposition import PCA

    from embedviz.maps.reducers.methods import pca_torch

    x, _ = blobs
    coords, explained = pca_torch(x, 2, "cpu")
    model = PCA(2).fit(x)
    np.testing.assert_allclose(coords, model.transform(x), rtol=1e-3, atol=1e-3)
    assert explained == pytest.approx(model.explained_variance_ratio_.sum(), rel=1e-4)


def test_cuml_is_used_when_present_with_the_same_parameters(blobs, monkeypatch):
    import sys
    import types

    from embedviz.maps.reducers import methods

    x, _ = blobs
    calls = []

    class Fake:
        def __init__(self, **kwargs):
            calls.append((type(self).__name__, kwargs))

        def fit_transform(self, data):
            return np.asarray(data)[:, :2]

    fake = types.SimpleNamespace(TSNE=type("TSNE", (Fake,), {}), UMAP=type("UMAP", (Fake,), {}))
    monkeypatch.setitem(sys.modules, "cuml", fake)
    monkeypatch.setattr(methods, "gpu_backend", lambda: "cuml")
    monkeypatch.setattr(methods, "import_umap", lambda: None)
    tsne = reduce(x, "tsne", {"perplexity": 20, "metric": "cosine"}, random_state=5)
    umap = reduce(x, "umap", {"n_neighbors": 9, "min_dist": 0.2}, random_state=5)
    assert tsne.backend == umap.backend == "cuML on the GPU"
    (name1, kw1), (name2, kw2) = calls
    assert name1 == "TSNE" and kw1["perplexity"] == 20 and kw1["metric"] == "cosine" and kw1["random_state"] == 5
    assert name2 == "UMAP" and kw2["n_neighbors"] == 9 and kw2["min_dist"] == 0.2 and kw2["random_state"] == 5


def test_estimates_grow_with_the_work_and_shrink_with_a_sample():
    from embedviz.maps.reducers import estimate_seconds

    small = estimate_seconds("tsne", 10_000, 512)
    assert 5 < small < 60
    assert estimate_seconds("tsne", 100_000, 512) > 5 * small
    assert estimate_seconds("tsne", 100_000, 512, sample=20_000) < estimate_seconds("tsne", 100_000, 512)
    assert estimate_seconds("tsne", 10_000, 512, warm=True) < small
    assert estimate_seconds("pca", 10_000, 512) < 1


@pytest.mark.slow
def test_umap_n_neighbors_change_reuses_the_graph_and_starts_from_the_map(blobs, tmp_path):
    from embedviz.maps.reducers import neighbours

    x, _ = blobs
    neighbours.forget()
    computed = neighbours.graph_stats["computed"]
    first = compute_embedding(x, "umap", {"n_neighbors": 15}, features_key="blobs-umap", cache_dir=tmp_path)
    frames = []
    moved = compute_embedding(x, "umap", {"n_neighbors": 30}, features_key="blobs-umap", cache_dir=tmp_path,
                              init=first, on_frame=lambda coords, done, total: frames.append((done, total)))
    assert neighbours.graph_stats["computed"] == computed + 1
    assert frames == [(30, 180)]  # a first frame after the short stage, then the finished map
    assert moved.init_from == first.key and _disparity(first.coords, moved.coords) < 0.1


# --- issue 17: honest estimates and progress, iterations as the slider counts them ---------------

def test_progress_names_the_phase_and_claims_no_time_left_for_a_phase_without_steps():
    from embedviz.maps.reducers import MapProgress

    now = {"t": 0.0}
    progress = MapProgress(clock=lambda: now["t"])
    assert progress.update(0, 1, "UMAP: fuzzy graph and spectral start, then the layout") == \
        (0.0, "UMAP: fuzzy graph and spectral start, then the layout")
    now["t"] = 15.0  # a long phase before the layout does not make the layout's time left look short
    fraction, text = progress.update(20, 200, "UMAP: layout, epoch 20 of 200")
    assert fraction == 0.1 and "left" not in text
    now["t"] = 17.0
    fraction, text = progress.update(100, 200, "UMAP: layout, epoch 100 of 200")
    assert fraction == 0.5 and text.endswith("· 2 s left")  # 80 epochs in 2 s: 100 more take 2.5 s
    # a new phase starts its own clock
    now["t"] = 30.0
    assert "left" not in progress.update(10, 500, "t-SNE: iteration 10 of at most 500 (n_iter), KL 1.2")[1]
    now["t"] = 31.0
    assert progress.update(110, 500, "t-SNE: iteration 110 of at most 500 (n_iter), KL 1.1")[1].endswith(
        "· at most 4 s left")


@pytest.mark.slow
def test_umap_reports_its_layout_epochs_not_three_steps(blobs):
    x, _ = blobs
    seen = []
    reduce(x, "umap", {"n_neighbors": 15}, progress=lambda done, total, message: seen.append((done, total, message)))
    epochs = [(done, total) for done, total, message in seen if message.startswith("UMAP: layout, epoch")]
    assert epochs and epochs[-1][0] == epochs[-1][1] >= 200  # the layout's epochs, to the last
    assert all(done == 0 for done, total, message in seen if "epoch" not in message and message != "UMAP done")


def test_tsne_counts_iterations_as_the_n_iter_slider_does(blobs):
    x, _ = blobs
    seen = []
    embedding = reduce(x, "tsne", {"n_iter": 100, "perplexity": 30},
                       progress=lambda done, total, message: seen.append((done, total, message)))
    totals = {total for _, total, message in seen if "iteration" in message}
    assert totals == {250, 100}  # early exaggeration counted apart: what the slider says is what runs
    assert any("of at most 100 (n_iter)" in message for _, _, message in seen)
    assert any(d.startswith(("Ran all 100 iterations after 250 of early exaggeration", "Converged after"))
               for d in embedding.details)




def test_a_map_request_keys_the_cache_as_before_and_ignores_how_params_were_spelled():
    from embedviz.maps.reducers import MapRequest, Sample

    params = {"perplexity": 30.0, "metric": "euclidean"}
    request = MapRequest.of("f" * 16, "tsne", params, n_components=2, seed=0)
    assert request.key() == MapRequest.of("f" * 16, "tsne", dict(reversed(list(params.items())))).key()
    # the key a map stored before this type existed: maps already on disk are found again
    from embedviz.hashing import sha256_json

    assert request.key() == sha256_json({"features": "f" * 16, "method": "tsne", "params": params, "n": 2,
                                         "seed": 0})[:32]
    keys = {request.key(), MapRequest.of("f" * 16, "tsne", params, n_components=3).key(),
            MapRequest.of("f" * 16, "tsne", params, init_key="abc").key(),
            MapRequest.of("f" * 16, "tsne", params, sample=Sample(100)).key()}
    assert len(keys) == 4
