#!/usr/bin/env python
"""How well can a demo-sized drum-style dataset show learning? Repeated splits, track level.

For a folder-per-style dataset with a ``tracks.csv`` (columns path, style, drummer, session;
e.g. one written by ``tools/demo_data.py``), computes the toolkit's features once
(``genre featurize --handcrafted --mfcc 20`` and ``--embedding musicnn-msd``, 3-s windows at a
1.5-s hop as ``genre run`` cuts them) and scores scikit-learn heads over ``--seeds`` splits:

* ``random``: stratified by style, by track (performers and sessions on both sides);
* ``session``: stratified, group-aware by recording session;
* ``drummer``: stratified, group-aware by performer.

Features: ``hc`` = the 93 hand-crafted statistics (Pun & Nazirkhanova 2020), ``mfcc`` = mean and
std over frames of 20 MFCCs (40-d), ``emb`` = the musicnn-msd embedding (200-d). Prints mean and
minimum track-level accuracy over the splits for each (split, feature, model).

Usage::

    PYTHONPATH=$PWD python tools/demo_data.py --out /tmp/cand
    PYTHONPATH=$PWD python tools/demo_study.py /tmp/cand --workdir /tmp/cand-work
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.crossval import Data, _track_predictions, fit_predict, load  # noqa: E402


def genre(*args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "genre_cli", *args], check=True, stdout=subprocess.PIPE, text=True)
    return res.stdout.strip().splitlines()[-1]


def features(folder: Path, work: Path) -> dict[str, Data]:
    wd = ["--workdir", str(work)]
    idx = genre("fetch", "folder", "--from", str(folder), "--labels", str(folder / "tracks.csv"), "--label-column", "style", *wd)
    seg = genre("segment", idx, "--seconds", "3", "--hop", "1.5", *wd)
    hc_path = genre("featurize", seg, "--handcrafted", "--mfcc", "20", *wd)
    emb_path = genre("featurize", seg, "--embedding", "musicnn-msd", *wd)
    from genre_cli.formats import features as feat_format

    hc = load(hc_path, "handcrafted")
    f = feat_format.read(hc_path)
    m = f.load("mfcc")[f.segments["label"] >= 0]
    return {
        "hc": hc,
        "mfcc": Data(**{**hc.__dict__, "x": np.concatenate([m.mean(1), m.std(1)], 1)}),
        "emb": load(emb_path, "musicnn_embedding"),
    }


def scores(d: Data, groups: np.ndarray | None, n_test: int, model: str, seeds: range) -> list[float]:
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedShuffleSplit

    out = []
    n_styles = len(set(d.track_label))
    for seed in seeds:
        y = d.track_label
        if groups is None:
            tr_i, te_i = next(StratifiedShuffleSplit(1, test_size=n_test * n_styles, random_state=seed).split(d.track_ids, y))
        else:
            k = max(2, round(len(y) / (n_test * n_styles)))
            folds = list(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(d.track_ids, y, groups))
            tr_i, te_i = folds[seed % k]  # a different held-out fold each seed
        tr, te = np.isin(d.track, d.track_ids[tr_i]), np.isin(d.track, d.track_ids[te_i])
        p = fit_predict(model, {}, d.x[tr], d.y[tr], d.x[te], len(d.labels))
        keys, pred = _track_predictions(d, p, np.flatnonzero(te))
        out.append(float(np.mean(pred == d.track_label[np.searchsorted(d.track_ids, keys)])))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--test-per-style", type=int, default=8)
    ap.add_argument("--models", nargs="+", default=["logreg", "svm"])
    args = ap.parse_args()
    feats = features(args.folder, args.workdir)
    table = {r["path"].rsplit(".", 1)[0]: r for r in csv.DictReader(open(args.folder / "tracks.csv", newline=""))}
    ids = feats["hc"].track_ids
    n_styles = len(set(feats["hc"].track_label))
    print(
        f"{len(ids)} tracks, {n_styles} styles; chance {1 / n_styles:.2f}; {args.seeds} splits, {args.test_per_style} test tracks per style"
    )
    for split in ("random", "session", "drummer"):
        groups = None if split == "random" else np.array([table[t][split] for t in ids])
        for model in args.models:
            cells = []
            for name, d in feats.items():
                s = scores(d, groups, args.test_per_style, model, range(args.seeds))
                cells.append(f"{name} {np.mean(s):.2f} (min {np.min(s):.2f})")
            print(f"{split:8s} {model:7s} " + "  ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
