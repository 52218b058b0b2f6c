"""Test-only hook: stop a stage at a known point so a test can interrupt it there.

Not for users. Interruption tests need the signal to land *mid-stage*; sending it after a
sleep is a race (on a loaded machine the stage may already be done). With the environment
variable ``GENRE_TEST_PAUSE_AT=POINT`` set, the stage, on reaching ``POINT``, prints
``genre-test: paused at POINT (pid N)`` on stderr, creates the file named by
``GENRE_TEST_PAUSE_READY`` (when set), and waits there until a signal ends the wait
(SIGINT raises ``KeyboardInterrupt`` in the waiting main thread), the test removes that
file (the stage then goes on), or :data:`MAX_WAIT` seconds pass (then it goes on too, so a
broken test fails instead of hanging).
``POINT#N`` pauses at the N-th time the point is reached (default: the first).

Points (each reached in the process's main thread, after the work it names is written):

``segment:track``
    a track's audio and windows are in the temporary segments file;
``featurize:chunk``
    a chunk of features is in the temporary features file;
``train:epoch``
    an epoch has finished and its checkpoint (``OUT.ckpt.h5``) is written (torch models);
``predict:file``
    a file's result has been handed to the writer (its line is written and flushed).

Unset (the normal case), :func:`pause_point` costs one dictionary lookup.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

#: Environment variable naming the point to pause at (``POINT`` or ``POINT#N``).
ENV = "GENRE_TEST_PAUSE_AT"
#: Environment variable naming a file to create when paused.
READY_ENV = "GENRE_TEST_PAUSE_READY"
#: Longest pause, seconds.
MAX_WAIT = 120.0

_hits: dict[str, int] = {}


def pause_point(point: str) -> None:
    """Pause here when ``$GENRE_TEST_PAUSE_AT`` names ``point`` (see the module docstring)."""
    want = os.environ.get(ENV)
    if not want:
        return
    name, _, nth = want.partition("#")
    if name != point:
        return
    _hits[point] = _hits.get(point, 0) + 1
    if _hits[point] != (int(nth) if nth else 1):
        return
    sys.stderr.write(f"genre-test: paused at {point} (pid {os.getpid()})\n")
    sys.stderr.flush()
    ready = Path(os.environ[READY_ENV]) if os.environ.get(READY_ENV) else None
    if ready is not None:
        tmp = ready.with_name(ready.name + ".tmp")
        tmp.write_text(f"{point} {os.getpid()}\n")
        os.replace(tmp, ready)  # appears whole
    deadline = time.monotonic() + MAX_WAIT
    while time.monotonic() < deadline and (ready is None or ready.exists()):
        time.sleep(0.01)
