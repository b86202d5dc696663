"""Long work (feature extraction) outside any one page's script run, in a child process.

A :class:`JobRunner` lives once per server process and serves every user. A job is keyed by its
owner *and* what it computes: a second tab or a refresh of the same owner finds their running
job, while two users asking for the same features each get their own job, see only its progress
and cancel only it (the result is shared through the feature store: the second job reads what
the first stored, or resumes from its finished shards).

Jobs take turns fairly: the next job started is the oldest queued job of the owner whose last
start is oldest (round-robin between owners), so one user's ten jobs do not hold another's
behind all ten; an owner may have at most ``EMBEDVIZ_JOBS_PER_USER`` jobs queued or running, and
``EMBEDVIZ_JOB_TIMEOUT_S`` (0: none) ends a job that runs longer.

Each job runs in a child process (the ``forkserver`` start method, where the platform has it:
the fork server is a fresh single-threaded process that has imported torch once, so a job starts
in milliseconds without forking the threaded server; ``spawn`` elsewhere). A crash of native
code there (a segfault or abort in a model or a codec) ends that job with a one-line reason and
the server and the next job go on. Progress crosses back on a pipe and a cancel goes over on an
event; the work is a :class:`Task`: a module-level function and picklable arguments (the child
rebuilds the model itself, see :class:`Extraction`).

Why not a job library (RQ, Celery, Huey)? They need a broker and a separate consumer service;
here one server process with one child per job is the whole deployment.
"""

from __future__ import annotations

import atexit
import json
import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from embedviz import settings
from embedviz.errors import Cancelled, EmbedVizError, ModelError
from embedviz.extract.ray_options import RayOptions
from embedviz.extract.spec import ModelSpec
from embedviz.limits import cap
from embedviz.progress import Rate

__all__ = ["Job", "JobRunner", "Task", "Extraction", "extract", "pack_thumbnails", "audit_data"]

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
RECENT_S = 600.0  # finished jobs stay listed this long, so a refresh after the end shows the outcome
LONG_S = 10.0  # ... when they took at least this long (a job of a second is not worth a line)
KEEP_FINISHED = 200  # finished jobs remembered per server (the Extract page shows the last outcome)


@dataclass(frozen=True)
class Task:
    """Work for a child process: ``fn(*args, progress=callback)``, its return value the job's result.

    ``fn`` must be a module-level function and ``args`` and the result picklable (they cross a
    process boundary); ``callback(done, total, message)`` returns ``True`` when the job should stop.
    """

    fn: Callable[..., Any]
    args: tuple = ()


