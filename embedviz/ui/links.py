"""Who is looking, the run behind what they see, and the view in the browser's address.

- ``gate`` signs people in (Streamlit's OIDC login, when the operator configured ``[auth]``) and
  keeps out anyone not on the allow-list.
- Every extraction and map is recorded as a run in the catalog (:mod:`embedviz.serve.catalog`) for the
  viewer; the current map's run id is the ``run`` query parameter on every page.
- The widgets that shape the view are bound to query parameters (Streamlit's ``bind="query-params"``),
  so the address is always a link to this view: opening it in a fresh browser reopens the run and
  the widgets take the link's values. A bound widget forgets its value when the user switches
  pages (its parameter leaves the address), so its value is handed back on return.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import streamlit as st

from embedviz.errors import EmbedVizError
from embedviz.explore.filters import CategoryFilter, RangeFilter, TextFilter, TopKFilter
from embedviz.layout import home_dir, mark_used
from embedviz.serve.access import (
    USER_HEADER_VAR,
    Viewer,
    allowed,
    browser_viewer,
    env_allow_list,
    env_operators,
    parse_allow_list,
    signed_in_viewer,
)
from embedviz.serve.access import is_operator as _listed_operator
from embedviz.serve.catalog import Catalog, Run, is_run_id, unavailable

__all__ = ["gate", "viewer", "catalog", "bound", "restore_bound", "apply_link", "write_link",
           "link_url", "share_panel", "reopen", "serialise_filters", "deserialise_filters", "link_messages",
           "BIND", "maybe_housekeep", "linked_ids", "set_linked_ids", "is_operator", "require_operator"]

#: Passed to a widget to bind its value to the query parameter named by its key.
BIND = "query-params"
_FILTERS = {cls.__name__: cls for cls in (CategoryFilter, RangeFilter, TextFilter, TopKFilter)}
_SEL_LIMIT = 200  # a selection up to this many points travels in the link


def _secrets_section(name: str) -> Any:
    """A section of ``.streamlit/secrets.toml``, or ``None`` (no file, or no such section)."""
    try:
        if not st.secrets.load_if_toml_exists():
            return None
        return st.secrets.get(name)
    except Exception:  # an unreadable secrets file: Streamlit reports it itself
        return None


def _auth_configured() -> bool:
    return _secrets_section("auth") is not None


def _allow_list() -> tuple[str, ...]:
    section = _secrets_section("embedviz") or {}
    return parse_allow_list(section.get("allowed")) + env_allow_list()


def _operators() -> tuple[str, ...]:
    section = _secrets_section("embedviz") or {}
    return parse_allow_list(section.get("operators")) + env_operators()


def _header_email() -> str | None:
    header = os.environ.get(USER_HEADER_VAR)
    return (st.context.headers.get(header) or None) if header else None


def gate() -> None:
    """Before anything else on a page: sign in when the operator asked for it, and the allow-list."""
    email = None
    if _auth_configured():
        if importlib.util.find_spec("authlib") is None:
            st.error("Sign-in is configured ([auth] in secrets.toml) but Authlib, which Streamlit's login needs, is "
                     "not installed: the operator should run pip install -e \".[auth]\" and restart.",
                     icon=":material/lock:")
            st.stop()
        if not st.user.is_logged_in:
            st.title("embedviz")
            st.info("This embedviz is private: sign in to use it.", icon=":material/lock:")
            st.button("Sign in", on_click=st.login, type="primary")
            st.stop()
        email = st.user.get("email")
    else:
        email = _header_email()
    entries = _allow_list()
    if entries and not allowed(email, entries):
        from embedviz.ui.widgets import plain

        message = (f"{plain(email)} is not on this instance's list of allowed users; ask its operator to add you."
                   if email else "This instance admits only the people on its list, and you are not signed in; "
                                 "ask its operator how to sign in.")
        st.error(message, icon=":material/block:")
        if _auth_configured():
            st.button("Sign out", on_click=st.logout)
        st.stop()


def viewer() -> Viewer:
    """The person looking (see :mod:`embedviz.serve.access`), found once per session."""
    found = st.session_state.get("_viewer")
    if found is None:
        email = None
        if _auth_configured() and st.user.is_logged_in:
            email = st.user.get("email")
        email = email or _header_email()
        if email:
            found = signed_in_viewer(email)
        else:
            session = st.session_state.setdefault("workspace_id", os.urandom(16).hex())
            found = browser_viewer(st.context.cookies.get("_streamlit_xsrf"), session)
        st.session_state["_viewer"] = found
    return found


def is_operator() -> bool:
    """Whether the viewer is one of this server's operators (``[embedviz] operators`` in secrets.toml or
    ``EMBEDVIZ_OPERATORS``), signed in or named by the trusted proxy header; a guest never is."""
    return _listed_operator(viewer(), _operators())


def require_operator(what: str) -> None:
    """Refuse ``what`` (e.g. "clear the feature store") unless the viewer is an operator."""
    if not is_operator():
        raise EmbedVizError(f"Only an operator of this server can {what}; operators are named in EMBEDVIZ_OPERATORS "
                            "(or [embedviz] operators in secrets.toml) and must be signed in.")


@st.cache_resource(show_spinner=False)
def _catalog(path: str) -> Catalog:
    return Catalog(path)


def catalog() -> Catalog:
    return _catalog(str(home_dir() / "catalog.sqlite"))


# --- widgets bound to the address ------------------------------------------------------------------

def bound(key: str) -> dict[str, Any]:
    """``key=..., bind="query-params"`` for a widget whose value belongs in the link."""
    st.session_state.setdefault("_bound_keys", set()).add(key)
    return {"key": key, "bind": BIND}


def restore_bound(page: str) -> None:
    """On the first run after a page switch, hand bound widgets their values again: the switch took
    their parameters out of the address, and a bound widget would otherwise start from its default.
    A value in the address (a link being opened) wins."""
    if st.session_state.get("_page") == page:
        return
    st.session_state["_page"] = page
    for key in st.session_state.get("_bound_keys", ()):
        if key in st.session_state and key not in st.query_params:
            st.session_state[key] = st.session_state[key]


# --- runs ----------------------------------------------------------------------------------------

def serialise_filters(filters) -> list[dict[str, Any]]:
    return [{"type": type(f).__name__, **asdict(f)} for f in filters]


def deserialise_filters(items: list[dict[str, Any]]) -> tuple:
    out = []
    for item in items or []:
        item = dict(item)
        cls = _FILTERS.get(item.pop("type", ""))
        if cls is None:
            continue
        if "values" in item:
            item["values"] = tuple(item["values"])
        out.append(cls(**item))
    return tuple(out)


def reopen(run: Run) -> None:
    """Make ``run``'s data, model, layer and (for a map) reducer settings and map current, so the
    pages draw what its owner saw. The map itself is read from the store, not recomputed."""
    from embedviz.maps.reducers import load_embedding

    params = run.params
    dataset = params["dataset"]
    if dataset.get("via") == "upload" and not Path(dataset["path"]).exists():
        raise EmbedVizError("The images of this run were uploaded in a session that has since been cleaned up; "
                            "upload them again to see it.")
    st.session_state["dataset"] = dataset
    st.session_state["model"] = params["model"]
    st.session_state["layer"] = params.get("layer")
    st.session_state["classes"] = params.get("classes")
    st.session_state.pop("map_filters", None)
    st.session_state.pop("map_stopped", None)
    st.session_state.pop("previous_map", None)
    # the run's colouring (label unless it was made coloured otherwise), not the one a previous view left:
    # Explore falls back to "(none)" for a column these data lack (clusters, sets, another data's columns)
    from embedviz.ui.state import DEFAULTS

    st.session_state["ev_color"] = params.get("color") or DEFAULTS["ev_color"]
    if run.kind == "map":
        reducer = params["reducer"]
        method = reducer["method"]
        st.session_state["ev_method"] = method
        st.session_state["ev_dims"] = int(reducer["n_components"])
        st.session_state["ev_seed"] = int(reducer["random_state"])
        for name, value in reducer["params"].items():
            st.session_state[f"ev_p_{method}_{name}"] = value
        sample = params.get("sample")
        st.session_state["ev_sample_on"] = bool(sample)
        if sample:
            st.session_state["ev_sample_size"] = int(sample["size"])
            st.session_state["ev_stratify"] = sample.get("stratify_by") or "(none)"
        st.session_state["ev_warm"] = bool(params.get("warm", True))
        filters = deserialise_filters(params.get("map_filters", []))
        if filters:
            st.session_state["map_filters"] = filters
        embedding = load_embedding(run.inputs["map"])
        if embedding is not None:
            st.session_state["previous_map"] = (run.features_key, params["token"], embedding)
        else:
            st.session_state["link_note"] = ("This run's map was removed from the store to save space; it was made "
                                             "again from a fresh start, so it may differ a little from the original.")
    st.session_state["current_run"] = run


def apply_link() -> None:
    """Open the run the address names, once per session and run; a run the viewer may not see
    (or one that is gone) is said plainly and the current view stays."""
    run_id = st.query_params.get("run")
    if not run_id or run_id == st.session_state.get("_linked_run"):
        return
    st.session_state["_linked_run"] = run_id
    current = st.session_state.get("current_run")
    if current is not None and current.id == run_id:
        return
    if not is_run_id(run_id):  # not an id this server made: refused without looking, and without echo
        st.session_state["link_error"] = unavailable(run_id)
        return
    try:
        run = catalog().open(run_id, viewer().id)
        reopen(run)
    except EmbedVizError as exc:
        st.session_state["link_error"] = str(exc)
        return
    sel = st.query_params.get_all("sel")
    if sel:
        st.session_state["_linked_sel"] = [s for part in sel for s in part.split(",") if s]


def link_messages() -> None:
    """What happened to the link this session was opened with, once."""
    from embedviz.ui.widgets import plain

    error = st.session_state.pop("link_error", None)
    if error:
        st.error(plain(error), icon=":material/link_off:")
    note = st.session_state.pop("link_note", None)
    if note:
        st.info(plain(note), icon=":material/info:")


def _choice() -> dict[str, Any]:
    from embedviz.ui.state import class_index, dataset_spec, model_spec

    return {"dataset": dataset_spec(), "model": model_spec(), "layer": st.session_state.get("layer"),
            "classes": class_index()}


def _same_choice(run: Run) -> bool:
    params = run.params
    choice = _choice()
    return all(json.dumps(params.get(k), sort_keys=True) == json.dumps(choice[k], sort_keys=True)
               for k in ("dataset", "model", "classes")) and (
        choice["layer"] is None or params.get("layer") == choice["layer"])


def write_link() -> None:
    """The current run's id in the address, or none when the user has since chosen other data."""
    run = st.session_state.get("current_run")
    if run is not None and _same_choice(run):
        if st.query_params.get("run") != run.id:
            st.query_params["run"] = run.id
        st.session_state["_linked_run"] = run.id
    elif "run" in st.query_params:
        del st.query_params["run"]


