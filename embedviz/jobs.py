"""Long work (feature extraction) outside any one page's script run.

A :class:`JobRunner` lives once per server process. Jobs run one at a time on a worker thread
(``concurrent.futures``), so a single GPU or the CPU's cores go to one extraction at a time while
the server keeps answering; a job is keyed by what it computes, so a second tab, a refresh or a
return to the page finds the running job instead of starting another. Progress (done, total,
rate) is read from any page; a cancel is honoured at the next batch, and the shards finished so
far stay for the next run. An exception in a job ends that job with its message, not the server.

Why not a job library (RQ, Celery, Huey)? They need a broker or a separate consumer process and
pickled task arguments; here the work needs the models and collections the server already holds,
and one process with one worker thread is the whole deployment. ``concurrent.futures`` is the
well-kept standard piece that fits.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import Cancelled, EmbedVizError
from .progress import Rate

__all__ = ["Job", "JobRunner"]

ACTIVE = ("queued", "running")
RECENT_S = 600.0  # finished jobs stay listed this long, so a refresh after the end shows the outcome
LONG_S = 10.0  # ... when they took at least this long (a job of a second is not worth a line)


@dataclass
class Job:
    """One piece of work and what is known about it; read by pages, written by the worker."""

    key: str
    label: str
    #: Who asked for it (a viewer id); pages show each user their own jobs and their place in line.
    owner: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    status: str = "queued"
    done: int = 0
    total: int = 0
    message: str = ""
    error: str = ""
    result: Any = None
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _rate: Rate | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def cancel(self) -> None:
        """Ask the job to stop at its next progress report (or before it starts)."""
        self._cancel.set()

    def progress(self, done: int, total: int, message: str = "") -> bool:
        """The :data:`~embedviz.progress.ProgressCallback` handed to the work."""
        self.done, self.total = done, total
        if message and message != "images":
            self.message = message
        return self._cancel.is_set()

    def describe(self, unit: str = "images", ahead: int | None = None) -> str:
        """``"1,200 / 1,797 images · 850 images/s · ETA 1 s"``, its place in line, or the outcome."""
        if self.status == "queued":
            if ahead:
                return f"waiting in line: {ahead} job{'s' if ahead > 1 else ''} ahead of it"
            return "waiting for the job ahead of it"
        if self.status == "running" and self._rate is not None:
            return self._rate.describe(self.done, self.total, unit)
        if self.status == "failed":
            return self.error
        if self.status == "done" and self.started is not None and self.finished is not None:
            return f"done: {self.total:,} {unit} in {_seconds(self.finished - self.started)}"
        if self.status == "cancelled":
            return f"cancelled at {self.done:,} / {self.total:,} {unit}" if self.total else "cancelled"
        return self.status

    @property
    def fraction(self) -> float:
        return min(self.done / self.total, 1.0) if self.total else 0.0


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 10 else f"{s:,.0f} s" if s < 120 else f"{s / 60:.1f} min"


class JobRunner:
    """Queues jobs by key and runs them one at a time on a worker thread."""

    def __init__(self, workers: int = 1) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embedviz-job")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(self, key: str, label: str, work: Callable[[Job], Any], owner: str = "") -> Job:
        """Start ``work(job)`` unless a job with ``key`` is already queued or running: then that one."""
        with self._lock:
            current = self._jobs.get(key)
            if current is not None and current.active:
                return current
            job = Job(key=key, label=label, owner=owner)
            self._jobs[key] = job
        self._pool.submit(self._run, job, work)
        return job

    def get(self, key: str) -> Job | None:
        return self._jobs.get(key)

    def jobs(self) -> list[Job]:
        """Every job this process has seen, newest first."""
        return sorted(self._jobs.values(), key=lambda j: j.submitted, reverse=True)

    def active(self) -> list[Job]:
        return [job for job in self.jobs() if job.active]

    def position(self, job: Job) -> int:
        """How many jobs run or wait ahead of ``job`` (0: it is running, or next)."""
        if not job.active:
            return 0
        ahead = [j for j in self.active() if j.submitted < job.submitted or (j.submitted == job.submitted and j.id < job.id)]
        return len(ahead)

    def of(self, owner: str) -> list[Job]:
        """``owner``'s jobs, newest first."""
        return [job for job in self.jobs() if job.owner == owner]

    def recent(self, within: float = RECENT_S, longer_than: float = LONG_S) -> list[Job]:
        """Active jobs, and those that ended in the last ``within`` seconds after running at least
        ``longer_than`` seconds (failed ones whatever they took), newest first."""
        now = time.time()

        def worth_a_line(job: Job) -> bool:
            if job.finished is None or now - job.finished > within:
                return False
            return job.status == "failed" or job.finished - (job.started or job.finished) >= longer_than

        return [job for job in self.jobs() if job.active or worth_a_line(job)]

    @staticmethod
    def _run(job: Job, work: Callable[[Job], Any]) -> None:
        _lower_priority()
        if job._cancel.is_set():
            job.status, job.finished = "cancelled", time.time()
            return
        job.status, job.started, job._rate = "running", time.time(), Rate()
        try:
            job.result = work(job)
            job.status = "done"
        except Cancelled as exc:
            job.status, job.error = "cancelled", str(exc)
        except EmbedVizError as exc:
            job.status, job.error = "failed", str(exc)
        except Exception as exc:  # a bug or a device error: this job ends, the server goes on
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            job.status, job.error = "failed", f"The job failed ({type(exc).__name__}: {first})."
            traceback.print_exc()
        finally:
            job.finished = time.time()
            _free_device()


def _lower_priority() -> None:
    """Run jobs below the pages (``EMBEDVIZ_JOB_NICE``, default 10): on a busy CPU the pages answer
    first and the job takes what is left. Linux sets nice per thread, and the threads and decode
    processes a job starts inherit it."""
    nice = int(os.environ.get("EMBEDVIZ_JOB_NICE", "10"))
    try:
        tid = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    except (AttributeError, OSError):  # not Linux, or not allowed: the job runs at the server's priority
        pass


def _free_device() -> None:
    """Give cached GPU memory back after a job (done, cancelled or crashed), so the next one has it."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
