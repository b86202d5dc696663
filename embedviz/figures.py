"""Plotly figures: the WebGL scatter of a map, a pure function of coordinates, colour and mask.

Every point carries its ``sample_id`` as ``customdata[0]``, so a selection maps back to
samples by id, never by position (px splits points into one trace per colour).
"""

from __future__ import annotations

import colorsys
import re
from typing import Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

__all__ = ["categorical_palette", "is_categorical", "natural_order", "scatter_figure", "frame_figure", "HOVER_COLUMNS"]

HOVER_COLUMNS = ("path", "label", "prediction", "confidence", "split")
_MAX_CATEGORIES_FOR_NUMBERS = 20


def categorical_palette(n: int) -> list[str]:
    """``n`` distinct colours: plotly's hand-picked sets first, then evenly spread hues."""
    base = list(px.colors.qualitative.Plotly) + list(px.colors.qualitative.Dark24) + list(px.colors.qualitative.Light24)
    seen: list[str] = []
    for colour in base:
        if colour not in seen:
            seen.append(colour)
    if n <= len(seen):
        return seen[:n]
    extra = []
    for i in range(n - len(seen)):
        hue = (i * 0.618033988749895) % 1.0  # golden-ratio steps keep neighbours apart
        lightness = (0.35, 0.5, 0.65)[i % 3]
        r, g, b = colorsys.hls_to_rgb(hue, lightness, 0.75)
        extra.append(f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}")
    return seen + extra


def is_categorical(series: pd.Series) -> bool:
    """Strings, booleans and numbers with few distinct values are coloured as categories."""
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        return True
    return series.nunique(dropna=True) <= _MAX_CATEGORIES_FOR_NUMBERS and pd.api.types.is_integer_dtype(series)


def natural_order(values: Sequence[object]) -> list[str]:
    """Category names sorted as a person expects: ``2`` before ``10``."""
    def key(value: str) -> list[object]:
        return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", value)]

    return sorted({str(v) for v in values}, key=key)


def scatter_figure(
    coords: np.ndarray,
    samples: pd.DataFrame,
    color: str | None = None,
    *,
    mask: np.ndarray | None = None,
    hover: Sequence[str] = HOVER_COLUMNS,
    height: int = 640,
    point_size: float = 5.0,
) -> go.Figure:
    """The map as a WebGL scatter (2-D) or a 3-D scatter, coloured by ``color``.

    ``mask`` hides filtered-out points. The figure depends only on its arguments, so the
    same inputs give the same figure and Streamlit keeps the user's selection across reruns.
    """
    dims = coords.shape[1]
    frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1]})
    if dims == 3:
        frame["z"] = coords[:, 2]
    frame["sample_id"] = samples["sample_id"].astype(str).to_numpy()
    hover_cols = [c for c in hover if c in samples.columns and c != color]
    for column in hover_cols:
        frame[column] = samples[column].to_numpy()
    kwargs: dict = {"custom_data": ["sample_id"], "hover_name": "sample_id", "hover_data": {c: True for c in hover_cols}}
    kwargs["hover_data"].update({"x": False, "y": False, **({"z": False} if dims == 3 else {})})
    if color and color in samples.columns:
        values = samples[color]
        if is_categorical(values):
            frame[color] = values.astype("string").fillna("(none)").to_numpy()
            order = natural_order(frame[color].unique())
            kwargs.update(color=color, category_orders={color: order},
                          color_discrete_sequence=categorical_palette(len(order)))
        else:
            frame[color] = values.to_numpy()
            kwargs.update(color=color, color_continuous_scale="Viridis")
    if mask is not None:
        frame = frame[np.asarray(mask, dtype=bool)]
    if dims == 3:
        fig = px.scatter_3d(frame, x="x", y="y", z="z", **kwargs)
        fig.update_traces(marker={"size": point_size * 0.6})
        fig.update_layout(scene={"aspectmode": "cube", "xaxis_title": "", "yaxis_title": "", "zaxis_title": ""})
    else:
        fig = px.scatter(frame, x="x", y="y", render_mode="webgl", **kwargs)
        fig.update_traces(marker={"size": point_size, "opacity": 0.85})
        fig.update_xaxes(showticklabels=False, title="", showgrid=False, zeroline=False)
        fig.update_yaxes(showticklabels=False, title="", showgrid=False, zeroline=False, scaleanchor="x")
        fig.update_layout(dragmode="lasso")
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend={"itemsizing": "constant"},
                      uirevision="embedviz-map")
    return fig


def frame_figure(coords: np.ndarray, samples: pd.DataFrame, color: str | None = "label", *,
                 height: int = 640, point_size: float = 5.0) -> go.Figure:
    """A light figure of a map being optimised: one trace, colours by code, no hover, fixed axes.

    It is redrawn a few times a second while t-SNE or UMAP runs, so it carries only the
    coordinates and a colour per point.
    """
    marker: dict = {"size": point_size if coords.shape[1] == 2 else point_size * 0.6, "opacity": 0.85}
    if color in samples.columns and is_categorical(samples[color]):
        names = samples[color].astype("string").fillna("(none)")
        order = natural_order(names.unique())
        palette = categorical_palette(len(order))
        lookup = {name: palette[i] for i, name in enumerate(order)}
        marker["color"] = [lookup[name] for name in names]
    if coords.shape[1] == 3:
        trace = go.Scatter3d(x=coords[:, 0], y=coords[:, 1], z=coords[:, 2], mode="markers", marker=marker,
                             hoverinfo="skip")
    else:
        trace = go.Scattergl(x=coords[:, 0], y=coords[:, 1], mode="markers", marker=marker, hoverinfo="skip")
    fig = go.Figure(trace)
    if coords.shape[1] == 2:
        fig.update_xaxes(range=[-1.05, 1.05], showticklabels=False, showgrid=False, zeroline=False)
        fig.update_yaxes(range=[-1.05, 1.05], showticklabels=False, showgrid=False, zeroline=False, scaleanchor="x")
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, showlegend=False)
    return fig
