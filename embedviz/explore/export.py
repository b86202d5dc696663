"""Writing maps out: coordinates with metadata (CSV/Parquet), Metascatter's CSV, standalone HTML, and
features with metadata as TensorBoard projector files.

Text written to CSV or TSV never starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return:
such cells and column headers get a leading apostrophe (:func:`escape_formulas`), so a spreadsheet
shows them as text instead of running them as formulas.
"""

from __future__ import annotations

import html
import io
import math
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from embedviz.data.classes import natural_order
from embedviz.errors import DataError
from embedviz.explore.figures import MapStyle, is_categorical, scatter_figure
from embedviz.maps.reducers import REDUCERS, Embedding

__all__ = ["coordinates_table", "metascatter_table", "selection_table", "write_map", "escape_formulas", "to_csv",
           "write_projector", "projector_zip", "view_html", "map_png", "map_title", "table_parquet"]

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
              color: str | None = None, source: str | None = None) -> Path:
    """Write to ``.csv``, ``.parquet`` or ``.html`` (plotly.js embedded, works offline; titled
    with the method, ``source`` (what the map is of) and the number of samples)."""
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
        fig.update_layout(title=_html_title(map_title(embedding, len(samples), source=source)), dragmode="zoom")
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

        from embedviz.data.thumbnails import thumbnail

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


def map_title(embedding: Embedding, shown: int, *, source: str | None = None, total: int | None = None) -> str:
    """What an exported map is, in one line: ``t-SNE of digits · demo CNN/fc1 · 1,991 of 10,000
    samples`` (``source`` says what the map is of; ``total`` when filters keep fewer)."""
    method = "Map (as given)" if embedding.method == "precomputed" else \
        REDUCERS[embedding.method].label if embedding.method in REDUCERS else str(embedding.method)
    if embedding.n_components == 3:
        method += " 3-D"
    count = f"{shown:,} of {total:,} samples" if total is not None and total != shown else f"{shown:,} samples"
    return " · ".join([f"{method} of {source}" if source else method, count])


def _html_title(title: str, note: str | None = None) -> dict:
    """A plotly title: names from users' files are text, never markup."""
    text = html.escape(title, quote=False)
    if note:
        text += f"<br><sup>{html.escape(note, quote=False)}</sup>"
    return {"text": text, "x": 0.01, "xanchor": "left"}


def view_html(embedding: Embedding, samples: pd.DataFrame, style: MapStyle, mask: np.ndarray, *,
              source: str | None = None, note: str | None = None) -> str:
    """The current view (colours, symbols, filters) as a standalone page: plotly.js embedded, works
    offline, 2-D or 3-D; titled by :func:`map_title` (``note``, e.g. the filters, under it) with the
    colours' legend."""
    shown = int(np.asarray(mask).sum())
    fig = scatter_figure(embedding.coords, samples, style, mask=mask)
    fig.update_layout(title=_html_title(map_title(embedding, shown, source=source, total=len(samples)), note),
                      dragmode="zoom", margin={"t": 90 if note else 60})
    return fig.to_html(include_plotlyjs=True, full_html=True)


#: The most categories the picture's legend lists; the rest are counted on its last line.
LEGEND_ROWS = 40


def _legend(samples: pd.DataFrame, style: MapStyle, shown: np.ndarray, colours: np.ndarray
            ) -> tuple[list[tuple[str, tuple[int, ...]]], str]:
    """The picture's legend and its heading (the colour column): (name and count, colour) per
    category among the shown points, or five steps along a numeric column's scale; the colours
    are those the points are drawn in."""
    from embedviz.explore.render import point_colours

    column = style.color if style.color and style.color in samples.columns else None
    if column is None or not len(shown):
        return [], ""
    if is_categorical(samples[column]):
        names = samples[column].iloc[shown].astype("string").fillna("(none)").reset_index(drop=True)
        first = names.drop_duplicates()  # where each category first shows: its colour as drawn
        counts = names.value_counts()
        colour_of = {name: tuple(int(c) for c in colours[shown[i]]) for i, name in first.items()}
        return [(f"{name} ({int(counts[name]):,})", colour_of[name]) for name in natural_order(counts.index)], column
    values = pd.to_numeric(samples[column], errors="coerce").dropna()  # the scale spans every point, as drawn
    if values.empty:
        return [], column
    steps = np.unique(np.linspace(values.min(), values.max(), 5))
    scale = point_colours(pd.DataFrame({column: steps}), style)
    return [(f"{value:.4g}", tuple(int(c) for c in colour)) for value, colour in zip(steps, scale)], column


def map_png(coords: np.ndarray, samples: pd.DataFrame, style: MapStyle, mask: np.ndarray, *,
            width: int = 2400, title: str | None = None, note: str | None = None) -> bytes:
    """Every shown point of a 2-D map as a PNG, coloured as on screen (any number of points), with
    ``title`` (and ``note``) above it and the colours' legend beside it."""
    from PIL import Image, ImageDraw, ImageFont

    from embedviz.explore.render import point_colours, points_image

    shown = np.flatnonzero(mask)
    colours = point_colours(samples, style)
    entries, heading = _legend(samples, style, shown, colours)
    panel = width // 5 if entries else 0
    font_size = max(12, width // 90)
    # dots as large as on screen (about 900 pixels wide there), smaller when there are very many
    cap = 8 if len(shown) <= 50_000 else 4 if len(shown) <= 300_000 else 2
    radius = int(min(cap, max(1, round(style.size / 2 * width / 900))))
    points = points_image(coords[shown], colours[shown], width=width - panel, radius=radius) if len(shown) else \
        Image.new("RGB", (width - panel, (width - panel) // 2), (255, 255, 255))
    font, small = ImageFont.load_default(size=font_size), ImageFont.load_default(size=int(font_size * 0.8))
    line = int(font_size * 1.5)
    top = (line if title else 0) + (line if note else 0) + (line // 2 if title or note else 0)
    rows = len(entries) if len(entries) <= LEGEND_ROWS else LEGEND_ROWS - 1
    needed = top + line * (rows + 2 + (len(entries) > rows)) + line
    picture = Image.new("RGB", (width, max(points.height + top, needed)), (255, 255, 255))
    picture.paste(points, (0, top))
    draw = ImageDraw.Draw(picture)
    pad = font_size
    y = line // 2
    if title:
        draw.text((pad, y), title, fill=(20, 20, 20), font=font)
        y += line
    if note:
        draw.text((pad, y), note, fill=(90, 90, 90), font=small)
    if entries:
        x, y = width - panel + pad // 2, top + line
        draw.text((x, y), heading, fill=(20, 20, 20), font=font)
        y += line
        swatch = int(font_size * 0.8)
        for name, colour in entries[:rows]:
            top = y + (line - swatch) // 2 - 2
            draw.ellipse([x, top, x + swatch, top + swatch], fill=colour)
            draw.text((x + swatch + pad // 2, y), name, fill=(40, 40, 40), font=small)
            y += line
        if len(entries) > rows:
            draw.text((x, y), f"… and {len(entries) - rows:,} more", fill=(90, 90, 90), font=small)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def table_parquet(table: pd.DataFrame) -> bytes:
    """A table as Parquet bytes (for a download)."""
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    return buffer.getvalue()
