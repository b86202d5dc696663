"""The Explore page's tabs below the map: the model's mistakes, clusters, images drawn on the map and
the exports. The page lays them out; the work is in the core."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from embedviz.explore.export import (
    coordinates_table,
    map_png,
    map_title,
    metascatter_table,
    projector_zip,
    table_parquet,
    to_csv,
    view_html,
)
from embedviz.explore.figures import MapStyle, confusion_figure
from embedviz.explore.filters import Filter, describe_filter, why_nothing_shown
from embedviz.explore.mistakes import (
    CLASSES_ARE_NOT_LABELS,
    cell_rows,
    confident_errors,
    confusion_table,
    unsure_correct,
    why_no_mistakes,
)
from embedviz.explore.render import MAX_THUMBNAILS, point_colours, thumbnail_map
from embedviz.explore.summary import accuracy
from embedviz.maps.clusters import METHODS as CLUSTER_METHODS
from embedviz.maps.clusters import SPACES as CLUSTER_SPACES
from embedviz.maps.clusters import cluster_points
from embedviz.maps.reducers.neighbours import prepare
from embedviz.ui.choices import current_layer, current_model, is_precomputed, model_label
from embedviz.ui.explore_state import CLUSTERS, CONFUSION, clusters_for, confusion_cells, memo
from embedviz.ui.maps import MapView
from embedviz.ui.session import seed_defaults
from embedviz.ui.widgets import gallery, guard, plain, progress_callback

__all__ = ["nothing_shown_note", "mistakes_section", "clusters_section", "images_on_map_section", "exports_section"]


def mistakes_section(view: MapView, samples: pd.DataFrame, pictures: bool = True) -> None:
    """The confusion matrix (a cell selects its samples, ringed on the map) and the answers worth a look
    (their images only when ``pictures``: the tab is open; the matrix is drawn either way, as it holds
    the chosen cells that the map rings)."""
    reason = why_no_mistakes(samples)
    if reason is not None:
        st.info(plain(reason))
        if reason.startswith(CLASSES_ARE_NOT_LABELS):
            st.page_link("pages/1_Data_and_model.py", label="Data & model: the class index",
                         icon=":material/database:")
        return
    score = accuracy(samples)
    if score is not None:
        scope = "test samples" if score.scope == "test" else "samples"
        st.caption(f"Accuracy {score.value:.1%} on {score.count:,} {scope}: "
                   f"{score.mistakes:,} mistakes.")
    table = memo("confusion", view.features.key, lambda: confusion_table(samples))
    st.markdown("**Label against prediction.** Click a cell, or box several, to ring their samples on the map "
                "and see them below (double-click empty space to clear).")
    matrix, chosen = st.columns([3, 4])
    with matrix:
        side = max(table.shape)
        st.plotly_chart(confusion_figure(table, height=int(min(900, max(420, 60 + side * 34)))), key=CONFUSION,
                        on_select="rerun", selection_mode=("points", "box"))
    cells = confusion_cells()
    if not pictures:
        return
    with chosen:
        if cells:
            rows = samples.iloc[cell_rows(samples, cells)]
            st.markdown(f"**{len(rows):,} samples** in the chosen cells")
            gallery(rows, view.collection.root, key="confusion", per_page=12, columns=4)
        else:
            st.info("Click a cell of the matrix to see its samples here; off the diagonal are the mistakes.")
    wrong, unsure = st.columns(2)
    with wrong:
        st.markdown("**Wrong, and sure of it** (most confident mistakes: often a wrong label)")
        errors = memo("errors", view.features.key, lambda: confident_errors(samples, 24))
        gallery(errors, view.collection.root, key="confident_errors", per_page=12, columns=4,
                empty="The model makes no mistakes here.")
    with unsure:
        st.markdown("**Right, but unsure** (least confident correct answers: the edges of a class)")
        unsure_rows = memo("unsure", view.features.key, lambda: unsure_correct(samples, 24))
        gallery(unsure_rows, view.collection.root, key="unsure_correct", per_page=12, columns=4,
                empty="No correct answers to show.")


@dataclass(frozen=True)
class _Scope:
    """The points a clustering ran on: a digest of the filters' mask, how many, and the filters in words."""

    digest: str
    points: int
    filters: str


def _scope(mask: np.ndarray, filters: list[Filter]) -> _Scope:
    said = "; ".join(describe_filter(f) for f in filters) if int(mask.sum()) < len(mask) else ""
    return _Scope(hashlib.sha256(np.packbits(mask).tobytes()).hexdigest()[:16], int(mask.sum()), said)


