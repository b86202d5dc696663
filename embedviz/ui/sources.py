"""The Data & model page's data chooser: the demo, uploads or server paths, of images or of
features and maps made elsewhere. A bad choice is one line under its widget; the current data stay.

"Path on this server" is offered only where the operator shares folders (``EMBEDVIZ_DATA_ROOTS`` or
``[embedviz] data_roots`` in secrets.toml), and reads only inside them.
"""

from __future__ import annotations

import os

import streamlit as st

from ..home import DATA_ROOTS_VAR, DataRoots, check_server_path, data_roots
from ..images import IMAGE_SUFFIXES, ImageCollection, load_collection
from . import links
from .state import dataset_spec, precomputed_features, set_dataset
from .uploads import save_features, save_images
from .widgets import plain
from .widgets import guard

__all__ = ["data_source_panel", "precomputed_panel", "server_roots"]

SOURCES = ["Built-in demo (digits)", "Upload", "Path on this server"]
KINDS = ["Images", "Features or a map made elsewhere"]


def server_roots() -> DataRoots:
    """The folders this server shares: ``EMBEDVIZ_DATA_ROOTS`` and ``[embedviz] data_roots`` in secrets.toml
    (a list, or one string separated like the variable)."""
    section = links._secrets_section("embedviz") or {}
    return data_roots(section.get("data_roots"))


def _check_server_source(spec: dict[str, str], roots: DataRoots) -> None:
    """Refuse what the server does not share before anything is kept: each typed path, and for a manifest
    of images every image it lists (folders are walked without following links, so they need no more)."""
    for field in ("path", "prefix", "metadata"):
        if spec.get(field):
            check_server_path(spec[field], roots)
    if spec["kind"] == "path" and not os.path.isdir(spec["path"]):
        load_collection(spec["path"], spec.get("prefix") or None, path_column=spec.get("column") or None, roots=roots)


def data_source_panel() -> None:
    """Radios for where the data are and what they are, and the inputs each choice needs."""
    spec = dataset_spec()
    roots = server_roots()
    offered = SOURCES if roots else SOURCES[:2]
    index = {"demo": 0, "upload": 1}.get(spec.get("via", spec["kind"]), 2)
    source = st.radio("Where is the data?", offered, horizontal=True, index=index if index < len(offered) else None)
    if not roots:
        st.caption(f"Paths on this server cannot be read here: its operator can share folders with {DATA_ROOTS_VAR}.")
    if source is None:  # data from a server path that is no longer shared: kept until something else is chosen
        return
    kind = KINDS[0] if source == SOURCES[0] else st.radio(
        "What is it?", KINDS, horizontal=True, index=int(spec["kind"] == "features"),
        help="Features: .npy/.npz, Parquet with a vector column, TensorBoard's tensors.tsv + metadata.tsv. "
             "A map: Metascatter's CSV (Paths, X-Coord, Y-Coord, metadata), shown without reducing anything.")
    with guard(stop=False):  # a bad choice is said here and the current data stays
        if source == SOURCES[0]:
            if spec["kind"] != "demo":
                set_dataset({"kind": "demo"})
        elif source == "Upload" and kind == KINDS[0]:
            files = st.file_uploader("A .zip/.tar of class folders, or several images", accept_multiple_files=True,
                                     type=["zip", "tar", "gz", "tgz", *sorted(s.lstrip(".") for s in IMAGE_SUFFIXES)])
            if files and st.button("Use these images", type="primary"):
                set_dataset({"kind": "path", "via": "upload", "path": str(save_images(files))})
        elif source == "Upload":
            files = st.file_uploader("Features or map (.npy, .npz, .parquet, Metascatter .csv, or tensors.tsv with "
                                     "metadata.tsv)", accept_multiple_files=True, type=["npy", "npz", "parquet", "csv", "tsv"])
            meta_file = st.file_uploader("Metadata table (optional; CSV/Parquet, one row per feature row, in order)",
                                         type=["csv", "parquet", "tsv"])
            id_column = st.text_input("Metadata column with sample ids (optional; found by name otherwise)")
            if files and st.button("Use these features", type="primary"):
                path, meta_path = save_features(files, meta_file)
                set_dataset({"kind": "features", "via": "upload", "path": str(path),
                                "metadata": str(meta_path) if meta_path else "", "id_column": id_column.strip()})
        else:
            path = st.text_input("Folder, archive or CSV/Parquet manifest" if kind == KINDS[0] else
                                 "Features file, TensorBoard projector folder or Metascatter CSV",
                                 placeholder="/data/test_images" if kind == KINDS[0] else "/data/features.npy")
            prefix, column = st.columns(2)
            prefix = prefix.text_input("Path prefix for the table's relative image paths (optional)")
            column = column.text_input("Column with the image paths (optional; found by name otherwise)"
                                       if kind == KINDS[0] else "Metadata column with sample ids (optional)")
            metadata = "" if kind == KINDS[0] else st.text_input("Metadata table joined on row order (optional)")
            if st.button("Use this path", type="primary"):
                if not path.strip():
                    st.warning("Type the path first.")
                else:
                    chosen = ({"kind": "path", "path": path.strip(), "prefix": prefix.strip(), "column": column.strip()}
                              if kind == KINDS[0] else
                              {"kind": "features", "path": path.strip(), "metadata": metadata.strip(),
                               "id_column": column.strip(), "prefix": prefix.strip()})
                    _check_server_source(chosen, roots)
                    set_dataset(chosen)


def precomputed_panel(collection: ImageCollection) -> None:
    """What was loaded when the data are features or a map: counts, hidden paths, the table."""
    table = collection.samples
    features = precomputed_features()
    what = ("a map with its own coordinates" if features.manifest.get("given_coordinates")
            else f"{features.features.shape[1]}-dimensional features")
    st.success(f"**{plain(collection.name)}**: {len(table):,} points, {what}"
               + (f", {table['label'].nunique()} classes" if "label" in table else ""))
    hidden = features.manifest.get("paths_not_shown", 0)
    if hidden:
        st.warning(f"{hidden} image paths are absolute, leave the prefix or are URLs; those points have no "
                   "thumbnail (give paths relative to a path prefix).")
    st.dataframe(table.head(200), hide_index=True, height=220)
    st.info("These features were made elsewhere: no model runs, and the map is made from them directly.")
    st.page_link("pages/3_Reduce.py", label="Next: make the map", icon=":material/tune:")