@dataclass(eq=False)
class Job:
    """One piece of work and what is known about it; read by pages, written by the runner."""

    key: str
    label: str
    #: Who asked for it (a viewer id); each user sees, cancels and queues only their own jobs.
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
    _guard: Any = field(default_factory=threading.RLock, repr=False)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def cancel(self) -> None:
        """Stop the job: a queued one at once, a running one at its next progress report."""
        with self._guard:
            self._cancel.set()
            if self.status == "queued":
                self.status, self.finished = "cancelled", time.time()

    def progress(self, done: int, total: int, message: str = "") -> bool:
        """Record a progress report; ``True`` when the job was asked to stop."""
        if self._rate is not None:
            self._rate.note(done)  # the first report: images resumed from an earlier run are not this run's rate
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
    """Queues jobs per owner and runs ``workers`` at a time, each in a child process, taking turns
    between owners.

    Args:
        workers: jobs running at once (one: the device goes to one extraction at a time).
        grace_s: how long a job asked to stop (cancelled, or past its time limit) may take to stop
            by itself, keeping what it finished, before its process is ended.
    """

    def __init__(self, workers: int = 1, grace_s: float = 10.0) -> None:
        self._workers = workers
        self._grace_s = grace_s
        self._jobs: dict[str, Job] = {}
        self._work: dict[str, tuple[Task, Callable[[Job], None] | None]] = {}
        self._last_start: dict[str, int] = {}  # owner -> the turn they last started a job in
        self._turn = 0
        self._lock = threading.RLock()

    def submit(self, key: str, label: str, task: Task, owner: str = "",
               on_done: Callable[[Job], None] | None = None) -> Job:
        """Queue ``task`` as ``owner``'s job computing ``key`` (or find their queued or running one).

        ``on_done(job)`` runs in this process when the child finished well (``job.result`` is set),
        before the job is marked done; an :class:`EmbedVizError` it raises fails the job.
        Raises :class:`EmbedVizError` when ``owner`` already has as many jobs as
        ``EMBEDVIZ_JOBS_PER_USER`` allows.
        """
        if not isinstance(task, Task):
            raise TypeError("JobRunner.submit takes a Task (a module-level function and picklable arguments).")
        with self._lock:
            mine = [job for job in self._jobs.values() if job.owner == owner and job.active]
            for job in mine:
                if job.key == key:
                    return job
            limit = cap("jobs_per_user")
            if limit.count() > 0 and len(mine) >= limit.count():
                raise EmbedVizError(limit.message(
                    f"You have {len(mine)} extraction{'s' if len(mine) != 1 else ''} queued or running")
                    + " Cancel one, or wait for one to finish.")
            job = Job(key=key, label=label, owner=owner, _guard=self._lock)
            self._jobs[job.id] = job
            self._work[job.id] = (task, on_done)
            self._forget_old()
            self._dispatch()
        return job

    def get(self, key: str, owner: str = "") -> Job | None:
        """``owner``'s latest job computing ``key`` (active or not), or ``None``."""
        found = [job for job in self.jobs() if job.key == key and job.owner == owner]
        return found[0] if found else None

    def jobs(self) -> list[Job]:
        """Every job this process remembers, newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: (j.submitted, j.id), reverse=True)

    def active(self) -> list[Job]:
        return [job for job in self.jobs() if job.active]

    def of(self, owner: str) -> list[Job]:
        """``owner``'s jobs, newest first."""
        return [job for job in self.jobs() if job.owner == owner]

    def queue(self) -> list[Job]:
        """The queued jobs in the order they will start (the fair order; see :meth:`position`)."""
        with self._lock:
            waiting: dict[str, list[Job]] = {}
            for job in sorted(self._jobs.values(), key=lambda j: (j.submitted, j.id)):
                if job.status == "queued":
                    waiting.setdefault(job.owner, []).append(job)
            last, turn, order = dict(self._last_start), self._turn, []
            while waiting:
                owner = min(waiting, key=lambda o: (last.get(o, -1), waiting[o][0].submitted, waiting[o][0].id))
                order.append(waiting[owner].pop(0))
                if not waiting[owner]:
                    del waiting[owner]
                turn += 1
                last[owner] = turn
            return order

    def position(self, job: Job) -> int:
        """How many jobs run or wait ahead of ``job`` (0: it is running, or next), in the fair
        order: owners take turns, the one whose last start is oldest first."""
        with self._lock:
            if job.status != "queued":
                return 0
            running = sum(j.status == "running" for j in self._jobs.values())
            order = self.queue()
            return running + (order.index(job) if job in order else 0)

    def recent(self, within: float = RECENT_S, longer_than: float = LONG_S) -> list[Job]:
        """Active jobs, and those that ended in the last ``within`` seconds after running at least
        ``longer_than`` seconds (failed ones whatever they took), newest first."""
        now = time.time()

        def worth_a_line(job: Job) -> bool:
            if job.finished is None or now - job.finished > within:
                return False
            return job.status == "failed" or job.finished - (job.started or job.finished) >= longer_than

        return [job for job in self.jobs() if job.active or worth_a_line(job)]

    # -- the turns --------------------------------------------------------------------------------

    def _forget_old(self) -> None:
        ended = sorted((j for j in self._jobs.values() if not j.active), key=lambda j: j.finished or 0.0)
        for job in ended[:max(0, len(ended) - KEEP_FINISHED)]:
            del self._jobs[job.id]
            self._work.pop(job.id, None)

    def _dispatch(self) -> None:
        """Start queued jobs while a worker is free (called with the lock held)."""
        for job in [j for j in self._jobs.values() if not j.active]:
            self._work.pop(job.id, None)  # cancelled while queued: never starts
        while sum(j.status == "running" for j in self._jobs.values()) < self._workers:
            order = self.queue()
            if not order:
                return
            job = order[0]
            task, on_done = self._work.pop(job.id)
            self._turn += 1
            self._last_start[job.owner] = self._turn
            job.status, job.started, job._rate = "running", time.time(), Rate()
            threading.Thread(target=self._run, args=(job, task, on_done), name=f"embedviz-job-{job.id}",
                             daemon=True).start()

    def _run(self, job: Job, task: Task, on_done: Callable[[Job], None] | None) -> None:
        log.info("job %s started: %s (key %s, for %s)", job.id, job.label, job.key, job.owner or "nobody named")
        try:
            status, text = self._in_child(job, task)
            if status == "done" and on_done is not None:
                on_done(job)
        except EmbedVizError as exc:
            status, text = "failed", str(exc)
        except Exception as exc:  # a bug in this process's part: this job ends, the runner goes on
            log.exception("job %s (%s, key %s) failed", job.id, job.label, job.key)
            status, text = "failed", _one_line(exc)
        took = time.time() - (job.started or time.time())
        if status == "failed":
            log.warning("job %s (key %s) failed after %.1f s: %s", job.id, job.key, took, text)
        else:
            log.info("job %s (key %s) %s after %.1f s", job.id, job.key, status, took)
        with self._lock:
            job.status, job.error, job.finished = status, text, time.time()
            self._dispatch()

    def _in_child(self, job: Job, task: Task) -> tuple[str, str]:
        """Run ``task`` in a child process until it ends, relaying progress and a cancel; returns
        the job's outcome (status, error line)."""
        context = _context()
        receive, send = context.Pipe(duplex=False)
        stop = context.Event()
        process = _process(context, target=_child, args=(task, dict(os.environ), send, stop, os.getpid()), daemon=False,
                           name=f"embedviz-job-{job.id}")
        try:
            process.start()
        except BaseException:  # arguments that do not pickle, or no process to be had
            receive.close()
            send.close()
            raise
        _children.add(process)
        send.close()  # the child holds the other end: reading sees its end when it exits
        limit = cap("job_timeout_s").value()
        deadline = time.monotonic() + limit if limit > 0 else None
        outcome: tuple | None = None
        timed_out, kill_at = False, None
        try:
            while True:
                now = time.monotonic()
                if kill_at is None and job._cancel.is_set():
                    stop.set()
                    kill_at = now + self._grace_s
                if kill_at is None and deadline is not None and now > deadline:
                    timed_out = True
                    stop.set()
                    kill_at = now + self._grace_s
                if kill_at is not None and now > kill_at:
                    _end(process)
                    break
                try:
                    if not receive.poll(0.1):
                        continue
                    message = receive.recv()
                except (EOFError, OSError):  # the child exited (or died): nothing more will come
                    break
                if message[0] == "progress":
                    job.progress(*message[1:])
                elif message[0] == "traceback":  # the child's bug, for the server's log
                    log.error("job %s (%s, key %s) raised in its process:\n%s", job.id, job.label, job.key,
                              message[1].rstrip())
                else:
                    outcome = message
            process.join(timeout=30)
            if process.is_alive():
                _end(process)
        finally:
            receive.close()
            _children.discard(process)
        if outcome is not None and outcome[0] == "done":
            job.result = outcome[1]
            return "done", ""
        if timed_out:
            return "failed", _timed_out(limit)
        if outcome is not None:
            return outcome[0], outcome[1]
        if job._cancel.is_set():
            return "cancelled", "Cancelled; the finished part is kept."
        return "failed", _died(process.exitcode)


