"""Plotly figures: the WebGL scatter of a map, a pure function of coordinates, colour and mask.

Every point carries its row number as ``customdata``, so a selection maps back to samples
whatever trace the point is in (one trace per colour).
"""

from __future__ import annotations

import colorsys
import html
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import plotly.express as px  # only for its colour sets
import plotly.graph_objects as go

from embedviz.data.classes import natural_order

__all__ = ["MapStyle", "categorical_palette", "category_colours", "is_categorical", "scatter_figure",
           "frame_figure", "confusion_figure", "add_paths", "separation_figure", "HOVER_COLUMNS"]

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


@dataclass(frozen=True)
class MapStyle:
    """How the map draws its points; every field is something the user picked.

    ``colors`` maps categories of the colour column to colours the user chose (``#rrggbb``);
    ``filtered`` says what happens to points the filters leave out: ``hide`` or ``grey``.
    """

    color: str | None = None
    symbol: str | None = None
    size: float = 5.0
    opacity: float = 0.85
    colors: tuple[tuple[str, str], ...] = ()
    filtered: str = "hide"


SYMBOLS_2D = ("circle", "square", "diamond", "cross", "x", "triangle-up", "triangle-down", "star", "hexagon",
              "pentagon", "circle-open", "square-open", "diamond-open", "triangle-up-open")
SYMBOLS_3D = ("circle", "square", "diamond", "cross", "x", "circle-open", "square-open", "diamond-open")
GREY = "#c8c8c8"


#: When more points than this are drawn, the hover label carries no per-point text (ids, names):
#: the colour's category and the numbers only, which travel as typed arrays. A click shows the rest.
HOVER_TEXT_LIMIT = 20_000


def _escape(values: pd.Series) -> pd.Series:
    return values.astype("string").fillna("").astype(str).map(lambda t: html.escape(t, quote=False))


def _hover(samples: pd.DataFrame, columns: Sequence[str], color: str | None, rows: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, str]:
    """What the hover label shows, in the compact form plotly reads it.

    Returns ``customdata`` (float32: the row, then each numeric column), the ids as ``text`` and
    the other text columns joined as ``hovertext`` for the ``rows`` drawn (``None`` when more than
    :data:`HOVER_TEXT_LIMIT` are), and the ``hovertemplate`` that lays them out. User strings are escaped, so a name
    like ``<b>`` shows as written; the markup is in the template, once per trace.
    """
    numeric = [c for c in columns if c != color and pd.api.types.is_float_dtype(samples[c])]
    texts = [c for c in columns if c != color and c not in numeric and c != "path"]
    custom = np.empty((len(samples), 1 + len(numeric)), dtype=np.float32)
    custom[:, 0] = np.arange(len(samples))
    lines = []
    for j, column in enumerate(numeric, start=1):
        values = pd.to_numeric(samples[column], errors="coerce").to_numpy(dtype=np.float64)
        custom[:, j] = values
        share = np.nanmin(values, initial=0) >= 0 and np.nanmax(values, initial=0) <= 1
        lines.append(f"{html.escape(column)} %{{customdata[{j}]:{'.1%' if share else '.4g'}}}")
    template = "<b>%{text}</b><br>" if len(rows) <= HOVER_TEXT_LIMIT else ""
    ids = hovertext = None
    if template:
        ids = np.full(len(samples), "", dtype=object)
        ids[rows] = _escape(samples["sample_id"].iloc[rows]).to_numpy(dtype=object)
        if texts:
            joined = None
            for column in texts:
                part = html.escape(column) + " " + _escape(samples[column].iloc[rows])
                joined = part if joined is None else joined + " · " + part
            hovertext = np.full(len(samples), "", dtype=object)
            hovertext[rows] = joined.to_numpy(dtype=object)
            template += "%{hovertext}<br>"
    else:
        template = "row %{customdata[0]}<br>"
    template += "<br>".join(lines) + "<extra>%{fullData.name}</extra>"
    return custom, ids, hovertext, template


def _category_colours(order: Sequence[str], chosen: Sequence[tuple[str, str]]) -> dict[str, str]:
    palette = categorical_palette(len(order))
    colours = {name: palette[i] for i, name in enumerate(order)}
    colours.update({name: colour for name, colour in chosen if name in colours})
    return colours


def category_colours(samples: pd.DataFrame, style: "MapStyle") -> dict[str, str]:
    """The colour each category of ``style.color`` gets on the map (user choices included); empty
    when the column is not coloured by category."""
    if not style.color or style.color not in samples.columns or not is_categorical(samples[style.color]):
        return {}
    names = samples[style.color].astype("string").fillna("(none)")
    return _category_colours(natural_order(names.unique()), style.colors)


