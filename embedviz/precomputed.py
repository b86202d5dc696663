"""Features computed elsewhere: ``.npy``/``.npz``, Parquet with a vector column, TensorBoard
projector files (``tensors.tsv`` + ``metadata.tsv``), each optionally joined to a metadata table,
and maps made elsewhere: Metascatter's table (``Paths``, ``X-Coord``, ``Y-Coord``, metadata),
whose coordinates become 2-D "features" that the ``precomputed`` method shows as they are.

Nothing is unpickled (``allow_pickle=False``); every mismatch gets a message naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError
from .home import sha256_file, sha256_json
from .images import _PATH_COLUMN_NAMES, ImageCollection, _check_relative, _read_table
from .store import FeatureSet

__all__ = ["load_precomputed", "is_precomputed", "coordinate_columns", "images_of", "precomputed_key"]

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
        table = _read_table(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"Could not read {path.name} as a table ({exc}).") from None
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


def _from_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise DataError(f"{path.name} holds Python objects, which embedviz will not unpickle; "
                            "save a numeric array (np.save(path, features.astype('float32'))).") from None
        raise DataError(f"{path.name} is not a readable .npy array ({exc}).") from None


def _from_npz(path: Path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            chosen = next((n for n in _NPZ_NAMES if n in names), names[0] if len(names) == 1 else None)
            if chosen is None:
                raise DataError(f"{path.name} holds arrays {', '.join(names)}; name the features array "
                                "'features' (np.savez(path, features=...)).")
            return archive[chosen]
    except ValueError as exc:
        raise DataError(f"{path.name} holds Python objects or is not a numeric .npz ({exc}).") from None


def _from_parquet(path: Path) -> tuple[np.ndarray, pd.DataFrame, bool]:
    """Vectors from a list column, or Metascatter coordinates; the flag says which."""
    table = pd.read_parquet(path)
    lower = {str(c).lower(): c for c in table.columns}
    vector = next((lower[n] for n in _VECTOR_NAMES if n in lower), None)
    if vector is None:
        vector = next((c for c in table.columns if len(table) and isinstance(table[c].iloc[0], (list, np.ndarray))), None)
    if vector is None and coordinate_columns(table):
        return (*_from_table(path), True)
    if vector is None:
        raise DataError(f"{path.name} has no vector column (a list per row, named e.g. 'embedding') and no "
                        f"X-Coord/Y-Coord columns; columns: {', '.join(map(str, table.columns))}.")
    lengths = table[vector].map(len)
    if lengths.nunique() != 1:
        raise DataError(f"Rows of {path.name}'s column {vector!r} have different lengths "
                        f"({lengths.min()}–{lengths.max()}); every vector must have the same size.")
    return np.stack(table[vector].map(np.asarray).to_list()), table.drop(columns=[vector]), False


def _from_tensorboard(path: Path) -> tuple[np.ndarray, pd.DataFrame | None]:
    folder = path if path.is_dir() else path.parent
    try:
        features = np.loadtxt(folder / "tensors.tsv", delimiter="\t", dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise DataError(f"tensors.tsv has a row that is not tab-separated numbers ({exc}).") from None
    meta_path = folder / "metadata.tsv"
    if not meta_path.is_file():
        return features, None
    lines = meta_path.read_text(encoding="utf-8-sig").rstrip("\n").split("\n")
    if "\t" not in lines[0]:  # the projector's one-column metadata has no header row
        return features, pd.DataFrame({"label": lines})
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
    path_column = next((lower[n] for n in _PATH_COLUMN_NAMES if n in lower), None)
    if path_column is not None:  # image paths for thumbnails, only those that stay under the prefix
        joined.insert(1, "path", meta[path_column].map(_confined).astype("string"))
    return joined


def _confined(value) -> str | None:
    if pd.isna(value):
        return None
    try:
        return _check_relative(str(value))
    except DataError:
        return None


def images_of(feature_set: FeatureSet, prefix: str | Path | None = None) -> ImageCollection:
    """The feature set's samples as a collection whose ``path`` column (where there is one) is read
    under ``prefix`` (default: the source file's folder) to show thumbnails; absolute paths, ``..``
    and URLs are never followed, so such rows simply have no image."""
    source = Path(feature_set.manifest.get("source", "."))
    root = Path(prefix).expanduser().resolve() if prefix else (source if source.is_dir() else source.parent).resolve()
    samples = feature_set.samples
    if "path" not in samples.columns:
        samples = samples.assign(path=pd.Series(pd.NA, index=samples.index, dtype="string"))
    return ImageCollection(root=root, samples=samples, name=source.stem or source.name)


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
            meta = _read_table(Path(metadata).expanduser())
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise DataError(f"Could not read the metadata table {Path(metadata).name} ({exc}).") from None
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
