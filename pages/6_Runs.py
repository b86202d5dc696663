"""Runs: the extractions and maps you made and those others published; open one again, share,
pin or delete it, and see how much the store holds."""

import streamlit as st

from embedviz import ui
from embedviz.layout import home_dir
from embedviz.serve.catalog import made_from, runs_table
from embedviz.serve.housekeeping import limits
from embedviz.ui.auth import is_operator
from embedviz.ui.housekeeping import delete_run, run_housekeeping
from embedviz.ui.share import reopen
from embedviz.ui.store import MiB, own_usage, tree_bytes

ui.page_setup("Runs")
st.title("Runs")
me = ui.viewer()
operator = is_operator()
st.caption(f"Every extraction and map is a run. You are {ui.plain(me.name)}"
           + (" (an operator of this server)" if operator else "" if me.signed_in
              else " (not signed in: your private runs belong to this browser)")
           + ". Private runs open only for you; published ones for anyone with the link.")

show = st.segmented_control("Show", ["mine", "mine and published"], default="mine and published", key="runs_show",
                            required=True)
kind = st.segmented_control("Kind", ["maps", "extractions", "both"], default="both", key="runs_kind", required=True)
runs = ui.catalog().runs(me.id, mine_only=show == "mine",
                         kind={"maps": "map", "extractions": "extraction"}.get(kind))
PER_PAGE = 20


def actions(run, key: str) -> None:
    """Open, publish, pin and delete buttons for one run (only its owner changes it)."""
    mine = run.owner == me.id
    a, b, c, d, e = st.columns([1, 1, 1, 1, 2])
    if a.button("Open", type="primary", icon=":material/open_in_new:", key=f"{key}_open"):
        with ui.guard():
            reopen(run)
            st.switch_page("pages/4_Explore.py" if run.kind == "map" else "pages/3_Reduce.py")
    if mine:
        if b.button("Make private" if run.published else "Publish", icon=":material/public:", key=f"{key}_publish"):
            with ui.guard():
                ui.catalog().publish(run.id, me.id, not run.published)
            st.rerun()
        if c.button("Unpin" if run.pinned else "Pin", icon=":material/keep:", key=f"{key}_pin",
                    help="Pinned runs' files are never removed when the store is over its size limit."):
            with ui.guard():
                ui.catalog().pin(run.id, me.id, not run.pinned)
            st.rerun()
        with d.popover("Delete", icon=":material/delete:"):
            st.caption("Deletes the run" + (" and your maps made from it" if run.kind == "extraction" else "")
                       + ", and the stored files no other run uses.")
            if st.button("Delete for good", type="primary", key=f"{key}_delete"):
                with ui.guard(stop=False):
                    st.session_state["runs_done"] = delete_run(run)
                    st.rerun()
    with e.popover("Made from", icon=":material/info:"):
        st.json(made_from(run, paths=operator), expanded=2)


if not runs:
    st.info("No runs yet. Open a map (the Home page opens the demo's) and it is listed here.")
else:
    table = runs_table(runs, me.id)
    pages = max(1, -(-len(runs) // PER_PAGE))
    page = st.number_input(f"Page (of {pages}, {len(runs):,} runs, newest first)", 1, pages, 1, key="runs_page") \
        if pages > 1 else 1
    for i in range((page - 1) * PER_PAGE, min(page * PER_PAGE, len(runs))):
        run, row = runs[i], table.iloc[i]
        with st.container(border=True, key=f"run_card_{run.id}"):
            st.markdown(f"**{ui.plain(run.title)}**  \n{ui.plain(row['details'])}")  # what sets it apart
            st.caption(f"{row['what']} · by {ui.plain(row['by'])} · {row['made']} · {row['points']:,} points · "
                       f"{row['seconds']:g} s · {row['shared']}" + (" · pinned" if run.pinned else "")
                       + f" · run {run.id}")
            actions(run, f"run_{run.id}")
    with st.expander("All of them as a table"):
        st.dataframe(table, hide_index=True, column_config={"pinned": st.column_config.CheckboxColumn("pinned")})
done = st.session_state.pop("runs_done", None)
if done:
    st.success(done)

st.divider()
idle, cap = limits()
if operator:  # the whole store, walked at most once a minute
    size = tree_bytes(str(home_dir()))
    st.caption(f"The store holds {size / MiB:,.1f} MiB"
               + (f" of at most {cap / 2**30:,.1f} GiB (least recently used caches go first; pinned and published "
                  "runs stay)" if cap else " (no size limit set: EMBEDVIZ_STORE_LIMIT_GB)")
               + f". Uploads of sessions idle for {idle / 3600:g} hours are removed.")
    if st.button("Clean up now", icon=":material/cleaning_services:", key="runs_housekeep"):
        with ui.guard(stop=False):
            st.success(run_housekeeping().describe())
            tree_bytes.clear()
else:
    runs_bytes, workspace_bytes = own_usage()
    st.caption(f"Your runs use {runs_bytes / MiB:,.1f} MiB of stored features and maps, and your uploads in this "
               f"session {workspace_bytes / MiB:,.1f} MiB. Uploads of sessions idle for {idle / 3600:g} hours are "
               "removed" + ("; when the store is over its size limit, the least recently used caches go first "
                            "(pinned and published runs stay)." if cap else "."))
ui.sidebar_summary()
