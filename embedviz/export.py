"""Writing maps out: coordinates with metadata (CSV/Parquet), Metascatter's CSV, standalone HTML."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import DataError
from .figures import scatter_figure
from .reducers import Embedding

__all__ = ["coordinates_table", "metascatter_table", "selection_table", "write_map"]

_AXES = ("x", "y", "z")


def coordinates_table(embedding: Embedding, samples: pd.DataFrame) -> pd.DataFrame:
    """``sample_id``, ``x``, ``y`` (``z`` in 3-D), then every metadata column."""
    coords = pd.DataFrame(embedding.coords, columns=list(_AXES[: embedding.n_components]))
    meta = samples.drop(columns=[c for c in ("sample_id", *_AXES) if c in samples.columns]).reset_index(drop=True)
    return pd.concat([samples[["sample_id"]].reset_index(drop=True), coords, meta], axis=1)


def metascatter_table(embedding: Embedding, samples: pd.DataFrame) -> pd.DataFrame:
    """Metascatter's layout: ``Paths``, ``X-Coord``, ``Y-Coord``, then the metadata."""
    table = coordinates_table(embedding, samples)
    paths = table["path"] if "path" in table.columns else table["sample_id"]
    meta = table.drop(columns=[c for c in ("sample_id", "path", "x", "y", "z") if c in table.columns])
    front = pd.DataFrame({"Paths": paths, "X-Coord": table["x"], "Y-Coord": table["y"]})
    return pd.concat([front, meta], axis=1)


def selection_table(rows: pd.DataFrame) -> pd.DataFrame:
    """A selection as ids (and paths where known), in selection order: what other tools read back."""
    return rows[["sample_id", *(["path"] if "path" in rows.columns else [])]].reset_index(drop=True)


def write_map(embedding: Embedding, samples: pd.DataFrame, out: str | Path, *, fmt: str | None = None,
              color: str | None = None) -> Path:
    """Write to ``.csv``, ``.parquet`` or ``.html`` (plotly.js embedded, works offline)."""
    out = Path(out).expanduser()
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet", ".html"):
        raise DataError(f"Cannot write {out.name}: the output must end in .csv, .parquet or .html.")
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".html":
        if fmt:
            raise DataError("--format metascatter writes a table; give an output ending in .csv or .parquet.")
        if color is None and "label" in samples.columns:
            color = "label"
        fig = scatter_figure(embedding.coords, samples, color)
        fig.update_layout(title=f"{embedding.method} map of {len(samples):,} samples", dragmode="zoom")
        fig.write_html(out, include_plotlyjs=True, full_html=True)
        return out
    if fmt not in (None, "metascatter"):
        raise DataError(f"Unknown format {fmt!r}; the only one is metascatter.")
    table = metascatter_table(embedding, samples) if fmt else coordinates_table(embedding, samples)
    if suffix == ".csv":
        table.to_csv(out, index=False, encoding="utf-8")
    else:
        table.to_parquet(out, index=False)
    return out
