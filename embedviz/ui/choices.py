"""What the user has chosen (data, model, layer, class index, reducer settings), kept in session state
as small specs (never arrays), and the cached loaders that turn those specs into collections, models
and features. With nothing chosen, the built-in demo is used, so every page works on its own."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import streamlit as st

from embedviz.data.classes import load_class_index, name_labels
from embedviz.data.demo import EARLY_WEIGHTS, demo_collection
from embedviz.data.featureset import FeatureSet
from embedviz.data.images import ImageCollection, collection_hash, file_hashes, image_shapes, load_collection
from embedviz.data.precomputed import images_of, load_precomputed, precomputed_key
from embedviz.data.roots import check_server_path
from embedviz.data.spec import DatasetSpec
from embedviz.errors import EmbedVizError
from embedviz.extract.features import feature_key
from embedviz.extract.layers import check_layer, default_layer
from embedviz.extract.models import DEMO, LoadedModel, describe, load_model
from embedviz.extract.preprocessing import make_preprocessing, pixels_preprocessing
from embedviz.extract.spec import ModelSpec
from embedviz.extract.store import FeatureStore
from embedviz.maps.reducers import get_reducer, param_specs
from embedviz.ui.server import server_roots
from embedviz.ui.uploads import workspace_room

__all__ = [
    "dataset_spec",
    "spec_json",
    "set_dataset",
    "is_precomputed",
    "precomputed_features",
    "model_spec",
    "set_model",
    "set_preprocessing",
    "set_layer",
    "class_index",
    "set_class_index",
    "current_collection",
    "current_model",
    "current_layer",
    "model_label",
    "model_for",
    "model_name",
    "image_hashes",
    "images_key",
    "stored_by_key",
    "feature_choice",
    "stored_features",
    "source_label",
    "pixels_input",
    "reducer_settings",
]


def spec_json(spec: DatasetSpec | ModelSpec) -> str:
    """A spec's serialised form as canonical JSON: the key of the caches that load it."""
    return json.dumps(spec.to_dict(), sort_keys=True)


def dataset_spec() -> DatasetSpec:
    """The chosen data (the demo until something else is chosen)."""
    spec = st.session_state.get("dataset")
    return spec if isinstance(spec, DatasetSpec) else DatasetSpec.from_dict(spec)


def set_dataset(spec: DatasetSpec) -> None:
    """Make ``spec`` current if it loads; otherwise raise and keep the current data."""
    if spec.kind != "demo" and not spec.uploaded:  # typed paths: only what the server shares
        roots = server_roots()
        for value in (spec.path, spec.prefix, spec.metadata):
            if value:
                check_server_path(value, roots)
    _collection(spec_json(spec), class_index())
    st.session_state["dataset"] = spec
    if spec.kind == "features":
        features = precomputed_features()
        if features.manifest.get("given_coordinates"):  # a map made elsewhere opens as it was made
            st.session_state["ev_method"] = "precomputed"
            st.session_state["ev_dims"] = int(features.features.shape[1])


def is_precomputed() -> bool:
    """Whether the current data are features (or a map) made elsewhere, with no model to run."""
    return dataset_spec().kind == "features"


@st.cache_resource(max_entries=8, show_spinner=False)
def _precomputed(key_json: str) -> FeatureSet:
    spec = DatasetSpec.from_dict(json.loads(key_json))
    folder = Path(spec.path)
    if not spec.uploaded and folder.is_dir():  # a projector folder: every file read, links resolved
        roots = server_roots()
        for tsv in (p for p in folder.iterdir() if p.suffix.lower() == ".tsv"):
            check_server_path(tsv, roots)
    key = precomputed_key(spec.path, spec.metadata or None, spec.id_column or None)
    features = load_precomputed(spec.path, spec.metadata or None, spec.id_column or None)
    return replace(features, key=key)


def precomputed_features() -> FeatureSet:
    return _precomputed(spec_json(dataset_spec()))


