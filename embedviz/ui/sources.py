"""The Data & model page's choosers of where things come from: the data (the demo, uploads or server
paths, of images or of features and maps made elsewhere), the model's weights and the class index.
A bad choice is one line under its widget; the current one stays.

"Path on this server" is offered only where the operator shares folders (``EMBEDVIZ_DATA_ROOTS`` or
``[embedviz] data_roots`` in secrets.toml), and reads only inside them. Typed paths are kept in the
session (``ev_`` keys), so they are still there when the user comes back to the page.
"""

from __future__ import annotations

import os

import streamlit as st

from embedviz.data.images import IMAGE_SUFFIXES, ImageCollection, load_collection
from embedviz.data.roots import DATA_ROOTS_VAR, DataRoots, check_server_path, inside_home
from embedviz.data.spec import UPLOAD, DatasetSpec
from embedviz.extract.models import PRETRAINED, PROGRAM, RANDOM
from embedviz.ui.choices import dataset_spec, precomputed_features, set_dataset
from embedviz.ui.server import server_roots
from embedviz.ui.uploads import WEIGHTS_HELP, save_features, save_images, save_weights, weight_suffixes
from embedviz.ui.widgets import guard, plain

__all__ = ["data_source_panel", "precomputed_panel", "weights_source",
           "server_class_index"]

SOURCES = ["Built-in demo (digits)", "Upload", "Path on this server"]
KINDS = ["Images", "Features or a map made elsewhere"]
WEIGHT_SOURCES = ["Upload a file", "Path on this server", "Random (untrained baseline)",
                  "torchvision pretrained (downloads)"]
#: The server-path inputs, kept across pages (``ev_`` keys) and seeded from the current data.
_PATH_KEYS = {"ev_data_path": "path", "ev_data_prefix": "prefix", "ev_data_column": "column",
              "ev_data_metadata": "metadata"}


def _check_server_source(spec: DatasetSpec, roots: DataRoots) -> None:
    """Refuse what the server does not share before anything is kept: each typed path, and for a manifest
    of images every image it lists (folders are walked without following links, so they need no more)."""
    for value in (spec.path, spec.prefix, spec.metadata):
        if value:
            check_server_path(value, roots)
    if spec.kind == "path" and not os.path.isdir(spec.path):
        load_collection(spec.path, spec.prefix or None, path_column=spec.column or None, roots=roots)


def data_source_panel() -> None:
    """Radios for where the data are and what they are, and the inputs each choice needs."""
    spec = dataset_spec()
    roots = server_roots()
    offered = SOURCES if roots else SOURCES[:2]
    index = {"demo": 0, UPLOAD: 1}.get(spec.via or spec.kind, 2)
    source = st.radio("Where is the data?", offered, horizontal=True, index=index if index < len(offered) else None)
    if not roots:
        st.caption(f"Paths on this server cannot be read here: its operator can share folders with {DATA_ROOTS_VAR}.")
    if source is None:  # data from a server path that is no longer shared: kept until something else is chosen
        return
    kind = KINDS[0] if source == SOURCES[0] else st.radio(
        "What is it?", KINDS, horizontal=True, index=int(spec.kind == "features"),
        help="Features: .npy/.npz, Parquet with a vector column, TensorBoard's tensors.tsv + metadata.tsv. "
             "A map: Metascatter's CSV (Paths, X-Coord, Y-Coord, metadata), shown without reducing anything.")
    with guard(stop=False):  # a bad choice is said here and the current data stays
        if source == SOURCES[0]:
            if spec.kind != "demo":
                set_dataset(DatasetSpec())
        elif source == "Upload" and kind == KINDS[0]:
            files = st.file_uploader("A .zip/.tar of class folders, or several images", accept_multiple_files=True,
                                     type=["zip", "tar", "gz", "tgz", *sorted(s.lstrip(".") for s in IMAGE_SUFFIXES)])
            if files and st.button("Use these images", type="primary"):
                set_dataset(DatasetSpec("path", str(save_images(files)), via=UPLOAD))
        elif source == "Upload":
            files = st.file_uploader("Features or map (.npy, .npz, .parquet, Metascatter .csv, or tensors.tsv with "
                                     "metadata.tsv)", accept_multiple_files=True,
                                     type=["npy", "npz", "parquet", "csv", "tsv"])
            meta_file = st.file_uploader("Metadata table (optional; CSV/Parquet, one row per feature row, in order)",
                                         type=["csv", "parquet", "tsv"])
            id_column = st.text_input("Metadata column with sample ids (optional; found by name otherwise)")
            if files and st.button("Use these features", type="primary"):
                path, meta_path = save_features(files, meta_file)
                set_dataset(DatasetSpec("features", str(path), via=UPLOAD, metadata=str(meta_path) if meta_path else "",
                                        id_column=id_column.strip()))
        else:
            for key, field in _PATH_KEYS.items():  # what was typed before, or the current data's own
                typed = getattr(spec, "id_column" if field == "column" and spec.kind == "features" else field)
                st.session_state.setdefault(key, "" if spec.uploaded else typed)
            path = st.text_input("Folder, archive or CSV/Parquet manifest" if kind == KINDS[0] else
                                 "Features file, TensorBoard projector folder or Metascatter CSV", key="ev_data_path",
                                 placeholder="/data/test_images" if kind == KINDS[0] else "/data/features.npy")
            prefix, column = st.columns(2)
            prefix = prefix.text_input("Path prefix for the table's relative image paths (optional)",
                                       key="ev_data_prefix")
            column = column.text_input("Column with the image paths (optional; found by name otherwise)"
                                       if kind == KINDS[0] else "Metadata column with sample ids (optional)",
                                       key="ev_data_column")
            metadata = "" if kind == KINDS[0] else st.text_input("Metadata table joined on row order (optional)",
                                                                 key="ev_data_metadata")
            if st.button("Use this path", type="primary"):
                if not path.strip():
                    st.warning("Type the path first.")
                else:
                    chosen = (DatasetSpec("path", path.strip(), prefix=prefix.strip(), column=column.strip())
                              if kind == KINDS[0] else
                              DatasetSpec("features", path.strip(), prefix=prefix.strip(), metadata=metadata.strip(),
                                          id_column=column.strip()))
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


