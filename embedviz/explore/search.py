"""Search a map by text or image, zero-shot labels, and where two feature spaces disagree.

With features taken at a CLIP/SigLIP image tower's output (``clip:NAME``, its default layer), a text
query goes through the same model's text tower and every point is ranked by cosine similarity; an
image query goes through the image tower, and "more like these" averages the chosen points' vectors.
Zero-shot labels are the class names (as "a photo of a {name}.") each image is most similar to,
softmaxed at CLIP's temperature (100). The text tower is built once per model and kept
(:func:`embedviz.extract.clip.text_tower`); the unit-length features once per feature set.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from embedviz.errors import DataError, ModelError

__all__ = ["UnitRows", "MAX_CLASS_NAMES", "SearchModel", "search_model", "unit", "unit_features", "similarity", "top",
           "zero_shot", "zero_shot_agreement", "neighbours_disagree", "TEMPLATE", "NOT_CLIP"]

#: Class names zero-shot labelling takes at most (each one a pass of the text tower).
MAX_CLASS_NAMES = 200
#: How a class name becomes a text query for zero-shot labels (CLIP's own prompt).
TEMPLATE = "a photo of a {}."
NOT_CLIP = ("Search by text needs features from a CLIP or SigLIP model's image tower (a clip:NAME model, "
            "at its default layer); these come from {what}.")
_lock = threading.Lock()


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


_norms: OrderedDict[str, np.ndarray] = OrderedDict()


def unit_features(features: np.ndarray, key: str | None = None) -> "UnitRows":
    """``features`` as rows of unit length, lazily: only the rows' norms are made (and kept per ``key``, a
    feature set's key, for the next query), not a second copy of every vector."""
    norms = None
    if key is not None:
        with _lock:
            norms = _norms.get(key)
            if norms is not None and len(norms) == len(features):
                _norms.move_to_end(key)
            else:
                norms = None
    if norms is None:
        norms = np.linalg.norm(np.asarray(features, dtype=np.float32), axis=1)
        norms = np.where(norms > 0, norms, 1.0).astype(np.float32)
        if key is not None:
            with _lock:
                _norms[key] = norms
                while len(_norms) > 8:
                    _norms.popitem(last=False)
    return UnitRows(features, norms)


class UnitRows:
    """Feature rows divided by their norms when read: ``rows @ q``, ``rows[i]``, ``len(rows)``."""

    def __init__(self, features: np.ndarray, norms: np.ndarray) -> None:
        self.features, self.norms = features, norms

    def __len__(self) -> int:
        return len(self.norms)

    def __getitem__(self, rows) -> np.ndarray:
        return np.asarray(self.features[rows], dtype=np.float32) / self.norms[rows, None]

    def __matmul__(self, other: np.ndarray) -> np.ndarray:
        return (np.asarray(self.features, dtype=np.float32) @ other) / (
            self.norms if np.ndim(other) == 1 else self.norms[:, None])


