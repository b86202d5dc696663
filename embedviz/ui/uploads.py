"""Uploaded files live in memory; these copy them into the user's workspace on disk.

Every write goes to a temporary name in the same folder and is renamed into place, so an interrupted
upload never leaves a half-written file under a name that is later trusted. A user's workspace is one
folder however many sessions they open, and its size and file count are capped (``EMBEDVIZ_WORKSPACE_MB``,
``EMBEDVIZ_WORKSPACE_FILES``).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import secrets
from pathlib import Path, PurePosixPath
from typing import Sequence

import streamlit as st

from embedviz.data.images import IMAGE_SUFFIXES
from embedviz.errors import DataError
from embedviz.extract.trusted import trusted_enabled
from embedviz.hashing import sha256_file
from embedviz.layout import layout, mark_used
from embedviz.limits import cap
from embedviz.ui import auth

__all__ = ["workspace", "workspace_usage", "workspace_room", "save_images", "save_features", "save_weights",
           "save_class_index", "weight_suffixes", "WEIGHTS_HELP"]

log = logging.getLogger(__name__)

#: The uploader's label for weights, and for a code-carrying file (trusted installs only).
WEIGHTS_HELP = ("State dict (.safetensors, .pt, .pth); the number of classes is read from it",
                "TorchScript, pickled module (.pt, .pth), torch.export (.pt2) or ONNX; runs in a separate process")


def weight_suffixes() -> list[str]:
    """What the weights uploader takes; code-carrying formats only where the operator allowed them."""
    return ["safetensors", "pt", "pth", *(["pt2", "onnx"] if trusted_enabled() else [])]

FEATURE_SUFFIXES = (".npy", ".npz", ".parquet", ".csv", ".tsv")


def workspace() -> Path:
    """This user's private folder under ``$EMBEDVIZ_HOME/sessions``: one per browser or signed-in person,
    named by a hash of their viewer id, so opening more sessions does not give more room."""
    key = hashlib.sha256(b"embedviz-workspace:" + auth.viewer().id.encode()).hexdigest()[:16]
    folder = layout().workspace(key)
    folder.mkdir(parents=True, exist_ok=True)
    # housekeeping.maybe_housekeep marks sessions/<workspace_id> as used on every page; the viewer is already
    # known (and kept in the session), so pointing the id at this folder changes nothing else.
    st.session_state["workspace_id"] = key
    mark_used(folder)
    return folder


#: Where a workspace notes the weights and class indexes its user stored by content (see ``_charge``).
_CHARGED = ".charged"


def workspace_usage(folder: Path) -> tuple[int, int]:
    """(bytes, files) held in ``folder``, unpacked archives included, and the weights and class indexes its
    user stored by content; links are not followed."""
    size = files = 0
    for current, _dirs, names in os.walk(folder):
        charged = os.path.basename(current) == _CHARGED
        for name in names:
            if name == ".last_used":  # housekeeping's marker
                continue
            path = os.path.join(current, name)
            try:
                size += int(Path(path).read_text() or 0) if charged else os.lstat(path).st_size
            except (OSError, ValueError):
                continue
            files += 1
    return size, files


def workspace_room(folder: Path) -> tuple[int, int]:
    """(bytes, files) the workspace ``folder`` may still take under its caps."""
    size, files = workspace_usage(folder)
    return max(cap("workspace_mb").bytes() - size, 0), max(cap("workspace_files").count() - files, 0)


def _check_room(folder: Path, new_bytes: int, new_files: int) -> None:
    """Refuse, before anything is written, an upload that would take the workspace over either cap."""
    size, files = workspace_usage(folder)
    mb, count = cap("workspace_mb"), cap("workspace_files")
    if size + new_bytes > mb.bytes():
        raise DataError(mb.message(f"This upload ({new_bytes / 2**20:,.1f} MiB) would bring your uploads to "
                                   f"{(size + new_bytes) / 2**20:,.1f} MiB"))
    if files + new_files > count.count():
        raise DataError(count.message(f"This upload ({new_files:,} files) would bring your uploads to "
                                      f"{files + new_files:,} files"))


def _write_atomic(target: Path, data) -> None:
    """``data`` written to a temporary name beside ``target``, then renamed into place."""
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DataError(f"The server's disk is full, so {target.name} could not be saved; ask its operator "
                            "to free some space (EMBEDVIZ_STORE_LIMIT_GB caps what embedviz keeps).") from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _base_name(file) -> str:
    """An upload's file name without any folders a browser sent (Windows or POSIX separators)."""
    return PurePosixPath(file.name.replace("\\", "/")).name


def _digest(files: Sequence) -> str:
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode())
        digest.update(f.getbuffer())
    return digest.hexdigest()[:16]


