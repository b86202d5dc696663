"""Extraction jobs: the server's one job runner, starting the current choice's extraction (on this server
or the operator's Ray cluster), and the progress bar with its Cancel button while a job runs."""

from __future__ import annotations

import time
from dataclasses import replace

import streamlit as st

from embedviz.data.featureset import FeatureSet
from embedviz.data.images import ImageCollection
from embedviz.errors import Cancelled, EmbedVizError
from embedviz.extract.features import feature_key
from embedviz.extract.layers import check_layer, default_layer
from embedviz.extract.models import LoadedModel
from embedviz.extract.ray_options import RayOptions
from embedviz.extract.spec import ModelSpec
from embedviz.extract.store import FeatureStore
from embedviz.serve.jobs import Extraction, Job, JobRunner, Task, extract
from embedviz.ui.auth import viewer
from embedviz.ui.choices import (
    class_index,
    current_collection,
    dataset_spec,
    feature_choice,
    image_hashes,
    images_key,
    is_precomputed,
    model_for,
    model_name,
    model_spec,
    spec_json,
    stored_by_key,
)
from embedviz.ui.runs import record_extraction
from embedviz.ui.server import cluster_address
from embedviz.ui.widgets import plain

__all__ = ["runner", "extraction_job", "ENGINES", "engine_control", "start_extraction", "features_for", "wait_for"]


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
    *_, key = feature_choice()
    return runner().get(key, viewer().id)


#: Where an extraction runs, when the operator named a Ray cluster.
ENGINES = ("This server", "The Ray cluster")


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
    collection, model, layer, hashes, key = feature_choice()
    return _start(collection, model, model_spec(), layer, hashes, key)


def features_for(spec: ModelSpec, layer: str | None) -> FeatureSet:
    """The current images' features through another model or checkpoint (``spec``, as
    :func:`model_spec`) at ``layer`` (``None``: its default): from the store, or extracted now by a
    background job while a progress bar waits."""
    collection = current_collection()
    model = model_for(spec)
    layer = check_layer(model, layer or default_layer(model))
    hashes = image_hashes(spec_json(dataset_spec()), collection)
    key = feature_key(images_key(spec_json(dataset_spec()), collection), model, layer)
    try:
        return stored_by_key(key)
    except KeyError:
        pass
    wait_for(_start(collection, model, spec, layer, hashes, key))
    return stored_by_key(key)


def _start(collection: ImageCollection, model: LoadedModel, spec: ModelSpec, layer: str, hashes: list[str],
           key: str) -> Job:
    device, batch = st.session_state["ev_device"], int(st.session_state["ev_batch_size"])
    address = cluster_address()
    ray = RayOptions(address) if address and st.session_state.get("ev_engine") == ENGINES[1] else None
    name = model_name(spec)
    label = f"{collection.name} through {name}, layer {layer}" + (" on the Ray cluster" if ray else "")
    owner = viewer()
    choice = {"dataset": dataset_spec().to_dict(), "model": spec.to_dict(), "layer": layer, "classes": class_index()}
    images = images_key(spec_json(dataset_spec()), collection)

    work = Extraction(collection, spec, class_index(), layer, list(hashes), key, device, batch, ray)

    def record(job: Job) -> None:  # in this process, once the child stored the features
        features = FeatureStore().get(key)
        if features is None:
            raise EmbedVizError("The extraction ended but its features are not in the store; extract again.")
        record_extraction(owner, choice, label, replace(features, key=key),
                                time.time() - (job.started or time.time()), images)

    return runner().submit(key, label, Task(extract, (work,)), owner=owner.id, on_done=record)


def wait_for(job: Job, work: str = "extraction", doing: str = "Extracting", unit: str = "images") -> None:
    """A progress bar (images/s, ETA) and a Cancel button while ``job`` runs; raises if it did not finish.
    With another ``unit`` than images, the job's own message (the step it is in) leads the text.

    Leaving the page or refreshing ends only this wait: the job goes on, and the next visit finds it.
    """
    def text(verb: str) -> str:
        said = job.describe(unit, ahead=runner().position(job))
        step = f"{job.message}, " if unit != "images" and job.message and job.status == "running" else ""
        return f"{verb}{plain(job.label)}: {plain(step + said)}"

    cancel = st.empty()  # emptied when the job ends, so no stale button stays on the page
    if job.active and cancel.button(f"Cancel {work}", key=f"cancel_{job.id}", icon=":material/stop:"):
        job.cancel()
    bar = st.progress(job.fraction, text=text(""))
    while job.active:
        time.sleep(0.25)
        bar.progress(job.fraction, text=text(f"{doing} " if job.status == "running" else "Queued: "))
    bar.empty()
    cancel.empty()
    if job.status == "failed":
        raise EmbedVizError(job.error)
    if job.status == "cancelled":
        raise Cancelled(f"Extraction cancelled at {job.done:,} of {job.total:,} images; the finished part is kept, "
                        "so extracting again resumes from there." if work == "extraction" else
                        f"{work.capitalize()} cancelled at {job.done:,} of {job.total:,} {unit}.")
