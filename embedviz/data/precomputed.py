"""Features computed elsewhere: ``.npy``/``.npz``, Parquet with a vector column, TensorBoard
projector files (``tensors.tsv`` + ``metadata.tsv``), each optionally joined to a metadata table,
and maps made elsewhere: Metascatter's table (``Paths``, ``X-Coord``, ``Y-Coord``, metadata),
whose coordinates become 2-D "features" that the ``precomputed`` method shows as they are.

Nothing is unpickled (``allow_pickle=False``); every mismatch gets a message naming it. Sizes, rows
and columns are checked against the caps in :mod:`embedviz.limits` from headers and footers before
the data is read, so a small file that declares a huge array is refused, not decompressed.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.lib import format as npformat

from embedviz.data.featureset import FeatureSet, read_feature_folder
from embedviz.data.images import DAMAGED, ZIP_METHODS, ImageCollection
from embedviz.data.roots import DataRoots, inside_home
from embedviz.data.tables import (
    PATH_COLUMN_NAMES,
    check_relative,
    check_shape,
    check_table_file,
    parquet_layout,
    read_parquet,
    read_table,
)
from embedviz.errors import DataError, first_line
from embedviz.hashing import sha256_file, sha256_json
from embedviz.limits import cap

__all__ = ["load_feature_set", "load_precomputed", "is_precomputed", "coordinate_columns", "images_of",
           "precomputed_key"]

_VECTOR_NAMES = ("features", "feature", "embedding", "embeddings", "vector", "vectors", "x")
_ID_NAMES = ("sample_id", "id", "ids", "path", "paths", "filename")
_NPZ_NAMES = ("features", "embeddings", "embedding", "x", "X", "arr_0")


def is_precomputed(path: str | Path) -> bool:
    """Whether ``path`` looks like precomputed features rather than images or a manifest."""
    path = Path(path)
    if path.is_dir():
        return (path / "tensors.tsv").is_file()
    return path.suffix.lower() in (".npy", ".npz") or path.name.lower() == "tensors.tsv"


def coordinate_columns(table: pd.DataFrame) -> list[str]:
    """Metascatter's ``X-Coord``, ``Y-Coord`` (and a ``Z-Coord``) columns, if the table has them."""
    lower = {str(c).strip().lower(): c for c in table.columns}
    found = [lower[n] for n in ("x-coord", "y-coord", "z-coord") if n in lower]
    return found if len(found) >= 2 and found[0] == lower.get("x-coord") and found[1] == lower.get("y-coord") else []


def _from_table(path: Path) -> tuple[np.ndarray, pd.DataFrame]:
    """A Metascatter-style table: its coordinates are the features, the other columns the metadata."""
    try:
        table = read_table(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"Could not read {path.name} as a table ({first_line(exc)}).") from None
    coords = coordinate_columns(table)
    if not coords:
        raise DataError(f"{path.name} has no X-Coord and Y-Coord columns (Metascatter's layout); to load it as "
                        "images, use it as a manifest instead.")
    values = table[coords].apply(pd.to_numeric, errors="coerce")
    bad = values.isna().any(axis=1)
    if bad.any():
        raise DataError(f"{int(bad.sum())} rows of {path.name} have a missing or non-numeric coordinate "
                        f"(first: row {int(bad.idxmax()) + 2}); fix or drop them.")
    return values.to_numpy(np.float64), table.drop(columns=coords)