def save_images(files: Sequence) -> Path:
    """One archive is saved as is; several images go into one folder. Returns what to load."""
    if not files:
        raise DataError("Choose a .zip/.tar archive or some image files first.")
    archives = [f for f in files if f.name.lower().endswith((".zip", ".tar", ".tar.gz", ".tgz"))]
    room = workspace()
    if archives:
        if len(files) > 1:
            raise DataError("Upload one archive at a time, or image files without an archive.")
        target = room / _digest(files) / _base_name(archives[0])
        if not target.is_file():  # a same-named file is complete: files are only ever renamed into place
            # what it unpacks to counts once unpacked (load_archive caps it), before the next upload
            _check_room(room, archives[0].size, 1)
            target.parent.mkdir(exist_ok=True)
            _write_atomic(target, archives[0].getbuffer())
        return target
    images = [f for f in files if PurePosixPath(_base_name(f)).suffix.lower() in IMAGE_SUFFIXES]
    folder = room / f"images-{_digest(files)}"
    missing = [f for f in images if not (folder / _base_name(f)).is_file()]
    _check_room(room, sum(f.size for f in missing), len(missing))
    folder.mkdir(exist_ok=True)
    for f in missing:
        _write_atomic(folder / _base_name(f), f.getbuffer())
    return folder


def save_features(files: Sequence, metadata=None) -> tuple[Path, Path | None]:
    """Features (or a map) and an optional metadata table, copied into the user's workspace.

    TensorBoard's projector files come as a pair (``tensors.tsv`` and ``metadata.tsv``): the
    folder holding them is what gets loaded.
    """
    if not files:
        raise DataError("Choose a features file first (.npy, .npz, .parquet, a Metascatter .csv or tensors.tsv).")
    for f in [*files, *([metadata] if metadata else [])]:
        if PurePosixPath(f.name).suffix.lower() not in FEATURE_SUFFIXES:
            raise DataError(f"{f.name}: features must be .npy, .npz, .parquet, .csv or TensorBoard .tsv files.")
    if len(files) > 1 and "tensors.tsv" not in [_base_name(f).lower() for f in files]:
        raise DataError("Upload one features file (or TensorBoard's tensors.tsv with its metadata.tsv).")
    room = workspace()
    folder = room / f"features-{_digest([*files, *([metadata] if metadata else [])])}"
    writes = [(folder / _base_name(f), f) for f in files]
    meta_path = None
    if metadata is not None:
        meta_path = folder / ("meta-" + _base_name(metadata))
        writes.append((meta_path, metadata))
    missing = [(path, f) for path, f in writes if not path.is_file()]
    _check_room(room, sum(f.size for _, f in missing), len(missing))
    folder.mkdir(exist_ok=True)
    for path, f in missing:
        _write_atomic(path, f.getbuffer())
    if "tensors.tsv" in [_base_name(f).lower() for f in files]:
        return folder, meta_path
    return writes[0][0], meta_path


#: Content-addressed files verified since this process started: path -> (size, mtime_ns) when checked.
_verified: dict[str, tuple[int, int]] = {}


def _intact(target: Path, digest: str) -> bool:
    """Whether ``target`` holds the bytes whose SHA-256 is ``digest`` (hashed once per version of the file)."""
    try:
        stat = target.stat()
    except OSError:
        return False
    stamp = (stat.st_size, stat.st_mtime_ns)
    if _verified.get(str(target)) == stamp:
        return True
    try:
        ok = sha256_file(target) == digest
    except OSError:
        ok = False
    if ok:
        _verified[str(target)] = stamp
    return ok


#: A class index names classes: a megabyte is tens of thousands of names.
_CLASS_INDEX_BYTES = 2**20


def _save_by_content(file, kind: str, suffixes: tuple[str, ...]) -> Path:
    suffix = PurePosixPath(file.name).suffix.lower()
    if suffix not in suffixes:
        raise DataError(f"{file.name}: a {kind} file must end in {', '.join(suffixes)}.")
    if kind == "classes" and file.size > _CLASS_INDEX_BYTES:
        raise DataError(f"{file.name} is {file.size / 2**20:,.1f} MiB; a class index (one name per class) is at most "
                        "1 MiB.")
    saved = st.session_state.setdefault("_saved_by_content", {})
    upload = (kind, getattr(file, "file_id", None))
    if upload[1] is not None and upload in saved and Path(saved[upload]).is_file():
        return Path(saved[upload])  # the same upload on the next rerun: not hashed again
    digest = hashlib.sha256(file.getbuffer()).hexdigest()
    _charge(kind, digest, file.size)
    folder = layout().stored(kind, digest)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / _base_name(file)  # keeps the name the user knows
    if not _intact(target, digest):  # missing, or cut short by an interrupted write of an older version
        if target.exists():
            log.warning("%s does not hold the bytes its folder names; writing it again.", target)
        _write_atomic(target, file.getbuffer())
    saved[upload] = str(target)
    return target


def _charge(kind: str, digest: str, size: int) -> None:
    """Count a file kept by content (outside the workspace, once for everyone) against the uploader's
    workspace caps, once per user: a note in the workspace records its size."""
    room = workspace()
    note = room / _CHARGED / f"{kind}-{digest[:16]}"
    if note.exists():
        return
    _check_room(room, size, 1)
    note.parent.mkdir(exist_ok=True)
    note.write_text(str(size))


def save_weights(file) -> Path:
    """A weights upload, stored by content so the same file is kept once."""
    return _save_by_content(file, "weights", tuple(f".{s}" for s in weight_suffixes()))


def save_class_index(file) -> Path:
    """A class-index upload (JSON or text), stored by content."""
    return _save_by_content(file, "classes", (".json", ".txt"))
