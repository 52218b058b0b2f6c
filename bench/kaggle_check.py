"""Compare our ``kaggle`` feature vector with the Kaggle GTZAN table for one clip.

Loads ``blues.00099.mp3`` (the whole 30 s, ``librosa.load(sr=22050, mono=True)``),
computes :func:`genre_cli.features.compute` with ``FeatureConfig(kaggle=True)`` and prints,
per column, our value, the ``features_30_sec.csv`` value of ``blues.00099.wav`` and the
relative error, then how many columns match within 1 %, 5 % and 20 %.

The clip is a 56 kbps mp3 of the original wav, so exact equality is not expected.

Usage::

    PYTHONPATH=$PWD python bench/kaggle_check.py [--audio PATH] [--csv PATH]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

DATA = Path("/work/shared/data/gtzan")
AUDIO = DATA / "blues.00099.mp3"
TABLE = DATA / "features_30_sec.csv"
ROW = "blues.00099.wav"


def table_row(path: Path, filename: str) -> dict[str, float]:
    """The numeric columns of ``filename``'s row of a Kaggle features CSV."""
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["filename"] == filename:
                return {k: float(v) for k, v in row.items() if k not in ("filename", "length", "label")}
    raise KeyError(f"{filename} not in {path}")


def ours(audio: Path) -> dict[str, float]:
    """Our kaggle vector of the whole clip, as column -> value."""
    import librosa

    from genre_cli.features import FeatureConfig, column_names, compute

    y, _ = librosa.load(audio, sr=22050, mono=True)
    cfg = FeatureConfig(kaggle=True)
    vec = compute(y[None, :], cfg)["kaggle"][0]
    return dict(zip(column_names("kaggle", cfg), (float(v) for v in vec)))


def rel_err(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--audio", type=Path, default=AUDIO)
    ap.add_argument("--csv", type=Path, default=TABLE)
    ap.add_argument("--row", default=ROW)
    args = ap.parse_args(argv)
    if not args.audio.exists() or not args.csv.exists():
        print(f"missing {args.audio} or {args.csv}", file=sys.stderr)
        return 2
    ref = table_row(args.csv, args.row)
    got = ours(args.audio)
    if list(got) != list(ref):
        print("column names/order differ from the table!", file=sys.stderr)
        return 1
    errs = {}
    print(f"{'column':26s} {'ours':>15s} {'table':>15s} {'rel.err':>9s}")
    for name, r in ref.items():
        errs[name] = e = rel_err(got[name], r)
        print(f"{name:26s} {got[name]:15.7g} {r:15.7g} {100 * e:8.3f}%")
    print()
    for tol in (0.01, 0.05, 0.20):
        ok = [n for n, e in errs.items() if e <= tol]
        print(f"within {100 * tol:4.0f} %: {len(ok):2d}/{len(errs)}")
    bad = [f"{n} ({100 * e:.1f} %)" for n, e in errs.items() if e > 0.01]
    print("over 1 %:", ", ".join(bad) or "none")
    print(f"median rel. error {100 * float(np.median(list(errs.values()))):.3f} %, max {100 * max(errs.values()):.3f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
