"""``python -m benchmarks NAME [options]`` runs benchmark NAME; alone, lists them with a line each."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

from benchmarks import NAMES

HERE = Path(__file__).resolve().parent


def summary(name: str) -> str:
    """The first line of the benchmark's docstring, read without importing it (some import torch)."""
    doc = ast.get_docstring(ast.parse((HERE / f"{name}.py").read_text())) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def listing() -> str:
    width = max(len(name) for name in NAMES)
    lines = ["usage: python -m benchmarks NAME [options]   (python -m benchmarks NAME --help for its options)", ""]
    lines += [f"  {name:<{width}}  {summary(name)}" for name in NAMES]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(listing())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in NAMES:
        print(f"no benchmark named {name!r}; the benchmarks are: {', '.join(NAMES)}", file=sys.stderr)
        return 2
    importlib.import_module(f"benchmarks.{name}").main(rest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
