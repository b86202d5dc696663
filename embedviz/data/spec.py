"""Which data: a typed, frozen description of where the images or features come from.

The one serialised form (:meth:`DatasetSpec.to_dict`) is what the catalog records with a run and what
the dashboard keeps; :meth:`DatasetSpec.key` is its content key. Paths are kept as given (an upload's
path inside its workspace, or a path on the server); nothing here reads them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any, Mapping

from embedviz.errors import DataError
from embedviz.hashing import sha256_json

__all__ = ["DatasetSpec", "KINDS", "UPLOAD"]

#: The built-in digits, a folder or archive of images (or a table of their paths), or features made elsewhere.
KINDS = ("demo", "path", "features")
#: ``via`` of data a user uploaded (it lives in their workspace); empty for a path on the server.
UPLOAD = "upload"


@dataclass(frozen=True)
class DatasetSpec:
    """Where the data come from.

    Args:
        kind: one of :data:`KINDS`.
        path: the folder, archive, table or features file.
        via: :data:`UPLOAD` for an upload, empty for a path on the server.
        prefix: the folder image paths in a table are relative to.
        column: a table's column of image paths.
        metadata: a metadata table joined to features made elsewhere.
        id_column: the column that joins features to their metadata.
    """

    kind: str = "demo"
    path: str = ""
    via: str = ""
    prefix: str = ""
    column: str = ""
    metadata: str = ""
    id_column: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DataError(f"Unknown kind of data {self.kind!r}; choose one of {', '.join(KINDS)}.")
        if self.kind != "demo" and not self.path:
            raise DataError(f"Data of kind {self.kind!r} need a path.")

    @classmethod
    def from_dict(cls, value: Mapping[str, Any] | None) -> DatasetSpec:
        """The spec a stored dict describes (``None`` or ``{}``: the demo); unknown keys are refused."""
        value = dict(value or {"kind": "demo"})
        unknown = set(value) - {f.name for f in fields(cls)}
        if unknown:
            raise DataError(f"A data description has unknown fields: {', '.join(sorted(unknown))}.")
        return cls(**{k: str(v or "") for k, v in value.items()})

    def to_dict(self) -> dict[str, str]:
        """The serialised form: ``kind`` and every field that is set."""
        return {"kind": self.kind, **{f.name: getattr(self, f.name) for f in fields(self)
                                      if f.name != "kind" and getattr(self, f.name)}}

    def key(self) -> str:
        """A content key of the description (not of the files it names)."""
        return sha256_json(self.to_dict())

    @property
    def uploaded(self) -> bool:
        return self.via == UPLOAD

    def name(self) -> str:
        """The data by name for people: the demo, or the file or folder's own name (never the server's path)."""
        if self.kind == "demo":
            return "the demo digits"
        name = os.path.basename(self.path.rstrip("/\\")) or "images"
        if self.kind == "features":
            return f"features {name}"
        return f"upload {name}" if self.uploaded else name