def record_extraction(owner: Viewer, choice: dict[str, Any], title: str, features, seconds: float,
                      images_sha256: str = "") -> Run:
    """The extraction run behind ``features`` (called when a job finishes, in its thread)."""
    return Catalog(home_dir() / "catalog.sqlite").record(
        "extraction", owner=owner.id, owner_name=owner.name, title=title,
        inputs={"features": features.key, "model": features.manifest.get("model", ""),
                "weights_sha256": features.manifest.get("weights_sha256"), "layer": features.manifest.get("layer"),
                "images_sha256": images_sha256},
        params=choice, seconds=seconds, n_points=len(features), dedupe=features.key)


def _run_color(full) -> str:
    """The colouring to keep with a map's run: a column of its data (or "(none)"); a column of this
    session only (clusters, named sets) cannot be opened again, so the default (the label) is kept."""
    from embedviz.ui.state import DEFAULTS

    color = st.session_state.get("ev_color") or DEFAULTS["ev_color"]
    return color if color == "(none)" or color in full.samples.columns else DEFAULTS["ev_color"]


def note_map(full, kept, embedding, token: str, title: str, source: str, sample, map_filters) -> Run | None:
    """Record the map on screen as the viewer's run (once per map) and make it current."""
    if embedding.partial or not embedding.key:
        return None
    current = st.session_state.get("current_run")
    me = viewer()
    if current is not None and current.kind == "map" and current.inputs.get("map") == embedding.key \
            and current.visible_to(me.id) and _same_choice(current):
        return current  # a published run opened from a link stays the run of the view
    from embedviz.ui.state import reducer_settings

    choice = _choice()
    if choice["layer"] is None:
        choice["layer"] = full.manifest.get("layer")
    parent = record_extraction(me, choice, source, full, float(full.manifest.get("seconds") or 0.0))
    run = catalog().record(
        "map", owner=me.id, owner_name=me.name, title=title,
        inputs={"features": kept.key, "source_features": full.key, "map": embedding.key},
        params={**choice, "reducer": reducer_settings(), "sample": sample.describe() if sample else None,
                "warm": bool(st.session_state.get("ev_warm", True)), "map_filters": serialise_filters(map_filters),
                "color": _run_color(full), "token": token},
        seconds=embedding.seconds, n_points=len(kept), parent=parent.id, dedupe=embedding.key)
    if full.path is not None:
        mark_used(Path(full.path))
    st.session_state["current_run"] = run
    write_link()
    return run