def _weights_kind(current: str | None) -> str:
    if current == RANDOM:
        return WEIGHT_SOURCES[2]
    if current == PRETRAINED:
        return WEIGHT_SOURCES[3]
    return WEIGHT_SOURCES[0] if current is None or inside_home(current) else WEIGHT_SOURCES[1]


def weights_source(architecture: str, current: str | None) -> str | None:
    """Where ``architecture``'s weights come from: an upload, a file on this server (where the operator
    shares folders), a random baseline or torchvision's (timm's) own. Returns what the widgets name, or ``current``
    (the weights in use for this architecture, ``None`` for none) while they name nothing new."""
    roots = server_roots()
    offered = [k for k in WEIGHT_SOURCES if (roots or k != WEIGHT_SOURCES[1])
               and (architecture != PROGRAM or k in WEIGHT_SOURCES[:2])
               and (not architecture.startswith("clip:") or k != WEIGHT_SOURCES[3])]  # open_clip's: a download
    was = _weights_kind(current)
    kind = offered[0] if len(offered) == 1 else st.radio(
        "Weights", offered, horizontal=True, index=offered.index(was) if was in offered else 0,
        format_func=lambda k: "timm pretrained (downloads from Hugging Face)"
        if k == WEIGHT_SOURCES[3] and architecture.startswith("timm:") else k)
    if kind == WEIGHT_SOURCES[2]:
        return RANDOM
    if kind == WEIGHT_SOURCES[3]:
        return PRETRAINED
    if kind == WEIGHT_SOURCES[0]:
        upload = st.file_uploader(WEIGHTS_HELP[architecture == PROGRAM], type=weight_suffixes())
        if upload:
            with guard(stop=False):
                return str(save_weights(upload))
    else:
        if was == WEIGHT_SOURCES[1]:
            st.session_state.setdefault("ev_weights_path", current)
        path = st.text_input(f"Weights file on this server ({', '.join('.' + s for s in weight_suffixes())})",
                             key="ev_weights_path", placeholder="/data/models/resnet18.pth")
        if st.button("Use these weights"):
            if not path.strip():
                st.warning("Type the path first.")
            else:
                with guard(stop=False):  # outside the shared folders: said here, the current model stays
                    return str(check_server_path(path.strip(), roots))
    if current is not None and kind != was:
        st.caption(f"Until then, the current weights stay: {plain(os.path.basename(current))}.")
    return current


def server_class_index() -> str | None:
    """A class index named by its path on this server (only where the operator shares folders), checked to
    be inside them; ``None`` until one is given."""
    roots = server_roots()
    if not roots:
        return None
    path = st.text_input("…or a class index on this server (.json, .txt)", key="ev_classes_path",
                         placeholder="/data/classes.json")
    if st.button("Use this class index"):
        if not path.strip():
            st.warning("Type the path first.")
            return None
        with guard(stop=False):
            return str(check_server_path(path.strip(), roots))
    return None
