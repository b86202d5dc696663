"""Uploaded files live in memory; these copy them into the session's workspace on disk."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path, PurePosixPath
from typing import Sequence

import streamlit as st

from ..errors import DataError
from ..home import home_dir
from ..images import IMAGE_SUFFIXES
from ..trusted import trusted_enabled

__all__ = ["workspace", "save_images", "save_features", "save_weights", "save_class_index", "weight_suffixes",
           "WEIGHTS_HELP"]

#: The uploader's label for weights, and for a code-carrying file (trusted installs only).
WEIGHTS_HELP = ("State dict (.safetensors, .pt, .pth); the number of classes is read from it",
                "TorchScript, pickled module (.pt, .pth), torch.export (.pt2) or ONNX; runs in a separate process")


def weight_suffixes() -> list[str]:
    """What the weights uploader takes; code-carrying formats only where the operator allowed them."""
    return ["safetensors", "pt", "pth", *(["pt2", "onnx"] if trusted_enabled() else [])]

FEATURE_SUFFIXES = (".npy", ".npz", ".parquet", ".csv", ".tsv")


def workspace() -> Path:
    """This browser session's private folder under ``$EMBEDVIZ_HOME/sessions``."""
    sid = st.session_state.setdefault("workspace_id", uuid.uuid4().hex)
    folder = home_dir() / "sessions" / sid
    folder.mkdir(parents=True, exist_ok=True)
    return folder


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
    if archives:
        if len(files) > 1:
            raise DataError("Upload one archive at a time, or image files without an archive.")
        target = workspace() / _digest(files) / _base_name(archives[0])
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(archives[0].getbuffer())
        return target
    folder = workspace() / f"images-{_digest(files)}"
    folder.mkdir(exist_ok=True)
    for f in files:
        name = _base_name(f)
        if PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES:
            (folder / name).write_bytes(f.getbuffer())
    return folder


def save_features(files: Sequence, metadata=None) -> tuple[Path, Path | None]:
    """Features (or a map) and an optional metadata table, copied into the session's workspace.

    TensorBoard's projector files come as a pair (``tensors.tsv`` and ``metadata.tsv``): the
    folder holding them is what gets loaded.
    """
    if not files:
        raise DataError("Choose a features file first (.npy, .npz, .parquet, a Metascatter .csv or tensors.tsv).")
    for f in [*files, *([metadata] if metadata else [])]:
        if PurePosixPath(f.name).suffix.lower() not in FEATURE_SUFFIXES:
            raise DataError(f"{f.name}: features must be .npy, .npz, .parquet, .csv or TensorBoard .tsv files.")
    folder = workspace() / f"features-{_digest([*files, *([metadata] if metadata else [])])}"
    folder.mkdir(exist_ok=True)
    names = []
    for f in files:
        name = _base_name(f)
        (folder / name).write_bytes(f.getbuffer())
        names.append(name)
    meta_path = None
    if metadata is not None:
        meta_path = folder / ("meta-" + _base_name(metadata))
        meta_path.write_bytes(metadata.getbuffer())
    if "tensors.tsv" in [n.lower() for n in names]:
        return folder, meta_path
    if len(files) > 1:
        raise DataError("Upload one features file (or TensorBoard's tensors.tsv with its metadata.tsv).")
    return folder / names[0], meta_path


def _save_by_content(file, kind: str, suffixes: tuple[str, ...]) -> Path:
    suffix = PurePosixPath(file.name).suffix.lower()
    if suffix not in suffixes:
        raise DataError(f"{file.name}: a {kind} file must end in {', '.join(suffixes)}.")
    folder = home_dir() / kind / hashlib.sha256(file.getbuffer()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / _base_name(file)  # keeps the name the user knows
    if not target.exists():
        target.write_bytes(file.getbuffer())
    return target


def save_weights(file) -> Path:
    """A weights upload, stored by content so the same file is kept once."""
    return _save_by_content(file, "weights", tuple(f".{s}" for s in weight_suffixes()))


def save_class_index(file) -> Path:
    """A class-index upload (JSON or text), stored by content."""
    return _save_by_content(file, "classes", (".json", ".txt"))