def _check_array(name: str, shape: tuple[int, ...], dtype: np.dtype, available: int | None = None) -> None:
    """What an ``.npy`` header declares, against the caps, before its data is read.

    ``available`` is how many bytes follow the header: a header declaring more (10^12 rows in a
    small file) is refused here rather than ending in a ``MemoryError``.
    """
    if dtype.hasobject:
        raise DataError(f"{name} holds Python objects, which embedviz will not unpickle; "
                        "save a numeric array (np.save(path, features.astype('float32'))).")
    rows = shape[0] if shape else 1
    columns = math.prod(shape[1:]) if len(shape) > 1 else 1
    check_shape(name, rows, columns)
    nbytes = math.prod(shape) * dtype.itemsize
    limit = cap("max_features_mb")
    if nbytes > limit.bytes():
        raise DataError(limit.message(f"{name} declares {shape} {dtype} = {nbytes / 2**20:,.0f} MiB of features"))
    if available is not None and nbytes > available:
        raise DataError(f"{name} is cut short: its header declares {nbytes:,} bytes of data but the file holds "
                        f"{available:,}; save it again.")


def _read_header(fh, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from an ``.npy`` header (versions 1 to 3), reading nothing else."""
    try:
        version = npformat.read_magic(fh)
        reader = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
        shape, _, dtype = reader(fh)
    except (ValueError, EOFError, OSError) as exc:
        raise DataError(f"{name} is not a readable .npy array ({first_line(exc)}); save it with np.save.") from None
    return tuple(int(n) for n in shape), np.dtype(dtype)


def _read_data(fh, name: str) -> np.ndarray:
    try:
        fh.seek(0)  # read_array reads the header again (zip members seek by decompressing anew: a few bytes)
        return npformat.read_array(fh, allow_pickle=False)
    except MemoryError:
        raise DataError(f"{name} does not fit in the memory this server has free; load fewer rows.") from None
    except (ValueError, EOFError, OSError, *DAMAGED) as exc:
        raise DataError(f"{name} could not be read ({first_line(exc)}); save it again.") from None


def _from_npy(path: Path) -> np.ndarray:
    with open(path, "rb") as fh:
        shape, dtype = _read_header(fh, path.name)
        _check_array(path.name, shape, dtype, available=path.stat().st_size - fh.tell())
        return _read_data(fh, path.name)


def _from_npz(path: Path) -> np.ndarray:
    """The features array of an ``.npz``: its header and the zip's declared size checked against the
    caps before it is decompressed (a 1 MiB ``.npz`` of zeros can hold a 1 GiB array)."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, *DAMAGED):
        raise DataError(f"{path.name} is not a readable .npz (a zip of .npy arrays, as np.savez writes); "
                        "save it again.") from None
    with zf:
        members = {(n[:-4] if n.endswith(".npy") else n): n for n in zf.namelist()}
        names = list(members)
        chosen = next((n for n in _NPZ_NAMES if n in names), names[0] if len(names) == 1 else None)
        if chosen is None:
            shown = ", ".join(names[:10]) + (f" and {len(names) - 10:,} more" if len(names) > 10 else "")
            raise DataError(f"{path.name} holds arrays {shown}; name the features array "
                            "'features' (np.savez(path, features=...)).")
        info = zf.getinfo(members[chosen])
        name = f"{path.name} ({chosen})"
        if info.flag_bits & 0x1 or info.compress_type not in ZIP_METHODS:
            raise DataError(f"{name} is encrypted or compressed in a way numpy cannot read; save it again with "
                            "np.savez or np.savez_compressed.")
        limit = cap("max_features_mb")
        if info.file_size > limit.bytes():
            raise DataError(limit.message(f"{name} unpacks to {info.file_size / 2**20:,.0f} MiB"))
        try:
            fh = zf.open(info)
        except (OSError, RuntimeError, *DAMAGED) as exc:
            raise DataError(f"{name} could not be read ({first_line(exc)}); save it again.") from None
        with fh:
            shape, dtype = _read_header(fh, name)
            _check_array(name, shape, dtype, available=info.file_size - fh.tell())
            return _read_data(fh, name)


def _is_vector_type(kind) -> bool:
    import pyarrow as pa

    return pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)


