"""Progress bars on stderr (rich): the one implementation every stage uses.

Silent when disabled or when stderr is not a terminal. A :class:`Bar` advances by calls
(``bar(1)``) and shows, depending on its ``kind``: items done of total with rate and ETA
(``"count"``), a free ``stats`` text (``"stats"``: training loss and accuracy), or bytes with
transfer speed (``"bytes"``: downloads).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any


class Bar:
    """One progress bar (inactive unless enabled and on a terminal)."""

    def __init__(
        self, total: float | None, description: str, *, enabled: bool = True, unit: str = "", kind: str = "count", initial: float = 0
    ):
        self._bar = None
        if not enabled or not sys.stderr.isatty():
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        columns: list[Any] = [TextColumn("[bold]{task.description}"), BarColumn()]
        if kind == "bytes":
            columns += [DownloadColumn(), TransferSpeedColumn()]
        elif kind == "stats":
            columns += [TextColumn("{task.fields[stats]}"), TimeElapsedColumn()]
        else:
            columns += [MofNCompleteColumn(), TextColumn(unit), TimeElapsedColumn()]
        columns += [TextColumn("ETA"), TimeRemainingColumn()]
        self._bar = Progress(*columns, console=Console(stderr=True), transient=True)
        self._task = self._bar.add_task(description, total=total, completed=initial, stats="")
        self._bar.start()

    def __call__(self, n: float = 1) -> None:
        """Advance by ``n``."""
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def update(self, advance: float = 0, **fields: Any) -> None:
        """Advance and/or change ``description`` or ``stats``."""
        if self._bar is not None:
            self._bar.update(self._task, advance=advance, **fields)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


@contextlib.contextmanager
def progress(
    total: float | None, description: str, *, enabled: bool = True, unit: str = "", kind: str = "count", initial: float = 0
) -> Iterator[Bar]:
    """Context manager yielding a :class:`Bar` (call it to advance); closed on exit."""
    bar = Bar(total, description, enabled=enabled, unit=unit, kind=kind, initial=initial)
    try:
        yield bar
    finally:
        bar.close()
