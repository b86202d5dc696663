"""Where embedviz keeps what it computes: ``$EMBEDVIZ_HOME`` (default ``~/.embedviz``), the name of every
folder and file under it (:class:`Layout`, one place), and the markers that say when a cached folder was
last used and that a folder is still being written."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from embedviz import settings

__all__ = ["Layout", "layout", "home_dir", "mark_used", "last_used", "PARTIAL_SUFFIX", "WORK_FOLDER"]

_MARK = ".last_used"
#: The ending of a folder being written before it is renamed into place (the store, unpacked archives).
PARTIAL_SUFFIX = ".partial"
#: The folder of a feature store that holds the shards of unfinished extractions.
WORK_FOLDER = ".work"


def home_dir() -> Path:
    """The root of every cache and workspace, created on first use."""
    root = settings.home()
    root.mkdir(parents=True, exist_ok=True)
    return root


@dataclass(frozen=True)
class Layout:
    """Every path under one ``$EMBEDVIZ_HOME``. The folder names are spelled here and nowhere else::

        features/          feature sets, one folder per key (embedviz.extract.store)
          .work/           shards of unfinished extractions, one folder per key
        embeddings/        maps, one <key>.npz each
          graphs/          shared neighbour graphs, one <key>.npz each
        uploads/           archives from server paths, unpacked
        atlases/           thumbnails packed into sheets, one folder per key (embedviz.data.atlas)
        sessions/          each user's workspace (uploads, weights, class indexes)
        weights/ classes/  model weights and class indexes stored by content
        numba/             numba's compiled-code cache, and the warm-up marker
        demo/              the demo images
        catalog.sqlite     the runs
    """

    home: Path

    @property
    def features(self) -> Path:
        return self.home / "features"

    @property
    def work(self) -> Path:
        """Shards of unfinished extractions: what a rerun resumes from."""
        return self.features / WORK_FOLDER

    @property
    def maps(self) -> Path:
        return self.home / "embeddings"

    @property
    def graphs(self) -> Path:
        return self.maps / "graphs"

    @property
    def unpacked(self) -> Path:
        """Archives read from server paths, unpacked (again when needed)."""
        return self.home / "uploads"

    @property
    def atlases(self) -> Path:
        """Thumbnails packed into sheets, one folder per image collection's content (embedviz.data.atlas)."""
        return self.home / "atlases"

    @property
    def audits(self) -> Path:
        """Data audits (:mod:`embedviz.explore.audit`), by key. Not among the caches the store's cap
        evicts: a map made without the flagged samples names its audit, and an audit is small (about
        10 MB for 100,000 samples)."""
        return self.home / "audits"

    @property
    def workspaces(self) -> Path:
        return self.home / "sessions"

    @property
    def numba(self) -> Path:
        return self.home / "numba"

    @property
    def demo(self) -> Path:
        return self.home / "demo"

    @property
    def catalog(self) -> Path:
        return self.home / "catalog.sqlite"

    @property
    def caches(self) -> tuple[Path, ...]:
        """The folders whose entries the store's cap may evict, least recently used first."""
        return self.features, self.unpacked, self.maps, self.graphs, self.atlases

    def feature_set(self, key: str) -> Path:
        """The folder of the feature set stored under ``key`` (see :class:`embedviz.extract.store.FeatureStore`)."""
        return self.features / key

    def workspace(self, key: str) -> Path:
        """One user's folder (``key``: their workspace's name)."""
        return self.workspaces / key

    def stored(self, kind: str, digest: str) -> Path:
        """A file kept by its content (``kind``: ``"weights"`` or ``"classes"``), by its SHA-256."""
        if kind not in ("weights", "classes"):
            raise ValueError(f"no stored kind {kind!r}: weights or classes")
        return self.home / kind / digest[:16]

    def map_file(self, key: str) -> Path:
        return self.maps / f"{key}.npz"

    def graph_file(self, key: str) -> Path:
        return self.graphs / f"{key}.npz"

    def warm_marker(self, umap_version: str) -> Path:
        """The file that says this machine's numba cache is warm for this umap-learn version."""
        return self.numba / f".warm-umap-{umap_version}"


def layout(home: Path | str | None = None) -> Layout:
    """The layout of ``home`` (default: ``$EMBEDVIZ_HOME``, created on first use)."""
    return Layout(Path(home) if home is not None else home_dir())


def mark_used(path: Path) -> None:
    """Note that a workspace or a cached folder was just used (its marker's time is the last use)."""
    marker = path / _MARK if path.is_dir() else path
    try:
        if marker.exists():
            os.utime(marker)
        elif path.is_dir():
            marker.touch()
    except OSError:
        pass


def last_used(path: Path) -> float:
    marker = path / _MARK
    try:
        return (marker if marker.exists() else path).stat().st_mtime
    except OSError:
        return 0.0
