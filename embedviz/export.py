"""Writing maps out: coordinates with metadata (CSV/Parquet), Metascatter's CSV, standalone HTML, and
features with metadata as TensorBoard projector files.

Text written to CSV or TSV never starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return:
such cells and column headers get a leading apostrophe (:func:`escape_formulas`), so a spreadsheet
shows them as text instead of running them as formulas.
"""

from __future__ import annotations

import io
import math
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError
from .figures import MapStyle, scatter_figure
from .reducers import Embedding

__all__ = ["coordinates_table", "metascatter_table", "selection_table", "write_map", "escape_formulas", "to_csv",
           "write_projector", "projector_zip", "view_html", "map_png", "table_parquet"]

_AXES = ("x", "y", "z")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: TensorBoard's projector reads sprite images up to 8,192 px a side.
_SPRITE_SIDE = 8192


def _escape_text(text: object) -> object:
    return "'" + text if isinstance(text, str) and text.startswith(_FORMULA_STARTS) else text


def escape_formulas(table: pd.DataFrame) -> pd.DataFrame:
    """A copy in which text cells and column headers that a spreadsheet would run as a formula start
    with ``'``. Categorical columns come back as plain text where a category needed escaping (a new
    category cannot be assigned into a categorical); ``table`` itself is never changed."""
    out = table.copy()
    for position in range(out.shape[1]):  # by position: headers may repeat
        values = out.iloc[:, position]
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype(object)
        if pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
            text = values.astype("string")
            risky = text.str.startswith(_FORMULA_STARTS).fillna(False).astype(bool).to_numpy()
            if risky.any():
                escaped = values.astype(object).where(~risky, "'" + text.astype(object))
                out.isetitem(position, escaped)
    out.columns = [_escape_text(name) for name in out.columns]
    return out


def to_csv(table: pd.DataFrame) -> str:
    """CSV text with formulas escaped: what the download buttons and ``--out x.csv`` write."""
    return escape_formulas(table).to_csv(index=False)


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
        out.write_text(to_csv(table), encoding="utf-8")
    else:
        table.to_parquet(out, index=False)
    return out


def _tsv_cell(value: object) -> str:
    text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    return text.replace("\t", " ").replace("\n", " ").replace("\r", " ")


def write_projector(features: np.ndarray, samples: pd.DataFrame, folder: str | Path, *,
                    images_root: Path | None = None, thumb: int | None = None) -> Path:
    """``tensors.tsv``, ``metadata.tsv``, ``sprite.png`` (when the samples have images under
    ``images_root``) and ``projector_config.pbtxt``, as TensorBoard's Embedding Projector reads them.

    Sprites are square cells of ``thumb`` pixels (default: as large as fits 8,192 px, at most 64); above
    about four million images the cells would be under 4 px and no sprite is written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    x = np.asarray(features, dtype=np.float32)
    if len(x) != len(samples):
        raise DataError(f"{len(x):,} feature rows but {len(samples):,} samples; they must match row for row.")
    np.savetxt(folder / "tensors.tsv", x, delimiter="\t", fmt="%.8g")
    meta = escape_formulas(samples.drop(columns=[c for c in ("x", "y", "z") if c in samples.columns]))
    # TensorBoard reads a one-column metadata file without a header row
    lines = ["\t".join(map(_tsv_cell, meta.columns))] if len(meta.columns) > 1 else []
    lines += ["\t".join(_tsv_cell(v) for v in row) for row in meta.itertuples(index=False)]
    (folder / "metadata.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = ["embeddings {", '  tensor_path: "tensors.tsv"', '  metadata_path: "metadata.tsv"']
    size, per_row = 0, math.ceil(math.sqrt(max(len(samples), 1)))
    if images_root is not None and "path" in samples.columns and len(samples):
        size = thumb or min(64, _SPRITE_SIDE // per_row)
    if size >= 4:
        from PIL import Image

        from .thumbnails import thumbnail

        sprite = Image.new("RGB", (per_row * size, per_row * size), (255, 255, 255))
        for i, path in enumerate(samples["path"]):
            if isinstance(path, str) and path:
                image = thumbnail(Path(images_root) / path, size)
                cell = Image.new("RGB", (size, size), (255, 255, 255))
                cell.paste(image, ((size - image.width) // 2, (size - image.height) // 2))
                sprite.paste(cell, ((i % per_row) * size, (i // per_row) * size))
        sprite.save(folder / "sprite.png")
        config += ["  sprite {", '    image_path: "sprite.png"', f"    single_image_dim: {size}",
                   f"    single_image_dim: {size}", "  }"]
    config.append("}")
    (folder / "projector_config.pbtxt").write_text("\n".join(config) + "\n", encoding="utf-8")
    return folder


def projector_zip(features: np.ndarray, samples: pd.DataFrame, *, images_root: Path | None = None) -> bytes:
    """The projector files as one zip, for a download button."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        folder = write_projector(features, samples, Path(tmp) / "projector", images_root=images_root)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(folder.iterdir()):
                archive.write(file, f"projector/{file.name}")
        return buffer.getvalue()


def view_html(embedding: Embedding, samples: pd.DataFrame, style: MapStyle, mask: np.ndarray) -> str:
    """The current view (colours, symbols, filters) as a standalone page: plotly.js embedded, works
    offline, 2-D or 3-D."""
    fig = scatter_figure(embedding.coords, samples, style, mask=mask)
    fig.update_layout(title=f"{embedding.method} map of {int(np.asarray(mask).sum()):,} samples", dragmode="zoom")
    return fig.to_html(include_plotlyjs=True, full_html=True)


def map_png(coords: np.ndarray, samples: pd.DataFrame, style: MapStyle, mask: np.ndarray, *,
            width: int = 2400) -> bytes:
    """Every shown point of a 2-D map as a PNG, coloured as on screen (any number of points)."""
    from .render import point_colours, points_image

    shown = np.flatnonzero(mask)
    colours = point_colours(samples, style)
    # dots as large as on screen (about 900 pixels wide there), smaller when there are very many
    cap = 8 if len(shown) <= 50_000 else 4 if len(shown) <= 300_000 else 2
    radius = int(min(cap, max(1, round(style.size / 2 * width / 900))))
    picture = points_image(coords[shown], colours[shown], width=width, radius=radius)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def table_parquet(table: pd.DataFrame) -> bytes:
    """A table as Parquet bytes (for a download)."""
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    return buffer.getvalue()
