"""Filters as plain JSON-ready dicts, for runs in the catalog and links, and back."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from embedviz.explore.filters import CategoryFilter, Filter, FlaggedFilter, RangeFilter, TextFilter, TopKFilter

__all__ = ["serialise_filters", "deserialise_filters"]

_FILTERS = {cls.__name__: cls for cls in (CategoryFilter, RangeFilter, TextFilter, TopKFilter, FlaggedFilter)}


def serialise_filters(filters: Iterable[Filter]) -> list[dict[str, Any]]:
    """Each filter as ``{"type": <class name>, <its fields>}``."""
    return [{"type": type(f).__name__, **asdict(f)} for f in filters]


def deserialise_filters(items: list[dict[str, Any]] | None) -> tuple:
    """The filters :func:`serialise_filters` wrote; entries of an unknown type are skipped."""
    out = []
    for item in items or []:
        item = dict(item)
        cls = _FILTERS.get(item.pop("type", ""))
        if cls is None:
            continue
        if "values" in item:
            item["values"] = tuple(item["values"])
        out.append(cls(**item))
    return tuple(out)
