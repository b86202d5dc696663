"""Faithfulness measures against known cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.manifold import trustworthiness

from embedviz.maps.quality import faithfulness, neighbourhood_kept, trust_and_continuity


@pytest.fixture
def blobs():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=10, size=(4, 20))
    labels = np.repeat(np.arange(4), 60)
    return centres[labels] + rng.normal(size=(240, 20)), labels


def test_trustworthiness_matches_scikit_learn_and_continuity_is_its_mirror(blobs):
    x, _ = blobs
    y = x[:, :2] + np.random.default_rng(1).normal(scale=3, size=(len(x), 2))
    trust, continuity = trust_and_continuity(x, y, k=7)
    assert trust == pytest.approx(trustworthiness(x, y, n_neighbors=7), abs=1e-9)
    assert continuity == pytest.approx(trustworthiness(y, x, n_neighbors=7), abs=1e-9)


def test_a_perfect_map_scores_one_and_a_shuffled_one_scores_low(blobs):
    x, labels = blobs
    exact = faithfulness(x, x, labels, k=10)  # the features as their own "map"
    assert exact.trustworthiness == pytest.approx(1.0) and exact.continuity == pytest.approx(1.0)
    assert (exact.kept == 1.0).all() and exact.label_agreement_map == exact.label_agreement_features == 1.0
    shuffled = faithfulness(x, np.random.default_rng(2).normal(size=(len(x), 2)), labels, k=10)
    assert shuffled.trustworthiness < 0.6 and shuffled.continuity < 0.6
    assert np.nanmean(shuffled.kept) < 0.15 and shuffled.label_agreement_map < 0.4
    assert "on all 240 points" in exact.summary()


def test_a_torn_cluster_lowers_the_kept_score_of_its_points_only():
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(4), 60)
    y = rng.normal(scale=20, size=(4, 2))[labels] + rng.normal(size=(240, 2))
    rotation, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    x = y @ rotation[:2]  # the plane turned into 20 dimensions: distances kept, so the 2-D map is exact
    assert (neighbourhood_kept(x, y, k=10) > 0.99).all()
    torn = y.copy()
    moved = np.where(labels == 0)[0][::2]  # half of cluster 0 sent far away
    torn[moved] += 1000
    kept = neighbourhood_kept(x, torn, k=10)
    others = labels != 0
    assert kept[moved].mean() < 0.7 < kept[others].mean()


def test_sampling_is_said_and_seeded(blobs):
    x, labels = blobs
    a = faithfulness(x, x[:, :2], labels, sample=100, seed=3)
    b = faithfulness(x, x[:, :2], labels, sample=100, seed=3)
    assert a.sampled == 100 and a.total == 240 and "random sample of 100 of 240" in a.summary()
    assert a.trustworthiness == b.trustworthiness


def test_few_points_shrink_k_instead_of_failing():
    x = np.random.default_rng(5).normal(size=(5, 3))
    small = faithfulness(x, x[:, :2], ["a", "a", "b", "b", None], k=10)
    assert small.k == 2 and 0 <= small.trustworthiness <= 1 and 0 <= small.label_agreement_map <= 1


def test_a_map_larger_than_the_reference_limit_is_measured_within_a_random_subset(monkeypatch):
    from embedviz.maps import quality

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 6_000)
    x = (rng.normal(size=(5, 20))[labels] * 6 + rng.normal(size=(6_000, 20))).astype(np.float32)
    good, scrambled = x[:, :2] + 0.0, rng.permutation(x[:, :2])
    monkeypatch.setattr(quality, "REFERENCE_LIMIT", 2_000)
    kept = quality.faithfulness(x, good, labels, sample=500)
    assert kept.among == 2_000 and kept.total == 6_000 and "neighbours among a random 2,000" in kept.summary()
    assert np.isfinite(kept.kept).sum() == 2_000 and kept.kept.shape == (6_000,)  # the subset's points
    worse = quality.faithfulness(x, scrambled, labels, sample=500)
    assert kept.trustworthiness > worse.trustworthiness + 0.2
    assert kept.label_agreement_map > worse.label_agreement_map + 0.3


def test_a_turned_and_scaled_map_has_not_moved_but_a_torn_cluster_has(blobs):
    from embedviz.maps.quality import map_move

    x, labels = blobs
    before = x[:, :2].astype(np.float64)
    turn = np.array([[0.0, -1.0], [1.0, 0.0]])
    same = map_move(x, before, 3.0 * before @ turn + 5.0, k=10)  # rotation, scale and shift only
    assert same.median_moved < 1e-9 and same.kept_before == pytest.approx(same.kept_after)
    torn = before.copy()
    sent = np.flatnonzero(labels == 0)[:12]  # a few points sent far away
    torn[sent] += 50.0
    move = map_move(x, before, torn, k=10)
    others = np.setdiff1d(np.arange(240), sent)
    assert move.moved.shape == (240,) and move.moved[sent].min() > 5 * np.median(move.moved[others])
    assert "points moved a median" in move.summary() and "10 nearest feature-space neighbours" in move.summary()


def test_a_perplexity_move_is_measured_at_its_own_scale():
    """A move from perplexity 5 to 50 (warm-started, as the page does it) reports how far the map moved
    and the 50-NN preservation before and after: the larger perplexity keeps larger neighbourhoods,
    which the 10-NN faithfulness figures hardly show."""
    from embedviz.maps.quality import map_move
    from embedviz.maps.reducers import reduce

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 150)
    x = (rng.normal(scale=8, size=(3, 10))[labels] + rng.normal(size=(450, 10))).astype(np.float32)
    small = reduce(x, "tsne", {"perplexity": 5, "n_iter": 300})
    large = reduce(x, "tsne", {"perplexity": 50, "n_iter": 300}, init=small)
    move = map_move(x, small.coords, large.coords, k=50)
    assert move.k == 50 and move.measured == 450
    assert 0 < move.median_moved < 1
    assert move.kept_after > move.kept_before
    assert "50 nearest feature-space neighbours kept on the map" in move.summary() and "(more)" in move.summary()
