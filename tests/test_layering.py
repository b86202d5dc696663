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


# The stages of the pipeline, each importing only those before it (the README's layout section).
# A module outside every stage's folder belongs to the base everything may import.
STAGES = ["base", "data", "extract", "maps", "explore", "serve", "ui"]
_TOP = {"embedviz", "embedviz.__main__", "embedviz.cli"}  # the public API and the command line sit above all


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _embedviz_imports(path: Path) -> set[str]:
    """Every embedviz module ``path`` imports, at the top or inside a function (a lazy import is still an edge)."""
    name = _module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "embedviz"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            if base.split(".")[0] != "embedviz":
                continue
            for alias in node.names:  # ``from embedviz.data import images`` names a module
                full = f"{base}.{alias.name}"
                found.add(full if _is_module(full) else base)
    return found


def _is_module(dotted: str) -> bool:
    p = ROOT / dotted.replace(".", "/")
    return p.with_suffix(".py").exists() or (p / "__init__.py").exists()


def _stage(module: str) -> str | None:
    if module in _TOP:
        return None
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else "base"


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _embedviz_imports(p) for p in (ROOT / "embedviz").rglob("*.py")}


def _violations(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, imports in graph.items():
        stage = _stage(module)
        if stage is None:
            continue
        for imported in imports:
            other = _stage(imported)
            if other is None or STAGES.index(other) > STAGES.index(stage):
                found.append(f"{module} ({stage}) imports {imported} ({other or 'the top'})")
    return sorted(found)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), or a module importing itself."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph.get(v, ()):
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_each_stage_imports_only_the_stages_before_it():
    assert _violations(_graph()) == []


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_the_layering_rules_catch_a_violation_and_a_cycle():
    graph = {"embedviz.data.images": {"embedviz.maps.quality"}, "embedviz.maps.quality": {"embedviz.data.images"},
             "embedviz.explore.figures": {"embedviz.errors"}, "embedviz.errors": set()}
    assert _violations(graph) == ["embedviz.data.images (data) imports embedviz.maps.quality (maps)"]
    assert _cycles(graph) == [["embedviz.data.images", "embedviz.maps.quality"]]


def test_every_module_belongs_to_a_stage_or_the_base():
    stray = [m for m in _graph() if _stage(m) == "base" and len(m.split(".")) > 2]
    assert stray == [], f"modules in a folder that is not a stage: {stray}"


def _private_imports(path: Path) -> list[str]:
    """Names starting with ``_`` that ``path`` imports from embedviz (another module's internals)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [f"{node.module or '.'}.{alias.name}" for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("embedviz"))
            for alias in node.names if alias.name.startswith("_")]


def test_ui_modules_use_each_other_only_through_public_names():
    offenders = {str(p.relative_to(ROOT)): names for p in (ROOT / "embedviz" / "ui").rglob("*.py")
                 if (names := _private_imports(p))}
    assert offenders == {}, f"these ui modules import another module's private names: {offenders}"


def test_the_private_name_rule_catches_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from embedviz.ui.session import _stored\nfrom .widgets import plain\n")
    assert _private_imports(bad) == ["embedviz.ui.session._stored"]
