"""Which folders of the server a dashboard user may read (``$EMBEDVIZ_DATA_ROOTS``): never embedviz's
own storage, where other users' uploads live."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from embedviz import settings
from embedviz.layout import home_dir

__all__ = ["check_server_path", "data_roots", "DataRoots", "inside_home", "DATA_ROOTS_VAR"]

#: ``os.pathsep``-separated folders that "Path on this server" may read; unset: none (the source is off).
DATA_ROOTS_VAR = "EMBEDVIZ_DATA_ROOTS"

log = logging.getLogger(__name__)


def _same_file(a: Path, b: os.stat_result) -> bool:
    try:
        st = a.stat()
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (b.st_dev, b.st_ino)


def _resolve(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute with every symlink followed; a loop of links is a :class:`DataError`."""
    from embedviz.errors import DataError

    try:
        return Path(path).expanduser().resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python 3.11)
        raise DataError(f"{path} cannot be followed to a file ({type(exc).__name__}); give the real path.") from None


def inside_home(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (resolved, symlinks followed) is ``$EMBEDVIZ_HOME`` or inside it, by name or, for a
    bind mount of it, by identity."""
    resolved = _resolve(path)
    home = home_dir().resolve()
    if resolved == home or home in resolved.parents:
        return True
    home_stat = home.stat()
    return any(_same_file(p, home_stat) for p in (resolved, *resolved.parents))


@dataclass(frozen=True)
class DataRoots:
    """The folders the operator shares for "Path on this server" (``usable``), and those named but never
    used because they hold, or lie inside, embedviz's own storage (``refused``). False when none is usable."""

    usable: tuple[Path, ...] = ()
    refused: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.usable)

    def holds(self, resolved: Path) -> bool:
        return any(resolved == r or r in resolved.parents for r in self.usable)


def _names(value: str | Iterable[str] | None) -> list[str]:
    if not value:
        return []
    items = value.split(os.pathsep) if isinstance(value, str) else [str(v) for v in value]
    return [item.strip() for item in items if item.strip()]


def data_roots(configured: str | Iterable[str] | None = None) -> DataRoots:
    """The shared folders: ``$EMBEDVIZ_DATA_ROOTS`` plus ``configured`` (``[embedviz] data_roots`` in the
    dashboard's secrets; ``None``: the secrets given to :func:`embedviz.settings.use_secrets`, if any).
    ``$EMBEDVIZ_HOME``, every folder above it (``/``, its parent) and every folder in it are refused:
    other users' uploads live there."""
    home = home_dir().resolve()
    usable: list[Path] = []
    refused: list[str] = []
    named = settings.data_roots() if configured is None else [*settings.data_roots(secrets={}), *_names(configured)]
    for name in named:
        root = _resolve(name)
        if root == home or root in home.parents or inside_home(root):
            log.warning("Data root %s is refused: it holds or lies inside EMBEDVIZ_HOME (%s).", name, home)
            refused.append(name)
        elif root not in usable:
            usable.append(root)
    return DataRoots(tuple(usable), tuple(refused))


def check_server_path(path: str | os.PathLike[str], roots: DataRoots | None = None) -> Path:
    """``path`` resolved (symlinks followed), if a dashboard user may read it: inside one of ``roots``
    (default: :func:`data_roots` from the environment) and never in ``$EMBEDVIZ_HOME``, where other users'
    uploads live. With no roots nothing on the server may be read."""
    from embedviz.errors import DataError

    roots = data_roots() if roots is None else roots
    if not roots:
        raise DataError("This server shares no folders, so paths on it cannot be read: upload the files instead "
                        f"(its operator can share folders with {DATA_ROOTS_VAR}).")
    resolved = _resolve(path)
    # one message for both: a different one for embedviz's own storage would tell a prober where it is
    if not roots.holds(resolved) or inside_home(resolved):
        raise DataError(f"{path} is outside the folders this server shares ({', '.join(map(str, roots.usable))}).")
    return resolved
