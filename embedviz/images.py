"""Image collections: where the images are, a stable ``sample_id`` per image, and metadata.

A collection is a root folder plus a table with one row per image (``sample_id``, ``path``
relative to the root, ``label`` when known, and any metadata columns). It can come from a
folder tree (class sub-folders become ``label``), a ``.zip``/``.tar`` archive (unpacked
safely into a workspace first), or a CSV/Parquet manifest whose path column is resolved
against a path prefix.
"""

from __future__ import annotations

import csv
import io
import shutil
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

import pandas as pd

from .errors import DataError
from .home import home_dir, sha256_file, sha256_json

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageCollection",
    "load_collection",
    "load_folder",
    "load_archive",
    "load_manifest",
    "collection_hash",
    "file_hashes",
    "find_duplicates",
]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
_JUNK_NAMES = frozenset({"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini"})
_PATH_COLUMN_NAMES = ("path", "paths", "filepath", "file_path", "image_path", "image", "filename",
                      "file", "图像路径", "路径")
_MAX_MEMBERS = 1_000_000
_MAX_TOTAL_BYTES = 50 * 2**30
_MAX_MEMBER_BYTES = 512 * 2**20
#: Unpacked/packed size above which a large member (or a whole .tar.gz) counts as a bomb.
_MAX_RATIO = 200
_RATIO_FLOOR_BYTES = 8 * 2**20


@dataclass(frozen=True)
class ImageCollection:
    """Images under ``root`` and their table; ``samples.sample_id`` is unique and stable."""

    root: Path
    samples: pd.DataFrame
    name: str

    def __len__(self) -> int:
        return len(self.samples)

    def paths(self) -> list[Path]:
        """Absolute paths, in table order."""
        return [self.root / p for p in self.samples["path"]]

    @property
    def has_labels(self) -> bool:
        return "label" in self.samples.columns and bool(self.samples["label"].notna().any())


def _is_junk(rel: PurePosixPath) -> bool:
    return any(part in _JUNK_NAMES or part.startswith("._") for part in rel.parts)


def _is_image(rel: PurePosixPath) -> bool:
    return rel.suffix.lower() in IMAGE_SUFFIXES and not _is_junk(rel)


def load_folder(folder: str | Path, name: str | None = None) -> ImageCollection:
    """Every image below ``folder``; the first sub-folder level becomes ``label``.

    Deeper folders are kept as ``folder`` metadata, so ``cats/indoor/1.png`` has label
    ``cats`` and folder ``cats/indoor``.
    """
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"{folder} is not a folder: give a folder of images, an archive or a manifest.")
    rels = sorted(
        PurePosixPath(p.relative_to(root).as_posix())
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink()
    )
    rels = [r for r in rels if _is_image(r)]
    if not rels:
        raise DataError(
            f"No images found in {folder}: expected files ending in "
            f"{', '.join(sorted(IMAGE_SUFFIXES))}, possibly in one sub-folder per class."
        )
    table = pd.DataFrame({"sample_id": [str(r) for r in rels], "path": [str(r) for r in rels]})
    labels = [r.parts[0] if len(r.parts) > 1 else None for r in rels]
    if any(lab is not None for lab in labels):
        table["label"] = pd.Series(labels, dtype="string")
    folders = [str(r.parent) for r in rels]
    if any(len(r.parts) > 2 for r in rels):
        table["folder"] = folders
    return ImageCollection(root=root, samples=table, name=name or root.name)


def _safe_member_path(name: str) -> PurePosixPath | None:
    """The member's relative path, or ``None`` when it must be skipped; raises when hostile."""
    rel = PurePosixPath(name.replace("\\", "/"))
    if rel.is_absolute() or name.startswith("/") or (rel.parts and ":" in rel.parts[0]):
        raise DataError(f"The archive holds an absolute path ({name}); refusing to unpack it.")
    if ".." in rel.parts:
        raise DataError(f"The archive holds a path that leaves its folder ({name}); refusing to unpack it.")
    if not rel.parts or _is_junk(rel):
        return None
    return rel


