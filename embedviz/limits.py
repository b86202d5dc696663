"""What one user may put on a shared server: the caps on inputs, workspaces and jobs, in one place.

Each cap is a setting of :mod:`embedviz.settings` (its variable, default and precedence are declared
there, read when it is asked for); this module adds its unit and what it bounds. ``docs/deploy.md``
("Hosting safely") lists every one; a message that reports a cap names the variable that raises it.
"""

from __future__ import annotations

from dataclasses import dataclass

from embedviz import settings

__all__ = ["Cap", "CAPS", "cap", "over_cap"]


@dataclass(frozen=True)
class Cap:
    """One limit: the variable that sets it, its unit, and what it bounds."""

    var: str
    unit: str  # "MiB", "rows", "columns", "files", "jobs", "s"
    what: str  # what follows the number: "in one archive", "of uploads per user"

    @property
    def default(self) -> float:
        return settings.setting(self.var).default

    def value(self) -> float:
        return settings.value(self.var)

    def bytes(self) -> int:
        """The cap in bytes (for caps in MiB)."""
        return int(self.value() * 2**20)

    def count(self) -> int:
        return int(self.value())

    def message(self, found: str) -> str:
        """``"<found>; the limit on this server is <cap> (<var> raises it)."``"""
        value = self.value()
        shown = f"{value:,.0f} {self.unit}" if value == int(value) else f"{value:,} {self.unit}"
        return f"{found}; the limit on this server is {shown} {self.what} ({self.var} raises it)."


#: Every cap, by name. Their defaults (in :mod:`embedviz.settings`) fit a server of a few cores and tens of
#: GiB shared by a team.
CAPS: dict[str, Cap] = {c.var.removeprefix("EMBEDVIZ_").lower(): c for c in (
    Cap("EMBEDVIZ_MAX_FEATURES_MB", "MiB", "of features from one file, decompressed"),
    Cap("EMBEDVIZ_MAX_ROWS", "rows", "in one features file or table"),
    Cap("EMBEDVIZ_MAX_COLUMNS", "columns", "(dimensions) in one features file or table"),
    Cap("EMBEDVIZ_MAX_TABLE_MB", "MiB", "for one CSV/TSV/Parquet table or manifest"),
    Cap("EMBEDVIZ_MAX_ARCHIVE_FILES", "files", "in one archive"),
    Cap("EMBEDVIZ_MAX_ARCHIVE_MB", "MiB", "for one archive unpacked"),
    Cap("EMBEDVIZ_WORKSPACE_MB", "MiB", "of uploads and unpacked archives per user"),
    Cap("EMBEDVIZ_WORKSPACE_FILES", "files", "in one user's workspace"),
    Cap("EMBEDVIZ_JOBS_PER_USER", "jobs", "queued or running per user"),
    Cap("EMBEDVIZ_JOB_TIMEOUT_S", "s", "per job (0: no limit)"),
)}


def cap(name: str) -> Cap:
    """The cap called ``name`` (``"max_rows"``, ``"workspace_mb"``, ...: its variable without the prefix)."""
    return CAPS[name]


def over_cap(name: str, found: float) -> bool:
    """Whether ``found`` (in the cap's unit; bytes for MiB caps) exceeds the cap ``name``."""
    c = CAPS[name]
    limit = c.bytes() if c.unit == "MiB" else c.value()
    return found > limit
