"""Names from users' files are text on every page: a label, id, column or class name written as Markdown
(a remote image, a phishing link, raw HTML, a bare URL, a colour directive, an icon shortcode) must not
become a link, an image, HTML or an icon in any element that renders Markdown (Streamlit's AppTest)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from embedviz.ui.widgets import plain

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["pages/1_Data_and_model.py", "pages/2_Extract.py", "pages/3_Reduce.py", "pages/4_Explore.py",
         "pages/5_Point.py", "pages/6_Runs.py", "pages/7_Compare.py"]

IMAGE = "![x](http://evil.example/a.png)"
LINK = "[Session expired – sign in again](http://evil.example)"
HTML = "<img src=http://evil.example/b.png>"
URL = "http://evil.example/c and www.evil.example"
COLOUR = ":red[x]"
ICON = ":material/warning:"
HOSTILE = [IMAGE, LINK, HTML, URL, COLOUR, ICON]
CATEGORY_COLUMN = "[col](http://evil.example/col)"
NUMBER_COLUMN = "<img src=http://evil.example/n.png>"

try:  # markdown-it-py (with rich): parse as CommonMark does; without it, the regular expressions below
    from markdown_it import MarkdownIt

    _MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])
except ImportError:  # pragma: no cover - depends on what is installed
    _MARKDOWN = None

# Proto fields that Streamlit renders as Markdown (body of markdown/caption/heading/alert/toast, labels and help
# of widgets, expanders and tabs, progress and spinner text, image captions, radio and segmented/pills options).
_MARKDOWN_FIELDS = {"body", "label", "help", "text", "caption", "captions", "content", "selected_content"}
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")
# What Streamlit and remark find in the text once escapes are undone (so backslashes do not stop them).
_IN_TEXT = {
    "autolinked URL": re.compile(r"(https?://|www(?=\.))[-.\w]+", re.IGNORECASE | re.ASCII),
    "autolinked e-mail": re.compile(r"[-.\w+]+@[-\w]+(\.[-\w]+)+", re.ASCII),
    "icon or emoji shortcode": re.compile(r":(material[/_])?[\w+-]+:", re.ASCII),
}
_IN_SOURCE = {
    "image": re.compile(r"(?<!\\)!(?<!\\)\[[^\]]*(?<!\\)\]\("),
    "link": re.compile(r"(?<!\\)\[[^\]]*(?<!\\)\]\("),
    "HTML or autolink": re.compile(r"(?<!\\)<[A-Za-z/!]"),
    "directive": re.compile(r"(?<!\\):[A-Za-z][\w-]*(?<!\\)[\[{]"),
    "icon": re.compile(r":material/"),  # Streamlit rewrites these in the raw source, escaped or not
}


def _markdown_strings(node, radio: bool = False):
    """Every string of a proto message that Streamlit shows as Markdown."""
    for descriptor, value in node.ListFields():
        name = descriptor.name
        repeated = (not isinstance(value, (str, bytes)) and not hasattr(value, "ListFields")
                    and hasattr(value, "__len__"))
        values = value if repeated else [value]
        for item in values:
            if hasattr(item, "ListFields"):
                yield from _markdown_strings(item, radio)
            elif isinstance(item, str) and (name in _MARKDOWN_FIELDS or (radio and name == "options")):
                yield name, item


def _shown(at: AppTest) -> list[tuple[str, str]]:
    """(element type, Markdown string) for every element and block on the page, the sidebar included."""
    found = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        kind = getattr(node, "type", type(node).__name__)
        # these kinds do not render Markdown
        if proto is not None and kind not in ("plotly_chart", "arrow_data_frame", "dataframe", "text", "code"):
            found.extend((f"{kind}.{name}", text) for name, text in _markdown_strings(proto, radio=kind == "radio"))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return found


def _problems(text: str) -> list[str]:
    """What ``text`` would become in the browser that is not text."""
    problems = [what for what, pattern in _IN_SOURCE.items() if pattern.search(text)]
    if _MARKDOWN is not None:
        for token in _MARKDOWN.parse(text):
            for t in [token, *(token.children or [])]:
                if t.type in ("image", "link_open", "html_inline", "html_block"):
                    problems.append(f"markdown-it {t.type}")
    decoded = _ESCAPED.sub(r"\1", text)
    problems += [what for what, pattern in _IN_TEXT.items() if pattern.search(decoded)]
    return problems


def _assert_only_text(at: AppTest, where: str) -> None:
    assert not at.exception, [e.value for e in at.exception]
    bad = [(kind, text, _problems(text)) for kind, text in _shown(at) if _problems(text)]
    assert not bad, f"{where}: {bad}"


@pytest.mark.parametrize("name", HOSTILE + [CATEGORY_COLUMN, NUMBER_COLUMN, "1. list", "# heading",
                                            "*bold* _em_ ~s~ $x$", "bob@evil.example", "a -> b", "two\n\nlines",
                                            "&lt;b&gt;"])
def test_plain_leaves_nothing_markdown_would_turn_into_markup(name):
    escaped = plain(name)
    assert not _problems(escaped), (escaped, _problems(escaped))
    assert "\n" not in escaped
    # what the reader sees is what was written (the word joiners are invisible)
    assert _ESCAPED.sub(r"\1", escaped).replace("\u2060", "") == name.replace("\n\n", " ")


def _hostile_features(folder: Path) -> tuple[Path, Path]:
    """40 points of 6-D features in two clear groups, with a metadata table whose ids, labels, predictions, a
    category column's name and values and a number column's name are hostile."""
    rng = np.random.default_rng(0)
    n = 40
    group = np.arange(n) % 2
    features = rng.normal(size=(n, 6)).astype(np.float32) + group[:, None] * 6.0
    labels = [HOSTILE[g] for g in group]  # the image and the link
    predictions = [labels[i] if i % 5 else HOSTILE[(group[i] + 2) % len(HOSTILE)] for i in range(n)]
    meta = pd.DataFrame({
        "sample_id": [f"{HOSTILE[i % len(HOSTILE)]} {i}" for i in range(n)],
        "label": labels,
        "prediction": predictions,
        "confidence": np.linspace(0.5, 0.99, n),
        "correct": [a == b for a, b in zip(labels, predictions)],
        CATEGORY_COLUMN: [HOSTILE[(i + 2) % len(HOSTILE)] for i in range(n)],
        NUMBER_COLUMN: np.arange(n, dtype=float),
    })
    np.save(folder / "features.npy", features)
    meta.to_csv(folder / "meta.csv", index=False)
    return folder / "features.npy", folder / "meta.csv"


def test_hostile_names_render_as_text_on_every_page(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    features, meta = _hostile_features(tmp_path)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    # as if uploaded: the data of someone else's published run look the same to the pages
    at.session_state["dataset"] = {"kind": "features", "via": "upload", "path": str(features), "metadata": str(meta),
                                   "id_column": "", "prefix": ""}
    at.session_state["explore_sets"] = {LINK: [f"{IMAGE} 0", f"{HTML} 2"]}
    at.session_state["ev_show_set"] = LINK
    at.session_state["ev_color"] = CATEGORY_COLUMN
    at.session_state["ev_f_columns"] = [CATEGORY_COLUMN, NUMBER_COLUMN, "label"]
    at.run()
    _assert_only_text(at, "home")
    for page in PAGES:
        at.switch_page(page).run()
        _assert_only_text(at, page)

    # Explore: the map coloured and filtered by hostile columns, a hostile set ringed, the Mistakes tab's
    # galleries of hostile ids, labels and predictions, and clusters whose commonest label is hostile
    at.switch_page("pages/4_Explore.py").run()
    assert at.selectbox(key="ev_color").value == CATEGORY_COLUMN
    assert any(plain(repr(LINK)) in c.value for c in at.caption)  # the ringed set is named, as text
    at.selectbox(key="ev_cluster_method").set_value("kmeans")
    at.number_input(key="ev_cluster_k").set_value(2)
    at.button[[b.label for b in at.button].index("Find clusters")].click().run()
    at.session_state["explore_tab"] = "Clusters"  # a closed tab does not make its images
    at.run()
    _assert_only_text(at, "Explore with clusters")
    cluster_lines = [m.value for m in at.markdown if m.value.startswith("**Cluster ")]
    assert len(cluster_lines) == 2 and all("mostly" in line for line in cluster_lines)
    at.session_state["explore_tab"] = "Mistakes"
    at.run()
    _assert_only_text(at, "Explore, the Mistakes tab")
    assert any("accuracy" in c.value.lower() for c in at.caption)  # the Mistakes tab has its galleries
    gallery = [c.value for c in at.caption if " · pred " in c.value]
    assert gallery, "the Mistakes tab shows its samples' ids, labels and predictions"

    # Point: a point whose id, label and neighbours' ids are hostile
    at.session_state["ev_point"] = f"{LINK} 1"
    at.switch_page("pages/5_Point.py").run()
    assert at.selectbox(key="ev_point").value == f"{LINK} 1"
    _assert_only_text(at, "Point")
    assert any(plain(f"{LINK} 1") in s.value for s in at.subheader)
    assert sum("distance" in c.value for c in at.caption) >= 5


def test_the_check_finds_a_hostile_name_left_as_markdown():
    """The page check itself: raw names are caught, escaped ones pass."""
    for name in HOSTILE + [CATEGORY_COLUMN, NUMBER_COLUMN]:
        assert _problems(f"**Cluster 1** · mostly {name} (50%)"), name
        assert not _problems(f"**Cluster 1** · mostly {plain(name)} (50%)"), name
    # the old escaping (every punctuation mark backslashed) still let URLs, e-mail and icons through
    old = re.sub(r"([\\`*_{}\[\]()<>#+\-.!|~$:])", r"\\\1",
                 "see http://evil.example :material/warning: bob@evil.example")
    assert {"autolinked URL", "autolinked e-mail", "icon"} <= set(_problems(old))


def test_hostile_class_names_and_labels_of_images_render_as_text_on_compare_explore_and_point(tmp_path, monkeypatch):
    """Images through the demo model, with a class index and labels that are hostile: predictions, labels and
    a column name show on the image galleries, the Point page and the Compare page as text."""
    from tests.conftest import make_image_folder

    monkeypatch.chdir(ROOT)
    images = make_image_folder(tmp_path / "images", per_class=6)
    names = HOSTILE + ["six", "seven", "eight", "nine"]
    (tmp_path / "classes.json").write_text(json.dumps(names))
    paths = sorted(p.relative_to(images).as_posix() for p in images.rglob("0*.png") if not p.name.startswith("."))
    pd.DataFrame({"path": paths, "label": [names[i % 3] for i in range(len(paths))],
                  CATEGORY_COLUMN: [HOSTILE[(i + 3) % len(HOSTILE)] for i in range(len(paths))]}).to_csv(
        images / "list.csv", index=False)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.session_state["dataset"] = {"kind": "path", "via": "upload", "path": str(images / "list.csv"), "prefix": "",
                                   "column": ""}
    at.session_state["classes"] = str(tmp_path / "classes.json")
    at.run()
    _assert_only_text(at, "home")
    for page in ("pages/4_Explore.py", "pages/5_Point.py", "pages/7_Compare.py"):
        at.switch_page(page).run()
        _assert_only_text(at, page)
    assert len(at.multiselect(key="ev_cmp_sets").value) == 2  # the demo's two checkpoints, compared
    captions = [text for kind, text in _shown(at) if kind.endswith(".caption")]
    assert any(" · label " in t and " · pred " in t for t in captions), captions  # the moved-most gallery


def test_the_separation_chart_shows_class_names_as_text():
    import pandas as pd

    from embedviz.explore.figures import separation_figure

    table = pd.DataFrame({"label": ['<a href="https://evil.example">Sign in</a>', "cat"], "set": ["final", "final"],
                          "knn_accuracy": [0.5, 0.9], "silhouette": [0.1, 0.2]})
    ticks = [str(x) for trace in separation_figure(table).data for x in trace.x]
    assert not any("<a" in tick for tick in ticks) and any("&lt;a href" in tick for tick in ticks)
