"""Widget helpers: the error boundary, progress bars with rate and ETA, reducer sliders drawn
from parameter specs, and the image gallery."""

from __future__ import annotations

import contextlib
import math
import re
from typing import Iterator

import pandas as pd
import streamlit as st

from embedviz.data.thumbnails import thumbnail
from embedviz.errors import Cancelled, EmbedVizError
from embedviz.maps.reducers import ParamSpec, get_reducer, param_specs
from embedviz.maps.reducers.params import perplexity_limit
from embedviz.progress import ProgressCallback, Rate
from embedviz.ui.session import bound

__all__ = ["guard", "progress_callback", "param_widgets", "gallery", "plain"]

# Streamlit renders GitHub-flavoured Markdown (remark-gfm) plus its own extensions in st.markdown, captions,
# alerts, toasts, widget labels and help, radio/segmented options, tab and expander labels and image captions.
# A user's string is made inert there in four steps:
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")  # 1. one line: no new block
# 2. An invisible word joiner (U+2060) breaks what Streamlit and remark find in the text *after* escapes are
# undone, so backslashes cannot stop them: autolinked URLs (http://, www.) and e-mail addresses, :material/…:
# icons, :emoji: and :streamlit: shortcodes, :color[…] directives, and "->" style arrows.
_JOINER = "\u2060"
_JOIN_AFTER = re.compile(r"(?:(?<=:)(?=[\w/+\-])|(?<=@)(?=[\w\-])|(?<=www)(?=\.))", re.IGNORECASE)
_ARROWS = re.compile(r"(^|\s)([<\-~>])(?=[\->=])")
# 3. Backslash escapes for what Markdown parses: links and images ([ ]), HTML and autolinks (< >), emphasis,
# code, strikethrough, tables, LaTeX ($), entity references, and "_" where it could open or close emphasis
# (between two letters or digits it cannot, so snake_case names stay as they are).
_ESCAPE = re.compile(r"([\\`*\[\]<>$~|])|&(?=#?[0-9A-Za-z]+;)|(?<![^\W_])_|_(?![^\W_])")
# 4. What starts a block at the start of a line: a heading, a list item, a thematic break ("> " is escaped above).
_LEADING = re.compile(r"^(\s*)(?:([-+#])(?=[\s\-#]|$)|(\d{1,9})([.)])(?=\s|$))")


def _escape(match: re.Match) -> str:
    return "\\" + match.group(0)


def plain(text: object) -> str:
    """``text`` (a name from a user's files, a message that quotes one) made safe to put in any
    element that renders Markdown: it shows as written, on one line, and never becomes a link,
    an image, HTML, emphasis, a heading or list, an icon, an emoji, coloured text or LaTeX.

    Prose punctuation (``.``, ``,``, ``-``, ``(``, ``)``, ``:``) is left alone, so messages read
    the same in the page and in tests; the word joiners added are invisible.
    """
    value = _LINE_BREAKS.sub(" ", str(text))
    value = _ARROWS.sub(lambda m: m.group(1) + m.group(2) + _JOINER, value)
    value = _JOIN_AFTER.sub(_JOINER, value)
    value = _ESCAPE.sub(_escape, value)
    return _LEADING.sub(lambda m: m.group(1) + (f"\\{m.group(2)}" if m.group(2) else f"{m.group(3)}\\{m.group(4)}"),
                        value, count=1)


@contextlib.contextmanager
def guard(stop: bool = True) -> Iterator[None]:
    """Show an :class:`EmbedVizError` as one red line where it happened; other errors are bugs.

    With ``stop`` the page ends there (nothing below could work); without it the rest of the
    page goes on, for errors that leave the current choice as it was.
    """
    try:
        yield
    except Cancelled as exc:
        st.warning(plain(exc))  # messages quote names from users' files
        if stop:
            st.stop()
    except EmbedVizError as exc:
        st.error(plain(exc), icon=":material/error:")
        if stop:
            st.stop()


@contextlib.contextmanager
def progress_callback(label: str, unit: str) -> Iterator[ProgressCallback]:
    """A progress bar that shows done/total, the rate and the time left; removed when done."""
    bar = st.progress(0.0, text=label)
    rate = Rate()

    def update(done: int, total: int, message: str) -> None:
        fraction = min(done / total, 1.0) if total else 1.0
        bar.progress(fraction, text=f"{label}: {rate.describe(done, total, unit)}")

    try:
        yield update
    finally:
        bar.empty()


