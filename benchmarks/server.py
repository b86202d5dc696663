"""``streamlit run app.py`` on a free local port, for the browser tests, the benchmarks and the walkthrough.

One way of starting the app as a user does (a fresh process, its own ``EMBEDVIZ_HOME``), so a test
and a benchmark measure the same server. Importable as ``benchmarks.server`` from pytest and from
``python -m benchmarks`` at the repository root.

Example::

    with serve(home, home / "streamlit.log", {"EMBEDVIZ_DATA_ROOTS": str(shared)}) as url:
        page.goto(f"{url}/Explore")
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

__all__ = ["ROOT", "Server", "ServerDidNotStart", "free_port", "serve", "start"]

#: The repository root, where ``app.py`` is.
ROOT = Path(__file__).resolve().parents[1]


class ServerDidNotStart(RuntimeError):
    """The server exited, or did not answer its health check in time; the message ends with its log's last lines."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the server binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running ``streamlit run app.py``; made by :func:`serve`, which also stops it.

    Attributes:
        url: ``http://127.0.0.1:PORT``.
        process: the ``streamlit`` process (its ``pid`` is the server's; decode workers are its children).
        log_path: the file that holds the server's stdout and stderr.
    """

    def __init__(self, url: str, process: subprocess.Popen, log_path: Path) -> None:
        self.url = url
        self.process = process
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid


@contextlib.contextmanager
def start(home: Path, log_path: Path, env: Mapping[str, str] | None = None, flags: Sequence[str] = (),
          timeout: float = 60.0, root: Path = ROOT) -> Iterator[Server]:
    """Like :func:`serve`, but yields the :class:`Server` (its process too, for benchmarks that count its CPU).
    ``root``: the checkout whose ``app.py`` runs (another one's, to measure an earlier version beside this)."""
    port = free_port()
    environment = {**os.environ, "EMBEDVIZ_HOME": str(home), **(env or {})}
    if Path(root).resolve() != ROOT:
        environment["PYTHONPATH"] = os.pathsep.join([str(root), environment.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true", *flags]
    log_path = Path(log_path)
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=root, env=environment, stdout=log, stderr=subprocess.STDOUT)
        try:
            server = Server(f"http://127.0.0.1:{port}", process, log_path)
            _wait_for_health(server, timeout)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:  # stuck in a script run: it must not outlive the caller
                process.kill()
                process.wait()


@contextlib.contextmanager
def serve(home: Path, log_path: Path, env: Mapping[str, str] | None = None, flags: Sequence[str] = (),
          timeout: float = 60.0, root: Path = ROOT) -> Iterator[str]:
    """Start ``streamlit run app.py`` on a free port, wait until it is healthy, yield its URL, stop it.

    Args:
        home: the server's ``EMBEDVIZ_HOME`` (its store).
        log_path: where the server's stdout and stderr go.
        env: more environment variables (over this process's own), e.g. ``EMBEDVIZ_DATA_ROOTS``.
        flags: more ``streamlit run`` options, e.g. ``("--server.maxUploadSize", "10")``.
        timeout: seconds to wait for ``/_stcore/health`` before giving up.
        root: the checkout to run (default: this one).

    Raises:
        ServerDidNotStart: the process exited first, or ``timeout`` passed.
    """
    with start(home, log_path, env, flags, timeout, root) as server:
        yield server.url


def _wait_for_health(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=1)
            return
        except OSError:
            exited = server.process.poll()
            if exited is not None or time.monotonic() > deadline:
                why = f"exited with status {exited}" if exited is not None else f"not healthy after {timeout:g} s"
                raise ServerDidNotStart(f"streamlit run app.py {why}; {server.log_path} ends with:\n"
                                        + _tail(server.log_path)) from None
            time.sleep(0.3)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
