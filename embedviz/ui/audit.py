"""Explore's Issues tab: the data audit of the map's features (:mod:`embedviz.explore.audit`) made by a
background job, its findings ranked with each sample's image and its nearest neighbours (why it was
flagged), the user's marks (keep, relabel to ..., drop) kept in the catalog with their runs, the
exports of corrected labels and files to drop, and a new map without the flagged samples. The
audit's scores are also columns of the map (colour by, filter on, sort the gallery by)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from embedviz.data.classes import natural_order
from embedviz.data.thumbnails import thumbnail
from embedviz.errors import Cancelled, EmbedVizError, first_line
from embedviz.explore.audit import (
    KINDS,
    Audit,
    audit_key,
    class_summary,
    cluster_summary,
    confused_pairs,
    leave_out,
    load_audit,
    model_probabilities,
)
from embedviz.explore.export import to_csv
from embedviz.explore.filters import FlaggedFilter
from embedviz.serve.catalog import Mark
from embedviz.serve.jobs import Task, audit_data
from embedviz.ui.auth import viewer
from embedviz.ui.choices import dataset_spec, image_hashes, is_precomputed, spec_json
from embedviz.ui.explore_state import clusters_for, memo
from embedviz.ui.jobs import runner, wait_for
from embedviz.ui.map_settings import map_filters, set_map_filters
from embedviz.ui.maps import MapView
from embedviz.ui.runs import catalog, same_choice
from embedviz.ui.widgets import plain

__all__ = ["audit_columns", "issues_section", "ringed_findings", "AUTO_AUDIT"]

#: Up to this many samples the audit starts when the tab is opened (about a second); above, on a click.
AUTO_AUDIT = 20_000
_KNOWN = "explore_audits"  # {features key: audit key} of the audits found in this session
_SHOWN = "explore_audit_shown"  # the key of the audit the Issues tab showed last
_PER_PAGE = 8
#: Columns of the audit that become columns of the map.
_MAP_COLUMNS = ("suggested_label", "label_issue_score", "is_label_issue", "duplicate_group", "is_leak",
                "outlier_score", "is_outlier")


@st.cache_resource(max_entries=8, show_spinner=False)
def _opened(key: str) -> Audit:
    found = load_audit(key)
    if found is None:
        raise LookupError(key)  # not cached: made next
    return found


def _hashes(view: MapView) -> list[str] | None:
    """Each feature row's image content hash, for exact duplicates (``None``: no images to read)."""
    collection = view.collection
    table = collection.samples
    if is_precomputed() or table.empty or "path" not in table.columns or table["path"].isna().all():
        return None
    hashes = pd.Series(image_hashes(spec_json(dataset_spec()), collection), index=table["sample_id"].astype(str))
    hashes = hashes[~hashes.index.duplicated()]
    return hashes.reindex(view.samples["sample_id"].astype(str).to_numpy()).fillna("missing").tolist()


def _key(view: MapView, source: str) -> str:
    """The audit's key, made once per features and source in a session (the images are hashed once);
    the last one asked for is the one whose columns the map shows."""
    made: dict = st.session_state.setdefault("explore_audit_keys", {})
    if (view.features.key, source) not in made:
        made[(view.features.key, source)] = audit_key(view.features.key, source, _hashes(view))
    st.session_state.setdefault(_KNOWN, {})[view.features.key] = made[(view.features.key, source)]
    return made[(view.features.key, source)]


def _audit(view: MapView, source: str, start: bool) -> Audit | None:
    """The audit of the map's features: found in the store, or (``start``) made now by a job."""
    key = _key(view, source)
    try:
        return _opened(key)
    except LookupError:
        pass
    owner, job_key = viewer().id, f"audit:{key}"
    job = runner().get(job_key, owner)
    if job is None or not job.active:
        if not start:
            return None
        if job is not None and job.status in ("cancelled", "failed") and not st.session_state.pop("audit_again", False):
            st.info(plain(f"The audit was {job.status}" + (f": {first_line(job.error, 300)}" if job.error else ".")))
            st.button("Audit again", key="audit_retry", on_click=lambda: st.session_state.__setitem__("audit_again",
                                                                                                        True))
            return None
        samples = view.samples[[c for c in view.samples.columns if c in ("sample_id", "path", "label", "split")
                                or c.startswith("p_")]]
        job = runner().submit(job_key, f"The audit of {len(samples):,} samples",
                              Task(audit_data, (np.asarray(view.features.features), samples, view.features.key,
                                                source, _hashes(view), key)), owner=owner)
    wait_for(job, work="the audit", doing="Auditing", unit="steps")
    return _opened(key)


