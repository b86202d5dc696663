"""Keeping a shared ``$EMBEDVIZ_HOME`` in bounds.

- Session workspaces (uploads unpacked for one browser session) are deleted once idle for
  ``EMBEDVIZ_SESSION_IDLE_HOURS`` (default 24), unless a published or pinned run still reads them.
- The store's disk use is capped at ``EMBEDVIZ_STORE_LIMIT_GB`` (unset: no cap). Over the cap, the
  least recently used caches go first: feature sets, maps, neighbour graphs and unpacked archives, oldest
  use first, skipping what published or pinned runs need and what a running job is writing.
  Uploads in live workspaces, weights and the catalog are never evicted.

Everything here works on paths; the dashboard calls :func:`housekeep` now and then, the command
line as ``python -m embedviz housekeep``.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .home import home_dir

__all__ = ["Housekeeping", "mark_used", "last_used", "sweep_workspaces", "enforce_cap", "housekeep", "housekeep_store", "limits",
           "IDLE_VAR", "LIMIT_VAR"]

IDLE_VAR = "EMBEDVIZ_SESSION_IDLE_HOURS"
LIMIT_VAR = "EMBEDVIZ_STORE_LIMIT_GB"
_MARK = ".last_used"


@dataclass
class Housekeeping:
    """What one pass removed."""

    workspaces: list[str] = field(default_factory=list)
    evicted: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    total_bytes: int = 0

    def describe(self) -> str:
        return (f"{len(self.workspaces)} idle workspaces and {len(self.evicted)} cached items removed, "
                f"{self.freed_bytes / 2**20:,.1f} MiB freed; the store now holds {self.total_bytes / 2**20:,.1f} MiB.")


def limits() -> tuple[float, int | None]:
    """(idle seconds before a workspace goes, store cap in bytes or ``None``) from the environment."""
    idle = float(os.environ.get(IDLE_VAR) or 24) * 3600
    cap = os.environ.get(LIMIT_VAR)
    return idle, (int(float(cap) * 2**30) if cap else None)


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


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            pass
    return total


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def sweep_workspaces(home: Path, idle_seconds: float, keep: set[str], now: float | None = None) -> list[str]:
    """Delete session workspaces unused for ``idle_seconds``, except those named in ``keep``."""
    now = time.time() if now is None else now
    root = home / "sessions"
    removed = []
    if not root.is_dir():
        return removed
    for folder in root.iterdir():
        if folder.is_dir() and folder.name not in keep and now - last_used(folder) > idle_seconds:
            _remove(folder)
            removed.append(folder.name)
    return removed


def _candidates(home: Path, keep_features: set[str], keep_maps: set[str]) -> list[tuple[float, Path]]:
    """Cached items that may be evicted, with their last use."""
    items: list[tuple[float, Path]] = []
    features = home / "features"
    if features.is_dir():
        for folder in features.iterdir():
            if folder.is_dir() and not folder.name.startswith(".") and folder.name not in keep_features:
                items.append((last_used(folder), folder))
    embeddings = home / "embeddings"
    if embeddings.is_dir():
        for path in embeddings.glob("*.npz"):
            if path.stem not in keep_maps:
                items.append((path.stat().st_mtime, path))
        graphs = embeddings / "graphs"  # recomputed in seconds when needed again
        items.extend((p.stat().st_mtime, p) for p in (graphs.glob("*.npz") if graphs.is_dir() else []))
    uploads = home / "uploads"  # archives from server paths, unpacked: unpacked again when needed
    items.extend((last_used(p), p) for p in (uploads.iterdir() if uploads.is_dir() else []))
    return sorted(items, key=lambda item: item[0])


def enforce_cap(home: Path, limit_bytes: int, keep_features: set[str], keep_maps: set[str]) -> tuple[list[str], int, int]:
    """Evict the least recently used caches until ``home`` holds at most ``limit_bytes``.

    Returns (what was evicted, bytes freed, bytes held after). What is kept may alone exceed
    the cap; then everything evictable goes and the rest stays.
    """
    total = _size(home)
    evicted, freed = [], 0
    if total <= limit_bytes:
        return evicted, freed, total
    for _, path in _candidates(home, keep_features, keep_maps):
        if total <= limit_bytes:
            break
        size = _size(path)
        _remove(path)
        total -= size
        freed += size
        evicted.append(str(path.relative_to(home)))
    return evicted, freed, total


def housekeep(keep_workspaces: set[str], keep_features: set[str], keep_maps: set[str],
              home: Path | None = None) -> Housekeeping:
    """One pass: idle workspaces, then the cap."""
    home = home or home_dir()
    idle, cap = limits()
    report = Housekeeping(workspaces=sweep_workspaces(home, idle, keep_workspaces))
    if cap is not None:
        report.evicted, report.freed_bytes, report.total_bytes = enforce_cap(home, cap, keep_features, keep_maps)
    else:
        report.total_bytes = _size(home)
    return report


def housekeep_store(active_features: set[str] | None = None, home: Path | None = None) -> Housekeeping:
    """One pass over a whole ``$EMBEDVIZ_HOME``, keeping what its catalog's published and pinned runs
    need (their feature sets, maps and the workspaces their uploads live in) and ``active_features``
    (what running jobs write)."""
    from .catalog import Catalog

    home = home or home_dir()
    catalog = Catalog(home / "catalog.sqlite")
    keep_features, keep_maps = catalog.protected()
    keep_features |= set(active_features or ())
    sessions = (home / "sessions").resolve()
    keep_workspaces = set()
    for run in catalog.all_runs():
        if run.published or run.pinned:
            path = Path(str(run.params.get("dataset", {}).get("path", ""))).resolve()
            if sessions in path.parents:
                keep_workspaces.add(path.relative_to(sessions).parts[0])
    return housekeep(keep_workspaces, keep_features, keep_maps, home)
