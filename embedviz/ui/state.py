"""What the user has chosen, kept in session state as small specs (never arrays), and the
cached loaders that turn those specs into collections, models, features and maps.

Every page works on its own: with nothing chosen, the built-in demo is used.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from embedviz.data.classes import load_class_index, name_labels
from embedviz.data.demo import EARLY_WEIGHTS, demo_collection
from embedviz.data.featureset import FeatureSet
from embedviz.data.images import ImageCollection, collection_hash, file_hashes, load_collection
from embedviz.data.precomputed import images_of, load_precomputed, precomputed_key
from embedviz.data.roots import check_server_path
from embedviz.errors import Cancelled, DataError, EmbedVizError
from embedviz.explore.figures import frame_figure
from embedviz.explore.filters import apply_filters, describe_filter, filter_columns
from embedviz.extract.features import feature_key
from embedviz.extract.layers import check_layer, default_layer
from embedviz.extract.models import DEMO, LoadedModel, describe, load_model
from embedviz.extract.preprocessing import make_preprocessing
from embedviz.extract.ray_options import RayOptions, configured_address
from embedviz.extract.store import FeatureStore
from embedviz.maps.quality import Faithfulness, faithfulness
from embedviz.maps.reducers import (
    REDUCERS,
    Embedding,
    Sample,
    available_methods,
    compute_embedding,
    get_reducer,
    param_specs,
)
from embedviz.maps.reducers.embedding import sample_rows
from embedviz.serve.jobs import Extraction, Job, JobRunner, Task, extract
from embedviz.ui import links
from embedviz.ui.widgets import plain

__all__ = [
    "DEFAULTS", "page_setup", "dataset_spec", "set_dataset", "model_spec", "set_model", "set_layer",
    "current_collection", "current_model", "current_layer", "stored_features", "require_features",
    "reducer_settings", "require_embedding", "MapView", "current_map", "model_label",
    "class_index", "set_class_index", "set_preprocessing", "is_precomputed", "precomputed_features",
    "settle_method", "map_quality", "note_map_run", "features_for", "model_for", "model_name", "map_token", "source_label", "set_map_filters", "clear_map_filters", "map_filters", "sample_choice", "default_sample", "stop_requested", "continue_map", "runner", "extraction_job", "start_extraction", "ENGINES", "cluster_address", "engine_control", "wait_for", "clear_store",
]

#: Widget keys start with ``ev_`` and are kept across pages; these are their first values.
DEFAULTS: dict[str, Any] = {
    "ev_method": "tsne",
    "ev_dims": 2,
    "ev_seed": 0,
    "ev_device": "auto",
    "ev_batch_size": 64,
    "ev_engine": "This server",
    "ev_color": "label",
    "ev_warm": True,
    "ev_point_k": 12,
    "ev_point_metric": "euclidean",
    "ev_sample_on": False,
    "ev_stratify": "(none)",
}
_DEMO_SPEC = {"kind": "demo"}
FAVICON = Path(__file__).with_name("favicon.png")
_DEMO_MODEL = {"architecture": DEMO, "weights": None}


@st.cache_resource(show_spinner=False)
def _warm_up_umap() -> bool:
    """Once per server process: compile UMAP in a background child (see :mod:`embedviz.serve.warmup`)."""
    from embedviz.serve.warmup import start

    start()
    return True


def page_setup(title: str) -> None:
    """Page config, sign-in, the run a link names, defaults, and keeping ``ev_`` widget values when
    the user switches pages."""
    # A favicon served by this server: a material icon as page_icon is fetched from Google's font CDN by
    # every browser, which a hosted instance must not require (or leak its viewers to).
    st.set_page_config(page_title=f"{title} · embedviz", page_icon=str(FAVICON), layout="wide")
    links.gate()
    from .nav import sidebar_nav

    sidebar_nav()  # first in the sidebar: the pages, with the home page called Home
    _warm_up_umap()
    links.apply_link()
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
    arriving = st.session_state.get("_page") != title  # the first run on this page (a link, a switch, Back)
    for key in [k for k in st.session_state.keys() if str(k).startswith("ev_")]:
        if arriving and key in st.query_params:
            continue  # the address of a page being opened wins: re-assigned, the stored value would win over it
        # Re-assigning stops Streamlit from dropping the value of a widget not drawn on this page, and on
        # later runs keeps a moved widget's value over the address's older one.
        st.session_state[key] = st.session_state[key]
    links.restore_bound(title)
    links.write_link()
    links.link_messages()
    links.maybe_housekeep()


def dataset_spec() -> dict[str, str]:
    return st.session_state.get("dataset", _DEMO_SPEC)


def set_dataset(spec: dict[str, str]) -> None:
    """Make ``spec`` current if it loads; otherwise raise and keep the current data."""
    if spec["kind"] != "demo" and spec.get("via") != "upload":  # typed paths: only what the server shares
        from embedviz.ui.sources import server_roots

        roots = server_roots()
        for field in ("path", "prefix", "metadata"):
            if spec.get(field):
                check_server_path(spec[field], roots)
    _collection(json.dumps(spec, sort_keys=True), class_index())
    st.session_state["dataset"] = spec
    if spec["kind"] == "features":
        features = precomputed_features()
        if features.manifest.get("given_coordinates"):  # a map made elsewhere opens as it was made
            st.session_state["ev_method"] = "precomputed"
            st.session_state["ev_dims"] = int(features.features.shape[1])


def is_precomputed() -> bool:
    """Whether the current data are features (or a map) made elsewhere, with no model to run."""
    return dataset_spec()["kind"] == "features"


@st.cache_resource(max_entries=8, show_spinner=False)
def _precomputed(spec_json: str) -> FeatureSet:
    spec = json.loads(spec_json)
    folder = Path(spec["path"])
    if spec.get("via") != "upload" and folder.is_dir():  # a projector folder: every file read, links resolved
        from embedviz.ui.sources import server_roots

        roots = server_roots()
        for tsv in (p for p in folder.iterdir() if p.suffix.lower() == ".tsv"):
            check_server_path(tsv, roots)
    key = precomputed_key(spec["path"], spec.get("metadata") or None, spec.get("id_column") or None)
    features = load_precomputed(spec["path"], spec.get("metadata") or None, spec.get("id_column") or None)
    return replace(features, key=key)


def precomputed_features() -> FeatureSet:
    return _precomputed(json.dumps(dataset_spec(), sort_keys=True))


def settle_method(dim: int) -> list[str]:
    """The reducers offered for features of ``dim`` dimensions ("precomputed" only for 2-D/3-D ones);
    a current method that does not fit them (a map's "As given" after switching to images) falls
    back to the default, on whichever page notices first."""
    methods = available_methods(dim)
    if st.session_state["ev_method"] not in methods:
        st.session_state["ev_method"] = DEFAULTS["ev_method"]
    return methods


def model_spec() -> dict[str, Any]:
    """The chosen model: architecture, weights and any preprocessing the user set. Raw pixels the user
    did not set are fed as the current images are (``"preprocessing_from": "images"``: 28x28 grey digits
    give 784 values), so pages, the extraction job and the feature key all see the same input."""
    from embedviz.extract.models import PIXELS

    spec = st.session_state.get("model", _DEMO_MODEL)
    if spec["architecture"] == PIXELS and (not spec.get("preprocessing") or spec.get("preprocessing_from")):
        from embedviz.ui.sources import pixels_input

        fitted = pixels_input()
        spec = {**{k: v for k, v in spec.items() if k != "preprocessing_from"}, "preprocessing": fitted,
                **({"preprocessing_from": "images"} if fitted else {})}
    return spec


def set_model(spec: dict[str, Any]) -> None:
    """Make ``spec`` current if it loads; otherwise raise and keep the current model. An architecture
    chosen without weights yet is kept as it is, so every page can say what is missing. Weights named by
    path are read from the uploads' store, the demo's checkpoints, or the folders this server shares."""
    from embedviz.extract.models import PRETRAINED, RANDOM, needs_weights
    from embedviz.layout import home_dir

    weights = spec.get("weights")
    if weights and weights not in (PRETRAINED, RANDOM, str(EARLY_WEIGHTS)) \
            and (home_dir() / "weights").resolve() not in Path(weights).resolve().parents:
        from embedviz.ui.sources import server_roots

        check_server_path(weights, server_roots())
    if not needs_weights(spec["architecture"], weights):
        _model(spec["architecture"], weights, class_index(), _preprocessing_json(spec))
    if (spec["architecture"], spec.get("weights")) != (model_spec()["architecture"], model_spec().get("weights")):
        st.session_state.pop("layer", None)
    st.session_state["model"] = spec


def set_preprocessing(values: dict[str, Any] | None) -> None:
    """Feed the current model differently (``None``: its own default); checked before it is kept."""
    spec = {k: v for k, v in model_spec().items() if k != "preprocessing_from"}  # the user's values now
    set_model({**spec, "preprocessing": values})


def set_layer(layer: str | None) -> None:
    st.session_state["layer"] = layer


@st.cache_resource(max_entries=8, show_spinner=False)
def _collection(spec_json: str, classes: str | None) -> ImageCollection:
    spec = json.loads(spec_json)
    if spec["kind"] == "demo":
        collection = demo_collection()
    elif spec["kind"] == "features":
        from embedviz.ui.sources import server_roots

        collection = images_of(_precomputed(spec_json), spec.get("prefix") or None,
                               None if spec.get("via") == "upload" else server_roots())
    elif spec.get("via") == "upload":  # unpacked inside this session's workspace, beside the upload
        from embedviz.ui.uploads import workspace_room

        collection = load_collection(spec["path"], workspace=Path(spec["path"]).parent,
                                     room=workspace_room(Path(spec["path"]).parent.parent))
    else:
        from embedviz.ui.sources import server_roots

        collection = load_collection(spec["path"], spec.get("prefix") or None, path_column=spec.get("column") or None,
                                     roots=server_roots())
    return name_labels(collection, load_class_index(classes)) if classes else collection


@st.cache_resource(max_entries=4, show_spinner=False)
def _model(architecture: str, weights: str | None, classes: str | None, preprocessing: str | None = None) -> LoadedModel:
    from embedviz.errors import ModelError
    from embedviz.extract.models import needs_weights

    if needs_weights(architecture, weights):
        raise ModelError(f"{architecture} is waiting for its weights: give a weights file on the Data & model page "
                         "(or choose Random or torchvision pretrained there).")
    model = load_model(architecture, weights)
    if preprocessing:
        model = model.with_preprocessing(make_preprocessing(**json.loads(preprocessing)))
    return model.with_class_names(load_class_index(classes)) if classes and not model.is_pixels else model


def _preprocessing_json(spec: dict[str, Any]) -> str | None:
    return json.dumps(spec["preprocessing"], sort_keys=True) if spec.get("preprocessing") else None


@st.cache_data(max_entries=32, show_spinner=False)
def _image_hashes(spec_json: str, _collection: ImageCollection) -> list[str]:
    """Each image file's SHA-256, read once per dataset and reused by the key and by extraction."""
    return file_hashes(_collection)


@st.cache_resource(max_entries=8, show_spinner=False)
def _stored(key: str) -> FeatureSet:
    found = FeatureStore().get(key)
    if found is None:
        raise KeyError(key)  # not cached: the next call looks again
    return found


@st.cache_resource(max_entries=16, show_spinner=False)
def _stored_embedding(features_key: str, settings_json: str, _features: FeatureSet, _init: Embedding | None,
                      _strata: np.ndarray | None) -> Embedding:
    """A map computed before, kept in memory so reruns do not re-read it; misses are not cached."""
    settings = json.loads(settings_json)
    settings.pop("init", None)
    sample = settings.pop("sample", None)
    return compute_embedding(_features.features, features_key=features_key, cache_only=True, init=_init,
                             sample=Sample(**sample) if sample else None, strata=_strata, **settings)


def class_index() -> str | None:
    """The path of the class index the user gave, if any."""
    return st.session_state.get("classes")


def set_class_index(path: str | None) -> None:
    """Use this class index if it fits the current model; otherwise raise and keep the current one."""
    if path is not None:
        spec = model_spec()
        _model(spec["architecture"], spec.get("weights"), path, _preprocessing_json(spec))
    st.session_state["classes"] = path


def current_collection() -> ImageCollection:
    return _collection(json.dumps(dataset_spec(), sort_keys=True), class_index())


def current_model() -> LoadedModel:
    spec = model_spec()
    return _model(spec["architecture"], spec.get("weights"), class_index(), _preprocessing_json(spec))


def current_layer(model: LoadedModel) -> str:
    return check_layer(model, st.session_state.get("layer") or default_layer(model))


def _demo_label(spec: dict[str, Any]) -> str:
    return "demo CNN (early checkpoint, epoch 1)" if spec.get("weights") == str(EARLY_WEIGHTS) else \
        "demo CNN (final, 12 epochs)"


def model_label(model: LoadedModel) -> str:
    if model.architecture == DEMO:
        return _demo_label(model_spec())
    return describe(model)


def _feature_key() -> tuple[ImageCollection, LoadedModel, str, list[str], str]:
    collection, model = current_collection(), current_model()
    layer = current_layer(model)
    hashes = _image_hashes(json.dumps(dataset_spec(), sort_keys=True), collection)
    return collection, model, layer, hashes, feature_key(collection_hash(collection, hashes), model, layer)


def stored_features() -> FeatureSet | None:
    """The current choice's features if they were computed before (by anyone), else ``None``."""
    if is_precomputed():
        return precomputed_features()
    *_, key = _feature_key()
    try:
        return _stored(key)
    except KeyError:
        return None


@st.cache_resource(show_spinner=False)
def runner() -> JobRunner:
    """The server's one job runner, shared by every session: one extraction at a time, in a child
    process, users taking turns."""
    return JobRunner()


def extraction_job() -> Job | None:
    """The viewer's job computing the current choice's features, if they started one (here or in
    another tab); another user's job for the same features is theirs alone."""
    if is_precomputed():
        return None
    *_, key = _feature_key()
    return runner().get(key, links.viewer().id)


#: Where an extraction runs, when the operator named a Ray cluster.
ENGINES = ("This server", "The Ray cluster")


def cluster_address() -> str | None:
    """The Ray cluster the operator configured (``[embedviz] ray_address`` in secrets.toml, or
    ``EMBEDVIZ_RAY_ADDRESS``), or ``None``: extraction then runs on this server only."""
    section = links._secrets_section("embedviz") or {}
    return str(section.get("ray_address") or "").strip() or configured_address()


def _cluster_placer():
    """With a Ray cluster configured, points left out of a sample's fit are placed on it."""
    address = cluster_address()
    from embedviz.extract.ray_engine import ray_available
    from embedviz.maps.ray_placer import place_on_cluster

    return place_on_cluster(address) if address and ray_available() else None


def engine_control() -> None:
    """Where the extraction runs, on a server whose operator named a Ray cluster (else nothing)."""
    address = cluster_address()
    if not address:
        return
    from embedviz.extract.ray_engine import RAY_MISSING, ray_available

    if not ray_available():
        st.warning(f"A Ray cluster is configured ({address}), but this server cannot use it. {RAY_MISSING}")
        return
    st.radio("Run on", ENGINES, key="ev_engine", horizontal=True,
             help=f"The Ray cluster at {address}: its CPUs decode the images, an actor per GPU holds the model, "
                  "and the features land in this server's store like any other. The images must be on storage "
                  "every node of the cluster sees under the same path.")


def start_extraction() -> Job:
    """Start extracting the current choice's features in the background (or find the running job)."""
    collection, model, layer, hashes, key = _feature_key()
    return _start(collection, model, model_spec(), layer, hashes, key)


def model_for(spec: dict[str, Any]) -> LoadedModel:
    """A model or checkpoint other than the current one (``spec`` as :func:`model_spec`), cached."""
    return _model(spec["architecture"], spec.get("weights"), class_index(), _preprocessing_json(spec))


def model_name(spec: dict[str, Any]) -> str:
    """How a model spec is named to people: the demo's checkpoints by epoch, others by description."""
    return _demo_label(spec) if spec["architecture"] == DEMO else describe(model_for(spec))


def features_for(spec: dict[str, Any], layer: str | None) -> FeatureSet:
    """The current images' features through another model or checkpoint (``spec``, as
    :func:`model_spec`) at ``layer`` (``None``: its default): from the store, or extracted now by a
    background job while a progress bar waits."""
    collection = current_collection()
    model = _model(spec["architecture"], spec.get("weights"), class_index(), _preprocessing_json(spec))
    layer = check_layer(model, layer or default_layer(model))
    hashes = _image_hashes(json.dumps(dataset_spec(), sort_keys=True), collection)
    key = feature_key(collection_hash(collection, hashes), model, layer)
    try:
        return _stored(key)
    except KeyError:
        pass
    wait_for(_start(collection, model, spec, layer, hashes, key))
    return _stored(key)


def _start(collection: ImageCollection, model: LoadedModel, spec: dict[str, Any], layer: str, hashes: list[str],
           key: str) -> Job:
    device, batch = st.session_state["ev_device"], int(st.session_state["ev_batch_size"])
    address = cluster_address()
    ray = RayOptions(address) if address and st.session_state.get("ev_engine") == ENGINES[1] else None
    name = _demo_label(spec) if model.architecture == DEMO else describe(model)
    label = f"{collection.name} through {name}, layer {layer}" + (" on the Ray cluster" if ray else "")
    owner = links.viewer()
    choice = {"dataset": dataset_spec(), "model": spec, "layer": layer, "classes": class_index()}
    images = collection_hash(collection, hashes)

    work = Extraction(collection, {k: spec.get(k) for k in ("architecture", "weights", "preprocessing")},
                      class_index(), layer, list(hashes), key, device, batch, ray)

    def record(job: Job) -> None:  # in this process, once the child stored the features
        features = FeatureStore().get(key)
        if features is None:
            raise EmbedVizError("The extraction ended but its features are not in the store; extract again.")
        links.record_extraction(owner, choice, label, replace(features, key=key),
                                time.time() - (job.started or time.time()), images)

    return runner().submit(key, label, Task(extract, (work,)), owner=owner.id, on_done=record)


def wait_for(job: Job) -> None:
    """A progress bar (images/s, ETA) and a Cancel button while ``job`` runs; raises if it did not finish.

    Leaving the page or refreshing ends only this wait: the job goes on, and the next visit finds it.
    """
    cancel = st.empty()  # emptied when the job ends, so no stale button stays on the page
    if job.active and cancel.button("Cancel extraction", key=f"cancel_{job.id}", icon=":material/stop:"):
        job.cancel()
    bar = st.progress(job.fraction, text=f"{plain(job.label)}: {plain(job.describe(ahead=runner().position(job)))}")
    while job.active:
        time.sleep(0.25)
        verb = "Extracting" if job.status == "running" else "Queued:"
        bar.progress(job.fraction, text=f"{verb} {plain(job.label)}: {plain(job.describe(ahead=runner().position(job)))}")
    bar.empty()
    cancel.empty()
    if job.status == "failed":
        raise EmbedVizError(job.error)
    if job.status == "cancelled":
        raise Cancelled(f"Extraction cancelled at {job.done:,} of {job.total:,} images; the finished part is kept, "
                        "so extracting again resumes from there.")


def set_map_filters(filters: tuple) -> None:
    """Make maps of only the points these filters keep (a button's callback on Explore)."""
    st.session_state["map_filters"] = tuple(filters)
    st.session_state.pop("previous_map", None)  # another set of points: no warm start from the old map


def clear_map_filters() -> None:
    st.session_state.pop("map_filters", None)
    st.session_state.pop("previous_map", None)


def map_filters() -> tuple:
    """The filters applied before reducing (empty: every point is mapped)."""
    return tuple(st.session_state.get("map_filters", ()))


def _kept(full: FeatureSet) -> FeatureSet:
    """``full`` reduced to the rows the map filters keep, as a feature set of its own (its own key,
    so its neighbour graph and maps are cached apart). Filters on columns these features lack
    (clusters or sets made on another map) are left out."""
    filters = [f for f in map_filters() if set(filter_columns(f)) <= set(full.samples.columns)]
    if not filters:
        return full
    mask = apply_filters(full.samples, filters)
    if not mask.any():
        raise DataError("The map's filters keep no points; choose others on Explore or map all points.")
    if mask.all():
        return full
    key = hashlib.sha256(json.dumps([full.key, [describe_filter(f) for f in filters]]).encode()).hexdigest()[:32]
    return replace(full, features=full.features[mask], samples=full.samples[mask].reset_index(drop=True),
                   skipped=full.skipped, key=f"{full.key}-kept-{key}")


def require_features() -> FeatureSet:
    """The current features: from the store, or extracted now by a background job while a progress
    bar waits (a job cancelled by the user is not restarted until they ask). When Explore's filters
    were chosen for the map, only the points they keep."""
    return _kept(_all_features())


def _all_features() -> FeatureSet:
    if is_precomputed():
        return precomputed_features()
    *_, key = _feature_key()
    try:
        return _stored(key)
    except KeyError:
        pass
    job = runner().get(key, links.viewer().id)
    if job is not None and job.status == "cancelled" and not st.session_state.pop("ev_resume", False):
        st.warning(f"Extraction was cancelled at {job.done:,} of {job.total:,} images; the finished part is kept.")
        if st.button("Resume extraction", type="primary"):
            st.session_state["ev_resume"] = True
            st.rerun()
        st.stop()
    wait_for(start_extraction())
    return _stored(key)


def clear_store() -> int:
    """Delete every stored feature set (an operator's act, refused while an extraction runs); returns the
    bytes freed."""
    links.require_operator("clear the feature store")
    if runner().active():
        raise EmbedVizError("An extraction is running; cancel it or let it finish before clearing the store.")
    freed = FeatureStore().clear()
    _stored.clear()
    return freed


def reducer_settings() -> dict[str, Any]:
    """Method, dimensions, seed and the method's parameter values, from the widgets' state."""
    method = st.session_state["ev_method"]
    reducer = get_reducer(method)
    params = {}
    for spec in param_specs(reducer.params_class):
        params[spec.name] = st.session_state.get(f"ev_p_{method}_{spec.name}", spec.default)
    return {"method": method, "params": params, "n_components": int(st.session_state["ev_dims"]),
            "random_state": int(st.session_state["ev_seed"])}


#: From this many points a map is fitted on a sample by default (t-SNE of all would take hours here) ...
AUTO_SAMPLE_FROM = 200_000
#: ... of this many points, stratified by the label when there is one; the rest are placed.
AUTO_SAMPLE_SIZE = 50_000


def default_sample(features: FeatureSet) -> None:
    """For features this large, start with a sample fit (once per feature set; the user may turn it off).
    Call before the sample widgets are drawn."""
    if len(features) < AUTO_SAMPLE_FROM or st.session_state.get("_auto_sample") == features.key:
        return
    st.session_state["_auto_sample"] = features.key
    if st.session_state.get("ev_sample_on"):  # chosen already (by the user, or a link)
        return
    st.session_state["ev_sample_on"] = True
    st.session_state["ev_sample_size"] = AUTO_SAMPLE_SIZE
    if "label" in features.samples.columns:
        st.session_state["ev_stratify"] = "label"


def sample_choice(features: FeatureSet) -> tuple[Sample | None, np.ndarray | None]:
    """The sample the user asked to fit on (``None``: all points) and the column it is stratified by."""
    default_sample(features)
    n = len(features)
    if not st.session_state.get("ev_sample_on") or st.session_state["ev_method"] == "precomputed":
        return None, None
    size = int(st.session_state.get("ev_sample_size") or 0)
    if not 0 < size < n:
        return None, None
    column = st.session_state.get("ev_stratify")
    if column in (None, "(none)") or column not in features.samples.columns:
        return Sample(size), None
    return Sample(size, column), features.samples[column].astype(str).to_numpy()


def _partial(settings_json: str, frame: dict[str, Any], settings: dict[str, Any]) -> Embedding:
    token = hashlib.sha256(settings_json.encode()).hexdigest()[:16]
    coords = frame["coords"]
    if frame.get("rows") is not None:  # stopped while fitting a sample: the rest wait at the centre
        full = np.tile(coords.mean(axis=0), (frame["n"], 1)).astype(coords.dtype)
        full[frame["rows"]] = coords
        coords = full
    return Embedding(coords, settings["method"], settings["params"], settings["n_components"],
                     settings["random_state"], 0.0,
                     (f"Stopped at step {frame['done']} of {frame['total']}: this map is partial. "
                      "Press Continue to finish it.",), key=f"partial-{token}-{frame['done']}", partial=True)


def map_token(features: FeatureSet) -> str:
    """The current reducer settings, sample and start choice as one string (what a map is kept under
    in this session, and what a link's run restores)."""
    sample, _ = sample_choice(features)
    token = dict(reducer_settings(), sample=sample.describe() if sample else None,
                 warm=bool(st.session_state.get("ev_warm", True)))
    return json.dumps(token, sort_keys=True)


def source_label() -> str:
    """``"digits (1,797 images) through demo CNN (final, 12 epochs), layer fc1"``."""
    collection = current_collection()
    if is_precomputed():
        return f"{collection.name} (features made elsewhere)"
    model = current_model()
    return f"{collection.name} through {model_label(model)}, layer {current_layer(model)}"


def note_map_run(features: FeatureSet, embedding: Embedding) -> None:
    """Record the map on screen as the viewer's run and put its id in the address."""
    if embedding.partial:
        return
    sample, _ = sample_choice(features)
    kept = " of the kept points" if map_filters() else ""
    title = f"{REDUCERS[embedding.method].label} {embedding.n_components}-D{kept}: {source_label()}"
    links.note_map(_all_features(), features, embedding, map_token(features), title, source_label(), sample,
                   map_filters())


def require_embedding(features: FeatureSet, frames: Any = None) -> Embedding:
    """The map for the current reducer settings; computed under a progress bar when new.

    With ``frames`` (a placeholder) the map is drawn there while it is optimised and a Stop
    button keeps the map as it is. A re-run starts from the previous map of this session (same
    features, method and dimensions) unless the user asked for a fresh start; a map already made
    for these settings from a fresh start is reused rather than recomputed.
    """
    settle_method(features.features.shape[1])
    settings = reducer_settings()
    sample, strata = sample_choice(features)
    warm = bool(st.session_state.get("ev_warm", True))
    settings_json = map_token(features)
    token_settings = json.loads(settings_json)
    previous = st.session_state.get("previous_map")
    if previous is not None and previous[0] != features.key:
        previous = None
    if previous is not None and previous[1] == settings_json:
        return previous[2]
    init = previous[2] if previous is not None and warm else None
    stopped = st.session_state.get("map_stopped")
    if stopped is not None and stopped["settings"] == settings_json and stopped["features"] == features.key:
        return _partial(settings_json, stopped, settings)
    for start in ([init, None] if init is not None else [None]):
        try:
            lookup = dict(settings, sample=token_settings["sample"], init=start.key if start else "")
            found = _stored_embedding(features.key, json.dumps(lookup, sort_keys=True), features, start, strata)
        except LookupError:
            continue
        if previous is not None:  # the map before this move, for what the move changed (ui.reduce)
            st.session_state["map_before"] = previous
        st.session_state["previous_map"] = (features.key, settings_json, found)
        return found
    label = REDUCERS[settings["method"]].label
    on_frame, stop_slot = None, None
    if frames is not None:
        stop_slot = st.empty()
        stop_slot.button("Stop and keep the map as it is", key="reduce_stop", icon=":material/stop_circle:")
        shown = {"at": 0.0}
        # a fit on a sample shows the sample's points while it runs, coloured by their own rows
        fit_rows = None if sample is None else sample_rows(len(features), sample, strata, settings["random_state"])
        frame_samples = features.samples if fit_rows is None else features.samples.iloc[fit_rows]
        every = max(0.5, len(frame_samples) / 20_000)

        if previous is not None:
            # the map on screen stays there until the first frame (a 2-D one while a 3-D map is made;
            # methods without frames show it until they finish)
            was = previous[2].n_components
            note = None if was == settings["n_components"] else \
                f"The {was}-D map, shown while the {settings['n_components']}-D map is computed"
            frames.plotly_chart(frame_figure(previous[2].coords, features.samples, title=note),
                                config={"staticPlot": True})

        def on_frame(coords: np.ndarray, done: int, total: int) -> None:
            st.session_state["map_frame"] = {"settings": settings_json, "features": features.key, "coords": coords,
                                             "done": done, "total": total, "rows": fit_rows, "n": len(features)}
            if time.monotonic() - shown["at"] >= every:
                shown["at"] = time.monotonic()
                frames.plotly_chart(frame_figure(coords, frame_samples.reset_index(drop=True)),
                                    config={"staticPlot": True})
    from embedviz.ui.reduce import map_progress

    with map_progress(f"Computing the {label} map") as progress:
        embedding = compute_embedding(features.features, features_key=features.key, progress=progress,
                                      on_frame=on_frame, init=init, sample=sample, strata=strata,
                                      placer=_cluster_placer() if sample is not None else None, **settings)
    st.session_state.pop("map_frame", None)
    if stop_slot is not None:
        stop_slot.empty()
    if not embedding.partial:
        if previous is not None:
            st.session_state["map_before"] = previous
        st.session_state["previous_map"] = (features.key, settings_json, embedding)
        if frames is not None:  # made in this run of the Reduce page, which reports the wait
            st.session_state["map_made"] = embedding.key
    return embedding


def stop_requested(features: FeatureSet) -> bool:
    """Whether the user pressed Stop while a map was being made: the last frame becomes the map."""
    frame = st.session_state.get("map_frame")
    if not st.session_state.get("reduce_stop") or frame is None or frame["features"] != features.key:
        return False
    st.session_state["map_stopped"] = frame
    st.session_state.pop("map_frame", None)
    return True


def continue_map() -> None:
    """Forget a stopped map so that the next run finishes it."""
    st.session_state.pop("map_stopped", None)


@st.cache_resource(max_entries=16, show_spinner="Measuring how faithful the map is")
def _quality(features_key: str, embedding_key: str, _features: FeatureSet, _embedding: Embedding) -> Faithfulness:
    labels = _features.samples["label"] if "label" in _features.samples.columns else None
    return faithfulness(np.asarray(_features.features), _embedding.coords, labels)


def map_quality(features: FeatureSet, embedding: Embedding) -> Faithfulness | None:
    """Trustworthiness, continuity, label agreement and per-point neighbourhood kept, once per map
    (``None`` for coordinates given with the data: there is nothing to compare them with)."""
    if embedding.method == "precomputed" or len(features) < 5:
        return None
    return _quality(features.key, embedding.key, features, embedding)


@dataclass(frozen=True)
class MapView:
    """Everything a page needs to draw the current map."""

    collection: ImageCollection
    features: FeatureSet
    embedding: Embedding
    quality: Faithfulness | None = None

    @property
    def samples(self):
        """The samples table, with each point's ``neighbourhood_kept`` when it was measured."""
        table = self.features.samples
        return table if self.quality is None else table.assign(neighbourhood_kept=self.quality.kept)


def current_map() -> MapView:
    features = require_features()
    embedding = require_embedding(features)
    note_map_run(features, embedding)
    return MapView(current_collection(), features, embedding, map_quality(features, embedding))
