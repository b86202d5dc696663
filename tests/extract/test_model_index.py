"""A remembered model answers a cache hit without loading: the same feature sets as loading it,
and no answer whenever anything differs."""

from __future__ import annotations

import json

import numpy as np

from embedviz.data.demo import EARLY_WEIGHTS, demo_collection
from embedviz.data.images import ImageCollection
from embedviz.extract.features import compute_layers
from embedviz.extract.model_index import FOLDER, remember_model, request_key, stored_layers
from embedviz.extract.models import load_model
from embedviz.extract.store import FeatureStore


def _demo(n: int) -> ImageCollection:
    full = demo_collection()
    return ImageCollection(full.root, full.samples.head(n).reset_index(drop=True), f"demo-{n}")


def test_a_remembered_model_finds_what_loading_it_finds(tmp_path):
    store, collection = FeatureStore(tmp_path / "store"), _demo(30)
    layers = [None, "features.4"]
    assert stored_layers(collection, "demo", None, layers, store=store) is None  # nothing remembered yet
    model = load_model("demo")
    computed = compute_layers(collection, model, layers, store=store, num_workers=0)
    assert stored_layers(collection, "demo", None, layers, store=store) is None  # stored, but not remembered
    remember_model(store, "demo", None, model)
    found = stored_layers(collection, "demo", None, layers, store=store)
    assert found is not None and list(found) == list(computed) == ["classifier.1", "features.4"]
    for layer, fs in found.items():
        assert fs.from_cache and fs.key == computed[layer].key
        np.testing.assert_array_equal(fs.features, computed[layer].features)
    # a module's name, as check_layer takes it
    assert stored_layers(collection, "demo", None, ["features"], store=store) is None  # not stored yet
    compute_layers(collection, model, ["features"], store=store, num_workers=0)
    assert list(stored_layers(collection, "demo", None, ["features"], store=store)) == ["features"]


def test_anything_that_differs_is_not_answered(tmp_path):
    store, collection = FeatureStore(tmp_path / "store"), _demo(20)
    model = load_model("demo")
    compute_layers(collection, model, [None], store=store, num_workers=0)
    remember_model(store, "demo", None, model)
    assert stored_layers(collection, "demo", None, [None], store=store) is not None
    misses = {
        "other weights": stored_layers(collection, "demo", EARLY_WEIGHTS, [None], store=store),
        "other pooling": stored_layers(collection, "demo", None, [None], store=store, pooling="max"),
        "other images": stored_layers(_demo(21), "demo", None, [None], store=store),
        "no such layer": stored_layers(collection, "demo", None, ["layer9"], store=store),
        "class names": stored_layers(collection, "demo", None, [None], store=store, class_names=list("abcdefghij")),
        "wrong class count": stored_layers(collection, "demo", None, [None], store=store, class_names=["a", "b"]),
        "raw pixels": stored_layers(collection, "pixels", None, [None], store=store),
        "a missing file": stored_layers(collection, "resnet18", tmp_path / "none.pth", [None], store=store),
    }
    assert {what for what, found in misses.items() if found is not None} == set()
    # class names are part of the key: once extracted with them, they are found with them
    named = compute_layers(collection, model.with_class_names(list("abcdefghij")), [None], store=store,
                           num_workers=0)
    found = stored_layers(collection, "demo", None, [None], store=store, class_names=list("abcdefghij"))
    assert found["classifier.1"].key == named["classifier.1"].key


def test_a_damaged_card_is_ignored(tmp_path):
    store, collection = FeatureStore(tmp_path / "store"), _demo(10)
    model = load_model("demo")
    compute_layers(collection, model, [None], store=store, num_workers=0)
    remember_model(store, "demo", None, model)
    card = store.root / FOLDER / f"{request_key('demo', None)}.json"
    assert json.loads(card.read_text())["default_layer"] == "classifier.1"
    card.write_text("{not json")
    assert stored_layers(collection, "demo", None, [None], store=store) is None
    assert request_key("demo", None) != request_key("demo", EARLY_WEIGHTS) != request_key("resnet18", "random")
    assert request_key("pixels", None) is None and request_key("resnet18", None) is None
