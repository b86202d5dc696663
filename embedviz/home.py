"""Where embedviz keeps what it computes: ``$EMBEDVIZ_HOME`` (default ``~/.embedviz``)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["home_dir", "sha256_file", "sha256_json"]

_CHUNK = 1 << 20


def home_dir() -> Path:
    """The root of every cache and workspace, created on first use."""
    root = Path(os.environ.get("EMBEDVIZ_HOME") or Path.home() / ".embedviz").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_json(obj: Any) -> str:
    """Hex SHA-256 of a JSON-serialisable value, independent of dict order."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
