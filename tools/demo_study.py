#!/usr/bin/env python
"""How well does a demo-sized drum-style dataset show learning? Every performer-disjoint split.

For a folder-per-style dataset with a ``tracks.csv`` (columns path, style, drummer, and
optionally split; e.g. one written by ``tools/demo_data.py``), computes the toolkit's features
once, on 3-s windows at the 1.5-s hop that ``genre run`` cuts (``genre featurize --handcrafted
--mfcc 20`` and ``--embedding musicnn-msd``), and scores scikit-learn heads, fed as ``genre
train`` feeds them and scored at track level as ``genre evaluate`` does (mean of the window
probabilities), over:

* ``performer``: **every** performer-disjoint split of the tracks that ``tools/demo_data.py``
  accepts as a candidate (held-out drummers; each style on both sides; 20-35 % and >= 20 test
  tracks) -- the population the demo's own split is drawn from. The split in the folder's
  ``split`` column, when it is one of them, is reported as ``shipped``.
* ``random``: stratified random splits by track (``--random-seeds`` seeds, the same test share
  as the shipped split, else 25 %), drummers on both sides: the optimistic, seen-performer
  reading, for contrast.

Features: ``hc`` = the 93 hand-crafted statistics (Pun & Nazirkhanova 2020), the default of
``genre run``; ``mfcc`` = mean and std over frames of 20 MFCCs (40-d); ``emb`` = the musicnn-msd
embedding (Pons & Serra 2019; 200-d). Prints, per (split kind, feature, model), the number of
splits, test tracks (min-max), track-level balanced accuracy and accuracy as mean [min, max],
the share of splits at or above twice chance (balanced), and the shipped split's scores.

Usage::

    PYTHONPATH=$PWD python tools/demo_study.py genre_cli/data/demo --workdir /tmp/demo-study
    PYTHONPATH=$PWD python tools/demo_data.py --out /tmp/cand --styles funk hiphop jazz latin rock --max-per-style 40
    PYTHONPATH=$PWD python tools/demo_study.py /tmp/cand --workdir /tmp/cand-work --no-embedding
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.crossval import Data, _track_predictions, fit_predict, load  # noqa: E402
from tools.demo_data import performer_disjoint_splits  # noqa: E402


def genre(*args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "genre_cli", *args], check=True, stdout=subprocess.PIPE, text=True)
    return res.stdout.strip().splitlines()[-1]


def features(folder: Path, work: Path, *, embedding: bool) -> dict[str, Data]:
    """The features of every track's windows, as ``genre run`` cuts them."""
    wd = ["--workdir", str(work)]
    idx = genre("fetch", "folder", "--from", str(folder), "--labels", str(folder / "tracks.csv"), "--label-column", "style", *wd)
    seg = genre("segment", idx, "--seconds", "3", "--hop", "1.5", *wd)
    hc_path = genre("featurize", seg, "--handcrafted", "--mfcc", "20", *wd)
    from genre_cli.formats import features as feat_format

    hc = load(hc_path, "handcrafted")
    f = feat_format.read(hc_path)
    m = f.load("mfcc")[f.segments["label"] >= 0]
    out = {"hc": hc, "mfcc": Data(**{**hc.__dict__, "x": np.concatenate([m.mean(1), m.std(1)], 1)})}
    if embedding:
        out["emb"] = load(genre("featurize", seg, "--embedding", "musicnn-msd", *wd), "musicnn_embedding")
    return out


def score(d: Data, test: np.ndarray, model: str) -> tuple[float, float, int]:
    """Balanced accuracy, accuracy and the number of test tracks, track level; ``test`` is a
    boolean mask over ``d.track_ids``."""
    from sklearn.metrics import balanced_accuracy_score

    te = np.isin(d.track, d.track_ids[test])
    p = fit_predict(model, {}, d.x[~te], d.y[~te], d.x[te], len(d.labels))
    keys, pred = _track_predictions(d, p, np.flatnonzero(te))
    true = d.track_label[np.searchsorted(d.track_ids, keys)]
    return float(balanced_accuracy_score(true, pred)), float(np.mean(pred == true)), len(keys)


def random_masks(labels: np.ndarray, share: float, seeds: range) -> list[np.ndarray]:
    from sklearn.model_selection import StratifiedShuffleSplit

    out = []
    for seed in seeds:
        _, te = next(StratifiedShuffleSplit(1, test_size=share, random_state=seed).split(labels, labels))
        mask = np.zeros(len(labels), dtype=bool)
        mask[te] = True
        out.append(mask)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--random-seeds", type=int, default=20)
    ap.add_argument("--models", nargs="+", default=["svm", "logreg"])
    ap.add_argument("--no-embedding", action="store_true", help="skip the musicnn-msd embedding (the slowest feature)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
    rows = list(csv.DictReader(open(args.folder / "tracks.csv", newline="")))
    by_id = {r["path"].rsplit(".", 1)[0]: r for r in rows}
    feats = features(args.folder, args.workdir, embedding=not args.no_embedding)
    ids = feats["hc"].track_ids
    drummer = np.array([by_id[t]["drummer"] for t in ids])
    chance = 1 / len(feats["hc"].labels)

    candidates = performer_disjoint_splits([by_id[t] for t in ids])
    kinds = {"performer": [np.isin(drummer, held) for held in candidates]}
    shipped = None
    if "split" in rows[0]:
        mask = np.array([by_id[t]["split"] == "test" for t in ids])
        shipped = next((i for i, m in enumerate(kinds["performer"]) if np.array_equal(m, mask)), None)
    share = float(kinds["performer"][shipped].mean()) if shipped is not None else 0.25
    kinds["random"] = random_masks(feats["hc"].track_label, share, range(args.random_seeds))

    print(
        f"{len(ids)} tracks, {len(feats['hc'].labels)} styles ({', '.join(feats['hc'].labels)}), {len(set(drummer))} drummers; "
        f"chance {chance:.3f}; track level; {len(candidates)} performer-disjoint splits"
        + (f", shipped: #{shipped} (test {', '.join(candidates[shipped])})" if shipped is not None else "")
        + f"; {args.random_seeds} random splits of {share:.0%} test"
    )
    print("split      feature model   splits test  balanced acc mean [min, max]  >=2x chance  accuracy mean [min, max]  shipped bal / acc")
    for kind, masks in kinds.items():
        for name, d in feats.items():
            for model in args.models:
                s = np.array([score(d, m, model) for m in masks])
                b, a, n = s[:, 0], s[:, 1], s[:, 2].astype(int)
                ship = f"{b[shipped]:.3f} / {a[shipped]:.3f}" if kind == "performer" and shipped is not None else ""
                print(
                    f"{kind:10s} {name:7s} {model:7s} {len(masks):6d} {n.min():3d}-{n.max():<3d} "
                    f"{b.mean():.3f} [{b.min():.3f}, {b.max():.3f}]        {np.mean(b >= 2 * chance - 1e-9):4.0%}     "
                    f"{a.mean():.3f} [{a.min():.3f}, {a.max():.3f}]     {ship}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
