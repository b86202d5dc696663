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
