"""Background jobs: one at a time in a child process, found again by owner and key, cancellable
with the finished part kept, and a failure ends only its job."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from embedviz.errors import Cancelled, ModelError
from embedviz.serve.jobs import JobRunner, Task


def slow(gate: str, progress) -> str:
    """Ten steps, each waiting for ``gate`` to exist."""
    for i in range(10):
        end = time.monotonic() + 30
        while not os.path.exists(gate) and time.monotonic() < end:
            time.sleep(0.02)
        progress(i + 1, 10, "images")
    return "stored"


def counting(progress) -> None:
    for i in range(1000):
        if progress(i, 1000, "images"):
            raise Cancelled(f"Stopped at {i}")
        time.sleep(0.005)


def bad_model(progress) -> None:
    raise ModelError("resnet18 cannot take 8 px")


def bug(progress) -> float:
    return 1 / 0


def value(result: str, progress) -> str:
    return result


@pytest.fixture(scope="module", autouse=True)
def fork_server() -> None:
    """Start the fork server once (it imports torch: seconds), so the jobs' times are their own."""
    _wait(JobRunner().submit("warm", "warm", Task(value, ("warm",))), seconds=120)


def _wait(job, seconds: float = 60) -> None:
    end = time.monotonic() + seconds
    while job.active and time.monotonic() < end:
        time.sleep(0.02)
    assert not job.active


def test_the_same_work_submitted_twice_is_one_job_and_jobs_queue(tmp_path):
    runner = JobRunner()
    gate = str(tmp_path / "gate")
    first = runner.submit("key-a", "A", Task(slow, (gate,)))
    again = runner.submit("key-a", "A from a second tab", Task(slow, (gate,)))
    second = runner.submit("key-b", "B", Task(slow, (gate,)))
    assert again is first and second is not first
    assert first.status == "running" and second.status == "queued"  # one at a time
    assert second.describe() == "waiting for the job ahead of it"
    Path(gate).touch()
    _wait(first), _wait(second)
    assert first.status == second.status == "done" and first.result == "stored"
    assert first.started < second.started
    assert first.done == first.total == 10 and runner.active() == []  # progress crossed from the child
    # a page opened after the end still lists them, with their outcome
    assert runner.recent(longer_than=0) == [second, first] and first.describe().startswith("done: 10 images in ")
    assert runner.recent(within=-1, longer_than=0) == [] and runner.recent() == []  # old, or quick: not listed


def test_cancel_stops_at_the_next_report_and_failures_stay_in_their_job():
    runner = JobRunner()
    job = runner.submit("k", "counting", Task(counting))
    end = time.monotonic() + 60
    while job.done < 5 and time.monotonic() < end:
        time.sleep(0.01)
    job.cancel()
    _wait(job)
    assert job.status == "cancelled" and 0 < job.done < 999
    assert job.describe() == f"cancelled at {job.done:,} / 1,000 images"

    bad = runner.submit("bad", "bad model", Task(bad_model))
    crash = runner.submit("crash", "bug", Task(bug))
    _wait(bad), _wait(crash)
    assert bad.status == "failed" and bad.describe() == "resnet18 cannot take 8 px"
    assert crash.status == "failed" and "ZeroDivisionError" in crash.error
    after = runner.submit("after", "still serving", Task(value, ("fine",)))
    _wait(after)
    assert after.result == "fine"  # the runner goes on after a failed job
    assert runner.submit("bad", "again", Task(value, ("retried",))) is not bad  # finished work can run again


def test_a_jobs_start_end_and_failure_with_its_traceback_reach_the_servers_log(caplog):
    caplog.set_level(logging.INFO, logger="embedviz.serve.jobs")
    runner = JobRunner()
    ok = runner.submit("features-ok", "fine", Task(value, ("fine",)), owner="alice")
    crash = runner.submit("features-bug", "buggy", Task(bug), owner="alice")
    _wait(ok), _wait(crash)
    lines = {(r.levelname, r.getMessage().splitlines()[0]) for r in caplog.records}
    assert ("INFO", f"job {ok.id} started: fine (key features-ok, for alice)") in lines
    assert any(level == "INFO" and line.startswith(f"job {ok.id} (key features-ok) done after")
               for level, line in lines)
    failure = [r.getMessage() for r in caplog.records if r.levelname == "ERROR" and crash.id in r.getMessage()]
    assert len(failure) == 1 and "key features-bug" in failure[0]
    assert "Traceback (most recent call last)" in failure[0] and "in bug" in failure[0]  # the child's own frames
    assert "ZeroDivisionError" in failure[0]
    assert any(level == "WARNING" and line.startswith(f"job {crash.id} (key features-bug) failed after")
               for level, line in lines)


def test_an_atlas_is_packed_by_a_job_whose_workers_do_not_run_the_servers_main(tmp_path, monkeypatch, image_folder):
    """The page script is ``__main__`` in the server; the atlas's worker processes start from the job's
    child, so no page runs again in them, and the atlas lands in the store."""
    import sys
    import types

    from embedviz.data.atlas import open_atlas
    from embedviz.data.images import file_hashes, load_collection
    from embedviz.serve.jobs import pack_thumbnails

    marker = tmp_path / "page-ran"
    page = tmp_path / "page.py"
    page.write_text(f"open({str(marker)!r}, 'a').write('x')\n")
    fake_main = types.ModuleType("__main__")
    fake_main.__file__ = str(page)  # what Streamlit leaves in sys.modules while a page runs
    monkeypatch.setitem(sys.modules, "__main__", fake_main)
    collection = load_collection(image_folder)
    hashes = file_hashes(collection)
    paths = [str(p) for p in collection.paths()]
    job = JobRunner().submit("atlas", "thumbnails", Task(pack_thumbnails, (paths, hashes)))
    _wait(job, seconds=120)
    assert job.status == "done", job.error
    atlas = open_atlas(job.result)
    assert atlas is not None and atlas.count == len(collection) == job.total
    assert not marker.exists()