def _slider(spec: ParamSpec, key: str, upper: float | None) -> None:
    high = spec.high if upper is None else max(spec.low, min(spec.high, upper))
    if spec.is_flag:
        st.toggle(spec.name, help=spec.help, **bound(key))
    elif spec.choices:
        st.selectbox(spec.name, spec.choices, help=spec.help, **bound(key))
    elif spec.is_int:
        st.slider(spec.name, int(spec.low), int(high), step=int(spec.step), format="%d", help=spec.help, **bound(key))
    else:
        # as many decimals as the step has: perplexity (step 1) reads "30", not "30.00"; min_dist "0.10"
        decimals = max(0, -int(math.floor(math.log10(spec.step)))) if spec.step and spec.step < 1 else 0
        st.slider(spec.name, float(spec.low), float(high), step=float(spec.step), format=f"%.{decimals}f",
                  help=spec.help, **bound(key))


def param_widgets(method: str, n_points: int) -> None:
    """One slider or select per parameter of ``method``, bounded by the data where it matters.

    Values live in ``ev_p_<method>_<name>`` session keys, so they survive page switches and
    :func:`embedviz.ui.choices.reducer_settings` reads them back.
    """
    upper = {"perplexity": perplexity_limit(n_points), "n_neighbors": n_points - 1}
    for spec in param_specs(get_reducer(method).params_class):
        key = f"ev_p_{method}_{spec.name}"
        limit = upper.get(spec.name)
        if key not in st.session_state:
            value = spec.default if limit is None else min(spec.default, max(spec.low, limit))
            st.session_state[key] = value
        elif (limit is not None and not spec.choices and not spec.is_flag
              and st.session_state[key] > max(spec.low, limit)):
            st.session_state[key] = type(spec.default)(max(spec.low, limit))
        _slider(spec, key, limit)


def _caption(row: pd.Series) -> str:
    parts = [str(row["sample_id"]).rsplit("/", 1)[-1]]
    if "label" in row and pd.notna(row["label"]):
        parts.append(f"label {row['label']}")
    if "prediction" in row and pd.notna(row["prediction"]):
        mark = "" if "correct" not in row or pd.isna(row["correct"]) else (" ✓" if row["correct"] else " ✗")
        parts.append(f"pred {row['prediction']} ({row['confidence']:.0%}){mark}")
    return " · ".join(parts)


_SELECT_HINT = "Select points on the map (box or lasso in the toolbar, or click) to see their images here."


def gallery(rows: pd.DataFrame, root, *, key: str, per_page: int = 24, columns: int = 6, controls: bool = True,
            empty: str = _SELECT_HINT) -> None:
    """Thumbnails of ``rows`` with label, prediction and confidence; paginated and sortable by any
    column (``controls=False``: just the first ``per_page``, as given)."""
    if rows.empty:
        st.info(empty)
        return
    page = 1
    if controls:
        sortable = [c for c in rows.columns if c != "path"]
        preferred = [c for c in ("confidence", "label", "prediction", "correct", "sample_id") if c in sortable]
        left, mid, right = st.columns([2, 1, 1])
        sort_by = left.selectbox("Sort by", ["given order", *preferred, *[c for c in sortable if c not in preferred]],
                                 key=f"{key}_sort")
        descending = mid.toggle("Descending", key=f"{key}_desc")
        if sort_by != "given order":
            rows = rows.sort_values(sort_by, ascending=not descending, kind="stable")
        pages = max(1, math.ceil(len(rows) / per_page))
        page = right.number_input(f"Page (of {pages})", 1, pages, 1, key=f"{key}_page") if pages > 1 else 1
    shown = rows.iloc[(page - 1) * per_page : page * per_page]
    grid = st.columns(columns)
    for i, (_, row) in enumerate(shown.iterrows()):
        with grid[i % columns]:
            if "path" in row and pd.notna(row["path"]):
                st.image(thumbnail(root / row["path"], 112), caption=plain(_caption(row)))
            else:  # features made elsewhere may come without images
                st.caption(plain(_caption(row)))
