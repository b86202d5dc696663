"""The Compare page's parts: which feature sets of the current images, their maps aligned and
linked, the step-through over a series, how much each point's neighbourhood changed, and how well
each class is separated in each set."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from embedviz.data.classes import natural_order
from embedviz.data.demo import EARLY_WEIGHTS
from embedviz.data.featureset import FeatureSet
from embedviz.data.spec import DatasetSpec
from embedviz.errors import EmbedVizError
from embedviz.explore.figures import MapStyle, scatter_figure
from embedviz.explore.selection import selected_rows
from embedviz.extract.layers import default_layer, list_layers
from embedviz.extract.models import DEMO
from embedviz.extract.spec import ModelSpec
from embedviz.maps.aligned import coords, moved_most, pairs, paths
from embedviz.maps.compare import compare_feature_sets
from embedviz.ui.auth import viewer
from embedviz.ui.choices import current_collection, dataset_spec, model_for, model_name, model_spec, reducer_settings
from embedviz.ui.jobs import features_for
from embedviz.ui.map_component import Previews, map_chart
from embedviz.ui.previews import previews_for
from embedviz.ui.runs import catalog
from embedviz.ui.session import bound, seed_defaults
from embedviz.ui.widgets import plain

__all__ = ["Candidate", "candidates", "default_choice", "settle_choice", "suggestion", "too_few", "offer_another",
           "comparison", "pairs", "coords", "linked_maps", "selected_in_any", "paths", "moved_most",
           "separation_section"]


@dataclass(frozen=True)
class Candidate:
    """One feature set that can be compared: a model or checkpoint and a layer of it."""

    label: str
    spec: ModelSpec
    layer: str


_CHECKPOINTS = [ModelSpec(DEMO, str(EARLY_WEIGHTS)), ModelSpec(DEMO)]


def _on_demo() -> bool:
    """The demo's digits or its CNN: its early and final checkpoints are always on offer."""
    return dataset_spec().kind == "demo" or model_spec().architecture == DEMO


def _specs() -> list[ModelSpec]:
    """The demo's two checkpoints on the demo, the current model, and every other model or
    checkpoint this viewer (or someone who published it) extracted these images with."""
    current = model_spec()
    specs = list(_CHECKPOINTS) if _on_demo() else []
    if current.architecture != DEMO:
        specs.append(current)
    here = dataset_spec()
    for run in catalog().runs(viewer().id, kind="extraction"):
        if not run.params.get("model"):
            continue
        try:
            spec, dataset = ModelSpec.from_dict(run.params["model"]), DatasetSpec.from_dict(run.params.get("dataset"))
        except EmbedVizError:  # a record written by another version: not on offer
            continue
        if dataset == here and spec not in specs:
            specs.append(spec)
    return specs


def candidates() -> list[Candidate]:
    """Every (model or checkpoint, layer) pair on offer, in the models' order and each model's
    layers in execution order."""
    out = []
    for spec in _specs():
        model = model_for(spec)
        name = model_name(spec)
        out.extend(Candidate(name if model.is_pixels else f"{name} · {layer}", spec, layer)  # pixels: no layers
                   for layer in list_layers(model))
    return out


