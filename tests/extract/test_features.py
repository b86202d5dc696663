from __future__ import annotations

import numpy as np
import pytest

from embedviz.data.demo import demo_collection
from embedviz.data.images import ImageCollection, load_folder
from embedviz.data.precomputed import load_feature_set
from embedviz.errors import Cancelled
from embedviz.extract.features import compute_features, extract_features
from embedviz.extract.models import load_model
from embedviz.extract.store import FeatureStore


def test_pixels_features_and_unreadable_files(image_folder):
    result = extract_features(load_folder(image_folder), load_model("pixels"), batch_size=5)
    assert result.features.shape == (16, 32 * 32 * 3)
    assert result.features.dtype == np.float32
    assert 0.0 <= result.features.min() and result.features.max() <= 1.0
    assert result.skipped["path"].tolist() == ["squares/broken.png"]
    assert result.skipped["reason"].tolist() == ["not an image (or a format embedviz does not read)"]
    assert "squares/broken.png" not in set(result.samples["sample_id"])


def _small_demo(n: int = 120) -> ImageCollection:
    demo = demo_collection()
    return ImageCollection(demo.root, demo.samples.iloc[:n].reset_index(drop=True), "demo-part")


def test_demo_predictions_are_real():
    result = extract_features(_small_demo(), load_model("demo"))
    table = result.samples
    assert result.features.shape == (120, 64)
    for column in ("label", "split", "prediction", "confidence", "correct", "prediction_2", "top5_correct"):
        assert column in table.columns
    assert table["confidence"].between(0, 1).all()
    assert (table["confidence"] >= table["confidence_2"]).all()
    assert table["correct"].mean() > 0.9  # a trained model, not noise
    assert (table["correct"] == (table["prediction"] == table["label"])).all()


def test_early_checkpoint_is_worse_than_final():
    from embedviz.data.demo import EARLY_WEIGHTS

    collection = _small_demo(400)
    final = extract_features(collection, load_model("demo")).samples["correct"].mean()
    early = extract_features(collection, load_model("demo", EARLY_WEIGHTS)).samples["correct"].mean()
    assert early < final


def test_the_same_work_is_never_done_twice(tmp_path):
    store = FeatureStore(tmp_path / "store")
    collection, model = _small_demo(60), load_model("demo")
    calls = []
    first = compute_features(collection, model, store=store, progress=lambda d, t, m: calls.append(d))
    assert not first.from_cache and calls
    calls.clear()
    again = compute_features(collection, model, store=FeatureStore(tmp_path / "store"),
                             progress=lambda d, t, m: calls.append(d))
    assert again.from_cache and calls == []
    np.testing.assert_array_equal(np.asarray(again.features), first.features)
    other_layer = compute_features(collection, model, "features.4", store=store)
    assert other_layer.key != first.key and other_layer.features.shape == (60, 32)


def test_cancelling_stops_and_stores_nothing(tmp_path):
    store = FeatureStore(tmp_path / "store")
    with pytest.raises(Cancelled):
        compute_features(_small_demo(200), load_model("demo"), store=store, batch_size=16,
                         progress=lambda done, total, msg: done >= 32)
    assert [p for p in store.root.iterdir() if not p.name.startswith(".")] == []


def test_stored_sets_round_trip(tmp_path):
    store = FeatureStore(tmp_path / "store")
    stored = compute_features(_small_demo(30), load_model("demo"), store=store)
    loaded = load_feature_set(stored.path)
    assert loaded.samples["sample_id"].tolist() == stored.samples["sample_id"].tolist()
    assert loaded.manifest["layer"] == "classifier.1" and loaded.manifest["num_features"] == 30


def test_no_correctness_claims_when_labels_are_not_the_models_classes(image_folder):
    result = extract_features(load_folder(image_folder), load_model("demo"))
    assert "prediction" in result.samples.columns
    assert "correct" not in result.samples.columns  # labels discs/squares vs classes 0-9


def test_accuracy_is_scored_on_the_held_back_split():
    from embedviz.explore.summary import accuracy

    result = extract_features(_small_demo(300), load_model("demo"))
    score = accuracy(result.samples)
    test = result.samples[result.samples["split"] == "test"]
    assert score.scope == "test" and score.count == len(test)
    assert score.mistakes == int((~test["correct"].astype(bool)).sum())
    assert accuracy(result.samples.drop(columns="correct")) is None
