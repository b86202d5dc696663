"""What every page does first: its config, sign-in, the run a link names, the shared widget values, and
the link to the view."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from embedviz.serve.memory import freeze_new_imports
from embedviz.ui.auth import gate
from embedviz.ui.housekeeping import maybe_housekeep
from embedviz.ui.map_component import preload
from embedviz.ui.nav import sidebar_nav
from embedviz.ui.runs import write_link
from embedviz.ui.server import use_server_settings
from embedviz.ui.session import EVERY_PAGE, restore_bound, seed_defaults
from embedviz.ui.share import apply_link, link_messages

__all__ = ["page_setup", "FAVICON"]

FAVICON = Path(__file__).with_name("favicon.png")


@st.cache_resource(show_spinner=False)
def _warm_up_umap() -> bool:
    """Once per server process: compile UMAP in a background child (see :mod:`embedviz.serve.warmup`)."""
    from embedviz.serve.warmup import start

    start()
    return True


def page_setup(title: str) -> None:
    """Page config, sign-in, the run a link names, defaults, and keeping ``ev_`` widget values when
    the user switches pages."""
    # A favicon served by this server: a material icon as page_icon is fetched from Google's font CDN by
    # every browser, which a hosted instance must not require (or leak its viewers to).
    st.set_page_config(page_title=f"{title} · embedviz", page_icon=str(FAVICON), layout="wide")
    freeze_new_imports()  # what the last run imported leaves the collection Streamlit runs after each run
    use_server_settings()
    gate()
    sidebar_nav()  # first in the sidebar: the pages, with the home page called Home
    with st.sidebar:
        preload()  # the map's plotly.js loads while the user is on any page
    _warm_up_umap()
    apply_link()
    seed_defaults(*EVERY_PAGE)
    arriving = st.session_state.get("_page") != title  # the first run on this page (a link, a switch, Back)
    for key in [k for k in st.session_state.keys() if str(k).startswith("ev_")]:
        if arriving and key in st.query_params:
            continue  # the address of a page being opened wins: re-assigned, the stored value would win over it
        # Re-assigning stops Streamlit from dropping the value of a widget not drawn on this page, and on
        # later runs keeps a moved widget's value over the address's older one.
        st.session_state[key] = st.session_state[key]
    restore_bound(title)
    write_link()
    link_messages()
    maybe_housekeep()