def default_choice(options: list[Candidate]) -> list[str]:
    """On the demo (its digits, or its CNN on any images), whatever the current model: its early and
    final checkpoints at the same layer (how training changed the picture).
    Another model: its checkpoints extracted on these images at its default layer, in the order of
    their names (up to four); with one checkpoint, a layer about halfway through it, then its default
    layer."""
    current = model_spec()
    if _on_demo():
        layer = default_layer(model_for(_CHECKPOINTS[1]))
        return [c.label for c in options if c.layer == layer and c.spec.architecture == DEMO][:2]
    layer = default_layer(model_for(current))
    checkpoints = [c for c in options if c.spec.architecture == current.architecture and c.layer == layer]
    if len(checkpoints) > 1:  # other checkpoints of this model were extracted: how training changed it
        by_label = {c.label: c for c in checkpoints}
        return natural_order(list(by_label))[:4]
    own = [c for c in options if c.spec == current]
    if len(own) < 2:
        return [c.label for c in own]
    last = next((c for c in own if c.layer == default_layer(model_for(current))), own[-1])
    middle = own[len(own) // 2] if own[len(own) // 2] != last else own[0]
    return [middle.label, last.label]


def settle_choice(options: list[Candidate]) -> None:
    """Before the feature sets' box is drawn: the default choice on a first visit and whenever the
    data or model changed since the last, and in place of a choice none of whose sets is on offer
    any more; sets no longer on offer drop out."""
    offered = {c.label for c in options}
    held = st.session_state.get("ev_cmp_sets")
    here = (dataset_spec(), model_spec())
    seen = st.session_state.get("_cmp_for")
    st.session_state["_cmp_for"] = here
    kept = [v for v in held or [] if v in offered]
    if held is None or (seen is not None and seen != here) or (held and not kept):
        kept = default_choice(options)
    st.session_state["ev_cmp_sets"] = kept


def suggestion(options: list[Candidate], chosen: list[str]) -> list[Candidate]:
    """What to add so that two sets are compared: nothing chosen, the default choice; one chosen, on
    the demo its other checkpoint at the same layer, otherwise another layer of the same model (its
    default layer, or one about halfway through it)."""
    by_label = {c.label: c for c in options}
    if not chosen:
        return [by_label[label] for label in default_choice(options) if label in by_label]
    if len(chosen) != 1 or chosen[0] not in by_label:
        return []
    one = by_label[chosen[0]]
    if one.spec.architecture == DEMO:
        other = [c for c in options if c.spec.architecture == DEMO and c.spec != one.spec and c.layer == one.layer]
        if other:
            return other[:1]
    own = [c for c in options if c.spec == one.spec and c != one]
    if not own:
        return [c for c in options if c != one][:1]
    default = default_layer(model_for(one.spec))
    if one.layer != default:
        return [c for c in own if c.layer == default][:1] or own[-1:]
    return [own[len(own) // 2]]


def _add(labels: list[str]) -> None:
    """The button's callback: ``labels`` join the chosen sets (before the box is drawn again)."""
    chosen = list(st.session_state.get("ev_cmp_sets") or [])
    st.session_state["ev_cmp_sets"] = chosen + [label for label in labels if label not in chosen]


def offer_another(options: list[Candidate], chosen: list[str]) -> None:
    """Fewer than two sets chosen: say so in one line, with a button that adds what
    :func:`suggestion` proposes (extracted, with a progress bar, when it is not in the store)."""
    extra = suggestion(options, chosen)
    if not extra:
        st.info("Choose two or more feature sets to compare.")
        return
    names = " and ".join(c.label for c in extra)
    st.info(f"Choose two or more feature sets to compare, e.g. {plain(names)}; sets not extracted yet are "
            "extracted when chosen.", icon=":material/compare:")
    st.button(f"Compare with {plain(names)}" if chosen else f"Compare {plain(names)}", key="compare_add",
              type="primary", icon=":material/add:", on_click=_add, args=([c.label for c in extra],))


def too_few(options: list[Candidate]) -> None:
    """Fewer than two feature sets exist for these images (raw pixels, or a model with one output):
    one line on what to do, and the way to Data & model to do it."""
    only = f"{plain(options[0].label)} is the only feature set of these images" if options else \
        "These images have no feature set to compare yet"
    st.info(f"{only}: choose a model on Data & model (a network has many layers to compare) or extract these "
            "images with a second model, then come back here.", icon=":material/compare:")
    st.page_link("pages/1_Data_and_model.py", label="Choose a model", icon=":material/folder_open:")


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


def linked_maps(maps: pd.DataFrame, samples: pd.DataFrame, sets: list[FeatureSet], labels: list[str],
                style: MapStyle, mask: np.ndarray, rows: np.ndarray) -> Previews | None:
    """The sets' maps in a grid, each selectable, with hover previews and linked hover (the image
    under the pointer ringed in every other map); returns the previews, for the page's other maps."""
    n = len(sets)
    previews = previews_for(current_collection(), samples, "|".join(s.key for s in sets))
    per_row = 2 if n in (2, 4) else 3
    for start in range(0, n, per_row):
        cells = st.columns(per_row)
        for i in range(start, min(start + per_row, n)):
            with cells[i - start]:
                st.markdown(f"**{i + 1}. {plain(labels[i])}**")
                figure = scatter_figure(coords(maps, i), samples, style, mask=mask, highlight=rows, height=420)
                map_chart(figure, samples, key=f"compare_map_{i}", color=style.color, previews=previews,
                          link_group="compare")
    if len(rows):
        st.caption(f"{len(rows):,} points selected, ringed in every map. Select again in any map to change it.")
    return previews


def selected_in_any(maps: pd.DataFrame, n: int, mask: np.ndarray) -> np.ndarray:
    """Rows selected (click, box or lasso) in any of the ``n`` maps, read from their charts' state."""
    picked = [selected_rows(st.session_state.get(f"compare_map_{i}"), coords(maps, i), mask) for i in range(n)]
    return np.unique(np.concatenate(picked)).astype(np.int64) if any(len(p) for p in picked) \
        else np.zeros(0, dtype=np.int64)


def separation_section(separation: pd.DataFrame, labels: list[str]) -> None:
    """Each class's k-NN accuracy or silhouette in each set, as grouped bars and a table."""
    from embedviz.explore.figures import separation_figure

    if separation.empty:
        st.info("The images have no labels, so there are no classes to score.")
        return
    seed_defaults("ev_cmp_metric")
    metric = st.segmented_control("Score", ["knn_accuracy", "silhouette"], required=True,
                                  format_func=lambda m: "k-NN accuracy" if m == "knn_accuracy" else "silhouette",
                                  **bound("ev_cmp_metric"))
    table = separation.assign(set=separation["set"].map(lambda s: f"{s}. {labels[int(s) - 1]}"))
    st.plotly_chart(separation_figure(table, metric), key="compare_separation")
    wide = table.pivot_table(index="label", columns="set", values=metric, sort=False)
    st.dataframe(wide.style.format("{:.3f}"), width="stretch")
