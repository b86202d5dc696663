"""The benchmarks' front door: ``python -m benchmarks`` lists every benchmark, and ``--json`` writes strict JSON."""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

import numpy as np

from benchmarks import NAMES
from benchmarks.__main__ import HERE, main, summary
from benchmarks.report import save

HELPERS = {"__init__", "__main__", "server", "report"}


def test_every_benchmark_module_is_listed_with_a_main_and_a_summary():
    assert set(NAMES) == {path.stem for path in HERE.glob("*.py")} - HELPERS
    for name in NAMES:
        tree = ast.parse((HERE / f"{name}.py").read_text())
        assert any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body), name
        assert summary(name), name


def test_the_listing_names_every_benchmark_and_an_unknown_name_is_refused(capsys):
    assert main([]) == 0
    listed = capsys.readouterr().out
    assert all(f"  {name} " in listed for name in NAMES)
    assert main(["no_such_benchmark"]) == 2
    assert "startup" in capsys.readouterr().err


def test_figures_are_written_as_strict_json(tmp_path):
    figures = {"seconds": np.float32(1.5), "rows": np.arange(3), "missing": float("nan"), "where": Path("/x"),
               "pair": (1, 2)}
    path = tmp_path / "out" / "figures.json"
    assert save("startup", argparse.Namespace(json=path, runs=3), figures) is figures

    def refuse(constant):
        raise ValueError(constant)

    document = json.loads(path.read_text(), parse_constant=refuse)
    assert document["benchmark"] == "startup" and document["options"] == {"runs": 3}
    assert document["figures"] == {"seconds": 1.5, "rows": [0, 1, 2], "missing": None, "where": "/x", "pair": [1, 2]}