def audit_columns(view: MapView) -> dict[str, object]:
    """The audit's columns for the map's samples, once an audit of these features was made or opened in
    this session (nothing is read or hashed otherwise)."""
    key = st.session_state.get(_KNOWN, {}).get(view.features.key)
    if key is None:
        return {}
    try:
        found = _opened(key)
    except LookupError:
        return {}
    if len(found) != len(view.samples):
        return {}
    return {name: found.table[name].to_numpy() for name in _MAP_COLUMNS}


def ringed_findings(view: MapView) -> tuple[np.ndarray, str] | None:
    """While the Issues tab is open on an audit: the samples of the kind of finding shown, to ring on the map."""
    if st.session_state.get("explore_tab") != "Issues":
        return None
    key = st.session_state.get(_KNOWN, {}).get(view.features.key)
    try:
        found = _opened(key) if key else None
    except LookupError:
        return None
    if found is None or len(found) != len(view.samples):
        return None
    kind = st.session_state.get("audit_kind") or "label"
    rows = found.ranked(kind)
    return (rows, f"the {KINDS[kind][1].lower()} the audit found") if len(rows) else None


def _marks_owner(view: MapView) -> tuple[str, bool]:
    """Whose marks these are, and whether the viewer may change them: a published run opened from
    someone's link shows its owner's marks, read-only; otherwise the viewer's own."""
    run = st.session_state.get("current_run")
    me = viewer().id
    if run is not None and run.owner != me and same_choice(run):
        current = catalog().get(run.id)  # unpublished or deleted since it was opened: no longer shown
        if current is not None and current.visible_to(me):
            return run.owner, False
    return me, True


def _marks_key(view: MapView) -> str:
    """Marks are kept per feature set, whatever filters a map applied before reducing."""
    return view.features.key.split("-kept-")[0]


def issues_section(view: MapView, samples: pd.DataFrame, pictures: bool = True) -> None:
    """The Issues tab (its work only while ``pictures``: the tab is open)."""
    if not pictures:
        return
    n = len(view.samples)
    st.markdown("**What may be wrong with the data**: suspected label errors (from the model's probabilities when "
                "its classes are the labels, else from each sample's nearest neighbours), duplicates, leaks "
                "across splits and outliers.")
    source = "knn"
    if model_probabilities(view.samples) is not None:
        source = st.radio("Predict each label from", ["from-model", "knn"], key="audit_source", horizontal=True,
                          format_func={"from-model": "the model's probabilities",
                                       "knn": "its nearest neighbours' labels"}.get,
                          help="The model's probabilities are the better judge when it was trained on other data; "
                               "the neighbours' labels do not need a model whose classes are the labels.")
    auto = n <= AUTO_AUDIT
    start = auto or st.button(f"Audit these {n:,} samples", icon=":material/fact_check:", key="audit_start")
    shown_before = st.session_state.get(_SHOWN)
    try:
        found = _audit(view, source, start)
    except Cancelled as stop:
        st.info(plain(stop))
        return
    except EmbedVizError as error:
        st.error(plain(first_line(error, 300)))
        return
    if found is None:
        st.caption("The audit runs in the background with a progress bar; on many samples it takes minutes.")
        return
    if len(found) != n:
        st.error("This audit does not match the map's samples; audit again.")
        return
    st.session_state[_SHOWN] = _key(view, source)
    if shown_before != st.session_state[_SHOWN]:
        st.rerun()  # a new audit on screen: the map above takes its columns and rings its findings
    _overview(view, found)
    owner, mine = _marks_owner(view)
    marks = catalog().marks(owner, _marks_key(view))
    _findings(view, found, marks, mine, owner)
    _summaries(view, found)
    _exports(view, found, marks)


