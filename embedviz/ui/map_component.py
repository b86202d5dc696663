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
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from embedviz.data.atlas import Atlas
from embedviz.explore.figures import HOVER_COLUMNS, HOVER_TEXT_LIMIT

__all__ = ["PICTURES", "PREVIEW", "Previews", "map_chart", "drawn_rows", "preload", "sheet_urls"]

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
    """The images behind a map's rows: the atlas, for each row of the samples table the index of its
    image in the atlas (``-1``: none), and the sheets' URLs for this script run (:func:`sheet_urls`;
    made once per run and shared by every map on the page)."""

    atlas: Atlas
    index: np.ndarray
    urls: tuple[str, ...]


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


def sheet_urls(atlas: Atlas) -> tuple[str, ...] | None:
    """The atlas's sheets as URLs this app serves: Streamlit's media files, which hold a file while a
    session's latest run added it, so each run that draws a map adds them again (their bytes are read
    once and kept; Streamlit hashes each to name it, about 0.4 ms a sheet). ``None`` outside a
    running app."""
    from streamlit import runtime

    if not runtime.exists():
        return None
    manager = runtime.get_instance().media_file_mgr
    return tuple(manager.add(data, "image/jpeg", f"embedviz-atlas-{atlas.key[:20]}-{s}")
                 for s, data in enumerate(_sheets(atlas.key, atlas)))


@st.cache_resource(max_entries=4, show_spinner=False)
def _sheets(key: str, _atlas: Atlas) -> tuple[bytes, ...]:
    """An atlas's sheets, read from the store once (a few atlases at a time)."""
    return tuple(_atlas.sheet_path(s).read_bytes() for s in range(_atlas.sheets))


def _hover(samples: pd.DataFrame, rows: np.ndarray, color: str | None, previews: Previews | None) -> dict:
    names = [c for c in HOVER_COLUMNS if c in samples.columns and c != "path"]
    if color and color in samples.columns and color not in names and color != "sample_id":
        names.append(color)
    hover: dict[str, Any] = {"rows": _typed(rows.astype(np.int32)),
                             "columns": [_column(samples, c, rows) for c in names]}
    if len(rows) <= HOVER_TEXT_LIMIT:
        hover["ids"] = samples["sample_id"].astype(str).iloc[rows].tolist()
    if previews is not None:
        urls = list(previews.urls)
        if urls:
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


def preload() -> None:
    """Load the map's plotly.js in the browser now, from any page, so the first map a session opens
    does not wait for it (4.8 MB to parse, once per browser tab; Streamlit's own charts bundle theirs).
    An empty element: call it where a gap does not show (the sidebar's end)."""
    _mount()(key="embedviz_map_preload", data={"preload": True})


def _figure_json(figure: go.Figure, custom_hover: bool) -> str:
    """The figure as plotly.js reads it; with our own hover, without plotly's hover text (ids and
    metadata travel once, in the hover columns)."""
    if not custom_hover:
        return figure.to_json(validate=False)
    from plotly.io.json import to_json_plotly

    spec = figure.to_plotly_json()
    for trace in spec.get("data", []):
        if trace.get("type") in ("scattergl", "scatter", "scatter3d"):
            for field in ("text", "hovertext", "hovertemplate"):
                trace.pop(field, None)
    return to_json_plotly(spec)


def map_chart(figure: go.Figure, samples: pd.DataFrame, *, key: str | None, color: str | None = None,
              previews: Previews | None = None, select: bool = True, pictures: int = PICTURES,
              link_group: str | None = None, height: int | None = None, hover: bool = True,
              static: bool = False) -> dict:
    """Draw ``figure`` (a map of ``samples``' rows) and return the selection in ``st.plotly_chart``'s
    event shape (``{"selection": {"points", "box", "lasso"}}``; empty before the first).

    ``previews`` gives the hover preview and pictures their images; maps mounted with the same
    ``link_group`` (each a map of the same ``samples`` rows) share linked hover. ``static``
    (no key, no hover): a picture of the map, e.g. a live frame of a map being optimised, drawn in
    the same element the finished map then takes, so the page never goes blank between them.
    """
    height = int(height or figure.layout.height or 560)
    custom = hover and not static
    data: dict[str, Any] = {"figure": _figure_json(figure, custom), "height": height,
                            "select": bool(select and not static),
                            "pictures": int(pictures) if previews is not None and not static else 0,
                            "hover": _hover(samples, drawn_rows(figure), color, previews) if custom else None}
    if static:
        data["config"] = {"staticPlot": True}
    if link_group:
        data["link"] = {"group": link_group}
    if data["select"] and key:  # what the map showed selected before this run, drawn on the new figure
        held = st.session_state.get(key)
        selected = held.get("selection") if hasattr(held, "get") else None
        data["selected"] = dict(selected) if hasattr(selected, "keys") else None
    if not data["select"]:
        _mount()(key=key, data=data, height=height)
        return {"selection": {}}
    result = _mount()(key=key, data=data, default={"selection": None}, height=height,
                      on_selection_change=lambda: None)
    selection = result.get("selection") if hasattr(result, "get") else getattr(result, "selection", None)
    return {"selection": selection or {}}
