"""Who is looking: signing in (Streamlit's OIDC login, when the operator configured ``[auth]``), the
allow-list, the viewer's identity and whether they are one of the server's operators."""

from __future__ import annotations

import importlib.util
import os

import streamlit as st

from embedviz import settings
from embedviz.errors import EmbedVizError
from embedviz.serve.access import Viewer, allow_list, allowed, browser_viewer, operator_list, signed_in_viewer
from embedviz.serve.access import is_operator as _listed_operator
from embedviz.ui.server import secrets_section
from embedviz.ui.widgets import plain

__all__ = ["gate", "viewer", "is_operator", "require_operator"]


def _auth_configured() -> bool:
    return secrets_section("auth") is not None


def _allow_list() -> tuple[str, ...]:
    return allow_list()


def _operators() -> tuple[str, ...]:
    return operator_list()


def _header_email() -> str | None:
    header = settings.user_header()
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
