"""A feature set: features and the table of the samples they belong to, row for row, and its folder on disk.

``features.npy`` (float32, a row per image), ``samples.parquet`` (same order: ``sample_id``,
``path``, labels, predictions, metadata), ``skipped.csv`` (``path``, ``reason``) and
``manifest.json``: the layout of ``extract --out`` and of every set in the feature store.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from embedviz.errors import DataError, EmbedVizError

__all__ = ["FeatureSet", "save_feature_set", "read_feature_folder", "is_disk_full", "disk_full_error", "FILES"]

log = logging.getLogger(__name__)

#: The files of a feature folder; ``manifest.json`` is written last.
FILES = ("features.npy", "samples.parquet", "skipped.csv", "manifest.json")
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def is_disk_full(exc: BaseException) -> bool:
    """Whether a write failed for want of space (a full disk or a used-up quota)."""
    return isinstance(exc, OSError) and (exc.errno in _DISK_FULL or "No space left on device" in str(exc)
                                         or "Disk quota exceeded" in str(exc))


def disk_full_error(what: str, kept: str = "nothing half-written was left behind") -> EmbedVizError:
    """The one line a user sees when ``what`` could not be written because the disk is full."""
    return EmbedVizError(f"The server's disk is full: {what} could not be written ({kept}). Free space or ask "
                         "the operator for more, then run it again.")


@dataclass(frozen=True)
class FeatureSet:
    """Features and the table of the samples they belong to, row for row."""

    features: np.ndarray
    samples: pd.DataFrame
    skipped: pd.DataFrame
    manifest: dict[str, Any]
    key: str = ""
    path: Path | None = None
    from_cache: bool = False

    def __len__(self) -> int:
        return len(self.samples)


def save_feature_set(feature_set: FeatureSet, directory: str | Path, *, what: str = "the feature set",
                     kept: str = "nothing half-written was left behind") -> Path:
    """Write the four files, all or none: each is written aside under a temporary name, and only
    when all four are whole are they renamed into place (a failure removes the temporary files, and
    the folder too when this call made it). A full disk is an :class:`EmbedVizError` saying so, with
    ``what`` could not be written and what was ``kept``."""
    directory = Path(directory).expanduser()
    made = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    skipped = feature_set.skipped if len(feature_set.skipped.columns) else pd.DataFrame(columns=["path", "reason"])

    def write_features(path: Path) -> None:
        with open(path, "wb") as fh:  # a file object: np.save would add ".npy" to the temporary name
            np.save(fh, np.ascontiguousarray(feature_set.features, np.float32))

    writers = {
        "features.npy": write_features,
        "samples.parquet": lambda p: feature_set.samples.to_parquet(p, index=False),
        "skipped.csv": lambda p: skipped.to_csv(p, index=False),
        "manifest.json": lambda p: p.write_text(json.dumps(feature_set.manifest, indent=2, default=str)),
    }
    temporary = {name: directory / f".{name}.{token}.tmp" for name in writers}
    try:
        for name, write in writers.items():
            write(temporary[name])
        for name in writers:  # manifest.json last: the store reads a folder only when all four are there
            os.replace(temporary[name], directory / name)
    except BaseException as exc:
        for tmp in temporary.values():
            tmp.unlink(missing_ok=True)
        if made:
            shutil.rmtree(directory, ignore_errors=True)
        if is_disk_full(exc):
            log.warning("Disk full writing a feature set into %s: %s", directory, exc)
            raise disk_full_error(what, kept) from None
        raise
    return directory


def _check(features: np.ndarray, samples: pd.DataFrame, source: str) -> None:
    if features.ndim != 2:
        raise DataError(f"{source} holds an array of shape {features.shape}; features must be 2-D (images x dims).")
    if len(samples) != features.shape[0]:
        raise DataError(f"{source} has {features.shape[0]} feature rows but {len(samples)} samples; they must match.")


def read_feature_folder(path: Path, mmap: bool = True) -> FeatureSet:
    """A folder in the layout above (``features.npy`` memory-mapped unless ``mmap`` is false)."""
    features = np.load(path / "features.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
    samples = pd.read_parquet(path / "samples.parquet") if (path / "samples.parquet").exists() else \
        pd.DataFrame({"sample_id": [str(i) for i in range(features.shape[0])]})
    _check(features, samples, path.name)
    skipped = pd.read_csv(path / "skipped.csv") if (path / "skipped.csv").exists() else \
        pd.DataFrame(columns=["path", "reason"])
    manifest = json.loads((path / "manifest.json").read_text()) if (path / "manifest.json").exists() else {}
    return FeatureSet(features, samples, skipped, manifest, key=manifest.get("key", ""), path=path)


