"""What one user may put on a shared server: the caps on inputs, workspaces and jobs, in one place.

Each cap is read from its environment variable when it is asked for (so a test or an operator can
change it without a restart of the module), with the default below. ``docs/deploy.md`` ("Hosting
safely") lists every one; a message that reports a cap names the variable that raises it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["Cap", "CAPS", "cap", "over_cap"]


@dataclass(frozen=True)
class Cap:
    """One limit: the variable that sets it, its default, its unit, and what it bounds."""

    var: str
    default: float
    unit: str  # "MiB", "rows", "columns", "files", "jobs", "s"
    what: str  # what follows the number: "in one archive", "of uploads per user"

    def value(self) -> float:
        raw = os.environ.get(self.var, "").strip()
        if not raw:
            return self.default
        try:
            return float(raw)
        except ValueError:
            return self.default

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


#: Every cap, by name. Defaults fit a server of a few cores and tens of GiB shared by a team.
CAPS: dict[str, Cap] = {c.var.removeprefix("EMBEDVIZ_").lower(): c for c in (
    Cap("EMBEDVIZ_MAX_FEATURES_MB", 2048, "MiB", "of features from one file, decompressed"),
    Cap("EMBEDVIZ_MAX_ROWS", 2_000_000, "rows", "in one features file or table"),
    Cap("EMBEDVIZ_MAX_COLUMNS", 100_000, "columns", "(dimensions) in one features file or table"),
    Cap("EMBEDVIZ_MAX_TABLE_MB", 1024, "MiB", "for one CSV/TSV/Parquet table or manifest"),
    Cap("EMBEDVIZ_MAX_ARCHIVE_FILES", 200_000, "files", "in one archive"),
    Cap("EMBEDVIZ_MAX_ARCHIVE_MB", 20_480, "MiB", "for one archive unpacked"),
    Cap("EMBEDVIZ_WORKSPACE_MB", 20_480, "MiB", "of uploads and unpacked archives per user"),
    Cap("EMBEDVIZ_WORKSPACE_FILES", 250_000, "files", "in one user's workspace"),
    Cap("EMBEDVIZ_JOBS_PER_USER", 3, "jobs", "queued or running per user"),
    Cap("EMBEDVIZ_JOB_TIMEOUT_S", 0, "s", "per job (0: no limit)"),
)}


def cap(name: str) -> Cap:
    """The cap called ``name`` (``"max_rows"``, ``"workspace_mb"``, ...: its variable without the prefix)."""
    return CAPS[name]


def over_cap(name: str, found: float) -> bool:
    """Whether ``found`` (in the cap's unit; bytes for MiB caps) exceeds the cap ``name``."""
    c = CAPS[name]
    limit = c.bytes() if c.unit == "MiB" else c.value()
    return found > limit
