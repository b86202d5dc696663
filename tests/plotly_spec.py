"""Reading plotly figure JSON as Streamlit sends it (typed arrays arrive base64-encoded)."""

from __future__ import annotations

import base64
import json

import numpy as np

_DTYPES = {"f8": np.float64, "f4": np.float32, "i4": np.int32, "i2": np.int16, "i1": np.int8,
           "u4": np.uint32, "u2": np.uint16, "u1": np.uint8}


def _values(field) -> list:
    if isinstance(field, dict) and "bdata" in field:
        return list(np.frombuffer(base64.b64decode(field["bdata"]), dtype=_DTYPES[field["dtype"]]))
    return list(field or [])


def figure_points(spec: str | dict) -> int:
    """How many points the figure draws, over all traces."""
    figure = json.loads(spec) if isinstance(spec, str) else spec
    return sum(len(_values(trace.get("x"))) for trace in figure["data"])


def figure_rows(spec: str | dict, *, skip: tuple[str, ...] = ("highlighted",)) -> list[int]:
    """The row number (``customdata``) of every point, over all traces but the ring of highlighted points."""
    figure = json.loads(spec) if isinstance(spec, str) else spec
    rows: list[int] = []
    for trace in figure["data"]:
        if str(trace.get("name", "")).startswith(skip):
            continue
        custom = trace.get("customdata")
        values = np.asarray(_values(custom))
        if isinstance(custom, dict) and "shape" in custom:  # a 2-D typed array: the row is column 0
            values = values.reshape([int(v) for v in str(custom["shape"]).split(",")])[:, 0]
        elif values.ndim == 2:
            values = values[:, 0]
        rows += [int(v) for v in values]
    return rows


def figures(at) -> list[str]:
    """The figure JSON of every plotly figure on an AppTest page, in page order: those drawn by
    ``st.plotly_chart`` and those drawn by the map component (``embedviz.ui.map_component``)."""
    found = []
    for element in at.get("plotly_chart") + at.get("bidi_component"):
        proto = element.proto
        if element.type == "plotly_chart":
            found.append((element, proto.spec))
        elif proto.component_name == "embedviz.map" and "figure" in json.loads(proto.json):
            found.append((element, json.loads(proto.json)["figure"]))
    return [spec for _, spec in found]


def map_payloads(at) -> list[dict]:
    """What the map component was given on an AppTest page (figure, hover columns, atlas...)."""
    found = [json.loads(e.proto.json) for e in at.get("bidi_component") if e.proto.component_name == "embedviz.map"]
    return [data for data in found if not data.get("preload")]
