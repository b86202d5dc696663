"""Where embedviz keeps what it computes: ``$EMBEDVIZ_HOME`` (default ``~/.embedviz``), and the markers
that say when a cached folder was last used and that a folder is still being written."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["home_dir", "mark_used", "last_used", "PARTIAL_SUFFIX"]

_MARK = ".last_used"
#: The ending of a folder being written before it is renamed into place (the store, unpacked archives).
PARTIAL_SUFFIX = ".partial"


def home_dir() -> Path:
    """The root of every cache and workspace, created on first use."""
    root = Path(os.environ.get("EMBEDVIZ_HOME") or Path.home() / ".embedviz").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


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