def model_spec() -> ModelSpec:
    """The chosen model: architecture, weights and any preprocessing the user set. Raw pixels the user
    did not set are fed as the current images are (``"preprocessing_from": "images"``: 28x28 grey digits
    give 784 values), so pages, the extraction job and the feature key all see the same input."""
    from embedviz.extract.models import PIXELS

    spec = st.session_state.get("model")
    spec = spec if isinstance(spec, ModelSpec) else ModelSpec.from_dict(spec)
    if spec.architecture == PIXELS and (not spec.preprocessing or spec.preprocessing_from):
        fitted = pixels_input()
        spec = replace(spec, preprocessing=json.dumps(fitted, sort_keys=True) if fitted else None,
                       preprocessing_from="images" if fitted else "")
    return spec


def set_model(spec: ModelSpec) -> None:
    """Make ``spec`` current if it loads; otherwise raise and keep the current model. An architecture
    chosen without weights yet is kept as it is, so every page can say what is missing. Weights named by
    path are read from the uploads' store, the demo's checkpoints, or the folders this server shares."""
    from embedviz.extract.models import PRETRAINED, RANDOM, needs_weights
    from embedviz.layout import layout

    weights = spec.weights
    if weights and weights not in (PRETRAINED, RANDOM, str(EARLY_WEIGHTS)) \
            and layout().home.joinpath("weights").resolve() not in Path(weights).resolve().parents:
        check_server_path(weights, server_roots())
    if not needs_weights(spec.architecture, weights):
        _model(spec.architecture, weights, class_index(), spec.preprocessing)
    current = model_spec()
    if (spec.architecture, spec.weights) != (current.architecture, current.weights):
        st.session_state.pop("layer", None)
    st.session_state["model"] = spec


def set_preprocessing(values: dict[str, Any] | None) -> None:
    """Feed the current model differently (``None``: its own default); checked before it is kept."""
    set_model(replace(model_spec(), preprocessing=json.dumps(values, sort_keys=True) if values else None,
                      preprocessing_from=""))  # the user's values now


def set_layer(layer: str | None) -> None:
    st.session_state["layer"] = layer


@st.cache_resource(max_entries=8, show_spinner=False)
def _collection(key_json: str, classes: str | None) -> ImageCollection:
    spec = DatasetSpec.from_dict(json.loads(key_json))
    if spec.kind == "demo":
        collection = demo_collection()
    elif spec.kind == "features":
        collection = images_of(_precomputed(key_json), spec.prefix or None, None if spec.uploaded else server_roots())
    elif spec.uploaded:  # unpacked inside this session's workspace, beside the upload
        collection = load_collection(spec.path, workspace=Path(spec.path).parent,
                                     room=workspace_room(Path(spec.path).parent.parent))
    else:
        collection = load_collection(spec.path, spec.prefix or None, path_column=spec.column or None,
                                     roots=server_roots())
    return name_labels(collection, load_class_index(classes)) if classes else collection


@st.cache_resource(max_entries=4, show_spinner=False)
def _model(architecture: str, weights: str | None, classes: str | None,
           preprocessing: str | None = None) -> LoadedModel:
    from embedviz.errors import ModelError
    from embedviz.extract.models import needs_weights

    if needs_weights(architecture, weights):
        raise ModelError(f"{architecture} is waiting for its weights: give a weights file on the Data & model page "
                         "(or choose Random or torchvision pretrained there).")
    model = load_model(architecture, weights)
    if preprocessing:
        model = model.with_preprocessing(make_preprocessing(**json.loads(preprocessing)))
    return model.with_class_names(load_class_index(classes)) if classes and not model.is_pixels else model


@st.cache_resource(max_entries=32, show_spinner=False)
def image_hashes(key_json: str, _collection: ImageCollection) -> list[str]:
    """Each image file's SHA-256, read once per dataset and reused by the key and by extraction (one list
    for every session: read it, never change it; a copy per call cost 20 ms a run at 100,000 images)."""
    return file_hashes(_collection)


@st.cache_resource(max_entries=32, show_spinner=False)
def images_key(key_json: str, _collection: ImageCollection) -> str:
    """:func:`~embedviz.data.images.collection_hash` of the dataset, once per dataset: it hashes every id
    and file hash (0.2 s at 100,000 images), and every page asks for it on every run."""
    return collection_hash(_collection, image_hashes(key_json, _collection))


