"""The sidebar's list of pages, drawn by the app itself so that the home page reads "Home".

Streamlit's classic multipage mode (app.py beside a pages/ folder) names each page after its file,
and the entry script cannot be given another name: its list would call the home page "app". That
list is switched off (``client.showSidebarNavigation`` in .streamlit/config.toml) and this one is
drawn in its place, with ``st.page_link``: the same pages, order, addresses and page switches
(a click runs the page in the same session, as Streamlit's list does), the current page marked.
Listing the pages with ``st.navigation`` instead would mix the two multipage modes, which broke
navigation after an interrupted run (commit b0b120c).
"""

from __future__ import annotations

import streamlit as st

__all__ = ["PAGES", "NAV_KEY", "sidebar_nav"]

#: Every page in the sidebar's order: its script (relative to app.py, as ``st.page_link`` takes it)
#: and its label. The labels are those Streamlit gives the pages after their files, but Home's.
PAGES: tuple[tuple[str, str], ...] = (
    ("app.py", "Home"),
    ("pages/1_Data_and_model.py", "Data and model"),
    ("pages/2_Extract.py", "Extract"),
    ("pages/3_Reduce.py", "Reduce"),
    ("pages/4_Explore.py", "Explore"),
    ("pages/5_Point.py", "Point"),
    ("pages/6_Runs.py", "Runs"),
    ("pages/7_Compare.py", "Compare"),
)

#: The key of the sidebar container the links are drawn in; the browser sees it as the CSS class
#: ``st-key-sidebar_nav``.
NAV_KEY = "sidebar_nav"


def sidebar_nav() -> None:
    """A link to every page at the top of the sidebar (call it before anything else is drawn there)."""
    with st.sidebar.container(key=NAV_KEY):
        for script, label in PAGES:
            st.page_link(script, label=label, width="stretch")
        st.divider()
