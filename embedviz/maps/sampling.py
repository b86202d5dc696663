"""When a map is fitted on a sample of its points, and which sample: the dashboard's policy, kept apart
from its widgets so it can be read and tested on its own."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from embedviz.maps.reducers.embedding import Sample

__all__ = ["AUTO_SAMPLE_FROM", "AUTO_SAMPLE_SIZE", "NO_STRATA", "auto_sample", "chosen_sample"]

#: From this many points a map is fitted on a sample by default (t-SNE of all would take hours here) ...
AUTO_SAMPLE_FROM = 200_000
#: ... of this many points, stratified by the label when there is one; the rest are placed.
AUTO_SAMPLE_SIZE = 50_000
#: The stratify choice that means "a plain random sample".
NO_STRATA = "(none)"


def auto_sample(n_points: int, columns: Collection[str]) -> dict[str, Any] | None:
    """The sample settings (``ev_`` widget values) to start with for ``n_points`` points with these
    sample columns, or ``None`` when all points are fitted: a sample of :data:`AUTO_SAMPLE_SIZE`,
    stratified by the label when there is one, from :data:`AUTO_SAMPLE_FROM` points."""
    if n_points < AUTO_SAMPLE_FROM:
        return None
    choice: dict[str, Any] = {"ev_sample_on": True, "ev_sample_size": AUTO_SAMPLE_SIZE}
    if "label" in columns:
        choice["ev_stratify"] = "label"
    return choice


def chosen_sample(n_points: int, method: str, on: bool, size: int | None, stratify: str | None,
                  columns: Collection[str]) -> Sample | None:
    """The sample to fit on (``None``: all points) from the user's choices.

    Args:
        n_points: how many points the map has.
        method: the reducer; coordinates given with the data ("precomputed") are never sampled.
        on: whether the user asked for a sample fit.
        size: the sample's size; one not below ``n_points`` (or not positive) means all points.
        stratify: the column to stratify by; :data:`NO_STRATA`, ``None`` or a column the data lack
            mean a plain random sample.
        columns: the data's sample columns.
    """
    if not on or method == "precomputed":
        return None
    size = int(size or 0)
    if not 0 < size < n_points:
        return None
    if stratify in (None, NO_STRATA) or stratify not in columns:
        return Sample(size)
    return Sample(size, stratify)
