#!/usr/bin/env python
"""Regenerate the embedded demo dataset (``genre_cli/data/demo``) from groove-styles.

Groove MIDI Dataset (Gillick, Roberts, Engel, Eck & Bamman, ICML 2019; CC BY 4.0), as rendered in
``groove-styles`` (FluidSynth, FluidR3 GM soundfont, 22050 Hz mono, first 30 s of each ``beat``
performance). The demo takes, deterministically:

* styles **funk, hiphop, jazz, latin**, 32 performances each (all 32 hiphop ones; 32 of the
  51 funk, 43 jazz and 51 latin ones, drawn with seed 0);
* seconds 2-11 of each (9 s; the first two seconds are often a count-in or a fill);
* stored as 16 kHz mono Ogg Vorbis (libsndfile compression level 1.0, ~3.6 kB/s) to fit 128
  clips in the package's 5 MB demo budget;
* a split stratified by style, by track, seeded (seed 0): 24 train / 8 test per style (32 test
  tracks). It is NOT performer-disjoint: test drummers and sessions also appear in training.

Why these four and this split: drum styles are hard to tell apart from what fits in 5 MB. In an
exploratory study on the groove-styles originals (9-s excerpts, track level, the toolkit's
features, 12-20 random splits per setting), these four were the most separable of the six styles
with >= 28 performances (SVM on the 93 hand-crafted statistics: 0.73 on average over random
splits; the other 4-style sets 0.53-0.70), and group-aware splits of so few performances scored
too close to chance to show learning. Re-measured on the demo as shipped (``tools/demo_study.py
genre_cli/data/demo``, 20 splits each, 8 test tracks per style, chance 0.25): SVM on hand-crafted
statistics 0.69 on average over stratified random splits (min 0.50), 0.61 session-disjoint,
0.44 performer-disjoint; the musicnn-msd embedding 0.62 / 0.44 / 0.31 -- on drum styles the
pretrained embedding does not help.

Usage::

    PYTHONPATH=$PWD python tools/demo_data.py              # rewrites genre_cli/data/demo/{funk,hiphop,jazz,latin}, tracks.csv
    PYTHONPATH=$PWD python tools/demo_data.py --out /tmp/demo
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = Path(os.environ.get("GENRE_SHARED_DATA", "/work/shared/data")) / "groove-styles"
OUT = ROOT / "genre_cli" / "data" / "demo"
STYLES = ("funk", "hiphop", "jazz", "latin")
PER_STYLE = 32
TEST_PER_STYLE = 8
START, SECONDS = 2.0, 9.0
SR = 16000
QUALITY = 1.0  # libsndfile's Vorbis compression level (0 best quality .. 1 smallest)
SEED = 0


def main() -> int:
    import soundfile as sf

    from genre_cli.audio import load

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--styles", nargs="+", default=list(STYLES), help="(for studies) other styles")
    ap.add_argument("--per-style", type=int, default=PER_STYLE, help="(for studies) performances per style")
    args = ap.parse_args()
    rows = list(csv.DictReader(open(DATA / "tracks.csv", newline="")))
    rng = np.random.default_rng(SEED)
    chosen: list[dict] = []
    for style in args.styles:
        pool = sorted((r for r in rows if r["style"] == style), key=lambda r: r["path"])
        pick = sorted(rng.choice(len(pool), size=min(args.per_style, len(pool)), replace=False))
        tracks = [pool[i] for i in pick]
        test = set(rng.choice(len(tracks), size=TEST_PER_STYLE, replace=False).tolist())
        chosen += [r | {"split": "test" if i in test else "train"} for i, r in enumerate(tracks)]
    for old in args.out.iterdir() if args.out.is_dir() else ():
        if old.is_dir():  # the previous demo's style folders
            shutil.rmtree(old)
    out_rows = []
    for r in chosen:
        y, _ = load(DATA / r["path"], sr=SR, start=START, duration=SECONDS)
        name = f"{r['style']}/{Path(r['path']).stem}.ogg"
        (args.out / r["style"]).mkdir(parents=True, exist_ok=True)
        sf.write(args.out / name, y, SR, format="OGG", subtype="VORBIS", compression_level=QUALITY)
        out_rows.append(
            {
                "path": name,
                "style": r["style"],
                "split": r["split"],
                "drummer": r["drummer"],
                "session": r["session"],
                "source": r["source_midi"],
            }
        )
    with open(args.out / "tracks.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(out_rows[0]))
        w.writeheader()
        w.writerows(out_rows)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    n_test = sum(r["split"] == "test" for r in out_rows)
    print(f"{len(out_rows)} clips ({n_test} test) of {SECONDS:g} s, {size / 1e6:.2f} MB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
