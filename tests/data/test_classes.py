from __future__ import annotations

import json

import pytest

from embedviz.data.classes import load_class_index, name_labels
from embedviz.data.images import load_manifest
from embedviz.errors import DataError, ModelError
from embedviz.extract.models import load_model


@pytest.mark.parametrize("name,content", [
    ("idx.json", json.dumps({"1": "dog", "0": "cat", "2": "猫头鹰"})),
    ("imagenet_style.json", json.dumps({"0": ["n01", "cat"], "1": ["n02", "dog"], "2": ["n03", "猫头鹰"]})),
    ("list.json", json.dumps(["cat", "dog", "猫头鹰"])),
    ("names.txt", "cat\ndog\n猫头鹰\n"),
    ("ids.txt", "0 cat\n2,猫头鹰\n1\tdog\n"),
])
def test_class_index_forms(tmp_path, name, content):
    (tmp_path / name).write_text(content, encoding="utf-8")
    assert load_class_index(tmp_path / name) == ["cat", "dog", "猫头鹰"]


def test_gaps_and_bad_json_are_named(tmp_path):
    (tmp_path / "gap.json").write_text(json.dumps({"0": "a", "2": "c"}))
    with pytest.raises(DataError, match=r"missing \[1\]"):
        load_class_index(tmp_path / "gap.json")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(DataError, match="not valid JSON"):
        load_class_index(tmp_path / "bad.json")


def test_label_ids_become_names_and_predictions_use_them(tmp_path):
    from embedviz.data.demo import demo_collection
    from embedviz.data.images import ImageCollection
    from embedviz.extract.features import extract_features

    demo = demo_collection()
    part = ImageCollection(demo.root, demo.samples.iloc[:50].reset_index(drop=True), "part")
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    named = name_labels(part, names)
    assert set(named.samples["label"]) <= set(names)
    model = load_model("demo").with_class_names(names)
    result = extract_features(named, model)
    assert set(result.samples["prediction"]) <= set(names)
    assert result.samples["correct"].mean() > 0.9
    assert model.identity() != load_model("demo").identity()  # names are part of the store key
    with pytest.raises(ModelError, match="names 3 classes but the model has 10"):
        load_model("demo").with_class_names(["a", "b", "c"])


def test_labels_that_are_already_names_stay(tmp_path):
    (tmp_path / "m.csv").write_text("path,label\na.png,cat\nb.png,dog\n")
    collection = load_manifest(tmp_path / "m.csv")
    assert name_labels(collection, ["x", "y"]).samples["label"].tolist() == ["cat", "dog"]
