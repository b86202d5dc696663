"""The feature store: feature sets under ``$EMBEDVIZ_HOME/features/<key>``, where the key hashes the
images, the model's weights, the layer and the preprocessing, so the same work is never done twice,
across restarts. Each set is a folder in :mod:`embedviz.data.featureset`'s layout."""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import replace
from pathlib import Path

from embedviz.data.featureset import FILES, FeatureSet, save_feature_set
from embedviz.data.precomputed import load_feature_set
from embedviz.layout import PARTIAL_SUFFIX, WORK_FOLDER, layout, mark_used

__all__ = ["FeatureStore"]


class FeatureStore:
    """Content-addressed feature sets under one root."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root else layout().features  # layout().feature_set(key) is folder(key)
        self.root.mkdir(parents=True, exist_ok=True)

    def folder(self, key: str) -> Path:
        return self.root / key

    def get(self, key: str) -> FeatureSet | None:
        """The stored set for ``key``, memory-mapped, or ``None``."""
        folder = self.folder(key)
        if not all((folder / name).exists() for name in FILES):
            return None
        mark_used(folder)  # its last use decides when it is evicted from a store over its cap
        return replace(load_feature_set(folder), key=key, from_cache=True)

    def put(self, key: str, feature_set: FeatureSet) -> FeatureSet:
        """Store under ``key``: written into a private folder, then renamed into place."""
        final = self.folder(key)
        tmp = self.root / f".{key}.{uuid.uuid4().hex[:8]}{PARTIAL_SUFFIX}"
        manifest = {**feature_set.manifest, "key": key}
        # removes ``tmp`` if it fails; the caller keeps the extraction's shards until this succeeds
        save_feature_set(replace(feature_set, manifest=manifest), tmp, what="the extracted features",
                         kept="the finished shards are kept, so running it again resumes from them")
        try:
            os.rename(tmp, final)
        except OSError:  # another process stored the same key first: theirs is identical
            shutil.rmtree(tmp, ignore_errors=True)
        return replace(feature_set, manifest=manifest, key=key, path=final)

    def work_folder(self, name: str) -> Path:
        """Where an unfinished extraction keeps its shards (``.work/<name>``) until it is stored."""
        return self.root / WORK_FOLDER / name

    def drop_work(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)

    def clear(self) -> int:
        """Delete every stored feature set and unfinished work; returns the bytes freed."""
        freed = self.size_bytes()
        for child in self.root.iterdir():
            shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
        return freed

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