def _from_parquet(path: Path) -> tuple[np.ndarray, pd.DataFrame, bool]:
    """Vectors from a list column, or Metascatter coordinates; the flag says which.

    Rows, vector length and the decoded size come from the footer and are checked against the caps
    before any page is decompressed; reading then counts what it decodes, batch by batch.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
        rows, _, values, decoded = parquet_layout(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path.name} is not a readable Parquet file ({first_line(exc)}); save it again.") from None
    names = [field.name for field in schema]
    lower = {str(c).lower(): c for c in names}
    vector = next((lower[n] for n in _VECTOR_NAMES if n in lower and _is_vector_type(schema.field(lower[n]).type)),
                  next((f.name for f in schema if _is_vector_type(f.type)), None))
    if vector is None and coordinate_columns(pd.DataFrame(columns=names)):
        return (*_from_table(path), True)
    if vector is None:
        raise DataError(f"{path.name} has no vector column (a list per row, named e.g. 'embedding') and no "
                        f"X-Coord/Y-Coord columns; save the features as a list column named 'embedding'.")
    dims = values.get(vector, 0) // max(rows, 1)
    check_shape(path.name, rows, dims)
    features_cap, table_cap = cap("max_features_mb"), cap("max_table_mb")
    if decoded.get(vector, 0) > features_cap.bytes():
        raise DataError(features_cap.message(f"{path.name} holds {rows:,} vectors of {dims:,} values, about "
                                             f"{decoded[vector] / 2**20:,.0f} MiB of features"))
    rest = sum(size for column, size in decoded.items() if column != vector)
    if rest > table_cap.bytes():
        raise DataError(table_cap.message(f"{path.name}'s other columns decode to about {rest / 2**20:,.0f} MiB"))
    try:
        table = read_parquet(path, features_cap.bytes() + table_cap.bytes(), features_cap)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path.name} could not be read ({first_line(exc)}); save it again.") from None
    column = table.column(vector)
    if not _is_vector_type(column.type):
        raise DataError(f"{path.name}'s column {vector!r} is not a list per row; store one vector per row there.")
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    lengths = pc.list_value_length(array)
    if lengths.null_count:
        raise DataError(f"{lengths.null_count:,} rows of {path.name}'s column {vector!r} have no vector; "
                        "drop them or fill them in.")
    low, high = (pc.min_max(lengths)[k].as_py() for k in ("min", "max")) if len(lengths) else (0, 0)
    if low != high:
        raise DataError(f"Rows of {path.name}'s column {vector!r} have different lengths "
                        f"({low}–{high}); every vector must have the same size.")
    flat = array.flatten()
    if not (pa.types.is_integer(flat.type) or pa.types.is_floating(flat.type)):
        raise DataError(f"{path.name}'s column {vector!r} holds {flat.type} values; features must be real numbers.")
    features = flat.to_numpy(zero_copy_only=False).reshape(len(array), high or 0)
    return features, table.drop_columns([vector]).to_pandas(), False


def _count_lines(path: Path) -> int:
    count, last = 0, b"\n"
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def _from_tensorboard(path: Path) -> tuple[np.ndarray, pd.DataFrame | None]:
    """The projector's ``tensors.tsv`` (and ``metadata.tsv``), their size, rows and columns checked first."""
    folder = path if path.is_dir() else path.parent
    tensors = folder / "tensors.tsv"
    check_table_file(tensors)
    with open(tensors, "rb") as fh:
        first = fh.readline(1 << 24)
    columns, rows = first.count(b"\t") + 1, _count_lines(tensors)
    check_shape("tensors.tsv", rows, columns)
    limit = cap("max_features_mb")
    if rows * columns * 8 > limit.bytes():
        raise DataError(limit.message(f"tensors.tsv holds {rows:,} × {columns:,} numbers, "
                                      f"{rows * columns * 8 / 2**20:,.0f} MiB as float64"))
    try:
        features = np.loadtxt(tensors, delimiter="\t", dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise DataError(f"tensors.tsv has a row that is not tab-separated numbers ({first_line(exc)}).") from None
    meta_path = folder / "metadata.tsv"
    if not meta_path.is_file():
        return features, None
    check_table_file(meta_path)
    lines = meta_path.read_text(encoding="utf-8-sig").rstrip("\n").split("\n")
    check_shape("metadata.tsv", len(lines) - 1, 0)
    if "\t" not in lines[0]:  # the projector's one-column metadata has no header row
        return features, pd.DataFrame({"label": lines})
    check_shape("metadata.tsv", 0, lines[0].count("\t") + 1)
    return features, pd.read_csv(meta_path, sep="\t", dtype=str, keep_default_na=False)


def _check(features: np.ndarray, source: str) -> np.ndarray:
    if features.ndim == 1:
        raise DataError(f"{source} is 1-D (shape {features.shape}); features must be one row per sample.")
    if features.ndim != 2:
        raise DataError(f"{source} has shape {features.shape}; flatten it to (samples, dims) first.")
    if not np.issubdtype(features.dtype, np.number) or np.issubdtype(features.dtype, np.complexfloating):
        raise DataError(f"{source} has dtype {features.dtype}; features must be real numbers.")
    if features.shape[0] == 0 or features.shape[1] == 0:
        raise DataError(f"{source} is empty (shape {features.shape}).")
    return features.astype(np.float32, copy=False)


def _join(count: int, meta: pd.DataFrame | None, id_column: str | None, source: str) -> pd.DataFrame:
    if meta is None:
        return pd.DataFrame({"sample_id": [str(i) for i in range(count)]})
    meta = meta.reset_index(drop=True)
    meta.columns = [str(c) for c in meta.columns]
    if len(meta) != count:
        raise DataError(f"{source} has {count:,} feature rows but the metadata has {len(meta):,} rows; "
                        "they are joined on row order, so the counts must match.")
    column = id_column or next((c for c in meta.columns if c.lower() in _ID_NAMES), None)
    if id_column and id_column not in meta.columns:
        raise DataError(f"The metadata has no column {id_column!r}; columns: {', '.join(meta.columns)}.")
    ids = meta[column].astype(str) if column else pd.Series([str(i) for i in range(count)])
    if not ids.is_unique:
        repeated = ids[ids.duplicated()].iloc[0]
        raise DataError(f"Sample ids must be unique, but {repeated!r} appears more than once in column {column!r}.")
    rest = meta.drop(columns=[c for c in ("sample_id", "path") if c in meta.columns])
    joined = pd.concat([pd.DataFrame({"sample_id": ids.to_numpy()}), rest], axis=1)
    lower = {c.strip().lower(): c for c in meta.columns}
    path_column = next((lower[n] for n in PATH_COLUMN_NAMES if n in lower), None)
    if path_column is not None:  # image paths for thumbnails, only those that stay under the prefix
        joined.insert(1, "path", meta[path_column].map(_confined).astype("string"))
    return joined


def _confined(value) -> str | None:
    if pd.isna(value):
        return None
    try:
        return check_relative(str(value))
    except DataError:
        return None


def images_of(feature_set: FeatureSet, prefix: str | Path | None = None,
              roots: DataRoots | None = None) -> ImageCollection:
    """The feature set's samples as a collection whose ``path`` column (where there is one) is read
    under ``prefix`` (default: the source file's folder) to show thumbnails; absolute paths, ``..``
    and URLs are never followed, so such rows simply have no image. With ``roots`` (a dashboard
    user's server path), a path that a link leads outside them or into ``$EMBEDVIZ_HOME`` has no
    image either."""
    source = Path(feature_set.manifest.get("source", "."))
    root = Path(prefix).expanduser().resolve() if prefix else (source if source.is_dir() else source.parent).resolve()
    samples = feature_set.samples
    if "path" not in samples.columns:
        samples = samples.assign(path=pd.Series(pd.NA, index=samples.index, dtype="string"))
    elif roots is not None:
        samples = samples.assign(path=samples["path"].map(lambda rel: rel if _reachable(root, rel, roots) else pd.NA)
                                 .astype("string"))
    return ImageCollection(root=root, samples=samples, name=source.stem or source.name)


def _reachable(root: Path, rel, roots: DataRoots) -> bool:
    if pd.isna(rel):
        return False
    resolved = (root / str(rel)).resolve()
    return roots.holds(resolved) and not inside_home(resolved)


def load_precomputed(path: str | Path, metadata: str | Path | None = None, id_column: str | None = None) -> FeatureSet:
    """A :class:`FeatureSet` from features made elsewhere, with metadata joined on row order.

    ``metadata`` (CSV/Parquet) overrides what the file carries itself (Parquet's other columns,
    TensorBoard's ``metadata.tsv``); its ``id_column`` (or a column named ``sample_id``/``id``/
    ``path``) gives the ids, else row numbers do. NaN or infinite rows are refused by name.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path} does not exist.")
    suffix, meta, given = path.suffix.lower(), None, False
    if suffix == ".npy":
        features = _from_npy(path)
    elif suffix == ".npz":
        features = _from_npz(path)
    elif suffix == ".parquet":
        features, meta, given = _from_parquet(path)
    elif path.is_dir() or path.name.lower() == "tensors.tsv":
        features, meta = _from_tensorboard(path)
    elif suffix in (".csv", ".tsv", ".txt"):
        (features, meta), given = _from_table(path), True
    else:
        raise DataError(f"{path.name} is not .npy, .npz, .parquet, a TensorBoard tensors.tsv or a Metascatter "
                        ".csv with X-Coord and Y-Coord.")
    features = _check(features, path.name)
    if metadata is not None:
        try:
            meta = read_table(Path(metadata).expanduser())
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise DataError(f"Could not read the metadata table {Path(metadata).name} ({first_line(exc)}).") from None
    samples = _join(features.shape[0], meta, id_column, path.name)
    bad = ~np.isfinite(features).all(axis=1)
    if bad.any():
        first = ", ".join(samples["sample_id"][bad].head(3))
        raise DataError(f"{int(bad.sum())} feature rows contain NaN or infinite values (first: {first}); "
                        "drop or fix them before loading.")
    manifest = {"source": str(path), "model": "precomputed", "layer": "", "num_features": int(features.shape[0]),
                "dim": int(features.shape[1]), "given_coordinates": given}
    if "path" in samples.columns and samples["path"].isna().any():
        manifest["paths_not_shown"] = int(samples["path"].isna().sum())
    return FeatureSet(np.ascontiguousarray(features), samples, pd.DataFrame(columns=["path", "reason"]), manifest,
                      path=path)


def precomputed_key(path: str | Path, metadata: str | Path | None = None, id_column: str | None = None) -> str:
    """A store-style key from the files' bytes and the join options: the same inputs, the same maps."""
    path = Path(path).expanduser()
    files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".tsv") if path.is_dir() else [path]
    if metadata:
        files.append(Path(metadata).expanduser())
    try:
        digests = [sha256_file(p) for p in files]
    except OSError as exc:
        raise DataError(f"Could not read {exc.filename}: {exc.strerror}.") from None
    return "pre-" + sha256_json({"files": digests, "id_column": id_column or ""})[:28]


def load_feature_set(path: str | Path, mmap: bool = True) -> FeatureSet:
    """A feature folder written by ``extract``, or features made elsewhere (the formats above)."""
    path = Path(path).expanduser()
    if (path / "features.npy").is_file():
        return read_feature_folder(path, mmap)
    if is_precomputed(path) or path.suffix.lower() in (".parquet", ".csv"):
        return load_precomputed(path)
    raise DataError(f"{path} is neither a feature folder (with features.npy) nor a .npy/.npz/.parquet/"
                    "tensors.tsv features file or a Metascatter .csv.")
