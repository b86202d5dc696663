"""Selections: from a plotly selection event to rows, and from rows to ``sample_id``s.

A Streamlit selection event lists the points the browser selected (each carrying its row
number as ``customdata``, see :func:`embedviz.explore.figures.scatter_figure`) and the geometry of any
box or lasso. The geometry answers on the server from the coordinates it already has, so a map
that draws only a sample of its points (large maps) still selects every point inside the
lasso; clicked points come from the point list. Both are pure functions of their inputs.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

__all__ = ["selected_rows", "rows_in_geometry", "points_in_polygon", "ids_for_rows", "rows_for_ids",
           "positions_for_ids"]


def _selection(event: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not event or not hasattr(event, "get"):
        return {}
    selection = event.get("selection")
    return selection if selection is not None and hasattr(selection, "get") else {}


def points_in_polygon(xy: np.ndarray, xs: Iterable[float], ys: Iterable[float]) -> np.ndarray:
    """True for the points of ``xy`` (n x 2) inside the closed polygon (even-odd rule), as plotly's
    lasso decides it. Vectorised over points, one pass per edge; points outside the polygon's
    bounding box are never tested."""
    px_, py_ = np.asarray(list(xs), dtype=np.float64), np.asarray(list(ys), dtype=np.float64)
    inside = np.zeros(len(xy), dtype=bool)
    if len(px_) < 3:
        return inside
    box = ((xy[:, 0] >= px_.min()) & (xy[:, 0] <= px_.max()) & (xy[:, 1] >= py_.min()) & (xy[:, 1] <= py_.max()))
    candidates = np.flatnonzero(box)
    x, y = xy[candidates, 0].astype(np.float64), xy[candidates, 1].astype(np.float64)
    hit = np.zeros(len(candidates), dtype=bool)
    for x1, y1, x2, y2 in zip(px_, py_, np.roll(px_, -1), np.roll(py_, -1)):
        if y1 == y2:
            continue
        crosses = (y1 > y) != (y2 > y)
        at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        hit ^= crosses & (x < at)
    inside[candidates] = hit
    return inside


def rows_in_geometry(coords: np.ndarray, event: Mapping[str, Any] | None) -> np.ndarray:
    """Rows inside any box or lasso of the event (a union), in row order. 3-D maps have none."""
    selection = _selection(event)
    if coords.shape[1] != 2:
        return np.zeros(0, dtype=np.int64)
    inside = np.zeros(len(coords), dtype=bool)
    for box in selection.get("box") or []:
        xs, ys = box.get("x") or [], box.get("y") or []
        if len(xs) == 2 and len(ys) == 2:
            inside |= ((coords[:, 0] >= min(xs)) & (coords[:, 0] <= max(xs))
                       & (coords[:, 1] >= min(ys)) & (coords[:, 1] <= max(ys)))
    for lasso in selection.get("lasso") or []:
        inside |= points_in_polygon(coords, lasso.get("x") or [], lasso.get("y") or [])
    return np.flatnonzero(inside)


def _point_row(point: Mapping[str, Any]) -> int | None:
    """The row a clicked or listed point names in its ``customdata``: a number, a list whose first
    item is the number (several custom columns), or, as Streamlit sends a click, an object keyed by
    position (``{"0": 6999}``)."""
    custom = point.get("customdata")
    if isinstance(custom, Mapping):
        custom = custom.get("0", custom.get(0)) if custom else None
    if isinstance(custom, (list, tuple)):
        custom = custom[0] if custom else None
    try:
        return int(custom) if custom is not None else None
    except (TypeError, ValueError):
        return None


def selected_rows(event: Mapping[str, Any] | None, coords: np.ndarray, shown: np.ndarray | None = None) -> np.ndarray:
    """The rows a selection event picks: clicked or listed points first (in the order the browser
    gave them), then the rest of what any box or lasso encloses; each once, only rows that are
    ``shown`` (the filters' mask), never a row the map does not have."""
    n = len(coords)
    keep = np.ones(n, dtype=bool) if shown is None else np.asarray(shown, dtype=bool)
    picked: list[int] = []
    seen = np.zeros(n, dtype=bool)
    for point in _selection(event).get("points") or []:
        row = _point_row(point)
        if row is not None and 0 <= row < n and keep[row] and not seen[row]:
            seen[row] = True
            picked.append(row)
    inside = rows_in_geometry(coords, event)
    rest = inside[keep[inside] & ~seen[inside]]
    return np.concatenate([np.asarray(picked, dtype=np.int64), rest.astype(np.int64)])


def ids_for_rows(samples: pd.DataFrame, rows: Iterable[int]) -> list[str]:
    """The ``sample_id``s of these rows, in the rows' order."""
    return samples["sample_id"].astype(str).to_numpy()[np.asarray(list(rows), dtype=np.int64)].tolist()


def rows_for_ids(samples: pd.DataFrame, ids: Iterable[str]) -> pd.DataFrame:
    """The rows of ``samples`` with these ids, in the ids' order; unknown ids are dropped."""
    ids = [str(i) for i in ids]
    indexed = samples.assign(_pos=range(len(samples))).set_index(samples["sample_id"].astype(str))
    present = [i for i in ids if i in indexed.index]
    return indexed.loc[present].reset_index(drop=True).drop(columns="_pos")


def positions_for_ids(samples: pd.DataFrame, ids: Iterable[str]) -> np.ndarray:
    """Row positions in ``samples`` of these ids (a link's selection), in table order; unknown ids
    are dropped."""
    wanted = {str(i) for i in ids}
    return np.flatnonzero(samples["sample_id"].astype(str).isin(wanted).to_numpy())