def _overview(view: MapView, found: Audit) -> None:
    counts = found.counts()
    groups = found.table["duplicate_group"].nunique()
    cells = st.columns(4)
    cells[0].metric("Suspected label errors", f"{counts['label']:,}")
    cells[1].metric("Duplicates", f"{counts['duplicate']:,}", help=f"Samples in {groups:,} groups of the same or "
                                                                   "nearly the same image.")
    cells[2].metric("Leaks across splits", f"{counts['leak']:,}", help="Duplicates whose group spans splits.")
    cells[3].metric("Outliers", f"{counts['outlier']:,}")
    st.caption(plain(" ".join(found.notes)) + f" Audited in {found.seconds:.1f} s. The scores are columns of the map: "
               "colour by label_issue_score or outlier_score, filter on is_label_issue, sort the gallery.")
    dropped = int(leave_out(found.table).sum())
    left, right = st.columns(2)
    current = map_filters()
    flagged_filter = FlaggedFilter(st.session_state[_KNOWN][view.features.key], dropped)
    if dropped and not any(isinstance(f, FlaggedFilter) for f in current):
        left.button(f"Make a new map without the {dropped:,} flagged samples", icon=":material/filter_alt_off:",
                    key="audit_map_clean", on_click=set_map_filters, args=((*current, flagged_filter),),
                    help="Leaves out suspected label errors, outliers and every copy of a duplicate but its first, "
                         "then reduces again.")
    right.button("Colour the map by label_issue_score", key="audit_colour",
                 on_click=lambda: st.session_state.__setitem__("explore_colour_next", "label_issue_score"))


