"""Where embedviz keeps what it computes: ``$EMBEDVIZ_HOME`` (default ``~/.embedviz``)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["home_dir", "sha256_file", "sha256_json", "check_server_path", "DATA_ROOTS_VAR"]

#: Colon-separated folders that "Path on this server" may read; unset means anywhere but embedviz's own.
DATA_ROOTS_VAR = "EMBEDVIZ_DATA_ROOTS"

_CHUNK = 1 << 20


def home_dir() -> Path:
    """The root of every cache and workspace, created on first use."""
    root = Path(os.environ.get("EMBEDVIZ_HOME") or Path.home() / ".embedviz").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def check_server_path(path: str | os.PathLike[str]) -> Path:
    """``path`` resolved, if a dashboard user may read it: never inside ``$EMBEDVIZ_HOME`` (other
    sessions' uploads live there), and inside ``$EMBEDVIZ_DATA_ROOTS`` when the operator set it."""
    from .errors import DataError

    resolved = Path(path).expanduser().resolve()
    home = home_dir().resolve()
    if resolved == home or home in resolved.parents:
        raise DataError(f"{path} is inside embedviz's own storage, which holds other sessions' uploads; "
                        "upload the files instead.")
    roots = [Path(r).expanduser().resolve() for r in os.environ.get(DATA_ROOTS_VAR, "").split(os.pathsep) if r]
    if roots and not any(resolved == r or r in resolved.parents for r in roots):
        raise DataError(f"{path} is outside the folders this server shares ({', '.join(map(str, roots))}).")
    return resolved


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
