"""``demo``: 161 real drum performances in 4 styles by 7 drummers, shipped inside the package.

A subset of the Groove MIDI Dataset (Gillick et al., ICML 2019), CC BY 4.0; see
``genre_cli/data/demo/README.md``. Split: the demo's own (column ``split`` of its
``tracks.csv``), performer-disjoint: the 3 drummers of the 46 test tracks play no training
track (``tools/demo_data.py`` says how they were chosen). Group: the drummer (performer id),
recorded as the index's group so that ``genre evaluate`` checks the split.
"""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

from genre_cli.audio import probe
from genre_cli.datasets import DATASETS, FetchOptions, TrackIndex
from genre_cli.errors import AudioError

LICENSE = "CC BY 4.0 (Groove MIDI Dataset, Gillick et al. 2019)"


def demo_root() -> Path:
    """Folder of the embedded demo audio (inside the installed package)."""
    return Path(str(resources.files("genre_cli") / "data" / "demo"))


@DATASETS.register(
    "demo",
    description="embedded: 161 real drum performances, 4 styles, 7.5-s clips, performer-disjoint split (Groove MIDI, CC BY 4.0)",
)
def demo(*, source: str | None, root: Path, options: FetchOptions) -> TrackIndex:
    """Index the embedded demo dataset (``source`` and ``root`` are ignored)."""
    base = demo_root()
    with open(base / "tracks.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    labels = sorted({r["style"] for r in table})
    rows = []
    for r in table:
        row = {
            "track_id": Path(r["path"]).stem,
            "path": r["path"],
            "label": labels.index(r["style"]),
            "group": r["drummer"],
            "split": r["split"],
        }
        try:
            info = probe(base / r["path"])
            row.update(duration=info.duration, sr=info.sr, channels=info.channels)
        except AudioError as exc:
            row.update(status="corrupt", reason=str(exc))
        rows.append(row)
    held_out = sorted({r["drummer"] for r in table if r["split"] == "test"}, key=lambda d: (len(d), d))
    info = {
        "license": LICENSE,
        "source": "embedded",
        "split_method": f"the demo's own, performer-disjoint: test drummers {', '.join(held_out)}",
        "group_by": "drummer",
        "group_aware": True,
    }
    return TrackIndex.from_rows(rows, root=base, labels=labels, info=info)