def scatter_figure(
    coords: np.ndarray,
    samples: pd.DataFrame,
    style: "MapStyle | str | None" = None,
    *,
    mask: np.ndarray | None = None,
    highlight: np.ndarray | None = None,
    drawn: np.ndarray | None = None,
    underlay: dict | None = None,
    within: np.ndarray | None = None,
    hover: Sequence[str] = HOVER_COLUMNS,
    height: int = 640,
) -> go.Figure:
    """The map as a WebGL scatter (2-D) or a 3-D scatter, drawn as ``style`` says.

    ``mask`` marks the points the filters keep (the others are hidden or greyed);
    ``highlight`` (row numbers) are drawn again on top with a dark ring. Every point carries
    its row number as ``customdata[0]``, so a selection maps back to samples whatever the trace
    (:mod:`embedviz.explore.selection`). Coordinates and numbers travel as float32 typed arrays and the
    hover markup once per trace, so 100,000 points are about 2 MB. The figure depends only on its arguments, so
    the same inputs give the same figure and Streamlit keeps the user's selection across reruns.

    A large map (:mod:`embedviz.explore.large`) passes the rows to ``drawn`` as points (a sample of the
    shown ones) and a picture of all of them as ``underlay`` (a ``layout.images`` entry).
    ``within`` (a mask) zooms in: only those rows are drawn, shown or greyed, and the axes span them.
    """
    if not isinstance(style, MapStyle):
        style = MapStyle(color=style)
    n, dims = coords.shape
    samples = samples.reset_index(drop=True)
    xyz = np.asarray(coords, dtype=np.float32)
    shown = np.ones(n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    hidden = np.flatnonzero(~shown)
    if drawn is not None:  # a large map: only these are points; the layer beneath shows the rest
        only = np.zeros(n, dtype=bool)
        only[np.asarray(drawn, dtype=np.int64)] = True
        shown = shown & only
        hidden = hidden[:0]
    if within is not None:
        within = np.asarray(within, dtype=bool)
        shown = shown & within
        hidden = hidden[within[hidden]]
    hover_cols = [c for c in hover if c in samples.columns]
    ringed = np.zeros(0, dtype=np.int64) if highlight is None else np.asarray(highlight, dtype=np.int64)
    ringed = ringed[(ringed >= 0) & (ringed < n)]
    drawn_rows = np.union1d(np.flatnonzero(shown), ringed)
    if style.filtered == "grey":
        drawn_rows = np.union1d(drawn_rows, hidden)
    custom, ids, hovertext, template = _hover(samples, hover_cols, style.color, drawn_rows)
    symbols = SYMBOLS_3D if dims == 3 else SYMBOLS_2D
    symbol_of: np.ndarray | None = None
    symbol_names: list[str] = []
    if style.symbol and style.symbol in samples.columns:
        values = samples[style.symbol].astype("string").fillna("(none)")
        symbol_names = natural_order(values.unique())
        lookup = {name: symbols[i % len(symbols)] for i, name in enumerate(symbol_names)}
        symbol_of = values.map(lookup).to_numpy(dtype=object)

    size = style.size * (0.6 if dims == 3 else 1.0)

    def trace(idx: np.ndarray, name: str, marker: dict, **extra) -> go.BaseTraceType:
        marker = {"size": size, "opacity": style.opacity, **marker}
        if symbol_of is not None and "symbol" not in marker:
            marker["symbol"] = symbol_of[idx]
        common = dict(mode="markers", name=name, marker=marker, customdata=custom[idx], hovertemplate=template,
                      **extra)
        if ids is not None:
            common["text"] = ids[idx]
        if hovertext is not None:
            common["hovertext"] = hovertext[idx]
        if dims == 3:
            return go.Scatter3d(x=xyz[idx, 0], y=xyz[idx, 1], z=xyz[idx, 2], **common)
        return go.Scattergl(x=xyz[idx, 0], y=xyz[idx, 1], **common)

    traces: list[go.BaseTraceType] = []
    if style.filtered == "grey" and len(hidden):
        traces.append(trace(hidden, f"filtered out ({len(hidden):,})", {"color": GREY, "opacity": 0.35}))
    column = style.color if style.color and style.color in samples.columns else None
    if column is not None and is_categorical(samples[column]):
        names = samples[column].astype("string").fillna("(none)")
        order = natural_order(names.unique())
        colours = _category_colours(order, style.colors)
        values = names.to_numpy(dtype=object)
        for name in order:
            idx = np.flatnonzero(shown & (values == name))
            if len(idx):
                traces.append(trace(idx, html.escape(name, quote=False), {"color": colours[name]}, legendgroup=name,
                                    legendgrouptitle_text=html.escape(column) if name == order[0] else None))
    elif column is not None:
        idx = np.flatnonzero(shown)
        values = pd.to_numeric(samples[column], errors="coerce").to_numpy(dtype=np.float32)
        traces.append(trace(idx, html.escape(column), {"color": values[idx], "colorscale": "Viridis", "showscale": True,
                                          "colorbar": {"title": {"text": html.escape(column)}, "thickness": 14}},
                            showlegend=False))
    else:
        traces.append(trace(np.flatnonzero(shown), "points", {"color": "#4c78a8"}, showlegend=False))
    if len(ringed):
        traces.append(trace(ringed, f"highlighted ({len(ringed):,})",
                            {"color": "rgba(0,0,0,0)", "size": size + 5, "opacity": 1.0,
                             "line": {"color": "#111111", "width": 1.8}}))
    for i, name in enumerate(symbol_names[:40]):  # the legend for symbols, without points
        empty = dict(mode="markers", name=html.escape(name, quote=False), legendgroup=f"symbol:{name}", showlegend=True,
                     legendgrouptitle_text=html.escape(style.symbol) if i == 0 else None,
                     marker={"symbol": symbols[i % len(symbols)], "color": "#555555", "size": 9})
        traces.append(go.Scatter3d(x=[None], y=[None], z=[None], **empty) if dims == 3
                      else go.Scattergl(x=[None], y=[None], **empty))
    fig = go.Figure(traces)
    if underlay is not None and dims == 2:
        fig.add_layout_image(underlay)
    if dims == 3:
        fig.update_layout(scene={"aspectmode": "cube", "xaxis_title": "", "yaxis_title": "", "zaxis_title": ""})
    else:
        fig.update_xaxes(showticklabels=False, title="", showgrid=False, zeroline=False)
        fig.update_yaxes(showticklabels=False, title="", showgrid=False, zeroline=False, scaleanchor="x")
    # Pan on drag and select on click, box and lasso in the toolbar: what Streamlit would set itself
    # after the first draw, said here so that a large map is not drawn twice.
    fig.update_layout(dragmode="pan" if dims == 2 else "orbit", clickmode="event+select", hovermode="closest")
    legend = {"itemsizing": "constant", "groupclick": "toggleitem"}
    if column is not None and not is_categorical(samples[column]):
        # the colour bar takes the right edge, where the legend (the ringed points, the symbols) would lie on it
        legend.update(orientation="h", x=0, xanchor="left", y=0, yanchor="top")
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend=legend,
                      uirevision="embedviz-map", hoverlabel={"align": "left"}, plot_bgcolor="white")
    if within is not None and dims == 2 and within.any():
        low, high = xyz[within].min(axis=0), xyz[within].max(axis=0)
        pad = np.maximum((high - low) * 0.03, 1e-6)
        fig.update_xaxes(range=[float(low[0] - pad[0]), float(high[0] + pad[0])])
        fig.update_yaxes(range=[float(low[1] - pad[1]), float(high[1] + pad[1])])
        # another revision, so the browser takes these axes instead of keeping the whole map's
        fig.update_layout(uirevision=f"embedviz-map-zoom-{low[0]:.6g}-{low[1]:.6g}-{high[0]:.6g}-{high[1]:.6g}")
    return fig


