"""Image collections: where the images are, a stable ``sample_id`` per image, and metadata.

A collection is a root folder plus a table with one row per image (``sample_id``, ``path``
relative to the root, ``label`` when known, and any metadata columns). It can come from a
folder tree (class sub-folders become ``label``), a ``.zip``/``.tar`` archive (unpacked
safely into a workspace first), or a CSV/Parquet manifest whose path column is resolved
against a path prefix.
"""

from __future__ import annotations

import errno
import io
import lzma
import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

import pandas as pd

from embedviz.data.decode import ALLOWED_FORMATS, image_suffixes
from embedviz.data.roots import DataRoots, check_server_path, inside_home
from embedviz.data.tables import PATH_COLUMN_NAMES, check_relative, read_table
from embedviz.errors import DataError, first_line
from embedviz.hashing import sha256_file, sha256_json
from embedviz.layout import home_dir, layout
from embedviz.limits import cap

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
    "image_shapes",
]

#: Every suffix of a format Pillow opens here, AVIF and HEIC included where available (see decode).
IMAGE_SUFFIXES = image_suffixes()
#: What messages name: the common ones (the full list is long).
_SOME_SUFFIXES = ", ".join(s for s in (".png", ".jpg", ".webp", ".tif", ".bmp", ".gif", ".avif", ".heic")
                           if s in IMAGE_SUFFIXES) + " …"
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
_JUNK_NAMES = frozenset({"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini"})
# Member count and unpacked size are caps (limits.py: EMBEDVIZ_MAX_ARCHIVE_FILES, EMBEDVIZ_MAX_ARCHIVE_MB).
_MAX_MEMBER_BYTES = 512 * 2**20
#: Longest file or folder name, path and nesting written from an archive (file systems refuse longer).
_MAX_NAME_BYTES = 255
_MAX_PATH_BYTES = 1024
_MAX_DEPTH = 32
ZIP_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA,
                         getattr(zipfile, "ZIP_ZSTANDARD", zipfile.ZIP_STORED)})
#: What readers raise for a damaged or truncated archive (besides OSError, e.g. gzip's BadGzipFile).
DAMAGED = (tarfile.TarError, zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, NotImplementedError)
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


def _walk_files(root: Path, folder: str | Path) -> list[PurePosixPath]:
    """Every regular file below ``root`` (relative paths), never following a link and never entering
    ``$EMBEDVIZ_HOME`` from outside it; an unreadable folder is a :class:`DataError`."""
    home = home_dir().stat()
    limit = cap("max_rows")
    found: list[PurePosixPath] = []
    stack = [root]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    try:
                        if entry.is_symlink():
                            continue  # links are never followed: they could lead out of the folder
                        if entry.is_dir(follow_symlinks=False):
                            st = entry.stat(follow_symlinks=False)
                            if (st.st_dev, st.st_ino) != (home.st_dev, home.st_ino):  # other users' uploads
                                stack.append(Path(entry.path))
                        elif entry.is_file(follow_symlinks=False):
                            found.append(PurePosixPath(Path(entry.path).relative_to(root).as_posix()))
                    except FileNotFoundError:
                        continue  # gone while we looked (a process in /proc, a file being replaced)
                    if len(found) > limit.count():
                        raise DataError(limit.message(f"{folder} holds more than {limit.count():,} files"))
        except FileNotFoundError:
            if current == root:
                raise DataError(f"{folder} does not exist.") from None
        except OSError as exc:
            where = "it" if current == root else f"{current.relative_to(root)} in it"
            raise DataError(f"Cannot read {folder}: {where} is not readable ({exc.strerror or type(exc).__name__}); "
                            "give a folder whose images you can read.") from None
    return found