def _findings(view: MapView, found: Audit, marks: dict[str, Mark], mine: bool, owner: str) -> None:
    names = {kind: title for kind, (_, title) in KINDS.items()}
    kind = st.segmented_control("Findings", list(names), format_func=names.get, key="audit_kind",
                                default="label", label_visibility="collapsed") or "label"
    rows = found.ranked(kind)
    if not len(rows):
        st.info(f"No {names[kind].lower()} found.")
        return
    pages = -(-len(rows) // _PER_PAGE)
    left, right = st.columns([3, 1])
    left.caption(f"{len(rows):,} samples, the most suspect first." + ("" if mine else
                 " The marks are those of the run's owner; only they can change them."))
    page = right.number_input(f"Page (of {pages})", 1, pages, 1, key=f"audit_page_{kind}") if pages > 1 else 1
    classes = natural_order(found.table["label"].dropna().unique())
    for row in rows[(page - 1) * _PER_PAGE : page * _PER_PAGE]:
        _finding(view, found, int(row), kind, marks, mine, classes, owner)


def _image(view: MapView, row: pd.Series, width: int) -> None:
    path = view.samples["path"].iloc[row.name] if "path" in view.samples.columns else None
    if path is not None and not pd.isna(path):
        st.image(thumbnail(view.collection.root / path, 112), width=width)


def _finding(view: MapView, found: Audit, row: int, kind: str, marks: dict[str, Mark], mine: bool,
             classes: list[str], owner: str) -> None:
    table = found.table
    item = table.iloc[row]
    sample_id = str(item["sample_id"])
    with st.container(border=True):
        picture, about, near, decide = st.columns([1, 2, 4, 3])
        with picture:
            _image(view, item, 96)
        with about:
            st.text(sample_id)
            st.text(f"label {item['label'] if pd.notna(item['label']) else '(none)'}"
                    + (f" -> suggested {item['suggested_label']}" if pd.notna(item["suggested_label"])
                       and item["suggested_label"] != item["label"] else ""))
            if kind == "label":
                st.caption(f"label issue score {item['label_issue_score']:.2f}")
            elif kind == "outlier":
                st.caption(f"outlier score {item['outlier_score']:.2f}")
            else:
                group = table.index[table["duplicate_group"] == item["duplicate_group"]]
                st.caption(f"group {item['duplicate_group']} ({item['duplicate_kind']}, {len(group)} samples)"
                           + (", across splits" if item["is_leak"] else ""))
        with near:
            _neighbours(view, found, row, kind)
        with decide:
            _mark(view, sample_id, marks.get(sample_id), mine, classes, item, owner)


def _neighbours(view: MapView, found: Audit, row: int, kind: str) -> None:
    """Why it was flagged: its nearest neighbours with their labels (a duplicate's own group first)."""
    table = found.table
    others = [int(i) for i in found.neighbours[row][:5]]
    if kind in ("duplicate", "leak"):
        group = np.flatnonzero((table["duplicate_group"] == table["duplicate_group"].iloc[row]).to_numpy())
        others = [int(i) for i in group if i != row][:5] + [i for i in others if i not in group]
    grid = st.columns(5)
    for cell, other in zip(grid, others[:5]):
        with cell:
            neighbour = table.iloc[other]
            _image(view, neighbour, 56)
            split = f" ({neighbour['split']})" if "split" in view.samples.columns and kind == "leak" else ""
            label = neighbour["label"] if pd.notna(neighbour["label"]) else "(none)"
            st.caption(plain(f"{label}{split}"))


def _mark(view: MapView, sample_id: str, mark: Mark | None, mine: bool, classes: list[str], item: pd.Series,
          owner: str) -> None:
    """Keep, relabel or drop. The controls show what the store holds whenever it differs from what they
    showed last (another tab of the same user, the owner's marks seen through a link before one's own):
    they never write a mark the user did not choose."""
    actions = {"keep": "Keep", "relabel": "Relabel", "drop": "Drop"}
    key, label_key = f"audit_mark_{sample_id}", f"audit_relabel_{sample_id}"
    seen: dict = st.session_state.setdefault("_audit_marks_seen", {})
    source = (owner, _marks_key(view), mark)
    if not mine or seen.get(sample_id) != source:
        seen[sample_id] = source
        st.session_state[key] = mark.action if mark else None
        st.session_state.pop(label_key, None)
    choice = st.segmented_control("Mark", list(actions), format_func=actions.get, key=key, disabled=not mine,
                                  label_visibility="collapsed")
    wanted = Mark(choice) if choice else None
    if choice == "relabel":
        if label_key not in st.session_state:
            suggested = item["suggested_label"] if pd.notna(item["suggested_label"]) else None
            st.session_state[label_key] = (mark.label if mark and mark.label in classes else
                                           suggested if suggested in classes else classes[0] if classes else None)
        new = st.selectbox("Relabel to", classes, key=label_key, disabled=not mine)
        wanted = Mark("relabel", new) if new is not None else None
    if wanted is not None:
        path = item["path"] if "path" in item.index and pd.notna(item["path"]) else None
        label = item["label"] if pd.notna(item["label"]) else None
        wanted = Mark(wanted.action, wanted.label, None if label is None else str(label),
                      None if path is None else str(path))
    if mine and wanted != mark:
        try:
            catalog().mark(viewer().id, _marks_key(view), sample_id, wanted)
        except EmbedVizError as error:
            st.error(plain(first_line(error)))
            return
        seen[sample_id] = (owner, _marks_key(view), wanted)
        st.rerun()


def _summaries(view: MapView, found: Audit) -> None:
    key = st.session_state.get(_SHOWN)
    with st.expander("Per class, the labels most often suggested instead, and per cluster"):
        st.dataframe(memo("audit_classes", key, lambda: class_summary(found)), hide_index=True)
        pairs = memo("audit_pairs", key, lambda: confused_pairs(found))
        if len(pairs):
            st.caption("Suspected label errors: their label, and the label suggested instead.")
            st.dataframe(pairs, hide_index=True)
        clustering = clusters_for(view)
        if clustering is not None:
            st.caption("Per cluster found on the Clusters tab.")
            st.dataframe(cluster_summary(found, clustering.names), hide_index=True)


def corrected_labels(marks: dict[str, Mark]) -> pd.DataFrame:
    """One row per relabelled sample: ``sample_id``, ``path``, ``label``, ``corrected_label`` (every mark
    of the feature set, also of samples a map without the flagged ones left out)."""
    rows = [(sid, m.path, m.was, m.label) for sid, m in marks.items() if m.action == "relabel"]
    return pd.DataFrame(rows, columns=["sample_id", "path", "label", "corrected_label"])


def files_to_drop(marks: dict[str, Mark]) -> list[str]:
    """The path (else the id) of every sample marked drop, in the order they were marked."""
    return [m.path or sid for sid, m in marks.items() if m.action == "drop"]


def _exports(view: MapView, found: Audit, marks: dict[str, Mark]) -> None:
    counts = {action: sum(m.action == action for m in marks.values()) for action in ("keep", "relabel", "drop")}
    st.caption(f"Marked: {counts['keep']:,} kept, {counts['relabel']:,} relabelled, {counts['drop']:,} to drop. "
               "Marks are saved with your runs of these features and travel with a published link.")
    left, mid, right = st.columns(3)
    left.download_button("Corrected labels (CSV)", lambda: to_csv(corrected_labels(marks)),
                         file_name="corrected_labels.csv", mime="text/csv", on_click="ignore",
                         disabled=not counts["relabel"], key="audit_corrected")
    mid.download_button("Files to drop (text)", lambda: "".join(f"{p}\n" for p in files_to_drop(marks)),
                        file_name="files_to_drop.txt", mime="text/plain", on_click="ignore",
                        disabled=not counts["drop"], key="audit_drop")

    right.download_button("The whole audit (CSV)", lambda: to_csv(found.table), file_name="audit.csv", mime="text/csv",
                          on_click="ignore", key="audit_report")