# --- the link ------------------------------------------------------------------------------------

def linked_ids() -> list[str] | None:
    """Sample ids selected when the link was made (until the user selects something else)."""
    return st.session_state.get("_linked_sel")


def set_linked_ids(ids: list[str]) -> str | None:
    """Put the selection in the address (up to 200 points); returns a note when it is too large."""
    if ids and len(ids) <= _SEL_LIMIT:
        joined = ",".join(ids)
        if st.query_params.get("sel") != joined:
            st.query_params["sel"] = joined
        return None
    if "sel" in st.query_params:
        del st.query_params["sel"]
    return (f"The link carries selections of up to {_SEL_LIMIT} points; this one has {len(ids):,}. "
            "Save it as a set to keep it.") if ids else None


def link_url() -> str:
    """The address of this view, as a colleague would open it."""
    parts = urlsplit(st.context.url or "")
    query = urlencode([(k, v) for k in st.query_params for v in st.query_params.get_all(k)])
    return urlunsplit((parts.scheme or "http", parts.netloc, parts.path, query, ""))


def share_panel() -> None:
    """In the sidebar: the link to this view (with a copy button) and whether others may open it."""
    run = st.session_state.get("current_run")
    with st.sidebar:
        with st.popover("Share this view", icon=":material/share:", width="stretch"):
            if run is None or not _same_choice(run):
                st.caption("Open a map first: the link names the run behind it.")
                return
            st.caption("Copy the link (the button at the right of the box):")
            st.code(link_url(), language=None, wrap_lines=True)
            mine = run.owner == viewer().id
            if mine:
                published = st.toggle("Anyone with the link may open it", value=run.published,
                                      key=f"share_publish_{run.id}",
                                      help="Private runs open only for you. Published runs are listed for everyone "
                                           "on the Runs page.")
                if published != run.published:
                    catalog().publish(run.id, viewer().id, published)
                    st.session_state["current_run"] = catalog().get(run.id)
                    st.rerun()
                if not published:
                    st.caption("Private: only you can open this link.")
            else:
                from embedviz.ui.widgets import plain

                st.caption(f"Made by {plain(run.owner_name)}; published.")


