"""UMAP's compilation is paid by a background child at server start, not by the first user."""

from __future__ import annotations

import pytest

from embedviz.serve import warmup


@pytest.mark.slow
def test_the_warm_up_child_fills_the_compile_cache_and_runs_once(monkeypatch, embedviz_home):
    monkeypatch.setenv("EMBEDVIZ_WARMUP", "1")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(embedviz_home / "numba"))
    child = warmup.start()
    assert child is not None
    assert child.wait(timeout=600) == 0
    assert warmup.marker().exists()
    assert any((embedviz_home / "numba").rglob("*.nbi"))  # numba's cache index files
    assert warmup.start() is None  # warm already: no second child
    monkeypatch.setenv("EMBEDVIZ_WARMUP", "0")
    warmup.marker().unlink()
    assert warmup.start() is None  # the operator turned it off


def test_the_server_process_itself_never_imports_umap_to_warm_up(monkeypatch):
    started = []
    monkeypatch.setattr(warmup.subprocess, "Popen", lambda cmd, **kw: started.append(cmd) or "child")
    monkeypatch.setenv("EMBEDVIZ_WARMUP", "1")
    assert warmup.start() == "child"
    assert started[0][1:] == ["-m", "embedviz.serve.warmup"]