def clusters_section(view: MapView, samples: pd.DataFrame, rows: np.ndarray, mask: np.ndarray,
                     filters: list[Filter], pictures: bool = True) -> None:
    """Find clusters, on the features or the map, of the points the filters keep; show each
    cluster's size, make-up and typical images (all of the same points; the images only when
    ``pictures``: the tab is open). Finding them colours the map by cluster; the map keeps its selection."""
    seed_defaults("ev_cluster_k", "ev_cluster_min")
    scope = _scope(mask, filters)
    with st.form("explore_clusters_form", border=False):
        a, b, c, d = st.columns(4)
        method = a.selectbox("Method", CLUSTER_METHODS, key="ev_cluster_method",
                             format_func=lambda m: {"kmeans": "k-means", "hdbscan": "HDBSCAN"}[m])
        space = b.selectbox("On", CLUSTER_SPACES, key="ev_cluster_space",
                            help="Features: groups the model's features make (PCA to 50 dimensions first). "
                                 "Map: groups you see in the picture.")
        k = c.number_input("Clusters (k-means)", 2, 200, key="ev_cluster_k")
        size = d.number_input("Smallest cluster (HDBSCAN)", 2, 10_000, key="ev_cluster_min")
        go = st.form_submit_button("Find clusters", icon=":material/bubble_chart:",
                                   help="Clusters the points the filters keep." if scope.filters else None)
    if go:
        with guard(stop=False), st.spinner("Clustering..."):
            x = (prepare(view.features.features, "none", 50, 0, key=view.features.key) if space == "features"
                 else view.embedding.coords)
            clustering = cluster_points(x, method, k=int(k), min_cluster_size=int(size), space=space,
                                        rows=mask if scope.filters else None)
            identity = view.features.key if space == "features" else view.embedding.key
            st.session_state[CLUSTERS] = (identity, clustering, scope)
            st.session_state["explore_colour_next"] = "cluster"
            st.rerun()  # the new column shows in the colour and filter lists
    clustering = clusters_for(view)
    if clustering is None:
        st.caption("Sub-groups inside a class, or a class split in two, show up as clusters. The clusters become "
                   "a column, `cluster`, to colour and filter the map by."
                   + (f" Clusters are found among the {scope.points:,} points the filters keep."
                      if scope.filters else ""))
        return
    found: _Scope = st.session_state[CLUSTERS][2]
    kept = f" (the points kept by: {plain(found.filters)})" if found.filters else ""
    st.caption(clustering.description + kept + ". Each cluster's label make-up and its most typical images "
               "(those nearest its centre) are of these same points.")
    if found.digest != scope.digest:
        st.info(f"The filters have changed since these clusters were found on {found.points:,} points; press Find "
                f"clusters to cluster the {scope.points:,} points shown now.", icon=":material/filter_alt:")
    summary = clustering.summary(samples)
    st.dataframe(summary, hide_index=True, width="stretch",
                 column_config={"share": st.column_config.ProgressColumn("share", format="percent", min_value=0,
                                                                         max_value=1)})
    for _, row in summary.head(20 if pictures else 0).iterrows():
        name = str(row["cluster"])
        reps = clustering.representatives.get(name, [])
        if not reps:
            continue
        made_of = f" · {plain(row['make-up'])}" if "make-up" in row else ""
        st.markdown(f"**Cluster {plain(name)}** · {int(row['points']):,} points{made_of}")
        gallery(samples.iloc[reps], view.collection.root, key=f"cluster_{name}", per_page=len(reps),
                columns=max(6, len(reps)), controls=False)


