"""``demo``: 161 real drum performances in 4 styles by 7 drummers, shipped inside the package.

A subset of the Groove MIDI Dataset (Gillick et al., ICML 2019), CC BY 4.0; see
``genre_cli/data/demo/README.md``. Group: the drummer (performer id), recorded as the index's
group so that ``genre evaluate`` checks the split.

Split (``options.split``): ``"default"``/``"official"`` -- the demo's own (column ``split`` of
its ``tracks.csv``), performer-disjoint: the 3 drummers of the 46 test tracks play no training
track (``tools/demo_data.py`` says how they were chosen); ``"random"`` -- a seeded split
stratified by style, grouped by drummer (no drummer on two sides). ``options.folds = K``
assigns K stratified folds, no drummer in two folds. ``--group-by`` may only name ``drummer``
(the demo's one group column); the demo takes no labels table, no checksum.
"""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

from genre_cli.audio import probe
from genre_cli.datasets import DATASETS, FetchOptions, TrackIndex
from genre_cli.datasets.folder import apply_computed_split, apply_folds, finish_index
from genre_cli.errors import AudioError, UsageError

LICENSE = "CC BY 4.0 (Groove MIDI Dataset, Gillick et al. 2019)"
#: The demo's group column: the performer.
GROUP = "drummer"


def demo_root() -> Path:
    """Folder of the embedded demo audio (inside the installed package)."""
    return Path(str(resources.files("genre_cli") / "data" / "demo"))


def _random_split(source: str | None, options: FetchOptions) -> bool:
    return options.split == "random"


@DATASETS.register(
    "demo",
    description="embedded: 161 real drum performances, 4 styles, 7.5-s clips, performer-disjoint split (Groove MIDI, CC BY 4.0)",
    options=("split", "folds", "seed", "group_by", "val_fraction", "test_fraction"),
    random_split=_random_split,
)
def demo(*, source: str | None, root: Path, options: FetchOptions) -> TrackIndex:
    """Index the embedded demo dataset (``source`` and ``root`` are ignored)."""
    if options.group_by not in (None, GROUP):
        raise UsageError(f"the demo's group column is {GROUP!r} (--group-by {GROUP}); it has no {options.group_by!r} column")
    base = demo_root()
    with open(base / "tracks.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    rows = []
    for r in table:
        row = {
            "track_id": Path(r["path"]).stem,
            "path": r["path"],
            "label_name": r["style"],
            "group": r[GROUP],
            "split": r["split"],
            "status": "ok",
            "reason": "",
        }
        try:
            info = probe(base / r["path"])
            row.update(duration=info.duration, sr=info.sr, channels=info.channels)
        except AudioError as exc:
            row.update(status="corrupt", reason=str(exc))
        rows.append(row)
    info: dict = {"license": LICENSE, "source": "embedded", "group_by": GROUP, "group_aware": True, "warnings": []}
    if options.split == "random":
        info["warnings"].extend(apply_computed_split(rows, options, use_groups=True))
        info["split_method"] = f"random, stratified by label, grouped by {GROUP!r} (seed {options.seed})"
    else:
        held_out = sorted({r[GROUP] for r in table if r["split"] == "test"}, key=lambda d: (len(d), d))
        info["split_method"] = f"the demo's own, performer-disjoint: test drummers {', '.join(held_out)}"
    info["warnings"].extend(apply_folds(rows, options, use_groups=True))
    if options.folds >= 2:
        info["folds"] = int(options.folds)
    if _random_split(source, options) or options.folds >= 2:
        info["seed"] = int(options.seed)
    return finish_index(rows, root=base, info=info)
