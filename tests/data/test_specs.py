"""The typed descriptions of data and model: one serialised form, one key, names for people."""

from __future__ import annotations

import json

import pytest

from embedviz.data.spec import DatasetSpec
from embedviz.errors import DataError, ModelError
from embedviz.extract.spec import ModelSpec


def test_a_dataset_spec_round_trips_and_the_forms_the_pages_write_are_equal():
    typed = {"kind": "path", "path": "/data/shapes", "prefix": "", "column": ""}  # what the Data page keeps
    spec = DatasetSpec.from_dict(typed)
    assert spec == DatasetSpec(kind="path", path="/data/shapes")
    assert spec.to_dict() == {"kind": "path", "path": "/data/shapes"}
    assert DatasetSpec.from_dict(spec.to_dict()) == spec
    assert spec.key() == DatasetSpec.from_dict({"path": "/data/shapes", "kind": "path"}).key()
    assert spec.key() != DatasetSpec(kind="path", path="/data/other").key()
    assert DatasetSpec.from_dict(None) == DatasetSpec() and DatasetSpec().to_dict() == {"kind": "demo"}


def test_a_dataset_spec_names_its_data_without_the_servers_path():
    assert DatasetSpec().name() == "the demo digits"
    assert DatasetSpec(kind="path", path="/srv/shared/mnist/").name() == "mnist"
    upload = DatasetSpec(kind="path", path="/home/x/.embedviz/ws/a/photos.zip", via="upload")
    assert upload.name() == "upload photos.zip"
    assert DatasetSpec(kind="features", path="/srv/shared/emb.npy").name() == "features emb.npy"


def test_a_bad_dataset_description_is_refused_with_a_message():
    with pytest.raises(DataError, match="Unknown kind"):
        DatasetSpec.from_dict({"kind": "video", "path": "x"})
    with pytest.raises(DataError, match="need a path"):
        DatasetSpec(kind="path")
    with pytest.raises(DataError, match="unknown fields: colour"):
        DatasetSpec.from_dict({"kind": "demo", "colour": "red"})


def test_a_model_spec_round_trips_its_preprocessing_and_keys_it():
    stored = {"architecture": "resnet18", "weights": "/w/r18.pth", "preprocessing": {"size": 64, "channels": 3}}
    spec = ModelSpec.from_dict(stored)
    assert spec.preprocessing == json.dumps({"channels": 3, "size": 64})
    assert spec.to_dict() == stored and ModelSpec.from_dict(spec.to_dict()) == spec
    assert spec.key() != ModelSpec.from_dict({**stored, "preprocessing": None}).key()
    assert hash(spec) == hash(ModelSpec.from_dict(dict(reversed(list(stored.items())))))  # frozen: a cache key
    assert ModelSpec.from_dict(None).to_dict() == {"architecture": "demo", "weights": None}


def test_records_written_before_the_specs_equal_todays_specs():
    """Runs recorded as plain dicts (empty fields spelled out, preprocessing as a dict, None or JSON in
    any key order) still match the current choice and reopen as the same spec."""
    old_data = {"kind": "path", "path": "/data/pets", "via": "", "prefix": "", "column": "", "metadata": ""}
    assert DatasetSpec.from_dict(old_data) == DatasetSpec("path", "/data/pets")
    pre = {"size": 64, "channels": 3, "resize": "crop"}
    today = ModelSpec("resnet18", "/w/r18.pth", json.dumps(pre, sort_keys=True))
    for stored in (pre, json.dumps(pre), json.dumps(dict(reversed(list(pre.items()))))):
        assert ModelSpec.from_dict({"architecture": "resnet18", "weights": "/w/r18.pth",
                                    "preprocessing": stored}) == today
    assert ModelSpec.from_dict({"architecture": "demo", "weights": None, "preprocessing": None}) == ModelSpec()
    with pytest.raises(ModelError, match="not valid JSON"):
        ModelSpec.from_dict({"architecture": "resnet18", "preprocessing": "{size: 64"})
    with pytest.raises(ModelError, match="not valid JSON"):  # JSON, but not an object of values
        ModelSpec.from_dict({"architecture": "resnet18", "preprocessing": "64"})


def test_a_model_spec_names_the_model_as_the_runs_page_does():
    from embedviz.data.demo import EARLY_WEIGHTS

    assert ModelSpec().name() == "demo CNN (final)"
    assert ModelSpec(weights=str(EARLY_WEIGHTS)).name() == "demo CNN (early checkpoint)"
    assert ModelSpec("pixels").name() == "raw pixels"
    own = ModelSpec("resnet18", "/srv/w/r18.pth", '{"size": 64}')
    assert own.name() == "resnet18 (r18.pth) with its own preprocessing"
    with pytest.raises(ModelError, match="unknown fields: layer"):
        ModelSpec.from_dict({"architecture": "resnet18", "layer": "avgpool"})