def frame_figure(coords: np.ndarray, samples: pd.DataFrame, color: str | None = "label", *,
                 height: int = 640, point_size: float = 5.0, title: str | None = None) -> go.Figure:
    """A light figure of a map being optimised: one trace, colours by code, no hover, fixed axes.

    It is redrawn a few times a second while t-SNE or UMAP runs, so it carries only the
    coordinates and a colour per point (and ``title``, a line saying what it shows).
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
    if title:
        fig.update_layout(title={"text": title, "font": {"size": 13}})
    return fig


def confusion_figure(table: pd.DataFrame, *, height: int = 520) -> go.Figure:
    """A confusion matrix the user can click: one square marker per non-empty cell (label as rows,
    prediction as columns) carrying ``[label, prediction]`` as ``customdata``, coloured by the
    count on a log scale, so a click or a box selects those samples (a heatmap cannot be selected)."""
    labels, predictions = [str(v) for v in table.index], [str(v) for v in table.columns]
    cells = [(a, b, int(table.iat[i, j])) for i, a in enumerate(labels) for j, b in enumerate(predictions)
             if table.iat[i, j] > 0]
    side = max(len(labels), len(predictions), 1)
    size = max(4.0, min(38.0, (height - 120) / side * 0.9))
    counts = np.array([c for _, _, c in cells], dtype=np.float64)
    diagonal = np.array([a == b for a, b, _ in cells], dtype=bool)
    marker = {"symbol": "square", "size": size, "color": np.log10(counts + 1), "colorscale": "Blues",
              "cmin": 0, "line": {"color": np.where(diagonal, "#2a6f2a", "#b22222"), "width": 1},
              "colorbar": {"title": {"text": "count"}, "thickness": 12,
                           "tickvals": [0, 1, 2, 3, 4, 5], "ticktext": ["0", "10", "100", "1k", "10k", "100k"]}}
    shown = {name: html.escape(name, quote=False) for name in set(labels) | set(predictions)}  # names are not markup
    fig = go.Figure(go.Scatter(
        x=[shown[b] for _, b, _ in cells], y=[shown[a] for a, _, _ in cells],
        mode="markers+text" if side <= 20 else "markers",
        text=[f"{c:,}" for _, _, c in cells], textfont={"size": 10}, marker=marker,
        customdata=[[a, b] for a, b, _ in cells],
        hovertemplate="label %{y} · predicted %{x}<br>%{text} samples<extra></extra>"))
    fig.update_xaxes(title="prediction", type="category", categoryorder="array",
                     categoryarray=[shown[p] for p in predictions],
                     side="top", showgrid=False)
    fig.update_yaxes(title="label", type="category", categoryorder="array",
                     categoryarray=[shown[a] for a in labels[::-1]],
                     showgrid=False)
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      plot_bgcolor="white", uirevision="embedviz-confusion")
    return fig


def add_paths(figure: go.Figure, paths: np.ndarray, names: Sequence[str], step: int) -> go.Figure:
    """Draw each point's way through a series of aligned maps (``paths``: points x steps x 2) as a
    thin line, with its place at ``step`` marked; for tracing selected points across checkpoints."""
    if len(paths) == 0:
        return figure
    n, steps, _ = paths.shape
    gap = np.full((n, 1), np.nan)
    xs = np.concatenate([paths[:, :, 0], gap], axis=1).ravel()
    ys = np.concatenate([paths[:, :, 1], gap], axis=1).ravel()
    figure.add_trace(go.Scattergl(x=xs, y=ys, mode="lines", line={"color": "rgba(40,40,40,0.45)", "width": 1},
                                  name=f"path over {steps} steps ({n:,} points)", hoverinfo="skip"))
    figure.add_trace(go.Scattergl(x=paths[:, step, 0], y=paths[:, step, 1], mode="markers",
                                  marker={"size": 9, "color": "rgba(0,0,0,0)", "line": {"width": 2, "color": "#111"}},
                                  name=f"at {html.escape(str(names[step]))}", hoverinfo="skip"))
    return figure


def separation_figure(table: pd.DataFrame, metric: str = "knn_accuracy", *, height: int = 360) -> go.Figure:
    """Per class, one bar per feature set: ``knn_accuracy`` (share of its points whose nearest
    neighbours share their class) or ``silhouette``."""
    labels = natural_order(table["label"].astype(str).unique())
    figure = go.Figure()
    colours = categorical_palette(table["set"].nunique())
    for colour, (name, part) in zip(colours, table.groupby("set", sort=False)):
        part = part.set_index(part["label"].astype(str)).reindex(labels)
        # plotly renders tick labels and hover text as HTML: a class named <a href=…> would be a link
        figure.add_trace(go.Bar(x=[html.escape(label, quote=False) for label in labels], y=part[metric],
                                name=html.escape(str(name)), marker_color=colour,
                                hovertemplate="class %{x}: %{y:.3f}<extra>" + html.escape(str(name)) + "</extra>"))
    title = "k-NN accuracy (share of a class's points whose 10 nearest mostly share it)" \
        if metric == "knn_accuracy" else "silhouette (how far a class's points sit from other classes)"
    figure.update_layout(barmode="group", height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                         title={"text": title, "font": {"size": 13}}, yaxis={"range": [0, 1] if metric == "knn_accuracy"
                                                                             else [-1, 1]},
                         xaxis={"type": "category", "title": "class"}, legend={"title": {"text": "feature set"}})
    return figure
