"""Metadata filters: which points stay on the map. Filters combine with AND."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np
import pandas as pd

from embedviz.errors import DataError

__all__ = ["CategoryFilter", "RangeFilter", "TextFilter", "TopKFilter", "FlaggedFilter", "Filter", "apply_filters",
           "column_kind", "prediction_columns", "describe_filter", "filter_columns", "why_nothing_shown"]


@dataclass(frozen=True)
class CategoryFilter:
    """Keep rows whose ``column`` is one of ``values`` (compared as text)."""

    column: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class RangeFilter:
    """Keep rows whose numeric ``column`` lies in ``[low, high]``."""

    column: str
    low: float
    high: float


@dataclass(frozen=True)
class TextFilter:
    """Keep rows whose ``column`` contains ``pattern`` (a regular expression if ``regex``)."""

    column: str
    pattern: str
    regex: bool = False


@dataclass(frozen=True)
class TopKFilter:
    """Keep rows whose label is (``contains``) or is not among the model's ``k`` most likely classes."""

    k: int
    contains: bool = True


@dataclass(frozen=True)
class FlaggedFilter:
    """Leave out the samples the data audit stored under ``audit`` flags (suspected label errors and
    outliers, and every copy in a duplicate group but its first; see :mod:`embedviz.explore.audit`)."""

    audit: str
    count: int = 0  # how many it leaves out, for the description


Filter = Union[CategoryFilter, RangeFilter, TextFilter, TopKFilter, FlaggedFilter]


def prediction_columns(samples: pd.DataFrame) -> list[str]:
    """``prediction``, ``prediction_2``, ...: the model's top classes in order, as many as were kept."""
    columns = ["prediction"] if "prediction" in samples.columns else []
    j = 2
    while columns and f"prediction_{j}" in samples.columns:
        columns.append(f"prediction_{j}")
        j += 1
    return columns


def column_kind(series: pd.Series) -> str:
    """``number`` for numeric columns with many values, ``category`` for few, else ``text``."""
    if pd.api.types.is_bool_dtype(series):
        return "category"
    if pd.api.types.is_numeric_dtype(series):
        return "number" if series.nunique(dropna=True) > 20 or pd.api.types.is_float_dtype(series) else "category"
    return "category" if series.nunique(dropna=True) <= 200 else "text"


def _top_k_mask(samples: pd.DataFrame, spec: TopKFilter) -> np.ndarray:
    columns = prediction_columns(samples)
    if "label" not in samples.columns or not columns:
        raise DataError("Top-k needs labels and the model's predictions; this map has no predictions to compare.")
    if not 1 <= spec.k <= len(columns):
        raise DataError(f"Top-{spec.k} is not available: the model's {len(columns)} most likely classes were kept.")
    label = samples["label"].astype("string")
    known = label.notna().to_numpy()
    found = np.zeros(len(samples), dtype=bool)
    for column in columns[: spec.k]:
        found |= (samples[column].astype("string") == label).fillna(False).to_numpy(dtype=bool)
    return known & (found if spec.contains else ~found)


def _flagged_mask(samples: pd.DataFrame, spec: FlaggedFilter) -> np.ndarray:
    from embedviz.explore.audit import left_out_ids

    ids = left_out_ids(spec.audit)
    if ids is None:
        raise DataError("The audit that filter names is no longer stored; audit the features again on Explore's "
                        "Issues tab, or take the filter away.")
    return ~samples["sample_id"].astype(str).isin(ids).to_numpy()


def _mask(samples: pd.DataFrame, spec: Filter) -> np.ndarray:
    if isinstance(spec, TopKFilter):
        return _top_k_mask(samples, spec)
    if isinstance(spec, FlaggedFilter):
        return _flagged_mask(samples, spec)
    if spec.column not in samples.columns:
        raise DataError(f"There is no column {spec.column!r} to filter on.")
    column = samples[spec.column]
    if isinstance(spec, CategoryFilter):
        return column.astype("string").fillna("(none)").isin(list(spec.values)).to_numpy()
    if isinstance(spec, RangeFilter):
        values = pd.to_numeric(column, errors="coerce")
        return ((values >= spec.low) & (values <= spec.high)).fillna(False).to_numpy(dtype=bool)
    return _contains(column, spec.pattern, spec.regex)


def _contains(column: pd.Series, pattern: str, regex: bool) -> np.ndarray:
    """Rows whose text contains ``pattern``, ignoring case. Regular expressions run in RE2 (pyarrow), in
    time linear in the text: a pattern from a link or a user (``(a+)+b\\1``) cannot hold the server, and
    Python's ``re``, which backtracks, is never the fallback."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.array(column.astype("string").fillna("").to_numpy(dtype=object), type=pa.string())
    if not regex:
        return pc.match_substring(text, pattern, ignore_case=True).to_numpy(zero_copy_only=False).astype(bool)
    try:
        found = pc.match_substring_regex(text, pattern, ignore_case=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        reason = str(exc).split(":", 1)[-1].strip().splitlines()[0][:120]
        raise DataError(f"{pattern!r} is not a valid regular expression here ({reason}); back-references and "
                        "look-arounds are not supported.") from None
    return found.to_numpy(zero_copy_only=False).astype(bool)


def apply_filters(samples: pd.DataFrame, filters: Sequence[Filter]) -> np.ndarray:
    """A boolean mask, True for the rows every filter keeps."""
    mask = np.ones(len(samples), dtype=bool)
    for spec in filters:
        mask &= _mask(samples, spec)
    return mask


def describe_filter(spec: Filter) -> str:
    """The filter in a few words, as the page says it: ``label is 3 or 8``."""
    if isinstance(spec, TopKFilter):
        return f"label {'among' if spec.contains else 'not among'} the top {spec.k} predictions"
    if isinstance(spec, FlaggedFilter):
        return f"no sample the audit {spec.audit[:8]} flags ({spec.count:,} left out)"
    if isinstance(spec, CategoryFilter):
        values = list(spec.values)
        shown = " or ".join(values[:5]) + (f" (+{len(values) - 5} more)" if len(values) > 5 else "")
        return f"{spec.column} is {shown}" if values else f"{spec.column} is nothing"
    if isinstance(spec, RangeFilter):
        return f"{spec.column} from {spec.low:g} to {spec.high:g}"
    return f"{spec.column} {'matches' if spec.regex else 'contains'} {spec.pattern!r}"


def filter_columns(spec: Filter) -> tuple[str, ...]:
    """The columns a filter reads."""
    if isinstance(spec, TopKFilter):
        return ("label", "prediction")
    if isinstance(spec, FlaggedFilter):
        return ("sample_id",)
    return (spec.column,)


def why_nothing_shown(samples: pd.DataFrame, filters: Sequence[Filter]) -> str | None:
    """When the filters keep no point, one line that says which filter empties the map and what
    to do (``None`` when some point is kept, or there are no points)."""
    if not len(samples) or apply_filters(samples, filters).any():
        return None
    start = f"The filters keep none of the {len(samples):,} points"
    empty = [spec for spec in filters if not _mask(samples, spec).any()]
    if empty:
        spec = empty[0]
        if isinstance(spec, CategoryFilter) and not spec.values:
            return (f"{start}: no value of {spec.column} is chosen. "
                    f"Pick some, or take {spec.column} out of \"Filter on\".")
        return f"{start}: no point has {describe_filter(spec)}. Widen that filter or take it away."
    said = "; ".join(describe_filter(spec) for spec in filters)
    return f"{start}: each filter keeps some, but no point passes all of them ({said}). Loosen one of them."
