"""A progress line on stderr, for a person at a terminal: never in a file or a pipe.

``ProgressLine`` rewrites one line (``\\r``) at most every ``PROGRESS_INTERVAL_S``
seconds of real time, however often it is told; ``watching`` runs a daemon thread that
writes what a function reads while the caller works (a run's simulated clock: the
simulation itself is not touched, so its numbers cannot change). Pure standard library.
"""
from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager

__all__ = ["ProgressLine", "is_wanted", "watching", "PROGRESS_INTERVAL_S", "RUN_DELAY_S"]

PROGRESS_INTERVAL_S = 0.25  # s of real time between two updates: at most 4 a second
RUN_DELAY_S = 1.0           # s of real time before a run's first line: a short run shows none


def is_wanted(progress: bool | None, stream=None) -> bool:
    """``progress`` when given; by default (None), whether ``stream`` (stderr) is a
    terminal."""
    if progress is not None:
        return bool(progress)
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class ProgressLine:
    """One line of ``stream``, rewritten in place, at most every ``interval`` seconds.

    Parameters
    ----------
    stream : text file, optional
        Default: ``sys.stderr`` at the time of each write.
    interval : float, optional
        s of real time between two writes (default PROGRESS_INTERVAL_S); a forced
        update is written at once.
    clock : callable
        ``clock() -> float`` in s (a test gives its own).
    """

    def __init__(self, stream=None, *, interval: float | None = None, clock=time.monotonic):
        self.stream, self.clock = stream, clock
        self.interval = PROGRESS_INTERVAL_S if interval is None else interval
        self.last: float | None = None  # when the line was last written
        self.width = 0                   # its length: a shorter line blanks the rest

    def update(self, text: str, *, force: bool = False) -> bool:
        """Write ``text`` unless the last write is less than ``interval`` ago (and not
        ``force``); returns whether it was written."""
        now = self.clock()
        if not force and self.last is not None and now - self.last < self.interval:
            return False
        self._write("\r" + text.ljust(self.width))
        self.last, self.width = now, len(text)
        return True

    def close(self, *, keep: bool = True) -> None:
        """End the line (``keep``: leave it on screen; else blank it out)."""
        if self.last is not None:
            self._write("\n" if keep else "\r" + " " * self.width + "\r")
        self.last, self.width = None, 0

    def _write(self, text: str) -> None:
        stream = sys.stderr if self.stream is None else self.stream
        stream.write(text)
        stream.flush()


@contextmanager
def watching(read, *, enabled: bool, delay: float | None = None,
             interval: float | None = None, stream=None):
    """While the body runs, write ``read()`` as a progress line every ``interval``
    seconds after a first ``delay`` (defaults: RUN_DELAY_S, PROGRESS_INTERVAL_S, read
    when the body starts), from a daemon thread; the line is blanked at the end."""
    if not enabled:
        yield
        return
    delay = RUN_DELAY_S if delay is None else delay
    interval = PROGRESS_INTERVAL_S if interval is None else interval
    line, done = ProgressLine(stream, interval=0.0), threading.Event()

    def loop():
        if done.wait(delay):
            return
        while not done.is_set():
            line.update(read())
            done.wait(interval)

    thread = threading.Thread(target=loop, name="simdml-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        line.close(keep=False)
