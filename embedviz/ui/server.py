"""What the operator configured for this server in ``.streamlit/secrets.toml`` (and the environment):
the folders it shares and the Ray cluster it names."""

from __future__ import annotations

from typing import Any

import streamlit as st

from embedviz.data.roots import DataRoots, data_roots
from embedviz.extract.ray_options import configured_address

__all__ = ["secrets_section", "server_roots", "cluster_address"]


def secrets_section(name: str) -> Any:
    """A section of ``.streamlit/secrets.toml``, or ``None`` (no file, or no such section)."""
    try:
        if not st.secrets.load_if_toml_exists():
            return None
        return st.secrets.get(name)
    except Exception:  # an unreadable secrets file: Streamlit reports it itself
        return None


def server_roots() -> DataRoots:
    """The folders this server shares: ``EMBEDVIZ_DATA_ROOTS`` and ``[embedviz] data_roots`` in secrets.toml
    (a list, or one string separated like the variable)."""
    section = secrets_section("embedviz") or {}
    return data_roots(section.get("data_roots"))


def cluster_address() -> str | None:
    """The Ray cluster the operator configured (``[embedviz] ray_address`` in secrets.toml, or
    ``EMBEDVIZ_RAY_ADDRESS``), or ``None``: extraction then runs on this server only."""
    section = secrets_section("embedviz") or {}
    return str(section.get("ray_address") or "").strip() or configured_address()
