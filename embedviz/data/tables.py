"""Tables a user gives (manifests, Metascatter maps, metadata, features as Parquet), read within
the server's caps: the file's size, its rows and columns, and what Parquet decodes to, each checked
before the bytes are read."""

from __future__ import annotations

import csv
import io
from pathlib import Path, PurePosixPath

import pandas as pd

from embedviz.errors import DataError
from embedviz.limits import cap

__all__ = ["PATH_COLUMN_NAMES", "check_table_file", "check_shape", "parquet_layout", "read_parquet",
           "read_table", "check_relative"]

#: Column names taken, case-insensitively, for a table's column of image paths.
PATH_COLUMN_NAMES = ("path", "paths", "filepath", "file_path", "image_path", "image", "filename",
                     "file", "图像路径", "路径")


def check_table_file(path: Path) -> int:
    """The file's size in bytes, refused over ``EMBEDVIZ_MAX_TABLE_MB`` before a byte is read."""
    size, limit = path.stat().st_size, cap("max_table_mb")
    if size > limit.bytes():
        raise DataError(limit.message(f"{path.name} is {size / 2**20:,.1f} MiB"))
    return size


def check_shape(name: str, rows: int, columns: int) -> None:
    """Rows and columns of a table or features file against ``EMBEDVIZ_MAX_ROWS``/``_COLUMNS``."""
    if rows > cap("max_rows").count():
        raise DataError(cap("max_rows").message(f"{name} has {rows:,} rows"))
    if columns > cap("max_columns").count():
        raise DataError(cap("max_columns").message(f"{name} has {columns:,} columns"))


_PARQUET_WIDTHS = {"BOOLEAN": 1, "INT32": 4, "INT64": 8, "INT96": 12, "FLOAT": 4, "DOUBLE": 8}


def parquet_layout(path: Path) -> tuple[int, int, dict[str, int], dict[str, int]]:
    """From the footer alone: rows, columns, and per top-level column the values it holds (list
    items count one each) and about how many bytes they decode to. A few KiB of Parquet can declare
    hundreds of MiB (repeated values compress to nothing), so callers check these before reading."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    values: dict[str, int] = {}
    decoded: dict[str, int] = {}
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for i in range(group.num_columns):
            chunk = group.column(i)
            top = chunk.path_in_schema.split(".")[0]
            width = _PARQUET_WIDTHS.get(chunk.physical_type)
            if width is None and chunk.physical_type == "FIXED_LEN_BYTE_ARRAY":
                width = max(meta.schema.column(i).length or 0, 1)
            if width is not None:
                size = chunk.num_values * width
            else:  # byte arrays: what the pages hold, or more where statistics say values are long
                longest = 0
                stats = chunk.statistics if chunk.is_stats_set else None
                if stats is not None and stats.has_min_max:
                    longest = max(len(str(stats.min)), len(str(stats.max)))
                size = max(chunk.total_uncompressed_size, chunk.num_values * (longest + 8))
            values[top] = values.get(top, 0) + chunk.num_values
            decoded[top] = decoded.get(top, 0) + size
    return meta.num_rows, meta.num_columns, values, decoded


def read_parquet(path: Path, budget: int, limit) -> "pa.Table":  # noqa: F821 - pyarrow type
    """Read in batches, stopping as soon as what is decoded passes ``budget`` bytes (``limit``'s cap):
    the footer's sizes are an estimate, the batches are counted for real."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(path)
    batches, decoded = [], 0
    for batch in handle.iter_batches(batch_size=8192):
        decoded += batch.nbytes
        if decoded > budget:
            raise DataError(limit.message(f"{path.name} decodes to more than {decoded / 2**20:,.0f} MiB"))
        batches.append(batch)
    return pa.Table.from_batches(batches, schema=handle.schema_arrow)


def read_table(path: Path) -> pd.DataFrame:
    """A CSV/TSV/Parquet table (a manifest, Metascatter's map, metadata), within the table caps:
    the file's size, its rows and columns, and for Parquet what it decodes to, checked before reading."""
    check_table_file(path)
    if path.suffix.lower() == ".parquet":
        rows, columns, _, decoded = parquet_layout(path)
        check_shape(path.name, rows, columns)
        limit = cap("max_table_mb")
        if sum(decoded.values()) > limit.bytes():
            raise DataError(limit.message(f"{path.name} decodes to about {sum(decoded.values()) / 2**20:,.0f} MiB"))
        return read_parquet(path, limit.bytes(), limit).to_pandas()
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030", "latin-1"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    del raw
    try:  # sniff among real delimiters only: a one-column file would otherwise split on a letter
        sep = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|").delimiter
    except csv.Error:
        sep = ","
    header = next(csv.reader(io.StringIO(text[: min(len(text), 1 << 22)]), delimiter=sep), [])
    check_shape(path.name, 0, len(header))
    rows = cap("max_rows").count()
    table = pd.read_csv(io.StringIO(text), sep=sep, nrows=rows + 1)
    check_shape(path.name, len(table), 0)
    return table


def check_relative(value: str) -> str:
    """``value`` as a relative path; the message never repeats the value (it is a cell of the user's file)."""
    rel = PurePosixPath(value.replace("\\", "/"))
    if "://" in value:
        raise DataError("The manifest lists a URL; embedviz reads local files only.")
    if rel.is_absolute() or ".." in rel.parts:
        raise DataError("The manifest lists a path that is absolute or leaves the path prefix (..); "
                        "use paths relative to it.")
    return str(rel)
