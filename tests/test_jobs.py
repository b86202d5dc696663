"""Background jobs: one at a time, found again by key, cancellable, and a failure ends only its job."""

from __future__ import annotations

import threading
import time

from embedviz.errors import Cancelled, ModelError
from embedviz.jobs import JobRunner


def _wait(job, seconds: float = 30) -> None:
    end = time.monotonic() + seconds
    while job.active and time.monotonic() < end:
        time.sleep(0.02)
    assert not job.active


def test_the_same_work_submitted_twice_is_one_job_and_jobs_queue():
    runner = JobRunner()
    gate = threading.Event()
    runs = []

    def slow(job):
        runs.append(job.key)
        for i in range(10):
            gate.wait(5)
            job.progress(i + 1, 10, "images")
        return "stored"

    first = runner.submit("key-a", "A", slow)
    again = runner.submit("key-a", "A from a second tab", slow)
    second = runner.submit("key-b", "B", slow)
    assert again is first and second is not first
    time.sleep(0.1)
    assert first.status == "running" and second.status == "queued"  # one at a time
    assert second.describe() == "waiting for the job ahead of it"
    gate.set()
    _wait(first), _wait(second)
    assert first.status == second.status == "done" and first.result == "stored" and runs == ["key-a", "key-b"]
    assert first.done == first.total == 10 and runner.active() == []
    # a page opened after the end still lists them, with their outcome
    assert runner.recent(longer_than=0) == [second, first] and first.describe().startswith("done: 10 images in ")
    assert runner.recent(within=-1, longer_than=0) == [] and runner.recent() == []  # old, or quick: not listed


def test_cancel_stops_at_the_next_report_and_failures_stay_in_their_job():
    runner = JobRunner()

    def counting(job):
        for i in range(1000):
            if job.progress(i, 1000, "images"):
                raise Cancelled(f"Stopped at {i}")
            time.sleep(0.005)

    job = runner.submit("k", "counting", counting)
    time.sleep(0.1)
    job.cancel()
    _wait(job)
    assert job.status == "cancelled" and 0 < job.done < 999
    assert job.describe() == f"cancelled at {job.done:,} / 1,000 images"

    bad = runner.submit("bad", "bad model", lambda job: (_ for _ in ()).throw(ModelError("resnet18 cannot take 8 px")))
    crash = runner.submit("crash", "bug", lambda job: 1 / 0)
    _wait(bad), _wait(crash)
    assert bad.status == "failed" and bad.describe() == "resnet18 cannot take 8 px"
    assert crash.status == "failed" and "ZeroDivisionError" in crash.error
    after = runner.submit("after", "still serving", lambda job: "fine")
    _wait(after)
    assert after.result == "fine"  # the runner goes on after a failed job
    assert runner.submit("bad", "again", lambda job: "retried") is not bad  # finished work can run again
