"""Jobs on a shared server: each owner sees and cancels only their own, owners take turns, a cap
and a time limit hold, and a crash of native code in a job ends that job only.

Jobs run in child processes, so the work is module-level functions here; a gate is a file the
test creates when a job may go on (threading events do not cross processes).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from embedviz.errors import EmbedVizError
from embedviz.serve.jobs import JobRunner, Task


def wait_for_file(gate: str, progress) -> str:
    """Report once, then wait (up to a minute) until ``gate`` exists or the job is cancelled."""
    progress(1, 10, "images")
    end = time.monotonic() + 60
    while not os.path.exists(gate) and time.monotonic() < end:
        if progress(1, 10, "images"):
            return "stopped"
        time.sleep(0.02)
    return "opened"


def name(value: str, progress) -> str:
    progress(1, 1, "images")
    return value


def abort(progress) -> None:
    progress(3, 10, "images")
    os.abort()


def segfault(progress) -> None:
    import ctypes

    progress(3, 10, "images")
    ctypes.string_at(0)  # reads address 0: SIGSEGV in native code


def sleep(seconds: float, progress) -> str:
    time.sleep(seconds)  # never reports: only the time limit can end it
    return "woke"


def priority(progress) -> int:
    return os.getpriority(os.PRIO_PROCESS, 0)


@pytest.fixture(scope="module", autouse=True)
def fork_server() -> None:
    """Start the fork server once (it imports torch: seconds), so each test's time is its own."""
    _wait(JobRunner().submit("warm", "warm", Task(name, ("warm",))), seconds=120)


def _wait(*jobs, seconds: float = 60) -> None:
    end = time.monotonic() + seconds
    while any(job.active for job in jobs) and time.monotonic() < end:
        time.sleep(0.02)
    assert not any(job.active for job in jobs), [(job.label, job.status) for job in jobs]


def _running(job, seconds: float = 60) -> None:
    end = time.monotonic() + seconds
    while job.status != "running" and time.monotonic() < end:
        time.sleep(0.02)
    while job.done == 0 and job.active and time.monotonic() < end:  # the child has reported
        time.sleep(0.02)
    assert job.status == "running", (job.status, job.error)


def test_two_owners_of_the_same_work_each_get_a_job_and_cancel_only_their_own(tmp_path):
    runner = JobRunner(grace_s=1)
    gate = str(tmp_path / "gate")
    alice = runner.submit("features-k", "digits", Task(wait_for_file, (gate,)), owner="alice")
    _running(alice)
    bob = runner.submit("features-k", "digits", Task(wait_for_file, (gate,)), owner="bob")
    assert bob is not alice and bob.status == "queued"
    # a refresh or second tab of each finds their own job; nobody finds the other's
    assert runner.submit("features-k", "digits", Task(wait_for_file, (gate,)), owner="alice") is alice
    assert runner.get("features-k", "alice") is alice and runner.get("features-k", "bob") is bob
    assert runner.get("features-k", "carol") is None
    bob.cancel()
    assert bob.status == "cancelled"
    time.sleep(0.3)
    assert alice.status == "running"  # bob's cancel did not touch alice's extraction
    Path(gate).touch()
    _wait(alice)
    assert alice.status == "done" and alice.result == "opened" and alice.done == 1 and alice.total == 10


