"""Class indexes: which name each class id has, from a JSON or text file.

Accepted: ``{"0": "cat", "1": "dog"}``, torchvision/Keras's ``{"0": ["n01440764", "tench"]}``
(the last item is the name), ``["cat", "dog"]``, or a text file with one name per line or
``id name`` / ``id,name`` lines.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import pandas as pd

from embedviz.data.images import ImageCollection
from embedviz.errors import DataError

__all__ = ["load_class_index", "name_labels", "natural_order"]

_ID_LINE = re.compile(r"^\s*(\d+)\s*[,:\t ]\s*(.+?)\s*$")


def _from_mapping(mapping: dict, source: str) -> list[str]:
    names: dict[int, str] = {}
    for key, value in mapping.items():
        try:
            index = int(key)
        except (TypeError, ValueError):
            raise DataError(f"{source}: class ids must be whole numbers, not {key!r}.") from None
        names[index] = str(value[-1] if isinstance(value, (list, tuple)) and value else value)
    if not names:
        raise DataError(f"{source} names no classes; give {{\"0\": \"cat\", …}} or one name per line.")
    # ids are unique, so 0..N-1 holds exactly when the smallest is 0 and the largest N-1 (a range up to
    # the largest id is never built: one line "999999999999 x" would take the server's memory)
    if min(names) < 0 or max(names) != len(names) - 1:
        missing = [i for i in range(len(names)) if i not in names][:5]
        raise DataError(f"{source}: class ids must run 0..N-1 without gaps; "
                        + (f"missing {missing}." if missing
                           else f"{len(names):,} classes, but an id of {max(names):,}."))
    return [names[i] for i in range(len(names))]


def load_class_index(path: str | Path) -> list[str]:
    """Class names in id order."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"Class index {path} does not exist.")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path.name} is not valid JSON ({exc.msg} at line {exc.lineno}).") from None
        if isinstance(data, list):
            return [str(v[-1] if isinstance(v, list) and v else v) for v in data]
        if isinstance(data, dict):
            return _from_mapping(data, path.name)
        raise DataError(f"{path.name} must hold an object {{\"0\": \"cat\"}} or a list of names.")
    lines = [line for line in text.splitlines() if line.strip()]
    matches = [_ID_LINE.match(line) for line in lines]
    if lines and all(matches):
        return _from_mapping({m.group(1): m.group(2) for m in matches}, path.name)
    return [line.strip() for line in lines]


def name_labels(collection: ImageCollection, names: list[str]) -> ImageCollection:
    """Labels given as class ids (``"3"``) become names; labels that are already names stay."""
    if not collection.has_labels:
        return collection
    labels = collection.samples["label"]
    as_id = pd.to_numeric(labels, errors="coerce")
    usable = as_id.notna() & (as_id % 1 == 0) & (as_id >= 0) & (as_id < len(names))
    if not usable.any():
        return collection
    renamed = labels.astype("object").where(~usable, as_id.where(usable, 0).astype(int).map(lambda i: names[i]))
    return replace(collection, samples=collection.samples.assign(label=renamed.astype("string")))


def natural_order(values: Sequence[object]) -> list[str]:
    """Category names sorted as a person expects: ``2`` before ``10``."""
    def key(value: str) -> list[object]:
        return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", value)]

    return sorted({str(v) for v in values}, key=key)
