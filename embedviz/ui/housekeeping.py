"""Keeping the store tidy from the dashboard: marking this session's workspace used, the periodic sweep,
an operator's clean-up and clearing of the feature store, and deleting a viewer's runs with the files
no other run needs."""

from __future__ import annotations

import shutil
import threading
import time

import streamlit as st

from embedviz.errors import EmbedVizError
from embedviz.extract.store import FeatureStore
from embedviz.layout import home_dir, layout, mark_used
from embedviz.serve.catalog import Run, unavailable
from embedviz.serve.housekeeping import housekeep_store
from embedviz.ui.auth import require_operator, viewer
from embedviz.ui.choices import stored_by_key
from embedviz.ui.jobs import runner
from embedviz.ui.runs import catalog

__all__ = ["maybe_housekeep", "run_housekeeping", "delete_run", "clear_store"]


@st.cache_resource(show_spinner=False)
def _last_housekeeping() -> dict[str, float]:
    return {"at": 0.0}


def maybe_housekeep(every: float = 300.0) -> None:
    """Mark this session's workspace used, and at most every five minutes per server process
    sweep idle workspaces and keep the store under its cap."""
    workspace = st.session_state.get("workspace_id")
    if workspace:
        folder = layout().workspace(workspace)
        if folder.is_dir() and time.time() - st.session_state.get("_marked", 0.0) > 60:
            mark_used(folder)
            st.session_state["_marked"] = time.time()
    last = _last_housekeeping()
    if time.time() - last["at"] < every:
        return
    last["at"] = time.time()
    active = {job.key for job in runner().active()}
    # off the page's run: walking a large store takes a moment, and nobody waits for it
    threading.Thread(target=housekeep_store, args=(active, home_dir()), name="embedviz-housekeeping",
                     daemon=True).start()


def run_housekeeping():
    """One pass now (what is protected: published and pinned runs, and running jobs); operators only."""
    require_operator("clean up the store now")
    return housekeep_store({job.key for job in runner().active()})


def delete_run(run: Run) -> str:
    """Delete the viewer's run (and their maps made from an extraction), then the stored files no
    remaining run needs; refused while an extraction writes its features. Returns what was done."""
    if run.owner != viewer().id:  # the catalog refuses too; say nothing about what others' jobs are doing
        raise EmbedVizError(unavailable(run.id) if not run.published else
                            f"Run {run.id} belongs to someone else; only they can delete it.")
    if any(job.key == run.features_key for job in runner().active()):
        raise EmbedVizError("An extraction is writing this run's features; cancel it or let it finish first.")
    gone = catalog().delete(run.id, viewer().id)
    features_left, maps_left = catalog().referenced()
    files = 0
    for old in gone:
        key = old.inputs.get("map")
        path = layout().map_file(key)
        if key and key not in maps_left and path.exists():
            path.unlink()
            files += 1
        if old.kind == "extraction" and old.features_key and old.features_key not in features_left:
            folder = FeatureStore().folder(old.features_key)
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
                stored_by_key.clear()
                files += 1
    current = st.session_state.get("current_run")
    if current is not None and current.id in {r.id for r in gone}:
        st.session_state.pop("current_run", None)
    runs = f"{len(gone)} run{'s' if len(gone) != 1 else ''}"
    return f"Deleted {runs}" + (f" and {files} stored file set{'s' if files != 1 else ''} no other run uses." if files
                                 else "; their stored files are still used by other runs.")


def clear_store() -> int:
    """Delete every stored feature set (an operator's act, refused while an extraction runs); returns the
    bytes freed."""
    require_operator("clear the feature store")
    if runner().active():
        raise EmbedVizError("An extraction is running; cancel it or let it finish before clearing the store.")
    freed = FeatureStore().clear()
    stored_by_key.clear()
    return freed