def load_folder(folder: str | Path, name: str | None = None) -> ImageCollection:
    """Every image below ``folder``; the first sub-folder level becomes ``label``.

    Deeper folders are kept as ``folder`` metadata, so ``cats/indoor/1.png`` has label
    ``cats`` and folder ``cats/indoor``. Links are not followed.
    """
    root = Path(folder).expanduser().resolve()
    if root == Path(root.anchor):
        raise DataError(f"{folder} is the whole file system: give the folder that holds the images.")
    try:
        is_dir = root.is_dir()
    except OSError as exc:
        raise DataError(f"Cannot read {folder} ({exc.strerror or type(exc).__name__}).") from None
    if not is_dir:
        raise DataError(f"{folder} is not a folder: give a folder of images, an archive or a manifest.")
    rels = sorted(r for r in _walk_files(root, folder) if _is_image(r))
    if not rels:
        raise DataError(
            f"No images found in {folder}: expected files such as {_SOME_SUFFIXES}, possibly in one sub-folder "
            "per class."
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
        raise DataError(f"The archive holds an absolute path ({_short(name)}); refusing to unpack it.")
    if ".." in rel.parts:
        raise DataError(f"The archive holds a path that leaves its folder ({_short(name)}); refusing to unpack it.")
    if not rel.parts or _is_junk(rel):
        return None
    return rel


def _short(name: str, keep: int = 60) -> str:
    return name if len(name) <= keep else name[: keep - 1] + "…"


def _check_member_name(rel: PurePosixPath) -> None:
    """Refuse names no file system here can hold (``File name too long``) before writing them."""
    if any(len(part.encode("utf-8", "surrogateescape")) > _MAX_NAME_BYTES for part in rel.parts):
        raise DataError(f"The archive holds a file or folder name longer than {_MAX_NAME_BYTES} bytes "
                        f"({_short(str(rel))}); shorten it and pack the archive again.")
    if len(rel.parts) > _MAX_DEPTH:
        raise DataError(f"The archive nests images {len(rel.parts) - 1} folders deep (more than {_MAX_DEPTH}; "
                        f"{_short(str(rel))}); move them up and pack the archive again.")
    if len(str(rel).encode("utf-8", "surrogateescape")) > _MAX_PATH_BYTES:
        raise DataError(f"The archive holds a path longer than {_MAX_PATH_BYTES} bytes ({_short(str(rel))}); "
                        "shorten it and pack the archive again.")


def _check_zip_member(info: zipfile.ZipInfo, archive: str) -> None:
    """Members zipfile cannot read are refused by name before a byte is read."""
    if info.flag_bits & 0x1 or info.compress_type == 99:  # 99: WinZip's AES encryption
        raise DataError(f"{archive} is encrypted ({_short(info.filename)} needs a password); unpack it yourself "
                        "and upload the images in an archive without a password.")
    if info.compress_type not in ZIP_METHODS:
        raise DataError(f"{archive} uses compression method {info.compress_type} ({_short(info.filename)}), "
                        "which embedviz cannot unpack; pack it again as a standard zip (Deflate) or a .tar.gz.")


def _iter_archive(path: Path, wanted=lambda rel: True) -> Iterator[tuple[PurePosixPath, int, "io.BufferedIOBase"]]:
    """Yield (relative path, size, open stream) for each regular file ``wanted`` keeps.

    Hostile members (links, paths out, zip bombs) refuse the whole archive; more members than
    ``EMBEDVIZ_MAX_ARCHIVE_FILES`` too. Damage found while reading surfaces as the reader's own
    exception, which :func:`load_archive` turns into one line.
    """
    files = cap("max_archive_files")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > files.count():
                raise DataError(files.message(f"{path.name} has {len(infos):,} members"))
            kept = []
            for info in infos:
                rel = _safe_member_path(info.filename)
                if rel is None or info.is_dir():
                    continue
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise DataError(f"The archive holds a link ({_short(info.filename)}); refusing to unpack it.")
                if not wanted(rel):
                    continue
                _check_zip_member(info, path.name)
                if info.file_size > _RATIO_FLOOR_BYTES and info.file_size > _MAX_RATIO * max(info.compress_size, 1):
                    raise DataError(f"{_short(info.filename)} expands {info.file_size // max(info.compress_size, 1):,} "
                                    "times (a zip bomb?); refusing to unpack it.")
                kept.append((rel, info))
            total, size_cap = sum(info.file_size for _, info in kept), cap("max_archive_mb")
            if total > size_cap.bytes():
                raise DataError(size_cap.message(f"{path.name} unpacks to {total / 2**20:,.0f} MiB of images"))
            for rel, info in kept:
                with zf.open(info) as fh:
                    yield rel, info.file_size, fh
        return
    if path.name.lower().endswith(".zip"):
        raise DataError(f"{path.name} is not a readable zip archive: it is cut short or is another kind of file; "
                        "upload it again, or upload a .zip, .tar or .tar.gz of images.")
    try:
        tf = tarfile.open(path)
    except (tarfile.TarError, *DAMAGED, OSError):  # tarfile lists every decompressor it tried: say it once
        raise DataError(f"{path.name} is not a readable .zip or .tar archive: it is cut short or is another kind "
                        "of file; upload it again, or upload a .zip, .tar or .tar.gz of images.") from None
    with tf:
        for count, member in enumerate(tf):
            if count >= files.count():
                raise DataError(files.message(f"{path.name} has more than {files.count():,} members"))
            rel = _safe_member_path(member.name)
            if member.issym() or member.islnk():
                raise DataError(f"The archive holds a link ({_short(member.name)}); refusing to unpack it.")
            if rel is None or not member.isfile() or not wanted(rel):
                continue
            fh = tf.extractfile(member)
            if fh is not None:
                yield rel, member.size, fh


def _copy_limited(stream, dst, limit: int, too_much: str) -> int:
    """Copy at most ``limit`` bytes; the sizes an archive declares can lie, so count what arrives.
    Past the limit, ``too_much`` is the :class:`DataError`'s message."""
    copied = 0
    for block in iter(lambda: stream.read(1 << 20), b""):
        copied += len(block)
        if copied > limit:
            raise DataError(too_much)
        dst.write(block)
    return copied


def _write_error(exc: OSError, rel: PurePosixPath) -> DataError:
    if exc.errno == errno.ENAMETOOLONG:
        return DataError(f"The archive holds a path too long for this server ({_short(str(rel))}); "
                         "shorten it and pack the archive again.")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DataError("The server's disk is full, so the archive could not be unpacked; "
                         "try a smaller archive, or ask the operator to free space.")
    return DataError(f"Could not write {_short(str(rel))} while unpacking ({exc.strerror or type(exc).__name__}); "
                     "pack the archive again with plain folder and file names.")


def _unpack(archive: Path, tmp: Path, room: tuple[int, int] | None = None) -> None:
    """Every image of ``archive`` into ``tmp``, within the caps and the ``room`` (bytes, files) left in the
    user's workspace; raises :class:`DataError`."""
    size_cap = cap("max_archive_mb")
    ratio_budget = max(_RATIO_FLOOR_BYTES, _MAX_RATIO * archive.stat().st_size)
    total = count = 0
    try:
        for rel, size, stream in _iter_archive(archive, _is_image):
            _check_member_name(rel)
            count += 1
            if room is not None and count > room[1]:
                raise DataError(cap("workspace_files").message(
                    f"{archive.name} unpacks to more files than your workspace has room for ({room[1]:,})"))
            if room is not None and total + size > room[0]:
                raise DataError(cap("workspace_mb").message(
                    f"{archive.name} unpacks to more than the {room[0] / 2**20:,.1f} MiB left in your workspace"))
            if size > _MAX_MEMBER_BYTES:
                raise DataError(f"{_short(str(rel))} is {size / 2**20:,.0f} MiB, larger than one image may be.")
            if total + size > size_cap.bytes():
                raise DataError(size_cap.message(f"{archive.name} unpacks to more than {total / 2**20:,.0f} MiB"))
            limit = min(_MAX_MEMBER_BYTES, size_cap.bytes() - total, ratio_budget - total,
                        *([room[0] - total] if room is not None else []))
            too_much = (size_cap.message(f"{archive.name} unpacks to more than {size_cap.value():,.0f} MiB")
                        if size_cap.bytes() - total <= ratio_budget - total else
                        f"Unpacking stopped at {_short(str(rel))}: the archive expands far beyond its size "
                        "(a zip bomb?); refusing to unpack it.")
            out = tmp.joinpath(*rel.parts)
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
                dst = open(out, "wb")
            except OSError as exc:
                raise _write_error(exc, rel) from None
            with dst:
                total += _copy_limited(_Reader(stream, archive.name, rel), _Writer(dst, rel), limit, too_much)
    except (*DAMAGED, OSError) as exc:  # damage met while reading the archive itself
        raise DataError(f"{archive.name} is damaged or cut short ({first_line(exc)}); upload it again, "
                        "or pack it again as a .zip or .tar.gz.") from None


class _Reader:
    """A member's stream whose read errors say the archive is damaged."""

    def __init__(self, stream, archive: str, rel: PurePosixPath) -> None:
        self.stream, self.archive, self.rel = stream, archive, rel

    def read(self, n: int) -> bytes:
        try:
            return self.stream.read(n)
        except (*DAMAGED, OSError) as exc:
            raise DataError(f"{self.archive} is damaged or cut short at {_short(str(self.rel))} "
                            f"({first_line(exc)}); upload it again, or pack it again as a .zip or .tar.gz.") from None


class _Writer:
    """A file whose write errors (disk full, names too long) are one line."""

    def __init__(self, dst, rel: PurePosixPath) -> None:
        self.dst, self.rel = dst, rel

    def write(self, block: bytes) -> None:
        try:
            self.dst.write(block)
        except OSError as exc:
            raise _write_error(exc, self.rel) from None


def load_archive(archive: str | Path, workspace: Path | None = None,
                 room: tuple[int, int] | None = None) -> ImageCollection:
    """Unpack the images of a ``.zip``/``.tar`` archive member by member, then load the folder.

    Only image files are written, never links or paths outside the target folder; the
    target is keyed by the archive's SHA-256, so the same archive is unpacked once. Images are
    unpacked into a temporary folder renamed when complete: a failure leaves nothing behind.
    ``room`` (bytes, files) is what the user's workspace may still take: an archive that unpacks to
    more is refused (its own caps apply either way).
    """
    archive = Path(archive).expanduser()
    if not archive.is_file():
        raise DataError(f"{archive} does not exist.")
    digest = sha256_file(archive)
    target = (workspace or layout().unpacked) / f"{archive.name}-{digest[:16]}"
    if not (target / ".complete").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{digest[:16]}-", suffix=".partial", dir=target.parent))
        try:
            _unpack(archive, tmp, room)
            (tmp / ".complete").write_text(digest)
            if not (target / ".complete").exists():  # another session may have finished the same archive
                shutil.rmtree(target, ignore_errors=True)
                tmp.rename(target)
        except OSError as exc:
            raise _write_error(exc, PurePosixPath(".complete")) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    # An archive that wraps class folders in one top folder ("shapes/discs/1.png") is read from
    # inside it; a lone folder with images directly in it ("discs/1.png") is a class, and stays.
    entries = [p for p in target.iterdir() if p.name != ".complete"]
    wrapper = len(entries) == 1 and entries[0].is_dir() and not any(p.is_file() for p in entries[0].iterdir())
    root = entries[0] if wrapper else target
    return load_folder(root, name=archive.name)


def _find_path_column(table: pd.DataFrame) -> str:
    by_lower = {str(c).strip().lower(): c for c in table.columns}
    for name in PATH_COLUMN_NAMES:
        if name in by_lower:
            return by_lower[name]
    for column in table.columns:
        values = table[column].dropna().astype(str)
        if len(values) and values.str.lower().str.endswith(tuple(IMAGE_SUFFIXES)).mean() > 0.9:
            return column
    # Never the file's own column names or cells: a table that is not a manifest shows nothing of itself.
    raise DataError(
        f"No column of image paths found: looked for a column named {', '.join(PATH_COLUMN_NAMES[:7])} "
        "(or one whose values end in an image suffix); name the column 'path' or give its name."
    )


def _check_inside(root: Path, rel: list[str], roots: DataRoots, name: str) -> None:
    """Every listed image, links followed, inside a shared folder and outside ``$EMBEDVIZ_HOME``."""
    folders: dict[str, bool] = {}
    for i, r in enumerate(rel):
        path = root / r
        parent = str(path.parent)
        if parent not in folders:
            resolved = path.parent.resolve()
            folders[parent] = roots.holds(resolved) and not inside_home(resolved)
        ok = folders[parent]
        if ok and os.path.islink(path):
            resolved = path.resolve()
            ok = roots.holds(resolved) and not inside_home(resolved)
        if not ok:
            raise DataError(f"Row {i + 1} of {name} names an image outside the folders this server shares "
                            "(through a link or the path prefix); only images inside them are read.")


def load_manifest(
    manifest: str | Path, path_prefix: str | Path | None = None, path_column: str | None = None,
    roots: DataRoots | None = None,
) -> ImageCollection:
    """A CSV/Parquet table of image paths (relative to ``path_prefix``) and metadata.

    With ``roots`` (a dashboard's "Path on this server"), every path must name an image file (by suffix)
    that resolves inside one of them; errors never quote the table's header or cells.
    """
    manifest = Path(manifest).expanduser()
    if not manifest.is_file():
        raise DataError(f"{manifest} does not exist.")
    try:
        table = read_table(manifest)
    except pd.errors.ParserError as exc:  # pandas says where ("Expected 2 fields in line 3, saw 3"), not what
        where = str(exc).strip().splitlines()[-1].removeprefix("Error tokenizing data. C error: ")
        raise DataError(f"Could not read {manifest.name} as a CSV/TSV table ({where}).") from None
    except (ValueError, OSError) as exc:
        raise DataError(f"Could not read {manifest.name} as a CSV/TSV/Parquet table "
                        f"({type(exc).__name__}).") from None
    column = path_column or _find_path_column(table)
    if column not in table.columns:
        raise DataError(f"{manifest.name} has no column {column!r}; give the name of its column of image paths.")
    table = table.dropna(subset=[column]).reset_index(drop=True)
    rel = []
    for i, value in enumerate(table[column]):
        try:
            rel.append(check_relative(str(value)))
        except DataError as exc:
            raise DataError(f"Row {i + 1} of {manifest.name}: {exc}") from None
    if len(set(rel)) != len(rel):
        raise DataError(f"{manifest.name} lists some images more than once; each path must be unique.")
    root = Path(path_prefix).expanduser().resolve() if path_prefix else manifest.parent.resolve()
    if roots is not None:
        not_images = sum(not _is_image(PurePosixPath(r)) for r in rel)
        if not_images or not rel:
            raise DataError(f"{manifest.name} is not a manifest of images: {not_images:,} of its {len(rel):,} paths do "
                            f"not end in an image suffix (such as {_SOME_SUFFIXES}).")
        _check_inside(root, rel, roots, manifest.name)
    meta = table.drop(columns=[column])
    meta.columns = [str(c) for c in meta.columns]
    meta = meta.drop(columns=[c for c in ("sample_id", "path") if c in meta.columns])
    if "label" in meta.columns:
        meta["label"] = meta["label"].astype("string")
    samples = pd.concat([pd.DataFrame({"sample_id": rel, "path": rel}), meta], axis=1)
    return ImageCollection(root=root, samples=samples, name=manifest.stem)


def load_collection(
    source: str | Path, path_prefix: str | Path | None = None, workspace: Path | None = None,
    path_column: str | None = None, roots: DataRoots | None = None, room: tuple[int, int] | None = None,
) -> ImageCollection:
    """A folder, an archive or a manifest, told apart by what ``source`` is.

    ``roots`` confine a dashboard user ("Path on this server") to the folders the operator shares: the
    source, the prefix and a manifest's images must lie inside them. Without (the command line), any path.
    """
    if roots is not None:
        source = check_server_path(source, roots)
        if path_prefix:
            path_prefix = check_server_path(path_prefix, roots)
    source = Path(source).expanduser()
    lower = source.name.lower()
    try:
        is_dir, exists = source.is_dir(), source.exists()
    except OSError as exc:
        raise DataError(f"Cannot read {source} ({exc.strerror or type(exc).__name__}).") from None
    if is_dir:
        return load_folder(source)
    if not exists:
        raise DataError(f"{source} does not exist: give a folder, a .zip/.tar archive or a CSV/Parquet manifest.")
    if lower.endswith(_ARCHIVE_SUFFIXES):
        return load_archive(source, workspace, room)
    if lower.endswith((".csv", ".tsv", ".txt", ".parquet")):
        return load_manifest(source, path_prefix, path_column, roots)
    raise DataError(f"{source.name} is not a folder, .zip/.tar archive or CSV/Parquet manifest.")


def file_hashes(collection: ImageCollection) -> list[str]:
    """SHA-256 of each image file, in table order (``missing`` where it cannot be read, or a row of
    features made elsewhere has no path)."""
    hashes = []
    for rel in collection.samples["path"]:
        try:
            hashes.append("missing" if pd.isna(rel) else sha256_file(collection.root / rel))
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


#: Modes of one intensity channel (with or without alpha); palettes are grey when every entry is.
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def _channels(image: "Image.Image") -> int:  # noqa: F821 - PIL type
    """1 for a grey image (a grey palette included), else 3, from the header alone."""
    if image.mode in _GREY_MODES:
        return 1
    if image.mode in ("P", "PA"):
        palette = image.getpalette() or []
        triples = [palette[i:i + 3] for i in range(0, len(palette) - 2, 3)]
        return 1 if triples and all(r == g == b for r, g, b in triples) else 3
    return 3


def image_shapes(collection: ImageCollection, limit: int = 64) -> list[tuple[int, int, int]]:
    """``(width, height, channels)`` of up to ``limit`` images spread evenly through ``collection``, first
    and last included, read from their headers only (no pixels decoded): a cheap and repeatable look at
    what the images are. Files that cannot be opened are left out, as extraction skips them."""
    import warnings

    import numpy as np
    from PIL import Image

    n = len(collection)
    rows = sorted({int(r) for r in np.linspace(0, n - 1, min(limit, n)).round()}) if n else []
    shapes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        for row in rows:
            try:
                with Image.open(collection.root / collection.samples["path"].iloc[row]) as image:
                    if image.format in ALLOWED_FORMATS:
                        shapes.append((*image.size, _channels(image)))
            except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
                continue
    return shapes
