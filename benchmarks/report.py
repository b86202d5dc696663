"""What every benchmark shares: its command line with the ``--json PATH`` option, and that JSON file.

Each benchmark's ``main(argv)`` returns a dict of its figures (plain numbers, strings, lists and
dicts); :func:`save` writes it, with the options and the machine, where ``--json`` says, so runs on
different machines or commits can be compared by a program rather than by reading tables.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
from pathlib import Path
from typing import Any

__all__ = ["make_parser", "machine", "save"]


def make_parser(name: str, doc: str | None) -> argparse.ArgumentParser:
    """The parser of benchmark ``name``: its docstring as help, and ``--json PATH``."""
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks {name}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures to PATH as JSON")
    return parser


def machine() -> dict[str, Any]:
    """Where the figures were measured (what the tables in docs/benchmarks.md start with)."""
    return {"machine": platform.machine(), "processor": platform.processor(), "cores": os.cpu_count(),
            "python": platform.python_version(), "platform": platform.platform()}


def save(name: str, args: argparse.Namespace, figures: dict[str, Any]) -> dict[str, Any]:
    """Write ``figures`` to ``args.json`` (when given) with the options and the machine; return them."""
    if getattr(args, "json", None):
        options = {key: value for key, value in vars(args).items() if key != "json"}
        document = {"benchmark": name, "when": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                    "options": options, "machine": machine(), "figures": figures}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(_plain(document), indent=2) + "\n")
        print(f"figures written to {args.json}")
    return figures


def _plain(value: Any) -> Any:
    """``value`` as strict JSON: numpy scalars and arrays as numbers and lists, paths as strings, NaN as null."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy scalar or array, without importing numpy here
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
