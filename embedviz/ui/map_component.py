"""The map as a component of our own (``embedviz/ui/assets/map.js``, Streamlit's components v2).

It draws the same plotly figure ``st.plotly_chart`` drew, with the plotly.js that ships inside this
package (served by the app itself: nothing from a CDN), and adds what ``st.plotly_chart`` cannot:

- **hover preview**: the image under the pointer, cut in the browser from the collection's sprite
  atlas (:mod:`embedviz.data.atlas`), with its label, prediction and confidence: no round trip to the
  server per hover. Data without images show the text only;
- **pictures instead of dots** once a zoom leaves at most :data:`PICTURES` points in view, framed in the
  point's colour; zooming out brings the dots back;
- **linked hover**: maps mounted with the same ``link`` group mark the point another one hovers;
- click, box and lasso selections come back to Python in ``st.plotly_chart``'s event shape, so
  :func:`embedviz.explore.selection.selected_rows` reads both.

Every string the component shows (ids, labels, class names) goes as data and is set as text in the
browser, never as HTML.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from embedviz.data.atlas import Atlas
from embedviz.explore.figures import HOVER_COLUMNS, HOVER_TEXT_LIMIT

__all__ = ["PICTURES", "PREVIEW", "Previews", "map_chart", "drawn_rows"]

#: At most this many points in view are drawn as their images (more, and they stay dots).
PICTURES = 1500
#: The hover preview's longer side, in CSS pixels.
PREVIEW = 112
_NAME = "embedviz.map"  # declared in pyproject.toml ([tool.streamlit.component]), assets in ui/assets
_component: Any = None


def _mount() -> Any:
    """The component's mounting command, registered on first use (it needs the running app's
    component registry, which has read the package's manifest)."""
    global _component
    if _component is None:
        _component = st.components.v2.component(_NAME, js="map.js", isolate_styles=False)
    return _component


@dataclass(frozen=True)
class Previews:
    """The images behind a map's rows: the atlas and, for each row of the samples table, the index of
    its image in the atlas (``-1``: none)."""

    atlas: Atlas
    index: np.ndarray


def _typed(values: np.ndarray) -> dict:
    """An array as plotly's Python side writes one (the browser decodes it without parsing numbers)."""
    values = np.ascontiguousarray(values)
    kind = {np.dtype(np.float32): "f4", np.dtype(np.float64): "f8", np.dtype(np.int32): "i4",
            np.dtype(np.uint8): "u1", np.dtype(np.uint16): "u2", np.dtype(np.int16): "i2"}[values.dtype]
    return {"dtype": kind, "bdata": base64.b64encode(values.tobytes()).decode("ascii")}


def drawn_rows(figure: go.Figure) -> np.ndarray:
    """The rows of the samples table the figure draws (each point carries its row as ``customdata``)."""
    found = []
    for trace in figure.data:
        custom = getattr(trace, "customdata", None)
        if custom is None:
            continue
        custom = np.asarray(custom)
        if custom.size and custom.dtype.kind in "fiu":
            found.append((custom[:, 0] if custom.ndim == 2 else custom).astype(np.int64))
    return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)


def _column(samples: pd.DataFrame, name: str, rows: np.ndarray) -> dict:
    values = samples[name].iloc[rows]
    if pd.api.types.is_float_dtype(values):
        numbers = values.to_numpy(dtype=np.float64)
        finite = numbers[np.isfinite(numbers)]
        share = bool(finite.size and finite.min() >= 0 and finite.max() <= 1)
        return {"name": name, "kind": "num", "share": share, "values": _typed(numbers.astype(np.float32))}
    text = values.astype("string").fillna("")
    codes, categories = pd.factorize(text)
    return {"name": name, "kind": "cat", "categories": [str(c) for c in categories],
            "codes": _typed(codes.astype(np.int32))}


