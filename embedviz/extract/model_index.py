"""Models loaded before, remembered by how they were asked for, so a cache hit needs no torch.

A stored feature set is found by a key of the images, the model's identity (architecture, weights,
classes, preprocessing), the layer and the pooling. Working out a torchvision model's identity and
default layer means importing torchvision, building the network and tracing it: seconds, where
reading the stored features back takes a fraction of one. So once a model is loaded,
:func:`remember_model` writes its identity and layers to a small JSON file in the store
(``.models/<request>.json``), named by the request: the architecture, the weights (the file's
SHA-256, or ``random``/``pretrained``) and the torch and torchvision versions that made it (and
timm's or open_clip's, for their models).
:func:`stored_layers` answers a later request from that file and the store alone, or returns
``None``, and the caller loads the model as before (which also checks what this skips).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

from embedviz.data.featureset import FeatureSet
from embedviz.data.images import ImageCollection, collection_hash
from embedviz.errors import ModelError
from embedviz.extract.features import identity_key
from embedviz.extract.layers import has_layer
from embedviz.extract.models import LoadedModel
from embedviz.extract.spec import DEMO, PIXELS, PRETRAINED, PROGRAM, RANDOM
from embedviz.extract.store import FeatureStore
from embedviz.hashing import sha256_file, sha256_json

__all__ = ["FOLDER", "request_key", "remember_model", "stored_layers"]

log = logging.getLogger(__name__)

#: The store's sub-folder of remembered models (a dot folder: housekeeping never evicts it as a feature set).
FOLDER = ".models"
#: Raise when what :func:`remember_model` records, or how load_model derives it, changes: older records are then unused.
_VERSION = 1


def request_key(architecture: str, weights: str | Path | None) -> str | None:
    """The name of a request's remembered model, or ``None`` when it cannot be remembered: raw pixels
    (fed as the images are), code-carrying programs, a missing weights file or an unknown install."""
    if architecture in (PIXELS, PROGRAM):
        return None
    if architecture == DEMO and not weights:
        from embedviz.data.demo import FINAL_WEIGHTS

        weights = FINAL_WEIGHTS
    if weights is None:
        return None
    if str(weights) in (RANDOM, PRETRAINED):
        token = str(weights)
    else:
        try:
            token = sha256_file(Path(weights).expanduser())
        except OSError:
            return None
    try:
        packages = ("torch", "torchvision", *(("timm",) if architecture.startswith("timm:") else ()),
                    *(("open_clip_torch",) if architecture.startswith("clip:") else ()))
        versions = {name: metadata.version(name) for name in packages}
    except metadata.PackageNotFoundError:
        return None
    return sha256_json({"v": _VERSION, "architecture": architecture, "weights": token, "versions": versions})[:32]


def _card_path(store: FeatureStore, key: str) -> Path:
    return store.root / FOLDER / f"{key}.json"


def remember_model(store: FeatureStore, architecture: str, weights: str | Path | None, model: LoadedModel) -> None:
    """Write ``model``'s identity and layers, as :func:`~embedviz.extract.models.load_model` gave it for
    this request (before any class names or preprocessing of the caller's), for :func:`stored_layers`."""
    key = request_key(architecture, weights)
    if key is None or model.program or model.module is None:
        return
    from embedviz.extract.layers import default_layer, list_layers

    try:
        card = {"architecture": architecture, "identity": model.identity(), "layers": list_layers(model),
                "default_layer": default_layer(model)}
    except ModelError:  # a model that cannot be traced is never extracted either
        return
    # The card must give the very key the model gives; JSON would not keep a value it cannot write.
    if identity_key("", json.loads(json.dumps(card["identity"])), "") != identity_key("", card["identity"], ""):
        log.warning("not remembering %s: its identity does not survive JSON", architecture)
        return
    path = _card_path(store, key)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(card), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:  # a full or read-only store: the next run loads the model, as without this
        tmp.unlink(missing_ok=True)
        log.warning("could not remember %s in %s: %s", architecture, path.parent, exc)


def _read_card(path: Path) -> dict[str, Any] | None:
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = (isinstance(card, dict) and isinstance(card.get("identity"), dict) and isinstance(card.get("layers"), list)
          and isinstance(card.get("default_layer"), str))
    return card if ok else None


def stored_layers(
    collection: ImageCollection,
    architecture: str,
    weights: str | Path | None,
    layers: Sequence[str | None],
    *,
    store: FeatureStore,
    pooling: str = "avg",
    class_names: Sequence[str] | None = None,
    hashes: list[str] | None = None,
) -> dict[str, FeatureSet] | None:
    """The stored feature sets that :func:`~embedviz.extract.features.compute_layers` would return for
    this request, found without loading the model; ``None`` unless the model is remembered and every
    layer is stored.

    Args:
        collection: the images.
        architecture, weights: as given to :func:`~embedviz.extract.models.load_model`.
        layers: graph nodes or module names; ``None`` is the model's default layer.
        store: the feature store (the remembered models live in it).
        pooling: as for ``compute_layers``.
        class_names: a class index's names, as ``LoadedModel.with_class_names`` takes them.
        hashes: the images' SHA-256s (:func:`~embedviz.data.images.file_hashes`), when already known.
    """
    key = request_key(architecture, weights)
    card = _read_card(_card_path(store, key)) if key is not None else None
    if card is None:
        return None
    identity = dict(card["identity"])
    if class_names is not None:
        if identity.get("num_classes") is not None and len(class_names) != identity["num_classes"]:
            return None  # loading the model says what is wrong
        identity["class_names"] = list(class_names)
    names = [card["default_layer"] if layer is None else layer for layer in layers]
    if not all(has_layer(card["layers"], name) for name in names):
        return None
    images_sha = collection_hash(collection, hashes)
    found = {}
    for name in dict.fromkeys(names):
        feature_set = store.get(identity_key(images_sha, identity, name, pooling))
        if feature_set is None:
            return None
        found[name] = feature_set
    return found
