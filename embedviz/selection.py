"""Selections: from a plotly selection event to ``sample_id``s, and from ids to rows."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import pandas as pd

__all__ = ["selected_ids", "rows_for_ids"]


def selected_ids(event: Mapping[str, Any] | None) -> list[str]:
    """The ``sample_id``s in a Streamlit plotly selection event, in selection order, once each.

    Ids come from each point's ``customdata[0]``; positions are never used, because a
    coloured scatter has one trace per colour and point indices restart in each.
    """
    if not event:
        return []
    selection = event.get("selection") if hasattr(event, "get") else None
    points = (selection or {}).get("points", []) if hasattr(selection or {}, "get") else []
    ids: list[str] = []
    seen: set[str] = set()
    for point in points:
        custom = point.get("customdata")
        if isinstance(custom, (list, tuple)):
            custom = custom[0] if custom else None
        if custom is None:
            continue
        sid = str(custom)
        if sid not in seen:
            seen.add(sid)
            ids.append(sid)
    return ids


def rows_for_ids(samples: pd.DataFrame, ids: Iterable[str]) -> pd.DataFrame:
    """The rows of ``samples`` with these ids, in the ids' order; unknown ids are dropped."""
    ids = [str(i) for i in ids]
    indexed = samples.assign(_pos=range(len(samples))).set_index(samples["sample_id"].astype(str))
    present = [i for i in ids if i in indexed.index]
    return indexed.loc[present].reset_index(drop=True).drop(columns="_pos")