def similarity(unit_rows: "UnitRows | np.ndarray", query: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row (already unit length) with ``query`` (one vector)."""
    return unit_rows @ unit(np.asarray(query, dtype=np.float32).reshape(-1))


def top(scores: np.ndarray, k: int, within: np.ndarray | None = None) -> np.ndarray:
    """The rows of the ``k`` highest scores, best first (only rows ``within`` is true for, when given)."""
    rows = np.arange(len(scores)) if within is None else np.flatnonzero(within)
    k = max(0, min(int(k), len(rows)))
    if not k:
        return np.zeros(0, dtype=np.int64)
    part = rows[np.argpartition(-scores[rows], k - 1)[:k]]
    return part[np.argsort(-scores[part], kind="stable")]


@dataclass(frozen=True)
class SearchModel:
    """The CLIP model behind a feature set: its towers, and how an image is fed to it."""

    architecture: str
    weights: str
    preprocessing: dict[str, Any]

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        from embedviz.extract.clip import text_tower

        return text_tower(self.architecture, self.weights).encode(list(texts))

    def encode_image(self, image) -> np.ndarray:
        """One PIL image through the image tower (the same preprocessing as the features)."""
        import torch

        from embedviz.extract.preprocessing import Preprocessing

        prep = Preprocessing(**{k: tuple(v) if isinstance(v, list) else v for k, v in self.preprocessing.items()})
        model = _image_model(self.architecture, self.weights)
        with _lock, torch.inference_mode():
            vector = model.encode_image(prep(image.convert("RGB" if prep.channels == 3 else "L"))[None]).float()
        return unit(vector.numpy())[0]


def _image_model(architecture: str, weights: str):
    from embedviz.extract.clip import shared_clip

    return shared_clip(architecture, weights)


def _stamp(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_size, info.st_mtime_ns


@functools.lru_cache(maxsize=16)
def _file_hash(path: str, size: int, mtime_ns: int) -> str:
    """A weights file's SHA-256, once per file as it is (0.4 s for ViT-B-32's 600 MB: not on every query)."""
    from embedviz.hashing import sha256_file

    return sha256_file(path)


def search_model(manifest: Mapping[str, Any], weights: str | None) -> SearchModel:
    """The CLIP model a feature set's ``manifest`` names, with ``weights`` (the file it was extracted
    with, or ``random``); raises with one line when the features are not a CLIP image embedding, or the
    weights are not the ones the features were made with."""
    from embedviz.extract.clip import is_clip

    architecture = str(manifest.get("model") or "")
    if not is_clip(architecture):
        raise DataError(NOT_CLIP.format(what=f"{architecture or 'an unknown model'}"))
    want = manifest.get("weights_sha256")
    if weights is None:
        if want != "random:seed0":
            raise DataError(f"Give the weights file these features were extracted with ({manifest.get('weights')}); "
                            "the text tower is read from it.")
        weights = "random"
    elif weights == "random" and want not in (None, "random:seed0"):
        raise DataError(f"These features were extracted with {manifest.get('weights')}, not random weights; give that "
                        "file.")
    elif weights == "pretrained":
        from embedviz.extract.clip import PRETRAINED_CLIP

        raise DataError(PRETRAINED_CLIP)
    elif weights != "random":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise DataError(f"Weights file {weights} does not exist.")
        if want and _file_hash(str(path), *_stamp(path)) != want:
            raise DataError(f"{path.name} is not the weights file these features were extracted with "
                            f"({manifest.get('weights')}).")
        weights = str(path)
    try:
        output = _output_node(architecture, weights)
    except ModelError as error:
        raise DataError(str(error)) from None
    if manifest.get("layer") not in (None, output):
        raise DataError(NOT_CLIP.format(what=f"its layer {manifest.get('layer')}, not the image tower's output "
                                             f"({output})"))
    return SearchModel(architecture, weights, dict(manifest.get("preprocessing") or {}))


@functools.lru_cache(maxsize=4)
def _output_node(architecture: str, weights: str) -> str:
    """The image tower's output node (its features are the embedding the text tower matches)."""
    from torchvision.models.feature_extraction import get_graph_node_names

    from embedviz.extract.layers import TRACING

    model = _image_model(architecture, weights)
    with TRACING:
        _, nodes = get_graph_node_names(model.visual)
    return nodes[-1]


def zero_shot(unit_rows: np.ndarray, class_names: Sequence[str], model: SearchModel,
              template: str = TEMPLATE) -> pd.DataFrame:
    """``zero_shot`` (the most similar class name) and ``zero_shot_confidence`` per row."""
    names = list(dict.fromkeys(str(n).strip() for n in class_names if str(n).strip()))
    if len(names) < 2:
        raise DataError("Zero-shot labels need at least two class names.")
    if len(names) > MAX_CLASS_NAMES:
        raise DataError(f"Zero-shot labels take up to {MAX_CLASS_NAMES} class names; these are {len(names):,}.")
    prompts = [template.format(n) for n in names]
    texts = np.concatenate([model.encode_text(prompts[i:i + 64]) for i in range(0, len(prompts), 64)])
    logits = 100.0 * (unit_rows @ texts.T)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    best = probs.argmax(axis=1)
    return pd.DataFrame({"zero_shot": pd.array(np.asarray(names, dtype=object)[best], dtype="string"),
                         "zero_shot_confidence": probs[np.arange(len(best)), best]})


def zero_shot_agreement(zero: pd.Series, labels: pd.Series) -> float | None:
    """The share of labelled samples whose zero-shot label is their label (``None``: no labels)."""
    known = labels.notna().to_numpy()
    if not known.any():
        return None
    same = zero.astype("string").str.lower().to_numpy(dtype=object)[known] == \
        labels.astype("string").str.lower().to_numpy(dtype=object)[known]
    return float(np.mean(same))


def neighbours_disagree(a: np.ndarray, b: np.ndarray, k: int = 10) -> np.ndarray:
    """Per row, the share of its ``k`` nearest neighbours in space ``a`` that are not among its ``k``
    nearest in space ``b`` (0: the two spaces agree on its neighbourhood, 1: they share none), on unit
    vectors (cosine order, as CLIP spaces are compared). Compare shows it as ``neighbours_disagree``."""
    from embedviz.maps.compare import neighbourhood_overlap

    if len(a) != len(b):
        raise DataError(f"The two feature sets have {len(a):,} and {len(b):,} rows; they must be the same images.")
    if len(a) < 2:
        raise DataError("Neighbourhoods need at least two images.")
    return 1.0 - neighbourhood_overlap(unit(a), unit(b), k)