def _iter_archive(path: Path) -> Iterator[tuple[PurePosixPath, int, "io.BufferedIOBase"]]:
    """Yield (relative path, size, open stream) for each regular file worth reading."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > _MAX_MEMBERS:
                raise DataError(f"The archive has {len(infos):,} members, more than {_MAX_MEMBERS:,}.")
            for info in infos:
                rel = _safe_member_path(info.filename)
                if rel is None or info.is_dir():
                    continue
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise DataError(f"The archive holds a link ({info.filename}); refusing to unpack it.")
                if info.file_size > _RATIO_FLOOR_BYTES and info.file_size > _MAX_RATIO * max(info.compress_size, 1):
                    raise DataError(f"{info.filename} expands {info.file_size // max(info.compress_size, 1):,} times "
                                    "(a zip bomb?); refusing to unpack it.")
                with zf.open(info) as fh:
                    yield rel, info.file_size, fh
        return
    try:
        tf = tarfile.open(path)
    except tarfile.TarError as exc:
        raise DataError(f"{path.name} is not a readable .zip or .tar archive ({exc}).") from None
    with tf:
        for count, member in enumerate(tf):
            if count >= _MAX_MEMBERS:
                raise DataError(f"The archive has more than {_MAX_MEMBERS:,} members.")
            rel = _safe_member_path(member.name)
            if member.issym() or member.islnk():
                raise DataError(f"The archive holds a link ({member.name}); refusing to unpack it.")
            if rel is None or not member.isfile():
                continue
            fh = tf.extractfile(member)
            if fh is not None:
                yield rel, member.size, fh


def _copy_limited(stream, dst, limit: int, rel: PurePosixPath) -> int:
    """Copy at most ``limit`` bytes; the sizes an archive declares can lie, so count what arrives."""
    copied = 0
    for block in iter(lambda: stream.read(1 << 20), b""):
        copied += len(block)
        if copied > limit:
            raise DataError(f"Unpacking stopped at {rel}: the archive expands far beyond its size "
                            "(a zip bomb?) or past the 50 GiB cap.")
        dst.write(block)
    return copied


def load_archive(archive: str | Path, workspace: Path | None = None) -> ImageCollection:
    """Unpack the images of a ``.zip``/``.tar`` archive member by member, then load the folder.

    Only image files are written, never links or paths outside the target folder; the
    target is keyed by the archive's SHA-256, so the same archive is unpacked once.
    """
    archive = Path(archive).expanduser()
    if not archive.is_file():
        raise DataError(f"{archive} does not exist.")
    digest = sha256_file(archive)
    target = (workspace or home_dir() / "uploads") / f"{archive.name}-{digest[:16]}"
    if not (target / ".complete").exists():
        tmp = target.with_name(target.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        total = 0
        budget = min(_MAX_TOTAL_BYTES, max(_RATIO_FLOOR_BYTES, _MAX_RATIO * archive.stat().st_size))
        for rel, size, stream in _iter_archive(archive):
            if not _is_image(rel):
                continue  # other files, nested archives included, are never unpacked
            if size > _MAX_MEMBER_BYTES:
                raise DataError(f"{rel} is {size / 2**20:,.0f} MiB, larger than one image may be.")
            out = tmp.joinpath(*rel.parts)
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "wb") as dst:
                total += _copy_limited(stream, dst, min(_MAX_MEMBER_BYTES, budget - total), rel)
        (tmp / ".complete").write_text(digest)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    # An archive that wraps class folders in one top folder ("shapes/discs/1.png") is read from
    # inside it; a lone folder with images directly in it ("discs/1.png") is a class, and stays.
    entries = [p for p in target.iterdir() if p.name != ".complete"]
    wrapper = len(entries) == 1 and entries[0].is_dir() and not any(p.is_file() for p in entries[0].iterdir())
    root = entries[0] if wrapper else target
    return load_folder(root, name=archive.name)


def _read_table(path: Path) -> pd.DataFrame:
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030", "latin-1"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    try:  # sniff among real delimiters only: a one-column file would otherwise split on a letter
        sep = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|").delimiter
    except csv.Error:
        sep = ","
    return pd.read_csv(io.StringIO(text), sep=sep)


def _find_path_column(table: pd.DataFrame) -> str:
    by_lower = {str(c).strip().lower(): c for c in table.columns}
    for name in _PATH_COLUMN_NAMES:
        if name in by_lower:
            return by_lower[name]
    for column in table.columns:
        values = table[column].dropna().astype(str)
        if len(values) and values.str.lower().str.endswith(tuple(IMAGE_SUFFIXES)).mean() > 0.9:
            return column
    raise DataError(
        f"Could not tell which column holds the image paths (columns: {', '.join(map(str, table.columns))}); "
        "name it 'path' or choose it with path_column."
    )


def _check_relative(value: str) -> str:
    rel = PurePosixPath(value.replace("\\", "/"))
    if "://" in value:
        raise DataError(f"The manifest points to a URL ({value}); embedviz reads local files only.")
    if rel.is_absolute() or ".." in rel.parts:
        raise DataError(f"The manifest path {value} leaves the path prefix; use paths relative to it.")
    return str(rel)


def load_manifest(
    manifest: str | Path, path_prefix: str | Path | None = None, path_column: str | None = None
) -> ImageCollection:
    """A CSV/Parquet table of image paths (relative to ``path_prefix``) and metadata."""
    manifest = Path(manifest).expanduser()
    if not manifest.is_file():
        raise DataError(f"{manifest} does not exist.")
    try:
        table = _read_table(manifest)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"Could not read {manifest.name} as a table ({exc}).") from None
    column = path_column or _find_path_column(table)
    if column not in table.columns:
        raise DataError(f"{manifest.name} has no column {column!r}.")
    table = table.dropna(subset=[column]).reset_index(drop=True)
    rel = [_check_relative(str(v)) for v in table[column]]
    if len(set(rel)) != len(rel):
        raise DataError(f"{manifest.name} lists some images more than once; each path must be unique.")
    root = Path(path_prefix).expanduser().resolve() if path_prefix else manifest.parent.resolve()
    meta = table.drop(columns=[column])
    meta.columns = [str(c) for c in meta.columns]
    meta = meta.drop(columns=[c for c in ("sample_id", "path") if c in meta.columns])
    if "label" in meta.columns:
        meta["label"] = meta["label"].astype("string")
    samples = pd.concat([pd.DataFrame({"sample_id": rel, "path": rel}), meta], axis=1)
    return ImageCollection(root=root, samples=samples, name=manifest.stem)


def load_collection(
    source: str | Path, path_prefix: str | Path | None = None, workspace: Path | None = None,
    path_column: str | None = None,
) -> ImageCollection:
    """A folder, an archive or a manifest, told apart by what ``source`` is."""
    source = Path(source).expanduser()
    lower = source.name.lower()
    if source.is_dir():
        return load_folder(source)
    if not source.exists():
        raise DataError(f"{source} does not exist: give a folder, a .zip/.tar archive or a CSV/Parquet manifest.")
    if lower.endswith(_ARCHIVE_SUFFIXES):
        return load_archive(source, workspace)
    if lower.endswith((".csv", ".tsv", ".txt", ".parquet")):
        return load_manifest(source, path_prefix, path_column)
    raise DataError(f"{source.name} is not a folder, .zip/.tar archive or CSV/Parquet manifest.")


def file_hashes(collection: ImageCollection) -> list[str]:
    """SHA-256 of each image file, in table order (``missing`` where it cannot be read)."""
    hashes = []
    for path in collection.paths():
        try:
            hashes.append(sha256_file(path))
        except OSError:
            hashes.append("missing")
    return hashes


def collection_hash(collection: ImageCollection, hashes: list[str] | None = None) -> str:
    """SHA-256 over every image's id and bytes: equal hashes mean the same images."""
    hashes = file_hashes(collection) if hashes is None else hashes
    return sha256_json(list(zip(collection.samples["sample_id"], hashes)))


def find_duplicates(collection: ImageCollection, hashes: list[str] | None = None) -> pd.Series:
    """For each image that repeats an earlier one byte for byte, that one's ``sample_id``; else NA."""
    hashes = file_hashes(collection) if hashes is None else hashes
    first: dict[str, str] = {}
    duplicate_of = []
    for sample_id, digest in zip(collection.samples["sample_id"], hashes):
        duplicate_of.append(first.get(digest) if digest != "missing" else None)
        first.setdefault(digest, sample_id)
    return pd.Series(duplicate_of, index=collection.samples.index, dtype="string", name="duplicate_of")
