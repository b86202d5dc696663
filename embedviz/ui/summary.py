"""The sidebar block every page shows: what data, model, layer and map are current."""

from __future__ import annotations

import logging

import streamlit as st

from embedviz.errors import EmbedVizError
from embedviz.extract.models import needs_weights
from embedviz.maps.reducers import REDUCERS
from embedviz.ui.auth import viewer
from embedviz.ui.choices import (
    current_collection,
    current_layer,
    current_model,
    is_precomputed,
    model_label,
    model_spec,
    precomputed_features,
    reducer_settings,
)
from embedviz.ui.jobs import runner
from embedviz.ui.share import share_panel
from embedviz.ui.widgets import plain

__all__ = ["sidebar_summary", "jobs_panel"]

log = logging.getLogger(__name__)


def sidebar_summary(job_history: bool = False) -> None:
    """A few lines on the current choice, the share link and the viewer's extractions. An
    :class:`EmbedVizError` here is left to the page's guard to report, and a file that cannot be read
    is logged; the block is then left out. Anything else is a bug and shows. ``job_history`` (the
    Extract page): list every extraction that ended lately, not only those whose outcome the viewer has
    not seen yet (see :func:`jobs_panel`)."""
    try:
        collection = current_collection()
        if is_precomputed():
            made = precomputed_features()
            dim = made.features.shape[1]
            source = (f"**Source** a map made elsewhere, {dim}-D coordinates  \n"
                      if made.manifest.get("given_coordinates")
                      else f"**Features** made elsewhere, {dim} dimensions  \n")
        elif needs_weights((spec := model_spec()).architecture, spec.weights):
            source = f"**Model** {plain(spec.architecture)}, waiting for its weights  \n"
        else:
            model = current_model()
            source = f"**Model** {plain(model_label(model))}  \n**Layer** {plain(current_layer(model))}  \n"
    except EmbedVizError:  # the page's own guard shows the message
        return
    except OSError:  # a folder or file that went away or cannot be read: the block is left out, not the page
        log.warning("The sidebar summary cannot read the current data or model", exc_info=True)
        return
    settings = reducer_settings()
    with st.sidebar:
        st.caption("Current")
        st.markdown(
            f"**Data** {plain(collection.name)} · {len(collection):,} {'points' if is_precomputed() else 'images'}  \n"
            + source +
            f"**Map** {REDUCERS[settings['method']].label}, {settings['n_components']}-D, "
            f"seed {settings['random_state']}"
        )
    share_panel()
    jobs_panel(job_history)


def jobs_panel(history: bool = False) -> None:
    """The viewer's running and queued extractions, with their place in line, and the outcome of those
    that ended, from any page; other users' jobs only as a count. Refreshed every two seconds while one
    is running.

    An ended job's line is news once: it shows while the job ends and on the next page run, and then
    goes, so a finished extraction does not follow the viewer to every page for ten minutes. With
    ``history`` (the Extract page, where extractions are the subject) those that ended in the last ten
    minutes stay listed.
    """
    me = viewer().id
    recent = runner().recent()
    ended = [job.id for job in recent if job.owner == me and not job.active]
    seen = st.session_state.get("_ended_jobs_seen", set())  # shown in an earlier page run of this session
    hidden = set() if history else seen & set(ended)
    st.session_state["_ended_jobs_seen"] = set(ended)  # older ones are no longer listed anywhere
    if not any(job.active or (job.owner == me and job.id not in hidden) for job in recent):
        return
    polling = any(job.active for job in runner().of(me))  # only a user waiting on a job of theirs polls

    @st.fragment(run_every=2 if polling else None)
    def live() -> None:
        jobs = [job for job in runner().recent() if job.owner == me and job.id not in hidden]
        others = [job for job in runner().active() if job.owner != me]
        if jobs or others:
            st.caption("Extractions")
        for job in jobs:
            if job.active:
                st.progress(job.fraction,
                            text=f"{plain(job.label)}: {plain(job.describe(ahead=runner().position(job)))}")
                if st.button("Cancel", key=f"sidebar_cancel_{job.id}"):
                    job.cancel()
            else:
                st.caption(f"{plain(job.label)}: {plain(job.describe())}")
        if others:
            running = sum(job.status == "running" for job in others)
            st.caption(f"Other users: {running} running, {len(others) - running} waiting. Jobs take turns on "
                       "this server's device.")

    with st.sidebar:
        live()
