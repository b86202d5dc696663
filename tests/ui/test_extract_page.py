"""The Extract page after a cancel, counts with separators, the rate of a resumed run, and where an
ended extraction's line shows in the sidebar (Streamlit's AppTest, and the job's own text)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from embedviz import progress as progress_module
from embedviz.data.featureset import FeatureSet
from embedviz.errors import Cancelled
from embedviz.progress import Rate
from embedviz.serve.access import Viewer
from embedviz.serve.jobs import Job, JobRunner

ROOT = Path(__file__).resolve().parents[2]
ME = Viewer("browser:extract-page-test", "a guest (browser extrac)")


@pytest.fixture
def app(monkeypatch) -> AppTest:
    import streamlit as st

    monkeypatch.chdir(ROOT)
    st.cache_resource.clear()  # another test's runner, store or demo home must not be found
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.session_state["_viewer"] = ME
    return at


def _features(n: int = 1200, dim: int = 3072, skipped: int = 1500, copies: int = 1100,
              resumed: int = 0) -> FeatureSet:
    samples = pd.DataFrame({"sample_id": [f"img/{i}.png" for i in range(n)],
                            "duplicate_of": [f"img/{i + 1}.png" if i < copies else None for i in range(n)]})
    return FeatureSet(np.zeros((n, dim), np.float32), samples,
                      pd.DataFrame({"path": [f"bad/{i}.png" for i in range(skipped)], "reason": "unreadable"}),
                      {"created": "today", "seconds": 2.0, "device": "cpu", "resumed_images": resumed},
                      key="0123456789abcdef")


def test_every_count_on_the_extract_page_has_thousands_separators(app, monkeypatch):
    from embedviz import ui

    monkeypatch.setattr(ui, "stored_features", lambda: _features())
    at = app.switch_page("pages/2_Extract.py").run()
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Feature vectors"] == "1,200" and metrics["Dimensions"] == "3,072"
    assert metrics["Skipped images"] == "1,500"
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("1,100 images are byte-for-byte copies") for w in warnings), warnings
    assert any(w.startswith("1,500 images could not be read") for w in warnings), warnings


def test_after_a_cancel_the_page_keeps_its_button_and_one_click_resumes(app, monkeypatch):
    """A cancel ends the page's wait; the Extract button, the sidebar and the share link stay, and a click
    starts the extraction again (whose rate counts only the images it went through)."""
    from embedviz import ui

    job = Job(key="k", label="shapes through resnet18, layer avgpool", owner=ME.id, status="running",
              done=384, total=1024)
    state = {"stored": None, "starts": 0}

    def start() -> Job:
        state["starts"] += 1
        return job

    def wait(started: Job) -> None:
        if state["starts"] == 1:  # the user pressed Cancel: the job stops at its next report
            job.status = "cancelled"
            raise Cancelled("Extraction cancelled at 384 of 1,024 images; the finished part is kept, so "
                            "extracting again resumes from there.")
        job.status = "done"  # the second run resumed from 384 and finished
        state["stored"] = _features(1000, 64, skipped=24, copies=0, resumed=384)

    monkeypatch.setattr(ui, "extraction_job", lambda: job)
    monkeypatch.setattr(ui, "start_extraction", start)
    monkeypatch.setattr(ui, "wait_for", wait)
    monkeypatch.setattr(ui, "stored_features", lambda: state["stored"])
    at = app.switch_page("pages/2_Extract.py").run()  # the page finds the running job and waits on it
    assert not at.exception, [e.value for e in at.exception]
    assert any("cancelled at 384 of 1,024 images" in w.value for w in at.warning), [w.value for w in at.warning]
    [button] = [b for b in at.button if b.label == "Extract features"]
    assert any("**Data**" in m.value for m in at.sidebar.markdown)  # the sidebar summary is still there
    assert [b.proto.popover.label for b in at.sidebar.children.values()
            if getattr(b, "type", None) == "popover"] == ["Share this view"]
    button.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert state["starts"] == 2
    [done] = [s.value for s in at.success]
    # 1,000 kept + 24 skipped, 384 of them from the earlier run: 640 images in 2 s this run
    assert done.startswith("Extracted 1,000 feature vectors in 2.0 s (320 images/s on cpu), 384 of them resumed"), done


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_resumed_extraction_rates_only_the_images_of_this_run(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(progress_module.time, "perf_counter", clock)
    job = Job(key="k", label="resumed", status="running", _rate=Rate())
    assert job.describe() == "0 / 0 images"  # no report yet: no starting point taken from it
    clock.now += 5.0  # the child loads the model
    job.progress(384, 1024, "images (384 from an earlier run)")  # the first report: shards found on disk
    assert job.describe() == "384 / 1,024 images"
    clock.now += 2.0
    job.progress(512, 1024, "images")  # 128 new images in 2 s
    assert job.describe() == "512 / 1,024 images · 64 images/s · ETA 8 s"

    rate = Rate()  # a progress bar that is given every report (the Reduce page, the command line)
    clock.now += 1.0
    assert rate.describe(300, 1000, "steps") == "300 / 1,000 steps"
    clock.now += 1.0
    assert rate.describe(400, 1000, "steps") == "400 / 1,000 steps · 100 steps/s · ETA 6 s"


def _sidebar_lines(at: AppTest, label: str) -> list[str]:
    return [c.value for c in at.sidebar.caption if label in c.value]


def test_an_ended_extraction_is_news_once_on_other_pages_and_listed_on_the_extract_page(app, monkeypatch):
    from embedviz.ui import summary

    runner = JobRunner()
    now = time.time()
    ended = Job(key="k", label="shapes through resnet18", owner=ME.id, status="done", done=1201, total=1201,
                started=now - 40, finished=now - 5)
    runner._jobs[ended.id] = ended
    monkeypatch.setattr(summary, "runner", lambda: runner)

    at = app.switch_page("pages/1_Data_and_model.py").run()  # the first page after it ended: it says so
    assert not at.exception, [e.value for e in at.exception]
    assert _sidebar_lines(at, "shapes through resnet18") == ["shapes through resnet18: done: 1,201 images in 35 s"]
    at.switch_page("pages/6_Runs.py").run()  # seen: it does not follow the viewer to every page
    assert not at.exception, [e.value for e in at.exception]
    assert _sidebar_lines(at, "shapes through resnet18") == []
    at.switch_page("pages/2_Extract.py").run()  # where extractions are the subject, the recent ones stay listed
    assert _sidebar_lines(at, "shapes through resnet18") == ["shapes through resnet18: done: 1,201 images in 35 s"]
    at.switch_page("pages/1_Data_and_model.py").run()
    assert _sidebar_lines(at, "shapes through resnet18") == []
