"""Explore's Issues tab on data with planted problems (Streamlit's AppTest): the audit finds them, rings
them on the map, a user's marks survive a reload and travel with a published link (read-only for
others), and a map without the flagged samples is one click."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.plotly_spec import figure_rows, figures

ROOT = Path(__file__).resolve().parents[2]
FLIPPED = 10


def _digits_with_problems(folder: Path) -> tuple[Path, list[str], list[str]]:
    """300 digits as PNGs with a manifest: 10 training labels flipped to the next digit, and 3 images
    copied byte for byte into the other split (3 leaks). Returns the manifest, flipped and copied paths."""
    from embedviz.data.demo import digits_arrays

    images, labels = digits_arrays()
    folder.mkdir(parents=True)
    rows = []
    for i in range(300):
        Image.fromarray(images[i]).save(folder / f"d{i:03d}.png")
        rows.append({"path": f"d{i:03d}.png", "label": str(labels[i]), "split": "test" if i % 3 == 0 else "train"})
    flipped = [r for r in rows if r["split"] == "train"][5:5 + FLIPPED]
    for row in flipped:
        row["label"] = str((int(row["label"]) + 1) % 10)
    copies = []
    for i in (30, 61, 95):  # 30 is a test image, 61 and 95 training ones
        shutil.copy(folder / f"d{i:03d}.png", folder / f"copy{i}.png")
        original = rows[i]
        copies.append(f"copy{i}.png")
        rows.append({"path": f"copy{i}.png", "label": original["label"],
                     "split": "train" if original["split"] == "test" else "test"})
    manifest = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest, [r["path"] for r in flipped], copies


def _session(monkeypatch, email: str) -> AppTest:
    import embedviz.ui.auth as auth

    monkeypatch.setattr(auth, "_header_email", lambda: email)
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)


def _clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _metric(at: AppTest, label: str) -> int:
    return int(next(m.value for m in at.metric if m.label == label).replace(",", ""))


def _mark_controls(at: AppTest) -> dict[str, object]:
    return {c.key.removeprefix("audit_mark_"): c for c in at.segmented_control if c.key.startswith("audit_mark_")}


@pytest.fixture
def problems(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("EMBEDVIZ_USER_HEADER", "X-Forwarded-Email")
    monkeypatch.setenv("EMBEDVIZ_DATA_ROOTS", str(tmp_path))
    return _digits_with_problems(tmp_path / "digits")


def test_the_issues_tab_finds_planted_problems_and_marks_travel_with_the_run(problems, monkeypatch):
    from embedviz.serve.catalog import Catalog

    manifest, flipped, copies = problems
    at = _session(monkeypatch, "alice@example.org").run()
    at.switch_page("pages/1_Data_and_model.py").run()
    at.radio[0].set_value("Path on this server").run()
    at.text_input[0].input(str(manifest))
    at.text_input[1].input(str(manifest.parent))
    at.button[0].click().run()
    _clean(at)
    at.switch_page("pages/4_Explore.py").run()
    at.session_state["explore_tab"] = "Issues"
    at.run()
    _clean(at)
    assert _metric(at, "Suspected label errors") >= FLIPPED * 0.8
    assert _metric(at, "Leaks across splits") == 6 and _metric(at, "Duplicates") == 6
    assert any("Ringed on the map: the suspected label errors the audit found" in c.value for c in at.caption)
    shown = _mark_controls(at)
    assert len(set(shown) & set(flipped)) >= 6  # the first page is mostly the planted errors
    first, second = [sid for sid in shown if sid in flipped][:2]

    shown[first].set_value("relabel").run()
    relabel = at.selectbox(key=f"audit_relabel_{first}")
    true_label = str((int(pd.read_csv(manifest).set_index("path").loc[first, "label"]) - 1) % 10)
    assert relabel.value == true_label  # the suggested label, the one before the flip
    _mark_controls(at)[second].set_value("drop").run()
    _clean(at)
    run = Catalog().get(at.query_params["run"])
    marks = Catalog().marks(run.owner, run.features_key.split("-kept-")[0])
    assert {sid: (m.action, m.label, m.path) for sid, m in marks.items()} == {
        first: ("relabel", true_label, first), second: ("drop", None, second)}
    assert any("1 relabelled, 1 to drop" in c.value for c in at.caption)

    # a reload: a new session of the same person, opened on the same run, shows the marks
    again = _session(monkeypatch, "alice@example.org")
    again.query_params["run"] = run.id
    again.switch_page("pages/4_Explore.py").run()
    again.session_state["explore_tab"] = "Issues"
    again.run()
    _clean(again)
    assert _mark_controls(again)[first].value == "relabel" and _mark_controls(again)[second].value == "drop"

    # a colleague with the published link sees them, and cannot change them
    Catalog().publish(run.id, run.owner)
    bob = _session(monkeypatch, "bob@example.org")
    bob.query_params["run"] = run.id
    bob.switch_page("pages/4_Explore.py").run()
    bob.session_state["explore_tab"] = "Issues"
    bob.run()
    _clean(bob)
    theirs = _mark_controls(bob)
    assert theirs[first].value == "relabel" and theirs[first].disabled
    assert any("The marks are those of the run's owner" in c.value for c in bob.caption)
    assert Catalog().marks("user:bob@example.org", run.features_key) == {}
    bob.button(key="audit_map_clean").click().run()  # a map of bob's own: the controls are his, and empty
    _clean(bob)
    assert Catalog().marks("user:bob@example.org", run.features_key) == {}
    assert Catalog().get(bob.query_params["run"]).owner == "user:bob@example.org"
    assert not any(c.value for c in _mark_controls(bob).values())

    # one click: a new map without the flagged samples
    before = [c for c in figures(at) if '"uirevision":"embedviz-map"' in c][0]
    total = len(set(figure_rows(before)))  # the ringed findings are drawn twice
    assert total == 303
    button = at.button(key="audit_map_clean")
    left_out = int(button.label.split(" the ")[1].split()[0])
    assert FLIPPED * 0.8 + 3 <= left_out <= FLIPPED + 3 + 15  # the errors, a copy of each duplicate, outliers
    button.click().run()
    _clean(at)
    after = [c for c in figures(at) if '"uirevision":"embedviz-map"' in c][0]
    assert len(set(figure_rows(after))) == total - left_out
    assert any("no sample the audit " in c.value and " flags (" in c.value
               for c in [*at.caption, *at.info, *at.markdown, *at.warning])


def test_the_corrected_labels_export_reads_back_as_the_marks():
    from embedviz.explore.export import to_csv
    from embedviz.serve.catalog import Mark
    from embedviz.ui.audit import corrected_labels, files_to_drop

    marks = {"a": Mark("relabel", "dog", "cat", "x/a.png"), "b": Mark("keep", None, "dog", "x/b.png"),
             "c": Mark("drop", None, "<b>cow</b>", None), "d": Mark("relabel", "=1+1", "bird", "x/d.png")}
    back = pd.read_csv(pd.io.common.StringIO(to_csv(corrected_labels(marks))))
    assert back.to_dict("records") == [
        {"sample_id": "a", "path": "x/a.png", "label": "cat", "corrected_label": "dog"},
        {"sample_id": "d", "path": "x/d.png", "label": "bird", "corrected_label": "'=1+1"}]  # no formula
    assert files_to_drop(marks) == ["c"]  # no path: its id
