"""Ctrl-C that cannot be lost.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be when SIGINT arrives.
Inside a weakref callback or a ``__del__`` (h5py and the thread pools run such code all the
time) the exception is printed as "Exception ignored in ..." and dropped, and the stage would
finish and commit its artifact as if nothing had happened. :func:`catching` (used by every CLI
command) records the signal as well as raising; :func:`check`, called between the items of
:func:`genre_cli.parallel.ordered_map` and by :func:`genre_cli.artifacts.write_artifact` just
before an artifact is committed, raises again when a recorded interrupt was swallowed: the
stage stops at the next item, and never leaves a finished-looking file.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

_FLAG = threading.Event()


@contextlib.contextmanager
def catching() -> Iterator[None]:
    """Record SIGINT for :func:`check` while the block runs (main thread only; the previous
    handler is called as before and restored afterwards)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        _FLAG.set()
        if callable(previous):
            previous(signum, frame)  # Python's default raises KeyboardInterrupt
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt

    _FLAG.clear()
    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _FLAG.clear()


def check() -> None:
    """Raise ``KeyboardInterrupt`` if SIGINT arrived since :func:`catching` began (even when the
    exception it raised then was swallowed)."""
    if _FLAG.is_set():
        raise KeyboardInterrupt("interrupted (Ctrl-C)")
