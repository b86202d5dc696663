"""Every ``ev_`` session key is defined once, in ``embedviz/ui/session.py``: with its first value
(``DEFAULTS``), as found by the page that draws it (``COMPUTED``), or as one of a named family."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from embedviz.ui.session import COMPUTED, DEFAULTS, PREFIXES

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [*sorted((ROOT / "embedviz").rglob("*.py")), *sorted((ROOT / "pages").glob("*.py")), ROOT / "app.py"]


def _keys() -> tuple[dict[str, str], dict[str, str]]:
    """``ev_`` string literals and the fixed heads of ``ev_`` f-strings, each with a file that uses it."""
    literals: dict[str, str] = {}
    heads: dict[str, str] = {}
    for path in SOURCES:
        tree = ast.parse(path.read_text(), str(path))
        parts = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
                head = str(node.values[0].value)
                if head.startswith("ev_"):
                    heads.setdefault(head, path.name)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in parts \
                    and node.value.startswith("ev_") and not node.value.endswith("_") \
                    and node.value.replace("_", "").isalnum():  # a key, not a prefix tested with startswith
                literals.setdefault(node.value, path.name)
    return literals, heads


def test_every_session_key_in_the_code_is_defined_once():
    literals, heads = _keys()
    undefined = {key: where for key, where in literals.items()
                 if key not in DEFAULTS and key not in COMPUTED and not key.startswith(PREFIXES)}
    assert not undefined, f"define these keys in embedviz/ui/session.py: {undefined}"
    assert not set(DEFAULTS) & set(COMPUTED)
    assert all(head.startswith(PREFIXES) for head in heads), heads
    unused = (set(DEFAULTS) | set(COMPUTED)) - set(literals)
    assert not unused, f"keys defined but used nowhere: {unused}"


def test_the_check_finds_a_key_defined_nowhere(tmp_path, monkeypatch):
    page = tmp_path / "9_New.py"
    page.write_text('import streamlit as st\nst.slider("Zoom", 1, 9, key="ev_zoom")\n')
    monkeypatch.setattr(sys.modules[__name__], "SOURCES", [*SOURCES, page])
    literals, _ = _keys()
    assert "ev_zoom" in literals and "ev_zoom" not in DEFAULTS and "ev_zoom" not in COMPUTED
