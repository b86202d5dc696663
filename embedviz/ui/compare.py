"""The Compare page's parts: which feature sets of the current images, their maps aligned and
linked, the step-through over a series, how much each point's neighbourhood changed, and how well
each class is separated in each set."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from ..compare import compare_feature_sets
from ..demo import EARLY_WEIGHTS
from ..figures import natural_order
from ..layers import default_layer, list_layers
from ..models import DEMO
from ..store import FeatureSet
from .links import catalog, viewer
from .state import dataset_spec, features_for, model_for, model_name, model_spec, reducer_settings

__all__ = ["Candidate", "candidates", "default_choice", "comparison", "pairs", "coords", "selected_in_any", "paths",
           "moved_most", "separation_section"]


@dataclass(frozen=True)
class Candidate:
    """One feature set that can be compared: a model or checkpoint and a layer of it."""

    label: str
    spec: dict[str, Any]
    layer: str


def _specs() -> list[dict[str, Any]]:
    """The current model, the demo's two checkpoints when it is the demo, and every other model or
    checkpoint this viewer (or someone who published it) extracted these images with."""
    current = model_spec()
    specs = [{"architecture": DEMO, "weights": str(EARLY_WEIGHTS)}, {"architecture": DEMO, "weights": None}] \
        if current["architecture"] == DEMO else [current]
    seen = {json.dumps(s, sort_keys=True) for s in specs}
    here = json.dumps(dataset_spec(), sort_keys=True)
    for run in catalog().runs(viewer().id, kind="extraction"):
        spec = run.params.get("model")
        if spec and json.dumps(run.params.get("dataset"), sort_keys=True) == here \
                and json.dumps(spec, sort_keys=True) not in seen:
            seen.add(json.dumps(spec, sort_keys=True))
            specs.append(spec)
    return specs


def candidates() -> list[Candidate]:
    """Every (model or checkpoint, layer) pair on offer, in the models' order and each model's
    layers in execution order."""
    out = []
    for spec in _specs():
        model = model_for(spec)
        if model.is_pixels:
            continue
        name = model_name(spec)
        out.extend(Candidate(f"{name} · {layer}", spec, layer) for layer in list_layers(model))
    return out


def default_choice(options: list[Candidate]) -> list[str]:
    """The demo: its early and final checkpoints at the same layer (how training changed the picture).
    Another model: its checkpoints extracted on these images at its default layer, in the order of
    their names (up to four); with one checkpoint, a layer about halfway through it, then its default
    layer."""
    current = model_spec()
    if current["architecture"] == DEMO:
        layer = default_layer(model_for(current))
        return [c.label for c in options if c.layer == layer and c.spec["architecture"] == DEMO][:2]
    layer = default_layer(model_for(current))
    checkpoints = [c for c in options if c.spec["architecture"] == current["architecture"] and c.layer == layer]
    if len(checkpoints) > 1:  # other checkpoints of this model were extracted: how training changed it
        by_label = {c.label: c for c in checkpoints}
        return natural_order(list(by_label))[:4]
    own = [c for c in options if c.spec == current]
    if len(own) < 2:
        return [c.label for c in own]
    last = next((c for c in own if c.layer == default_layer(model_for(current))), own[-1])
    middle = own[len(own) // 2] if own[len(own) // 2] != last else own[0]
    return [middle.label, last.label]


@st.cache_resource(max_entries=4, show_spinner=False)
def _compared(keys: tuple[str, ...], names: tuple[str, ...], settings_json: str,
              _sets: tuple[FeatureSet, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    settings = json.loads(settings_json)
    return compare_feature_sets(list(_sets), list(names), settings["method"], settings["params"],
                                n_components=2, random_state=settings["random_state"])


def comparison(chosen: list[Candidate]) -> tuple[list[FeatureSet], pd.DataFrame, pd.DataFrame, str]:
    """The chosen feature sets (extracted now if new), their aligned 2-D maps with the neighbourhood
    overlaps, the per-class separation, and the method used (the Reduce page's, t-SNE for a map
    given with the data)."""
    sets = [features_for(c.spec, c.layer) for c in chosen]
    settings = reducer_settings()
    if settings["method"] not in ("tsne", "umap", "pca"):
        settings = {**settings, "method": "tsne", "params": {}}
    names = tuple(f"{i + 1}" for i in range(len(chosen)))  # short column names; labels are shown apart
    with st.spinner(f"Making {len(sets)} maps, each started from the one before, and aligning them"):
        maps, separation = _compared(tuple(s.key for s in sets), names, json.dumps(settings, sort_keys=True),
                                     tuple(sets))
    return sets, maps, separation, settings["method"]


def pairs(n: int) -> list[tuple[int, int]]:
    """Consecutive pairs of ``n`` sets (``overlap_<a>_<b>`` columns), 0-based."""
    return [(i, i + 1) for i in range(n - 1)]


def coords(maps: pd.DataFrame, i: int) -> np.ndarray:
    """The ``i``-th set's aligned map (0-based)."""
    return maps[[f"{i + 1}_x", f"{i + 1}_y"]].to_numpy()


def selected_in_any(maps: pd.DataFrame, n: int, mask: np.ndarray) -> np.ndarray:
    """Rows selected (click, box or lasso) in any of the ``n`` maps, read from their charts' state."""
    from ..selection import selected_rows

    picked = [selected_rows(st.session_state.get(f"compare_map_{i}"), coords(maps, i), mask) for i in range(n)]
    return np.unique(np.concatenate(picked)).astype(np.int64) if any(len(p) for p in picked) \
        else np.zeros(0, dtype=np.int64)


def paths(maps: pd.DataFrame, rows: np.ndarray, n: int) -> np.ndarray:
    """Each of ``rows``' places in every set's aligned map: points x sets x 2."""
    return np.stack([coords(maps, i)[rows] for i in range(n)], axis=1)


def moved_most(samples: pd.DataFrame, overlap: np.ndarray, count: int = 24) -> tuple[pd.DataFrame, float]:
    """The ``count`` points whose neighbourhood overlap is lowest, and the median overlap."""
    return samples.iloc[np.argsort(overlap, kind="stable")[:count]], float(np.median(overlap))


def separation_section(separation: pd.DataFrame, labels: list[str]) -> None:
    """Each class's k-NN accuracy or silhouette in each set, as grouped bars and a table."""
    from ..figures import separation_figure
    from .links import bound

    if separation.empty:
        st.info("The images have no labels, so there are no classes to score.")
        return
    st.session_state.setdefault("ev_cmp_metric", "knn_accuracy")
    metric = st.segmented_control("Score", ["knn_accuracy", "silhouette"], required=True,
                                  format_func=lambda m: "k-NN accuracy" if m == "knn_accuracy" else "silhouette",
                                  **bound("ev_cmp_metric"))
    table = separation.assign(set=separation["set"].map(lambda s: f"{s}. {labels[int(s) - 1]}"))
    st.plotly_chart(separation_figure(table, metric), key="compare_separation")
    wide = table.pivot_table(index="label", columns="set", values=metric, sort=False)
    st.dataframe(wide.style.format("{:.3f}"), width="stretch")