@st.cache_resource(max_entries=8, show_spinner=False)
def stored_by_key(key: str) -> FeatureSet:
    found = FeatureStore().get(key)
    if found is None:
        raise KeyError(key)  # not cached: the next call looks again
    return found


def class_index() -> str | None:
    """The path of the class index the user gave, if any."""
    return st.session_state.get("classes")


def set_class_index(path: str | None) -> None:
    """Use this class index if it fits the current model; otherwise raise and keep the current one."""
    if path is not None:
        spec = model_spec()
        _model(spec.architecture, spec.weights, path, spec.preprocessing)
    st.session_state["classes"] = path


def current_collection() -> ImageCollection:
    return _collection(spec_json(dataset_spec()), class_index())


def current_model() -> LoadedModel:
    return model_for(model_spec())


def current_layer(model: LoadedModel) -> str:
    return check_layer(model, st.session_state.get("layer") or default_layer(model))


def _demo_label(spec: ModelSpec) -> str:
    return "demo CNN (early checkpoint, epoch 1)" if spec.weights == str(EARLY_WEIGHTS) else \
        "demo CNN (final, 12 epochs)"


def model_label(model: LoadedModel) -> str:
    if model.architecture == DEMO:
        return _demo_label(model_spec())
    return describe(model)


def model_for(spec: ModelSpec) -> LoadedModel:
    """The model ``spec`` names (the current one, or another model or checkpoint), cached."""
    return _model(spec.architecture, spec.weights, class_index(), spec.preprocessing)


def model_name(spec: ModelSpec) -> str:
    """How a model spec is named to people: the demo's checkpoints by epoch, others by description."""
    return _demo_label(spec) if spec.architecture == DEMO else describe(model_for(spec))


def feature_choice() -> tuple[ImageCollection, LoadedModel, str, list[str], str]:
    collection, model = current_collection(), current_model()
    layer = current_layer(model)
    key_json = spec_json(dataset_spec())
    hashes = image_hashes(key_json, collection)
    return collection, model, layer, hashes, feature_key(images_key(key_json, collection), model, layer)


def stored_features() -> FeatureSet | None:
    """The current choice's features if they were computed before (by anyone), else ``None``."""
    if is_precomputed():
        return precomputed_features()
    *_, key = feature_choice()
    try:
        return stored_by_key(key)
    except KeyError:
        return None


def source_label() -> str:
    """``"digits (1,797 images) through demo CNN (final, 12 epochs), layer fc1"``."""
    collection = current_collection()
    if is_precomputed():
        return f"{collection.name} (features made elsewhere)"
    model = current_model()
    return f"{collection.name} through {model_label(model)}, layer {current_layer(model)}"


@st.cache_data(max_entries=32, show_spinner=False)
def _shapes(key_json: str, _collection: ImageCollection) -> list[tuple[int, int, int]]:
    """A few images' sizes and channels, read once per dataset (see :func:`embedviz.data.images.image_shapes`)."""
    return image_shapes(_collection)


def pixels_input() -> dict[str, Any] | None:
    """The raw-pixels model's preprocessing for the current images (grey 28x28 digits: 28x28, one channel),
    from a few images' headers spread through them, the same on every run; ``None`` when the current
    data are not images or cannot be read now (the page says why)."""
    if is_precomputed():
        return None
    try:
        collection = current_collection()
    except EmbedVizError:
        return None
    return pixels_preprocessing(_shapes(spec_json(dataset_spec()), collection)).to_dict()


def reducer_settings() -> dict[str, Any]:
    """Method, dimensions, seed and the method's parameter values, from the widgets' state."""
    method = st.session_state["ev_method"]
    reducer = get_reducer(method)
    params = {}
    for spec in param_specs(reducer.params_class):
        params[spec.name] = st.session_state.get(f"ev_p_{method}_{spec.name}", spec.default)
    return {"method": method, "params": params, "n_components": int(st.session_state["ev_dims"]),
            "random_state": int(st.session_state["ev_seed"])}
