"""Keeping the server's garbage collection cheap.

Streamlit runs a full collection (``gc.collect(2)``) after every script run. With torch, torchvision,
pandas, pyarrow, plotly and umap imported, a full collection walks millions of long-lived objects
(modules, functions, classes, their caches): about a quarter of a core-second on this project's
machine, for every click of every user, three quarters of a page visit's cost. Those objects live as
long as the process; the collector cannot free them, only look at them.

So after a script run that imported new modules (the first visit of each page, a handful of times
in a server's life) :func:`freeze_new_imports` collects once and then ``gc.freeze()``\\ s: every object
alive at that moment moves to the permanent generation, which collections skip. Objects made later
(a session's tables, a map) are collected as before. What is frozen is never collected as a cycle,
only freed by reference counting; a session's cyclic garbage that happened to be alive at one of
those few moments stays, which bounds the cost at a handful of freezes per process.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time

from embedviz import settings

__all__ = ["freeze_new_imports"]

log = logging.getLogger(__name__)

_lock = threading.Lock()
_modules_at_freeze = 0


def freeze_new_imports() -> bool:
    """Collect once and freeze what is alive, if modules were imported since the last time (and
    ``EMBEDVIZ_GC_FREEZE`` is on); ``True`` when it froze."""
    global _modules_at_freeze
    if len(sys.modules) == _modules_at_freeze or not settings.gc_freeze():
        return False
    with _lock:
        modules = len(sys.modules)
        if modules == _modules_at_freeze:
            return False
        start = time.perf_counter()
        gc.collect()
        gc.freeze()
        _modules_at_freeze = modules
    log.info("froze %d long-lived objects after new imports (%d modules) in %.2f s", gc.get_freeze_count(),
             modules, time.perf_counter() - start)
    return True