def test_an_owner_over_the_job_cap_is_refused_with_the_setting_named(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBEDVIZ_JOBS_PER_USER", "2")
    runner = JobRunner(grace_s=1)
    gate = str(tmp_path / "gate")
    first = runner.submit("a1", "a1", Task(wait_for_file, (gate,)), owner="alice")
    second = runner.submit("a2", "a2", Task(wait_for_file, (gate,)), owner="alice")
    with pytest.raises(EmbedVizError) as refused:
        runner.submit("a3", "a3", Task(wait_for_file, (gate,)), owner="alice")
    message = str(refused.value)
    assert "You have 2 extractions queued or running" in message and "EMBEDVIZ_JOBS_PER_USER" in message
    assert "\n" not in message
    other = runner.submit("b1", "b1", Task(wait_for_file, (gate,)), owner="bob")  # the cap is per user
    second.cancel()
    third = runner.submit("a3", "a3", Task(wait_for_file, (gate,)), owner="alice")  # room again
    Path(gate).touch()
    _wait(first, other, third)
    assert [j.status for j in (first, second, other, third)] == ["done", "cancelled", "done", "done"]


@pytest.mark.parametrize("queued", [3, pytest.param(10, marks=pytest.mark.slow)])
def test_owners_take_turns_so_bobs_job_starts_right_after_alices_current_one(tmp_path, monkeypatch, queued):
    """Alice queues as many as her cap allows (three by default; ten on a server that allows ten)."""
    if queued > 3:
        monkeypatch.setenv("EMBEDVIZ_JOBS_PER_USER", str(queued))
    runner = JobRunner()
    gate = str(tmp_path / "gate")
    alice = [runner.submit("a0", "alice 0", Task(wait_for_file, (gate,)), owner="alice")]
    _running(alice[0])
    alice += [runner.submit(f"a{i}", f"alice {i}", Task(name, (f"a{i}",)), owner="alice") for i in range(1, queued)]
    bob = runner.submit("b", "bob", Task(name, ("b",)), owner="bob")
    # place in line follows the turns: bob is next, alice's others after him
    assert runner.queue()[0] is bob and runner.position(bob) == 1
    assert [runner.position(j) for j in alice] == [0, *range(2, queued + 1)]
    assert bob.describe(ahead=runner.position(bob)) == "waiting in line: 1 job ahead of it"
    Path(gate).touch()
    _wait(*alice, bob)
    started = sorted([*alice, bob], key=lambda j: j.started)
    assert [j.label for j in started] == ["alice 0", "bob", *[f"alice {i}" for i in range(1, queued)]]
    assert all(j.status == "done" for j in started)


def test_a_native_crash_ends_only_its_job_and_the_next_job_runs():
    runner = JobRunner()
    aborted = runner.submit("abort", "abort", Task(abort), owner="alice")
    crashed = runner.submit("segv", "segv", Task(segfault), owner="bob")
    after = runner.submit("after", "after", Task(name, ("still serving",)), owner="carol")
    _wait(aborted, crashed, after)
    assert aborted.status == "failed" and crashed.status == "failed"
    assert aborted.error.startswith("The extraction stopped: its process was killed by SIGABRT")
    assert crashed.error.startswith("The extraction stopped: its process was killed by SIGSEGV")
    assert "\n" not in crashed.error and aborted.done == 3  # progress up to the crash was seen
    assert after.status == "done" and after.result == "still serving"  # the runner (and this process) go on
    assert runner.recent(longer_than=60)[:2] == [crashed, aborted]  # failed jobs stay listed with their line


def test_a_job_past_the_time_limit_fails_with_the_limit_and_its_setting(monkeypatch):
    monkeypatch.setenv("EMBEDVIZ_JOB_TIMEOUT_S", "1")
    runner = JobRunner(grace_s=0.5)
    started = time.monotonic()
    job = runner.submit("sleepy", "sleepy", Task(sleep, (60,)), owner="alice")
    _wait(job, seconds=30)
    assert time.monotonic() - started < 20
    assert job.status == "failed" and job.result is None
    assert "stopped after 1.0 s" in job.error and "EMBEDVIZ_JOB_TIMEOUT_S" in job.error
    monkeypatch.setenv("EMBEDVIZ_JOB_TIMEOUT_S", "0")  # 0: no limit
    quick = runner.submit("quick", "quick", Task(sleep, (1.5,)), owner="alice")
    _wait(quick)
    assert quick.status == "done" and quick.result == "woke"


def test_a_page_script_as_main_is_not_run_again_in_the_job(tmp_path, monkeypatch):
    """Streamlit makes each page script ``__main__`` while it runs; the job's child must not run it."""
    import types

    page = tmp_path / "page.py"
    page.write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\nraise SystemExit('a page ran in the job')\n")
    fake = types.ModuleType("__main__")
    fake.__file__ = str(page)
    monkeypatch.setitem(sys.modules, "__main__", fake)
    job = JobRunner().submit("page", "page", Task(name, ("ok",)))
    _wait(job)
    assert job.status == "done" and job.result == "ok" and not (tmp_path / "ran").exists()


@pytest.mark.slow  # the child decodes images and starts its own decode workers: about 10 s here
def test_an_extraction_runs_in_the_child_and_its_features_land_in_the_store(image_folder):
    from embedviz.data.images import collection_hash, file_hashes, load_collection
    from embedviz.extract.features import feature_key
    from embedviz.extract.layers import default_layer
    from embedviz.extract.store import FeatureStore
    from embedviz.serve.jobs import Extraction, extract, load_for

    collection = load_collection(image_folder)
    from embedviz.extract.spec import ModelSpec

    spec = ModelSpec("pixels")
    model = load_for(spec, None)
    layer, hashes = default_layer(model), file_hashes(collection)
    key = feature_key(collection_hash(collection, hashes), model, layer)
    seen = []
    work = Extraction(collection, spec, None, layer, hashes, key, "cpu", 4)
    job = JobRunner().submit(key, "shapes", Task(extract, (work,)), owner="alice",
                             on_done=lambda job: seen.append(FeatureStore().get(job.result)))
    _wait(job)
    assert job.status == "done" and job.result == key and job.total == len(collection)
    [stored] = seen  # the parent read what the child stored, before the job was marked done
    assert stored is not None and len(stored) == len(collection) - 1  # the unreadable file is skipped
    wrong = Extraction(collection, spec, None, layer, hashes, "not-this-key", "cpu", 4)
    refused = JobRunner().submit("x", "shapes", Task(extract, (wrong,)))
    _wait(refused)
    assert refused.status == "failed" and "choose the model again" in refused.error


def test_jobs_run_below_the_pages_priority(monkeypatch):
    if not sys.platform.startswith("linux"):
        pytest.skip("process priorities as on Linux")
    monkeypatch.setenv("EMBEDVIZ_JOB_NICE", "7")
    job = JobRunner().submit("n", "nice", Task(priority))
    _wait(job)
    assert job.status == "done" and job.result >= 7
    assert os.getpriority(os.PRIO_PROCESS, 0) < 7  # the server is untouched


def write_pid_and_hang(path: str, progress) -> None:
    """Say who runs the job, then block without reporting (as a job stuck in native code would)."""
    Path(path).write_text(str(os.getpid()))
    time.sleep(120)


_SERVER = """
import os, sys, time
from embedviz.serve.jobs import JobRunner, Task
from tests.serve.test_hosting_jobs import write_pid_and_hang
JobRunner().submit("hang", "hang", Task(write_pid_and_hang, (sys.argv[1],)), owner="alice")
while not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
os._exit(0)  # the server dies without a word: no cancel, no clean-up
"""


@pytest.mark.slow
def test_a_job_ends_when_the_server_that_started_it_is_gone(tmp_path):
    import subprocess

    pid_file = tmp_path / "job.pid"
    subprocess.run([sys.executable, "-c", _SERVER, str(pid_file)], cwd=Path(__file__).parents[2], timeout=180,
                   check=True)
    pid = int(pid_file.read_text())
    end = time.monotonic() + 20
    while time.monotonic() < end and Path(f"/proc/{pid}").exists():
        time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists(), "the job's process outlived its server"


def oom_score(progress) -> str:
    return Path("/proc/self/oom_score_adj").read_text().strip()


def test_a_job_is_the_first_the_kernel_ends_when_memory_runs_out():
    if not Path("/proc/self/oom_score_adj").exists():
        pytest.skip("Linux's OOM score")
    job = JobRunner().submit("oom", "oom", Task(oom_score), owner="alice")
    _wait(job)
    assert job.status == "done" and job.result == "1000"
    assert Path("/proc/self/oom_score_adj").read_text().strip() != "1000"  # the server's own is untouched


class _Slow:
    """A dataset whose items take a while, so decode workers are busy when the job goes."""

    def __len__(self) -> int:
        return 10_000

    def __getitem__(self, i: int) -> int:
        time.sleep(0.05)
        return i


def decode_then_hang(path: str, progress) -> None:
    """Start decode workers as the engine does (a DataLoader), say who they are, then block."""
    import torch

    batches = iter(torch.utils.data.DataLoader(_Slow(), batch_size=2, num_workers=2))
    next(batches)
    pids = [os.getpid(), *(w.pid for w in batches._workers)]
    Path(path).write_text(" ".join(map(str, pids)))
    time.sleep(120)


_SERVER_WITH_WORKERS = _SERVER.replace("write_pid_and_hang", "decode_then_hang")


@pytest.mark.slow
def test_a_jobs_decode_workers_end_with_it_when_the_server_is_gone(tmp_path):
    import subprocess

    pid_file = tmp_path / "job.pids"
    subprocess.run([sys.executable, "-c", _SERVER_WITH_WORKERS, str(pid_file)], cwd=Path(__file__).parents[2],
                   timeout=180, check=True)
    end = time.monotonic() + 60
    while time.monotonic() < end and len(pid_file.read_text().split()) < 3:
        time.sleep(0.1)
    pids = [int(p) for p in pid_file.read_text().split()]
    assert len(pids) == 3  # the job and its two decode workers
    end = time.monotonic() + 30
    while time.monotonic() < end and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.2)
    assert not [p for p in pids if Path(f"/proc/{p}").exists()], "processes outlived their server"