def _one_line(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"The job failed ({type(exc).__name__}: {first})."


def _timed_out(limit: float) -> str:
    return cap("job_timeout_s").message(f"The extraction was stopped after {_seconds(limit)}") + \
        " The finished part is kept: extracting again resumes from there."


_SIGNAL_HINTS = {
    "SIGSEGV": "a crash in native code: the model or an image decoder",
    "SIGBUS": "a crash in native code: the model or an image decoder",
    "SIGILL": "a crash in native code: the model or an image decoder",
    "SIGFPE": "a crash in native code: the model or an image decoder",
    "SIGABRT": "native code aborted: the model, a codec or the device driver",
    "SIGKILL": "often: the machine ran out of memory",
    "SIGTERM": "stopped from outside",
}


def _died(exitcode: int | None) -> str:
    """The one line for a child that ended without saying how (it crashed or was killed)."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = _SIGNAL_HINTS.get(name, "")
        return (f"The extraction stopped: its process was killed by {name}" + (f" ({hint})" if hint else "")
                + ". The server and other jobs go on; the finished part is kept. Try a smaller batch, the CPU, "
                  "or another model, and tell the operator if it happens again.")
    return (f"The extraction stopped: its process exited with code {exitcode} before it finished. The server and "
            "other jobs go on; the finished part is kept.")


def _end(process) -> None:
    """End a child that did not stop when asked: SIGTERM, then SIGKILL."""
    process.terminate()
    process.join(timeout=5)
    if process.is_alive():
        process.kill()
        process.join(timeout=5)


#: Children still running; ended when the server exits (they are not daemons, so they may start
#: decode workers of their own, and multiprocessing would otherwise wait for them at exit).
_children: set = set()


@atexit.register
def _end_children() -> None:
    for process in list(_children):
        if process.is_alive():
            _end(process)


_context_lock = threading.Lock()


def _context():
    """The multiprocessing context jobs start in: a fork server that has imported embedviz (and
    torch) once, or ``spawn`` where there is no fork server. Never a plain fork of the threaded
    server."""
    with _context_lock:
        if "forkserver" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["embedviz.serve.jobs"])
            return context
        return multiprocessing.get_context("spawn")


def _process(context, **options):
    """A child process of ``context`` that does not run the server's ``__main__`` again.

    multiprocessing re-imports the parent's ``__main__`` in every child, and Streamlit makes each
    page script ``__main__`` while it runs (and leaves it there): a child would run a page. The
    work is a module-level function, so the child needs no ``__main__``; with the fork server,
    the launch leaves it out (elsewhere the platform's own launch is used as it is)."""
    process = context.Process(**options)
    if context.get_start_method() == "forkserver":
        process._Popen = _launch_without_main  # what the context's Process calls in start()
    return process


def _launch_without_main(process_obj):
    import io
    from multiprocessing import context as mp_context
    from multiprocessing import forkserver, popen_forkserver, reduction, spawn, util

    class Launch(popen_forkserver.Popen):
        def _launch(self, process_obj) -> None:  # popen_forkserver.Popen._launch, less __main__
            prep_data = {k: v for k, v in spawn.get_preparation_data(process_obj._name).items()
                         if not k.startswith("init_main")}
            buf = io.BytesIO()
            mp_context.set_spawning_popen(self)
            try:
                reduction.dump(prep_data, buf)
                reduction.dump(process_obj, buf)
            finally:
                mp_context.set_spawning_popen(None)
            self.sentinel, w = forkserver.connect_to_new_process(self._fds)
            _parent_w = os.dup(w)
            self.finalizer = util.Finalize(self, util.close_fds, (_parent_w, self.sentinel))
            with open(w, "wb", closefd=True) as f:
                f.write(buf.getbuffer())
            self.pid = forkserver.read_signed(self.sentinel)

    return Launch(process_obj)


def _child(task: Task, environ: dict[str, str], send, stop, server: int) -> None:
    """The child's side: the settings of the moment the job was asked for, a lower priority, the
    work with a progress callback that relays to the parent, and one last message with the outcome."""
    os.environ.clear()
    os.environ.update(environ)  # a fork server keeps the environment it started with
    _lower_priority()
    _first_to_go()
    _end_with_server(server)
    if "fork" in multiprocessing.get_all_start_methods():
        # A fork server's child inherits its start method, so the job's decode workers would be the fork
        # server's children: torch's check that their parent lives would then watch the fork server, and
        # they would outlive a job that crashed, was stopped or lost its server. Forked, they are the job's own.
        multiprocessing.set_start_method("fork", force=True)
    gone = threading.Event()  # the parent went away: stop as if cancelled

    def progress(done: int, total: int, message: str = "") -> bool:
        if not gone.is_set():
            try:
                send.send(("progress", int(done), int(total), str(message)))
            except OSError:
                gone.set()
        return stop.is_set() or gone.is_set()

    try:
        outcome: tuple = ("done", task.fn(*task.args, progress=progress))
    except Cancelled as exc:
        outcome = ("cancelled", str(exc))
    except EmbedVizError as exc:
        outcome = ("failed", str(exc))
    except Exception as exc:  # noqa: BLE001 (a bug or a device error: one line to the user, the traceback to the log)
        outcome = ("failed", _one_line(exc))
        try:
            send.send(("traceback", traceback.format_exc()))
        except OSError:  # the server is gone: this process's own standard error is all that is left
            log.exception("job process %d failed", os.getpid())
    finally:
        _free_device()
    try:
        send.send(outcome)
    except OSError:
        pass
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:  # a result that does not pickle
        send.send(("failed", _one_line(exc)))
    send.close()


def _end_with_server(server: int, every_s: float = 1.0) -> None:
    """End this job's process when the server that asked for it is gone. A job blocked in native code
    or a decode pool sends nothing that could fail, and would otherwise run on, unseen, after the
    server stopped; the fork server cannot end it either, since it waits for its children (each holds
    its end of the pipe that tells the fork server the server is alive)."""

    def gone() -> bool:
        try:
            os.kill(server, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # a process of another user took the number: ours is gone
            return True
        return _zombie(server)

    def watch() -> None:
        while True:
            time.sleep(every_s)
            if gone():
                log.warning("the server (process %d) is gone; job process %d ends", server, os.getpid())
                os._exit(70)

    threading.Thread(target=watch, name="embedviz-job-watch", daemon=True).start()


def _first_to_go() -> None:
    """When memory runs out, the kernel ends this job before the server (Linux's OOM score; raising
    one's own needs no privilege). The job fails with its signal named; everyone's pages go on."""
    try:
        with open("/proc/self/oom_score_adj", "w") as fh:
            fh.write("1000")
    except OSError:  # not Linux, or not allowed
        pass


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has exited but was not yet reaped (Linux; elsewhere: no)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _lower_priority() -> None:
    """Run jobs below the pages (``EMBEDVIZ_JOB_NICE``, default 10): on a busy CPU the pages answer
    first and the job takes what is left. Called first thing in the child, so the threads and
    decode processes it starts inherit it."""
    nice = settings.job_nice()
    try:
        current = os.getpriority(os.PRIO_PROCESS, 0)
        if current < nice:
            os.nice(nice - current)
    except (AttributeError, OSError):  # not allowed: the job runs at the server's priority
        pass


def _free_device() -> None:
    """Give cached GPU memory back after a job (done, cancelled or crashed), so the next one has it."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


@dataclass(frozen=True)
class Extraction:
    """Everything a child needs to extract one feature set, as picklable values.

    Args:
        collection: the images.
        model: the model spec, as the UI keeps it.
        classes: a class index file, or ``None``.
        layer: the layer to read.
        hashes: the images' SHA-256s (read once by the server).
        key: the store key the server expects; the child checks it rebuilt the same model.
        device, batch_size, ray: where and how to run.
    """

    collection: Any
    model: ModelSpec
    classes: str | None
    layer: str
    hashes: list[str]
    key: str
    device: str = "auto"
    batch_size: int = 64
    ray: RayOptions | None = None


def load_for(spec: ModelSpec, classes: str | None):
    """The model a spec names, with its preprocessing and class names: what the server loads,
    rebuilt in the child."""
    from embedviz.data.classes import load_class_index
    from embedviz.extract.models import load_model
    from embedviz.extract.preprocessing import make_preprocessing

    model = load_model(spec.architecture, spec.weights)
    if spec.preprocessing:
        model = model.with_preprocessing(make_preprocessing(**json.loads(spec.preprocessing)))
    return model.with_class_names(load_class_index(classes)) if classes and not model.is_pixels else model


def extract(work: Extraction, progress: Callable[[int, int, str], bool]) -> str:
    """The job of an extraction: features into the store (resuming from finished shards); returns
    the store key."""
    from embedviz.data.images import collection_hash
    from embedviz.extract.features import compute_features, feature_key

    model = load_for(work.model, work.classes)
    if feature_key(collection_hash(work.collection, work.hashes), model, work.layer) != work.key:
        raise ModelError("The model's files changed since the extraction was asked for; choose the model again.")
    compute_features(work.collection, model, work.layer, progress=progress, hashes=work.hashes, device=work.device,
                     batch_size=work.batch_size, ray=work.ray)
    return work.key


def pack_thumbnails(paths: list[str], hashes: list[str], progress: Callable[[int, int, str], bool]) -> str:
    """The job of a sprite atlas (:mod:`embedviz.data.atlas`): every image's thumbnail packed into
    sheets in the store; returns the atlas key. A job, not the page's own work: its worker processes
    must not start from the server, whose ``__main__`` is a page script (see :func:`_process`)."""
    from embedviz.data.atlas import build_atlas

    return build_atlas(paths, hashes, progress=progress).key


def audit_data(features, samples, features_key: str, source: str, hashes: list[str] | None, key: str,
               progress: Callable[[int, int, str], bool]) -> str:
    """The job of a data audit (:mod:`embedviz.explore.audit`): the report kept in the store under
    ``key``, which it returns. A job so that an audit of many samples runs beside the page, with a
    Cancel button, under the per-user job limits."""
    from embedviz.explore.audit import audit, save_audit

    save_audit(audit(features, samples, features_key=features_key, source=source, hashes=hashes, progress=progress),
               key)
    return key