@st.cache_resource(show_spinner=False)
def _last_housekeeping() -> dict[str, float]:
    return {"at": 0.0}


def maybe_housekeep(every: float = 300.0) -> None:
    """Mark this session's workspace used, and at most every five minutes per server process
    sweep idle workspaces and keep the store under its cap."""
    workspace = st.session_state.get("workspace_id")
    if workspace:
        folder = home_dir() / "sessions" / workspace
        if folder.is_dir() and time.time() - st.session_state.get("_marked", 0.0) > 60:
            mark_used(folder)
            st.session_state["_marked"] = time.time()
    last = _last_housekeeping()
    if time.time() - last["at"] < every:
        return
    last["at"] = time.time()
    from embedviz.serve.housekeeping import housekeep_store
    from embedviz.ui.state import runner

    active = {job.key for job in runner().active()}
    # off the page's run: walking a large store takes a moment, and nobody waits for it
    threading.Thread(target=housekeep_store, args=(active, home_dir()), name="embedviz-housekeeping",
                     daemon=True).start()


def run_housekeeping():
    """One pass now (what is protected: published and pinned runs, and running jobs); operators only."""
    from embedviz.serve.housekeeping import housekeep_store
    from embedviz.ui.state import runner

    require_operator("clean up the store now")
    return housekeep_store({job.key for job in runner().active()})


def delete_run(run: Run) -> str:
    """Delete the viewer's run (and their maps made from an extraction), then the stored files no
    remaining run needs; refused while an extraction writes its features. Returns what was done."""
    from embedviz.extract.store import FeatureStore
    from embedviz.ui.state import _stored, runner

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
        path = home_dir() / "embeddings" / f"{key}.npz"
        if key and key not in maps_left and path.exists():
            path.unlink()
            files += 1
        if old.kind == "extraction" and old.features_key and old.features_key not in features_left:
            folder = FeatureStore().folder(old.features_key)
            if folder.exists():
                import shutil

                shutil.rmtree(folder, ignore_errors=True)
                _stored.clear()
                files += 1
    current = st.session_state.get("current_run")
    if current is not None and current.id in {r.id for r in gone}:
        st.session_state.pop("current_run", None)
    runs = f"{len(gone)} run{'s' if len(gone) != 1 else ''}"
    return f"Deleted {runs}" + (f" and {files} stored file set{'s' if files != 1 else ''} no other run uses." if files
                                 else "; their stored files are still used by other runs.")
