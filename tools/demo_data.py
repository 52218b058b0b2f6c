#!/usr/bin/env python
"""Regenerate the embedded demo dataset (``genre_cli/data/demo``) from groove-styles.

Groove MIDI Dataset (Gillick, Roberts, Engel, Eck & Bamman, ICML 2019; CC BY 4.0), as rendered in
``groove-styles`` (FluidSynth, FluidR3 GM soundfont, 22050 Hz mono, first 30 s of each ``beat``
performance). The demo takes, deterministically:

* styles **funk, hiphop, jazz, latin**: every ``beat`` performance of them except the dataset's
  "eval sessions" -- 161 performances (funk 39, hiphop 28, jazz 43, latin 51) by 7 drummers;
* seconds 2-9.5 of each (7.5 s: four 3-s windows at the 1.5-s hop of ``genre run``; the first two
  seconds are often a count-in or a fill);
* stored as 16 kHz mono Ogg Vorbis (libsndfile compression level 1.0, ~3.6 kB/s): 4.4 MB, under
  the package's 5 MB demo budget;
* a **performer-disjoint** train/test split (no drummer on both sides), chosen by a rule fixed
  before any score was seen: list every set of held-out drummers that leaves each style with
  tracks on both sides and puts 20-35 % of the tracks (and at least 20) in test, in a canonical
  order (fewest drummers first, then by drummer number), and take the one that
  ``numpy.random.default_rng(0)`` draws. For this composition there are 14 such splits; seed 0
  draws drummers 4, 7 and 10: 46 test tracks (funk 10, hiphop 15, jazz 18, latin 3), 115 train.

Why no eval sessions: in them drummers 1, 5, 7 and 8 each played the same ten composed grooves,
so a performer-disjoint split would still put one groove on both sides (a version of the same
piece, which GTZAN's artist filter also removes).

Why these four styles, all their performances and this length: performer-disjoint scores on drum
styles are close to chance unless each style has many performances by several drummers. A study
on the groove-styles originals (track level, the toolkit's features and heads as ``genre run``
uses them, every performer-disjoint split of each candidate; ``tools/demo_study.py`` on
candidates written with ``--out``; these candidate numbers were not re-run since) gave, for an
SVM on the 93 hand-crafted statistics (balanced accuracy, mean [min, max] over the splits):
these four styles 0.58 [0.47, 0.66] at 7.5 s (chance 0.25; 0.60 at 9 s, 0.56 at 6 s, 0.58 at
15 s); the same four with only 32 performances each 0.44 (the previous demo's composition);
adding rock (40 drawn) 0.47 (chance 0.20), adding rock and soul 0.42 (chance 0.17). All four-
style sets with rock instead of one of them scored 0.48-0.55. The musicnn-msd embedding and
logistic regression did worse on every set. The same study on the demo as shipped (16 kHz Ogg)::

    PYTHONPATH=$PWD python tools/demo_study.py genre_cli/data/demo --workdir /tmp/demo-study

gives, over the 14 performer-disjoint splits, SVM on the hand-crafted statistics 0.573 [0.471,
0.652] (the best of the features and heads it tries; chance 0.25), and 0.481 on the shipped
split (table in ``docs/results.md``, section 4). Re-measured alternative: rock added, at most 32
per style (``--styles funk hiphop jazz latin rock --max-per-style 32``; 156 tracks, 10 drummers):
0.506 [0.393, 0.614] over its 75 performer-disjoint splits, chance 0.20 -- not clearly better.

Usage::

    PYTHONPATH=$PWD python tools/demo_data.py              # rewrites genre_cli/data/demo/<style>/, tracks.csv
    PYTHONPATH=$PWD python tools/demo_data.py --out /tmp/cand --styles funk hiphop jazz latin rock --max-per-style 40
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = Path(os.environ.get("GENRE_SHARED_DATA", "/work/shared/data")) / "groove-styles"
OUT = ROOT / "genre_cli" / "data" / "demo"
STYLES = ("funk", "hiphop", "jazz", "latin")
#: At most this many performances per style (a seeded draw); ``None``: all of them.
MAX_PER_STYLE: int | None = None
START, SECONDS = 2.0, 7.5
SR = 16000
QUALITY = 1.0  # libsndfile's Vorbis compression level (0 best quality .. 1 smallest)
SEED = 0
#: A candidate split holds out this share of the tracks for test (inclusive bounds) ...
TEST_SHARE = (0.20, 0.35)
#: ... and at least this many test tracks.
MIN_TEST = 20


def compose(rows: list[dict], styles, *, max_per_style: int | None = None, seed: int = SEED) -> list[dict]:
    """The demo's performances: per style (in ``styles`` order), every ``beat`` performance of
    ``rows`` (groove-styles ``tracks.csv`` rows) outside the eval sessions, sorted by path; a
    seeded draw of ``max_per_style`` of them where a style has more."""
    rng = np.random.default_rng(seed)
    out: list[dict] = []
    for style in styles:
        pool = sorted((r for r in rows if r["style"] == style and "eval_session" not in r["session"]), key=lambda r: r["path"])
        if max_per_style and len(pool) > max_per_style:
            pool = [pool[i] for i in sorted(rng.choice(len(pool), size=max_per_style, replace=False))]
        out += pool
    return out


def _drummer_number(d: str) -> int:
    return int("".join(c for c in d if c.isdigit()) or 0)


def performer_disjoint_splits(rows: list[dict]) -> list[tuple[str, ...]]:
    """Every set of held-out (test) drummers that keeps each style of ``rows`` on both sides and
    puts :data:`TEST_SHARE` of the tracks, and at least :data:`MIN_TEST`, in test.

    Returns
    -------
    list of tuple of str
        Drummer ids, in the canonical order: fewer drummers first, then by drummer number.
    """
    styles = sorted({r["style"] for r in rows})
    drummers = sorted({r["drummer"] for r in rows}, key=_drummer_number)
    count = Counter((r["style"], r["drummer"]) for r in rows)
    lo, hi = TEST_SHARE
    out = []
    for k in range(1, len(drummers)):
        for held in itertools.combinations(drummers, k):
            n_test = sum(n for (_, d), n in count.items() if d in held)
            both_sides = all(any(count[(s, d)] for d in held) and any(count[(s, d)] for d in drummers if d not in held) for s in styles)
            if both_sides and lo <= n_test / len(rows) <= hi and n_test >= MIN_TEST:
                out.append(held)
    return out


def shipped_split(candidates: list[tuple[str, ...]], seed: int = SEED) -> tuple[str, ...]:
    """The candidate that ``numpy.random.default_rng(seed)`` draws (the rule, fixed in advance)."""
    if not candidates:
        raise SystemExit("no performer-disjoint split keeps every style on both sides")
    return candidates[int(np.random.default_rng(seed).integers(len(candidates)))]


def main() -> int:
    import soundfile as sf

    from genre_cli.audio import load

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--styles", nargs="+", default=list(STYLES), help="(for studies) other styles")
    ap.add_argument(
        "--max-per-style",
        type=int,
        default=MAX_PER_STYLE or 0,
        help="(for studies) at most N performances per style (seeded draw; 0, the default: all)",
    )
    ap.add_argument("--seconds", type=float, default=SECONDS, help="(for studies) clip length")
    ap.add_argument("--sr", type=int, default=SR, help="(for studies) sample rate of the clips")
    args = ap.parse_args()
    rows = list(csv.DictReader(open(DATA / "tracks.csv", newline="")))
    chosen = compose(rows, args.styles, max_per_style=args.max_per_style)
    candidates = performer_disjoint_splits(chosen)
    held = shipped_split(candidates)
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.iterdir():
        if old.is_dir():  # the previous demo's style folders
            shutil.rmtree(old)
    out_rows = []
    for r in chosen:
        y, _ = load(DATA / r["path"], sr=args.sr, start=START, duration=args.seconds)
        name = f"{r['style']}/{Path(r['path']).stem}.ogg"
        (args.out / r["style"]).mkdir(parents=True, exist_ok=True)
        sf.write(args.out / name, y, args.sr, format="OGG", subtype="VORBIS", compression_level=QUALITY)
        out_rows.append(
            {
                "path": name,
                "style": r["style"],
                "split": "test" if r["drummer"] in held else "train",
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
    print(
        f"{len(out_rows)} clips ({n_test} test: {', '.join(held)}; "
        f"{len(candidates)} performer-disjoint candidate splits) of {args.seconds:g} s at {args.sr} Hz, "
        f"{size / 1e6:.2f} MB in {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
