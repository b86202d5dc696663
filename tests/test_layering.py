"""The package stays plain Python: only embedviz/ui imports streamlit; pages hold no maths or I/O."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_HEAVY = {"torch", "torchvision", "numpy", "sklearn", "openTSNE", "umap", "pandas", "PIL"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_ui_imports_streamlit():
    offenders = [
        str(p.relative_to(ROOT)) for p in (ROOT / "embedviz").rglob("*.py")
        if "ui" not in p.relative_to(ROOT / "embedviz").parts[:1] and "streamlit" in _imports(p)
    ]
    assert offenders == [], f"these modules import streamlit outside embedviz/ui: {offenders}"


def test_the_rule_catches_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy\nfrom streamlit import session_state\n")
    assert "streamlit" in _imports(bad)


def test_pages_only_lay_out_and_call_the_package():
    for page in [ROOT / "app.py", *(ROOT / "pages").glob("*.py")]:
        heavy = _imports(page) & _HEAVY
        assert not heavy, f"{page.name} imports {heavy}: move that work into embedviz/"
        assert len(page.read_text().splitlines()) < 110, f"{page.name} is growing logic; move it into embedviz/"
