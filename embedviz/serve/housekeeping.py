"""Keeping a shared ``$EMBEDVIZ_HOME`` in bounds.

- Session workspaces (uploads unpacked for one browser session) are deleted once idle for
  ``EMBEDVIZ_SESSION_IDLE_HOURS`` (default 24), unless a published or pinned run still reads them.
- The store's disk use is capped at ``EMBEDVIZ_STORE_LIMIT_GB`` (unset: no cap). Over the cap, the
  least recently used caches go first: feature sets, maps, neighbour graphs and unpacked archives, oldest
  use first, skipping what published or pinned runs need and what a running job is writing.
  Uploads in live workspaces, weights and the catalog are never evicted. Unfinished extractions'
  shards (``features/.work``) are evicted the same way, except those of a running job.
- Unfinished writes (``*.partial`` folders and temporary files left by an interrupted write, a crash
  or a full disk) are deleted once untouched for ``PARTIAL_GRACE_SECONDS`` (an hour), unless a
  running job is writing them.

Everything here works on paths; the dashboard calls :func:`housekeep` now and then, the command
line as ``python -m embedviz housekeep``.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from embedviz import settings
from embedviz.hashing import sha256_json
from embedviz.layout import PARTIAL_SUFFIX, Layout, home_dir, last_used, mark_used

__all__ = ["Housekeeping", "mark_used", "last_used", "sweep_workspaces", "sweep_partials", "enforce_cap", "housekeep",
           "housekeep_store", "limits", "IDLE_VAR", "LIMIT_VAR", "PARTIAL_SUFFIX", "PARTIAL_GRACE_SECONDS"]

log = logging.getLogger(__name__)

IDLE_VAR = "EMBEDVIZ_SESSION_IDLE_HOURS"
LIMIT_VAR = "EMBEDVIZ_STORE_LIMIT_GB"
#: An unfinished write untouched this long was abandoned: a live one writes every few seconds.
PARTIAL_GRACE_SECONDS = 3600.0
#: Temporary files written aside before a rename: ``.<name>.<8 hex>.tmp|npz|parquet``.
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{8}\.(tmp|npz|parquet)$")


@dataclass
class Housekeeping:
    """What one pass removed."""

    workspaces: list[str] = field(default_factory=list)
    evicted: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    total_bytes: int = 0
    partials: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (f"{len(self.workspaces)} idle workspaces, {len(self.partials)} unfinished writes and "
                f"{len(self.evicted)} cached items removed, {self.freed_bytes / 2**20:,.1f} MiB freed; "
                f"the store now holds {self.total_bytes / 2**20:,.1f} MiB.")


def limits() -> tuple[float, int | None]:
    """(idle seconds before a workspace goes, store cap in bytes or ``None``) from the environment."""
    idle = settings.session_idle_hours() * 3600
    cap = settings.store_limit_gb()
    return idle, (int(cap * 2**30) if cap is not None else None)


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
    root = Layout(home).workspaces
    removed = []
    if not root.is_dir():
        return removed
    for folder in root.iterdir():
        if folder.is_dir() and folder.name not in keep and now - last_used(folder) > idle_seconds:
            _remove(folder)
            removed.append(folder.name)
    if removed:
        log.info("Removed %d idle workspaces (unused for %.1f h)", len(removed), idle_seconds / 3600)
    return removed


def _last_activity(path: Path) -> float:
    """The newest modification time of ``path`` and everything in it (0 when it is gone)."""
    try:
        newest = path.stat().st_mtime
    except OSError:
        return 0.0
    if path.is_dir():
        for p in path.rglob("*"):
            try:
                newest = max(newest, p.lstat().st_mtime)
            except OSError:
                pass
    return newest


def _work_name(key: str) -> str:
    """The work folder's name of a one-layer extraction of ``key`` (as
    :func:`embedviz.extract.features.compute_layers`)."""
    return sha256_json([key])[:32]


def _held(path: Path, active: set[str]) -> bool:
    """Whether a running job may be writing ``path``: the store folder (``.<key>.<token>.partial``) or
    the work folder of one of its keys (``active`` holds feature keys, or job keys that contain them)."""
    keys = {key for key in active if key} | {k for key in active for k in _SHA256.findall(key or "")}
    if path.name.startswith(".") and path.name.endswith(PARTIAL_SUFFIX):
        key = path.name[1:].rsplit(".", 2)[0]
        if key and any(key == k or key in k for k in keys):
            return True
    return bool({path.name, path.parent.name} & {_work_name(key) for key in keys})


def _unfinished(home: Path) -> list[Path]:
    """Partial folders and temporary files where embedviz writes aside before renaming into place."""
    found: list[Path] = []
    where = Layout(home)
    places = list(where.caches)
    work = where.work
    places += [p for p in (work.iterdir() if work.is_dir() else []) if p.is_dir()]
    sessions = where.workspaces
    for workspace in sessions.iterdir() if sessions.is_dir() else []:
        if workspace.is_dir():
            places += [workspace, *(p for p in workspace.iterdir()
                                    if p.is_dir() and not p.name.endswith(PARTIAL_SUFFIX))]
    for place in places:
        try:
            children = list(place.iterdir())
        except OSError:
            continue
        found += [p for p in children if (p.name.endswith(PARTIAL_SUFFIX) and p.is_dir())
                  or (_TEMPORARY.match(p.name) and p.is_file())]
    return found


def sweep_partials(home: Path, active: set[str], grace_seconds: float = PARTIAL_GRACE_SECONDS,
                   now: float | None = None) -> tuple[list[str], int]:
    """Delete unfinished writes (``*.partial`` folders, temporary files) untouched for ``grace_seconds``
    and not held by a running job (``active``: the feature keys jobs are computing).

    Returns (what was removed, relative to ``home``; bytes freed)."""
    now = time.time() if now is None else now
    removed, freed = [], 0
    for path in _unfinished(home):
        if _held(path, active) or now - _last_activity(path) <= grace_seconds:
            continue
        size = _size(path)
        _remove(path)
        if not path.exists():
            removed.append(str(path.relative_to(home)))
            freed += size
    if removed:
        log.info("Removed %d unfinished writes (%.1f MiB)", len(removed), freed / 2**20)
    return removed, freed


def _candidates(home: Path, keep_features: set[str], keep_maps: set[str]) -> list[tuple[float, Path]]:
    """Cached items that may be evicted, with their last use."""
    items: list[tuple[float, Path]] = []
    where = Layout(home)
    features = where.features
    if features.is_dir():
        for folder in features.iterdir():
            if folder.is_dir() and not folder.name.startswith(".") and folder.name not in keep_features:
                items.append((last_used(folder), folder))
        work = where.work  # shards of unfinished extractions: what a rerun would resume from
        items.extend((_last_activity(p), p) for p in (work.iterdir() if work.is_dir() else [])
                     if p.is_dir() and not _held(p, keep_features))
    embeddings = where.maps
    if embeddings.is_dir():
        for path in embeddings.glob("*.npz"):
            if path.stem not in keep_maps:
                items.append((path.stat().st_mtime, path))
        graphs = where.graphs  # recomputed in seconds when needed again
        items.extend((p.stat().st_mtime, p) for p in (graphs.glob("*.npz") if graphs.is_dir() else []))
    uploads = where.unpacked  # archives from server paths, unpacked: unpacked again when needed
    items.extend((last_used(p), p) for p in (uploads.iterdir() if uploads.is_dir() else []))
    return sorted(items, key=lambda item: item[0])


def enforce_cap(home: Path, limit_bytes: int, keep_features: set[str],
                keep_maps: set[str]) -> tuple[list[str], int, int]:
    """Evict the least recently used caches until ``home`` holds at most ``limit_bytes``.

    Returns (what was evicted, bytes freed, bytes held after). What is kept may alone exceed
    the cap; then everything evictable goes and the rest stays.
    """
    total = _size(home)
    evicted, freed = [], 0
    if total <= limit_bytes:
        return evicted, freed, total
    log.info("The store holds %.1f GiB, over its cap of %.1f GiB: evicting the least recently used",
             total / 2**30, limit_bytes / 2**30)
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
              home: Path | None = None, active: set[str] | None = None) -> Housekeeping:
    """One pass: idle workspaces, abandoned unfinished writes, then the cap. ``active``: the keys
    running jobs compute (their unfinished writes stay; default: every key in ``keep_features``)."""
    home = home or home_dir()
    idle, cap = limits()
    report = Housekeeping(workspaces=sweep_workspaces(home, idle, keep_workspaces))
    report.partials, partial_bytes = sweep_partials(home, keep_features if active is None else active)
    if cap is not None:
        report.evicted, report.freed_bytes, report.total_bytes = enforce_cap(home, cap, keep_features, keep_maps)
    else:
        report.total_bytes = _size(home)
    report.freed_bytes += partial_bytes
    if report.workspaces or report.partials or report.evicted:
        log.info("Housekeeping of %s: %s", home, report.describe())
    return report


def housekeep_store(active_features: set[str] | None = None, home: Path | None = None) -> Housekeeping:
    """One pass over a whole ``$EMBEDVIZ_HOME``, keeping what its catalog's published and pinned runs
    need (their feature sets, maps and the workspaces their uploads live in) and ``active_features``
    (what running jobs write)."""
    from embedviz.serve.catalog import Catalog

    home = home or home_dir()
    catalog = Catalog(Layout(home).catalog)
    keep_features, keep_maps = catalog.protected()
    keep_features |= set(active_features or ())
    sessions = Layout(home).workspaces.resolve()
    keep_workspaces = set()
    for run in catalog.all_runs():
        if run.published or run.pinned:
            path = Path(str(run.params.get("dataset", {}).get("path", ""))).resolve()
            if sessions in path.parents:
                keep_workspaces.add(path.relative_to(sessions).parts[0])
    return housekeep(keep_workspaces, keep_features, keep_maps, home, active=set(active_features or ()))
