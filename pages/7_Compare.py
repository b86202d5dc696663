"""Compare feature sets of the same images side by side: layers of a model, checkpoints of a
training run, two models. Maps aligned and linked; what changed per point and per class."""

import streamlit as st

from embedviz import ui
from embedviz.explore.figures import MapStyle, add_paths, scatter_figure
from embedviz.explore.filters import apply_filters
from embedviz.maps.reducers import REDUCERS
from embedviz.ui import compare
from embedviz.ui.filters import filter_widgets
from embedviz.ui.map_component import map_chart

ui.page_setup("Compare")
st.title("Compare feature sets")
st.caption("The same images through several layers, checkpoints or models. Each map starts from the one "
           "before it and is turned onto it, so a point sits in a comparable place; select points in any map "
           "to ring them in all.")

if ui.is_precomputed():
    st.info("Compare runs a model on images; these data are features made elsewhere. Choose images on "
            "Data & model to compare layers or checkpoints.")
    ui.sidebar_summary()
    st.stop()

with ui.guard():
    options = compare.candidates()
if len(options) < 2:
    compare.too_few(options)
    ui.sidebar_summary()
    st.stop()
by_label = {c.label: c for c in options}
compare.settle_choice(options)
labels = st.multiselect("Feature sets, in order (e.g. early to late)", list(by_label),
                        help="A model's layers, the demo's early and final checkpoints, and any other model you "
                             "extracted these images with.", **ui.bound("ev_cmp_sets"))
if len(labels) < 2:
    compare.offer_another(options, labels)
    ui.sidebar_summary()
    st.stop()
chosen = [by_label[label] for label in labels]
with ui.guard():
    sets, maps, separation, method = compare.comparison(chosen)
samples = maps[[c for c in sets[0].samples.columns if c in maps.columns]]
n = len(chosen)
st.caption(f"{len(maps):,} images in all {n} feature sets · {REDUCERS[method].label} 2-D (the Reduce page's "
           "settings), each map started from the previous and aligned onto it (Procrustes).")

pair_names = [f"{labels[a]} → {labels[b]}" for a, b in compare.pairs(n)]
side, main = st.columns([2, 5])  # wide enough for the filters' All / Correct / Wrong in a 1,280-pixel window
with side:
    if not 0 <= st.session_state.get("ev_cmp_pair", 0) < n - 1:
        st.session_state["ev_cmp_pair"] = 0
    pair = st.selectbox("Neighbourhood change between", range(len(pair_names)), format_func=pair_names.__getitem__,
                        **ui.bound("ev_cmp_pair")) if n > 2 else 0
    a, b = compare.pairs(n)[pair]
    overlap = maps[f"overlap_{a + 1}_{b + 1}"].to_numpy()
    samples = samples.assign(neighbourhood_overlap=overlap, neighbours_disagree=1.0 - overlap)
    columns = [c for c in samples.columns if c not in ("sample_id", "path")]
    st.session_state.setdefault("ev_cmp_color", "label" if "label" in columns else "neighbourhood_overlap")
    color = st.selectbox("Colour every map by", columns, **ui.bound("ev_cmp_color"),
                         help="neighbourhood_overlap: the share of a point's 10 nearest neighbours that are the "
                              "same in both feature sets (low: it moved); neighbours_disagree: the share that are not "
                              "(e.g. a CLIP model's space against your classifier's)")
    with ui.guard():
        filters = filter_widgets(samples)
        mask = apply_filters(samples, filters)
    st.metric(f"Points shown, of {len(samples):,}", f"{int(mask.sum()):,}")

style = MapStyle(color=color, size=5.0)
rows = compare.selected_in_any(maps, n, mask)
with main:
    previews = compare.linked_maps(maps, samples, sets, labels, style, mask, rows)
    st.caption("Rest the pointer on a point to see its image; the same image is ringed in every other map.")

tabs = st.tabs(["Step through", "Moved most", "Separation by class"])
with tabs[0]:
    if not 0 <= st.session_state.get("ev_cmp_step", n - 1) < n:
        st.session_state["ev_cmp_step"] = n - 1
    st.session_state.setdefault("ev_cmp_step", n - 1)
    step = st.select_slider("Feature set", range(n), format_func=lambda i: f"{i + 1}. {labels[i]}",
                            **ui.bound("ev_cmp_step"))
    figure = scatter_figure(compare.coords(maps, step), samples, style, mask=mask, height=560)
    traced = rows[:300]
    if len(traced):
        add_paths(figure, compare.paths(maps, traced, n), labels, step)
        st.caption(f"Lines trace the {len(traced):,} selected points through every set"
                   + (" (the first 300)" if len(rows) > 300 else "") + ".")
    else:
        st.caption("Select points in a map above to trace their way through the sets.")
    map_chart(figure, samples, key="compare_step", color=color, previews=previews, select=False)
with tabs[1]:
    moved, median = compare.moved_most(samples, overlap)
    st.markdown(f"**The 24 points whose neighbourhood changed most** from {ui.plain(labels[a])} to "
                f"{ui.plain(labels[b])} (median overlap {median:.2f})")
    ui.gallery(moved, ui.current_collection().root, key="compare_moved", per_page=24, controls=False)
with tabs[2]:
    compare.separation_section(separation, labels)
ui.sidebar_summary()
