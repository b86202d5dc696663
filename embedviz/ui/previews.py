"""The images behind a map's points, for the hover preview and the pictures drawn in place of dots:
the collection's sprite atlas (made once per collection, under a progress bar, then found in the
store) and each map row's place in it. The atlas is made by a background job (a progress bar and a
Cancel button meanwhile), like an extraction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from embedviz.data.atlas import Atlas, atlas_key, open_atlas
from embedviz.data.images import ImageCollection
from embedviz.errors import Cancelled, EmbedVizError, first_line
from embedviz.serve.jobs import Task, pack_thumbnails
from embedviz.ui.auth import viewer
from embedviz.ui.choices import dataset_spec, image_hashes, spec_json
from embedviz.ui.jobs import runner, wait_for
from embedviz.ui.map_component import Previews, sheet_urls
from embedviz.ui.widgets import plain

__all__ = ["previews_for", "MAX_IMAGES"]

#: Larger collections get no previews: their atlas would take minutes to make on a small server.
MAX_IMAGES = 300_000


@st.cache_resource(max_entries=16, show_spinner=False)
def _opened(key: str) -> Atlas:
    found = open_atlas(key)
    if found is None:
        raise LookupError(key)  # not cached: made next
    return found


@st.cache_resource(max_entries=16, show_spinner=False)
def _positions(atlas_key_: str, features_key: str, _collection_ids: pd.Series, _feature_ids: pd.Series) -> np.ndarray:
    """For each row of the features, the position of its image in the collection (``-1``: none)."""
    first = pd.Series(np.arange(len(_collection_ids), dtype=np.int32), index=_collection_ids.astype(str).to_numpy())
    first = first[~first.index.duplicated()]  # an id given twice: its first image
    return first.reindex(_feature_ids.astype(str).to_numpy()).fillna(-1).to_numpy(dtype=np.int32)


def _paths(collection: ImageCollection) -> list[str]:
    """Each image's file; a row without a path (features made elsewhere) gets an empty cell."""
    return ["" if pd.isna(rel) else str(collection.root / rel) for rel in collection.samples["path"]]


def _atlas(collection: ImageCollection) -> Atlas | None:
    hashes = image_hashes(spec_json(dataset_spec()), collection)
    if not hashes or all(h == "missing" for h in hashes):
        return None
    key = atlas_key(hashes)
    try:
        return _opened(key)
    except LookupError:
        pass
    owner, job_key = viewer().id, f"atlas:{key}"
    job = runner().get(job_key, owner)
    if job is not None and job.status == "cancelled":
        return None  # this viewer said no; the map goes on without previews until the next server start
    job = runner().submit(job_key, f"Thumbnails of {collection.name} for the map's previews",
                          Task(pack_thumbnails, (_paths(collection), list(hashes))), owner=owner)
    wait_for(job, work="packing thumbnails", doing="Packing")
    return _opened(key)


def previews_for(collection: ImageCollection, samples: pd.DataFrame, features_key: str) -> Previews | None:
    """The atlas of ``collection`` and each of ``samples``' rows in it; ``None`` for data without
    images (features made elsewhere) or too many of them."""
    table = collection.samples
    if table.empty or "path" not in table.columns or len(table) > MAX_IMAGES or table["path"].isna().all():
        return None
    try:
        atlas = _atlas(collection)
    except Cancelled:
        return None
    except (OSError, EmbedVizError, LookupError) as error:  # the map works without them
        st.caption(f"No image previews on this map: {plain(first_line(error))}")
        return None
    if atlas is None:
        return None
    urls = sheet_urls(atlas)
    if not urls:
        return None
    return Previews(atlas, _positions(atlas.key, features_key, table["sample_id"], samples["sample_id"]), urls)
