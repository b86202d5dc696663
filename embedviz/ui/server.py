"""What the operator configured for this server in ``.streamlit/secrets.toml`` (and the environment):
the folders it shares and the Ray cluster it names."""

from __future__ import annotations

import logging
from typing import Any

import streamlit as st

from embedviz import settings
from embedviz.data.roots import DataRoots, data_roots
from embedviz.extract.ray_options import configured_address

__all__ = ["secrets_section", "use_server_settings", "server_roots", "cluster_address"]

log = logging.getLogger(__name__)


def secrets_section(name: str) -> Any:
    """A section of ``.streamlit/secrets.toml``, or ``None`` (no file, or no such section).

    A file that does not parse is ``None`` too: Streamlit catches its ``StreamlitSecretNotFoundError``
    (a ``FileNotFoundError``) in ``load_if_toml_exists`` and logs it at startup. What it lets through is a
    file it cannot open or decode (``PermissionError``, a secrets folder it cannot list, bytes that are not
    UTF-8); those are said in the server's log, and the page goes on without the section."""
    try:
        if not st.secrets.load_if_toml_exists():
            return None
        return st.secrets.get(name)
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("Cannot read the secrets file, so no [%s] section: %s", name, exc)
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
