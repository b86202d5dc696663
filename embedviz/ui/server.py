"""What the operator configured for this server in ``.streamlit/secrets.toml`` (and the environment):
the folders it shares and the Ray cluster it names."""

from __future__ import annotations

from typing import Any

import streamlit as st

from embedviz import settings
from embedviz.data.roots import DataRoots, data_roots
from embedviz.extract.ray_options import configured_address

__all__ = ["secrets_section", "use_server_settings", "server_roots", "cluster_address"]


def secrets_section(name: str) -> Any:
    """A section of ``.streamlit/secrets.toml``, or ``None`` (no file, or no such section)."""
    try:
        if not st.secrets.load_if_toml_exists():
            return None
        return st.secrets.get(name)
    except Exception:  # an unreadable secrets file: Streamlit reports it itself
        return None


def use_server_settings() -> None:
    """Give :mod:`embedviz.settings` this server's ``[embedviz]`` secrets (read when asked, so an edited file
    is seen) and start its logging; every page calls it first."""
    settings.use_secrets(lambda: secrets_section("embedviz"))
    settings.configure_logging()


def server_roots() -> DataRoots:
    """The folders this server shares: ``EMBEDVIZ_DATA_ROOTS`` and ``[embedviz] data_roots`` in secrets.toml."""
    return data_roots()


def cluster_address() -> str | None:
    """The Ray cluster the operator configured, by the settings' one rule (:func:`embedviz.settings.ray_address`:
    ``EMBEDVIZ_RAY_ADDRESS``, then ``[embedviz] ray_address``, then ``RAY_ADDRESS``), or ``None``."""
    return configured_address()
