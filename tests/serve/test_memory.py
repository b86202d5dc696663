"""The collector's freeze: once after new imports, never again until more modules arrive, off when asked."""

from __future__ import annotations

import gc
import sys
import types

import pytest

from embedviz.serve import memory


@pytest.fixture(autouse=True)
def thawed(monkeypatch):
    monkeypatch.setenv("EMBEDVIZ_GC_FREEZE", "1")  # as deployed (the test process turns it off)
    monkeypatch.setattr(memory, "_modules_at_freeze", 0)
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_new_imports_are_frozen_once_and_later_objects_are_still_collected(monkeypatch):
    assert memory.freeze_new_imports() is True
    frozen = gc.get_freeze_count()
    assert frozen > 1000  # the test process's modules, functions and classes
    assert memory.freeze_new_imports() is False  # nothing imported since: no second collection

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle made after the freeze: the collector still finds it
    del a, b
    assert gc.collect() >= 2

    monkeypatch.setitem(sys.modules, "embedviz_test_new_module", types.ModuleType("embedviz_test_new_module"))
    assert memory.freeze_new_imports() is True  # a new module: frozen again


def test_the_setting_turns_it_off(monkeypatch):
    monkeypatch.setenv("EMBEDVIZ_GC_FREEZE", "0")
    assert memory.freeze_new_imports() is False and gc.get_freeze_count() == 0