def images_on_map_section(view: MapView, samples: pd.DataFrame, style: MapStyle, mask: np.ndarray) -> None:
    """The images themselves at their places on the map, framed in their colour; a PNG to keep."""
    if view.embedding.n_components != 2:
        st.info("Images are drawn on 2-D maps; choose 2-D on the Reduce page.")
        return
    if "path" not in samples.columns or samples["path"].isna().all():
        st.info("These points come without images.")
        return
    shown = np.flatnonzero(mask)
    a, b = st.columns(2)
    seed_defaults("ev_thumbs_max", "ev_thumbs_size")
    most = a.number_input("At most this many images", 50, MAX_THUMBNAILS, step=50, key="ev_thumbs_max")
    size = b.slider("Image size (pixels)", 16, 96, step=4, key="ev_thumbs_size")
    identity = (view.embedding.key, style, int(most), int(size), hash(mask.tobytes()))
    held = st.session_state.get("explore_thumbs")
    if st.button("Draw the images on the map", icon=":material/photo_library:"):
        with progress_callback("Drawing images", "images") as progress:
            colours = point_colours(samples, style)
            picture, drawn = thumbnail_map(view.embedding.coords[shown], samples["path"].to_numpy()[shown].tolist(),
                                           view.collection.root, colours[shown], max_images=int(most),
                                           thumb=int(size), progress=progress)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG", optimize=True)
        held = (identity, buffer.getvalue(), len(drawn), len(shown))
        st.session_state["explore_thumbs"] = held
    if held is None:
        st.caption(f"Draws the images of up to {int(most):,} of the {len(shown):,} points shown (a random sample "
                   "above that, said when it happens), each framed in its point's colour.")
        return
    if held[0] != identity:
        st.caption("The picture below was drawn before the map, style or filters changed; draw again to update it.")
    _, png, drawn, of = held
    if drawn < of:
        st.info(f"Drew a random sample of {drawn:,} of the {of:,} points shown (seed 0); raise the limit to draw more.")
    st.image(png, caption=f"{drawn:,} images at their places on the map")
    st.download_button("Download this picture (PNG)", png, file_name="map_images.png", mime="image/png",
                       on_click="ignore")


def _map_source(view: MapView) -> str:
    """What the map is of, for an export's title: ``digits (demo) · demo CNN (final, 12 epochs)/fc1``."""
    if is_precomputed():
        return f"{view.collection.name} (features made elsewhere)"
    model = current_model()
    return f"{view.collection.name} · {model_label(model)}/{current_layer(model)}"


def nothing_shown_note(samples: pd.DataFrame, filters: list[Filter]) -> None:
    """Where the map is drawn: when the filters keep no point, one line that says which and what to do."""
    note = why_nothing_shown(samples, filters)
    if note:
        st.warning(plain(note), icon=":material/filter_alt_off:")


def exports_section(view: MapView, samples: pd.DataFrame, style: MapStyle, mask: np.ndarray,
                    filters: list[Filter] | None = None) -> None:
    """Every export is built when its button is clicked, not on every rerun (a lasso is a rerun).
    The HTML and PNG say what the map is (method, data, model and layer, how many points, the
    filters) and carry the colours' legend."""
    embedding = view.embedding
    shown = np.flatnonzero(mask)
    st.markdown(f"The map: {len(samples):,} points, {len(shown):,} shown by the filters.")
    a, b, c = st.columns(3)
    a.download_button("Coordinates and metadata (CSV)", lambda: to_csv(coordinates_table(embedding, samples)),
                      file_name="map.csv", mime="text/csv", on_click="ignore", icon=":material/table:")
    b.download_button("Coordinates and metadata (Parquet)",
                      lambda: table_parquet(coordinates_table(embedding, samples)), file_name="map.parquet",
                      mime="application/octet-stream", on_click="ignore", icon=":material/table:")
    c.download_button("Metascatter's CSV", lambda: to_csv(metascatter_table(embedding, samples)),
                      file_name="metascatter.csv", mime="text/csv", on_click="ignore", icon=":material/table:",
                      help="Paths, X-Coord, Y-Coord and the metadata, as Metascatter reads them.")
    source = _map_source(view)
    note = (("Shown: " + "; ".join(describe_filter(f) for f in filters))
            if filters and len(shown) < len(samples) else None)
    a.download_button("This view as interactive HTML (works offline)",
                      lambda: view_html(embedding, samples, style, mask, source=source, note=note),
                      file_name="map.html", mime="text/html", on_click="ignore", icon=":material/html:",
                      help="The map with its colours, legend and filters; plotly.js is embedded.")
    b.download_button("This view as a picture (PNG)",
                      lambda: map_png(embedding.coords, samples, style, mask, note=note,
                                      title=map_title(embedding, len(shown), source=source, total=len(samples))),
                      file_name="map.png", mime="image/png", on_click="ignore", icon=":material/image:",
                      disabled=embedding.n_components != 2 or not len(shown),
                      help="Every shown point, 2,400 pixels wide, with a title and the colours' legend. The camera in "
                           "the map's toolbar saves what is on screen.")
    c.download_button("Features for TensorBoard's projector (zip)",
                      lambda: projector_zip(view.features.features, samples, images_root=view.collection.root),
                      file_name="projector.zip", mime="application/zip", on_click="ignore",
                      icon=":material/deployed_code:",
                      help="tensors.tsv, metadata.tsv, a sprite of the images and projector_config.pbtxt")