def _sheet_urls(atlas: Atlas) -> list[str] | None:
    """The atlas's sheets as URLs this app serves (Streamlit's media files, kept while this session's
    page shows the map); ``None`` outside a running app."""
    from streamlit import runtime

    if not runtime.exists():
        return None
    manager = runtime.get_instance().media_file_mgr
    return [manager.add(_sheet_bytes(str(atlas.sheet_path(s))), "image/jpeg", f"embedviz-atlas-{atlas.key[:20]}-{s}")
            for s in range(atlas.sheets)]


@st.cache_resource(max_entries=512, show_spinner=False)
def _sheet_bytes(path: str) -> bytes:
    # read once: Streamlit hashes only the ends of a large file, so adding it again each run is cheap
    with open(path, "rb") as handle:
        return handle.read()


def _hover(samples: pd.DataFrame, rows: np.ndarray, color: str | None, previews: Previews | None) -> dict:
    names = [c for c in HOVER_COLUMNS if c in samples.columns and c != "path"]
    if color and color in samples.columns and color not in names and color != "sample_id":
        names.append(color)
    hover: dict[str, Any] = {"rows": _typed(rows.astype(np.int32)),
                             "columns": [_column(samples, c, rows) for c in names]}
    if len(rows) <= HOVER_TEXT_LIMIT:
        hover["ids"] = samples["sample_id"].astype(str).iloc[rows].tolist()
    if previews is not None:
        urls = _sheet_urls(previews.atlas)
        if urls is not None:
            atlas = previews.atlas
            index = previews.index[rows].astype(np.int32)
            have = index >= 0
            index[have & ~atlas.readable[np.clip(index, 0, None)]] = -1  # an unreadable image has no preview
            sizes = np.zeros((len(rows), 2), dtype=np.uint8)
            sizes[have] = atlas.sizes[index[have]]
            hover["atlas"] = {"urls": urls, "cell": int(atlas.cell), "per_row": int(atlas.per_row),
                              "per_sheet": int(atlas.per_sheet), "show": PREVIEW, "index": _typed(index),
                              "sizes": _typed(sizes.reshape(-1)),
                              "sheet_sizes": [[int(v) for v in atlas.sheet_size(s)] for s in range(atlas.sheets)]}
    return hover


def map_chart(figure: go.Figure, samples: pd.DataFrame, *, key: str | None, color: str | None = None,
              previews: Previews | None = None, select: bool = True, pictures: int = PICTURES,
              link: Sequence[str] | None = None, link_group: str = "", height: int | None = None,
              hover: bool = True, static: bool = False) -> dict:
    """Draw ``figure`` (a map of ``samples``' rows) and return the selection in ``st.plotly_chart``'s
    event shape (``{"selection": {"points", "box", "lasso"}}``; empty before the first).

    ``previews`` gives the hover preview and pictures their images; ``link`` (one id per row of
    ``samples``) joins every map mounted with the same ``link_group`` in linked hover. ``static``
    (no key, no hover): a picture of the map, e.g. a live frame of a map being optimised, drawn in
    the same element the finished map then takes, so the page never goes blank between them.
    """
    height = int(height or figure.layout.height or 560)
    data: dict[str, Any] = {"figure": figure.to_json(validate=False), "height": height,
                            "select": bool(select and not static),
                            "pictures": int(pictures) if previews is not None and not static else 0,
                            "hover": _hover(samples, drawn_rows(figure), color, previews)
                            if hover and not static else None}
    if static:
        data["config"] = {"staticPlot": True}
    if link is not None:
        data["link"] = {"group": link_group, "ids": [str(i) for i in link]}
    if not data["select"]:
        _mount()(key=key, data=data, height=height)
        return {"selection": {}}
    result = _mount()(key=key, data=data, default={"selection": None}, height=height,
                      on_selection_change=lambda: None)
    selection = result.get("selection") if hasattr(result, "get") else getattr(result, "selection", None)
    return {"selection": selection or {}}
