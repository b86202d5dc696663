"""The progress protocol shared by extraction and reduction.

A callback receives ``(done, total, message)`` and returns ``True`` to ask the work to
stop; the work then raises :class:`~embedviz.errors.Cancelled` at the next safe point.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

from embedviz.errors import Cancelled

__all__ = ["ProgressCallback", "report", "Rate"]

ProgressCallback = Callable[[int, int, str], Optional[bool]]


def report(progress: ProgressCallback | None, done: int, total: int, message: str = "") -> None:
    """Call ``progress`` if given, and raise :class:`Cancelled` when it asks to stop."""
    if progress is not None and progress(done, total, message):
        raise Cancelled(f"Stopped at {done} of {total}: {message or 'cancelled by the user'}.")


class Rate:
    """Items per second and time left for the work done in this run.

    The first report sets where this run starts: items already done then (resumed from an
    earlier run's stored shards) are not counted in the rate, and the clock starts there.
    """

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self.earlier: int | None = None  #: items done before this run (``None``: no report yet)

    def note(self, done: int) -> None:
        """Record a progress report; the first one sets this run's starting point."""
        if self.earlier is None:
            self.earlier, self._start = done, time.perf_counter()

    def describe(self, done: int, total: int, unit: str = "items") -> str:
        """``"1,200 / 1,797 images · 850 images/s · ETA 1 s"`` (the rate once this run has done some).

        A call with a ``total`` counts as a report (see :meth:`note`); one without (no report yet)
        does not.
        """
        if total:
            self.note(done)
        new = done - (self.earlier or 0)
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        rate = new / elapsed
        if new <= 0 or rate <= 0:
            return f"{done:,} / {total:,} {unit}"
        left = (total - done) / rate
        return f"{done:,} / {total:,} {unit} · {rate:,.0f} {unit}/s · ETA {left:,.0f} s"
