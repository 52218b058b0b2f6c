#!/usr/bin/env python
"""Transfer benchmark: pretrained musicnn embeddings vs hand-crafted features, track level.

Features (all computed by the toolkit's own stages: ``genre fetch`` -> ``genre segment
--seconds 3`` (hop 3 s, 22.05 kHz) -> ``genre featurize``):

* ``musicnn-msd``: the 200-d penultimate-layer embedding of musicnn trained on the Million Song
  Dataset (Pons & Serra 2019), per 3-s window (``--embedding musicnn-msd``);
* ``hand-crafted 93``: the statistics of Pun & Nazirkhanova (2020) (``--handcrafted``);
* ``MFCC statistics``: mean and standard deviation over frames of 20 MFCCs (``--mfcc 20``,
  aggregated here: 40 values per window).

Heads: the toolkit's ``logreg`` and ``svm`` with their defaults, inputs standardised on the
training tracks, a track's probabilities the mean of its windows' (``tools/crossval.py``). No
tuning: every number is the first and only run of its configuration.

Data and protocols (track level):

1. **gtzan-mini** (50 real GTZAN clips, 10 genres x 5): stratified 5-fold cross-validation over
   clips, seed 0; accuracy (= balanced accuracy: 5 clips per genre). Same-artist caveat: the
   first clips of a GTZAN genre often share an artist and these folds put one artist on both
   sides, so the figures are optimistic; they are not GTZAN's artist-filtered accuracy.
2. **groove-styles** (410 real drum performances, 9 styles, imbalanced): the official split
   and a performer-disjoint split (``--split-mode random --group-by drummer --seed 0``): fit on
   the train tracks, score the test tracks; balanced accuracy.

Best from-scratch network: on groove-styles the numbers are taken from ``docs/results.md``
(measured by ``bench/accuracy.py`` on 2026-11-21, git bba93a0 -- NOT in this run; the training
defaults have changed since). On gtzan-mini ``--networks`` trains cnn6 (Schrader et al. 2021;
``genre train --model cnn6`` with the current defaults, 128-band log-mel) on each fold in this
run; without it the row says "not run".

Exit status: 1 if the musicnn-msd embedding does not beat the MFCC statistics on gtzan-mini
(5-fold accuracy, mean over both heads and CV seeds 0-9: one clip moves a single run by 0.02)
-- the claim this benchmark exists to check; 2 for missing data.

Usage::

    PYTHONPATH=$PWD python bench/transfer.py [--workdir /tmp/transfer] [--networks] [--md table.md]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.crossval import Data, cross_validate, load, split_score  # noqa: E402

DATA = Path(os.environ.get("GENRE_SHARED_DATA", "/work/shared/data"))
GTZAN_MINI = DATA / "gtzan-mini"
GROOVE = DATA / "groove-styles"
HEADS = ("logreg", "svm")
SEEDS = range(10)  #: gtzan-mini: the table shows seed 0; the exit status uses the mean over these CV seeds
#: groove-styles, best from-scratch network by validation, track-level test balanced accuracy:
#: docs/results.md, produced by bench/accuracy.py on 2026-11-21 (git bba93a0). Not measured here.
GROOVE_NETWORKS = {
    "official": ("cnn6", 0.425, 72),
    "performer-disjoint": ("resnet18", 0.546, 64),
}
NETWORK_SOURCE = "docs/results.md: bench/accuracy.py, 2026-11-21, git bba93a0, 15 epochs; not in this run"
CAVEAT = (
    "gtzan-mini: same-artist caveat -- clips of one genre often share an artist and the folds put one artist on both sides: "
    "optimistic, not GTZAN's artist-filtered accuracy"
)


def genre(*args: str, log: list[str]) -> str:
    log.append(shlex.join(["genre", *args]))
    print("$", log[-1], flush=True)
    res = subprocess.run([sys.executable, "-m", "genre_cli", *args], check=True, stdout=subprocess.PIPE, text=True)
    return res.stdout.strip().splitlines()[-1]


def feature_sets(seg: str, work: Path, log: list[str]) -> dict[str, Data]:
    """The three features of a segments file: embedding, hand-crafted 93, MFCC statistics."""
    from genre_cli.formats import features as feat_format

    wd = ["--workdir", str(work)]
    emb = genre("featurize", seg, "--embedding", "musicnn-msd", *wd, log=log)
    hc = genre("featurize", seg, "--handcrafted", "--mfcc", "20", *wd, log=log)
    hand = load(hc, "handcrafted")
    f = feat_format.read(hc)
    m = f.load("mfcc")[f.segments["label"] >= 0]
    mfcc = Data(**{**hand.__dict__, "x": np.concatenate([m.mean(axis=1), m.std(axis=1)], axis=1), "feature": "mfcc-stats"})
    return {"musicnn-msd embedding (200)": load(emb, "musicnn_embedding"), "hand-crafted 93": hand, "MFCC statistics (40)": mfcc}


def gtzan_networks(work: Path, log: list[str], folds: int = 5, seed: int = 0) -> dict:
    """cnn6 trained from scratch on each fold of the same 5-fold split (128-band log-mel)."""
    from sklearn.model_selection import StratifiedKFold

    from genre_cli.formats import report as report_format

    work.mkdir(parents=True, exist_ok=True)
    clips = sorted((GTZAN_MINI / "genres").glob("*/*.wav"))
    labels = np.array([p.parent.name for p in clips])
    correct = total = 0
    per_fold = []
    for k, (_, te) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(clips, labels)):
        table = work / f"fold{k}.csv"
        with open(table, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["path", "label", "split"])
            held_out = set(te.tolist())
            for i, p in enumerate(clips):
                w.writerow([p.relative_to(GTZAN_MINI / "genres").as_posix(), labels[i], "test" if i in held_out else "train"])
        wd = ["--workdir", str(work / f"fold{k}")]
        idx = genre("fetch", "folder", "--from", str(GTZAN_MINI / "genres"), "--labels", str(table), *wd, log=log)
        seg = genre("segment", idx, "--seconds", "3", *wd, log=log)
        feat = genre("featurize", seg, "--mel", "128", *wd, log=log)
        model = genre("train", feat, "--model", "cnn6", "--device", "cpu", *wd, log=log)
        rep = report_format.read(genre("evaluate", model, feat, "--split", "test", "--no-plots", *wd, log=log))[0]
        acc = rep["track"]["accuracy"]
        per_fold.append(acc)
        correct += round(acc * rep["n_tracks"])
        total += rep["n_tracks"]
    return {"accuracy": correct / total, "fold_accuracy": per_fold, "n_tracks": total}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/genre-transfer"))
    ap.add_argument("--networks", action="store_true", help="also train cnn6 from scratch on each gtzan-mini fold (~5 min on 2 cores)")
    ap.add_argument("--md", type=Path, help="also write the table as Markdown here")
    ap.add_argument("--json", type=Path, help="also write every number as JSON here")
    args = ap.parse_args()
    for need in (GTZAN_MINI / "genres", GROOVE / "tracks.csv"):
        if not need.exists():
            print(f"missing {need}", file=sys.stderr)
            return 2
    t0 = time.time()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    log: list[str] = []
    rows: list[dict] = []

    # 1. gtzan-mini, 5-fold over clips
    wd = ["--workdir", str(work / "gtzan-mini")]
    table = work / "gtzan-mini-all.csv"
    with open(table, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "split"])
        for p in sorted((GTZAN_MINI / "genres").glob("*/*.wav")):
            w.writerow([p.relative_to(GTZAN_MINI / "genres").as_posix(), p.parent.name, "train"])
    idx = genre("fetch", "folder", "--from", str(GTZAN_MINI / "genres"), "--labels", str(table), *wd, log=log)
    seg = genre("segment", idx, "--seconds", "3", *wd, log=log)
    gtzan = {}
    cv = "5-fold CV over clips, seed 0"
    for feat, d in feature_sets(seg, work / "gtzan-mini", log).items():
        for head in HEADS:
            r = cross_validate(d, head, folds=5, seed=0)
            seeds = [r["accuracy"]] + [cross_validate(d, head, folds=5, seed=s)["accuracy"] for s in SEEDS[1:]]
            gtzan[(feat, head)] = float(np.mean(seeds))
            rows.append({"data": "gtzan-mini", "split": cv, "features": feat, "head": head, "accuracy": r["accuracy"],
                         "balanced_accuracy": r["balanced_accuracy"], "n_test_tracks": r["n_tracks"],
                         "fold_accuracy": r["fold_accuracy"], "accuracy_seeds_0_9": seeds})  # fmt: skip
    if args.networks:
        net = gtzan_networks(work / "gtzan-net", log)
        rows.append({"data": "gtzan-mini", "split": cv, "features": "log-mel 128", "head": "cnn6 from scratch (this run)",
                     "accuracy": net["accuracy"], "balanced_accuracy": net["accuracy"], "n_test_tracks": net["n_tracks"],
                     "fold_accuracy": net["fold_accuracy"]})  # fmt: skip
    else:
        rows.append({"data": "gtzan-mini", "split": cv, "features": "log-mel 128", "head": "cnn6 from scratch: not run (--networks)",
                     "accuracy": None, "balanced_accuracy": None, "n_test_tracks": None})  # fmt: skip

    # 2. groove-styles, official and performer-disjoint splits
    base = ["--labels", str(GROOVE / "tracks.csv"), "--label-column", "style", "--group-by", "drummer"]
    for split, extra in (("official", []), ("performer-disjoint", ["--split-mode", "random", "--seed", "0"])):
        wd = ["--workdir", str(work / f"groove-{split}")]
        idx = genre("fetch", "folder", "--from", str(GROOVE), *base, *extra, *wd, log=log)
        seg = genre("segment", idx, "--seconds", "3", *wd, log=log)
        for feat, d in feature_sets(seg, work / f"groove-{split}", log).items():
            for head in HEADS:
                r = split_score(d, head, train="train", test="test")
                rows.append({"data": "groove-styles", "split": split, "features": feat, "head": head, "accuracy": r["accuracy"],
                             "balanced_accuracy": r["balanced_accuracy"], "n_test_tracks": r["n_tracks"]})  # fmt: skip
        name, bal, n = GROOVE_NETWORKS[split]
        rows.append({"data": "groove-styles", "split": split, "features": "log-mel 64", "head": f"{name} from scratch ({NETWORK_SOURCE})",
                     "accuracy": None, "balanced_accuracy": bal, "n_test_tracks": n})  # fmt: skip

    # report
    def fmt(v):
        return "–" if v is None else f"{v:.3f}"

    lines = [
        "| data | split | features | head | test tracks | accuracy | balanced accuracy | gtzan-mini: mean of CV seeds 0-9 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        n = "–" if r["n_test_tracks"] is None else str(r["n_test_tracks"])
        mean = f"{np.mean(r['accuracy_seeds_0_9']):.3f}" if "accuracy_seeds_0_9" in r else ""
        cells = [r["data"], r["split"], r["features"], r["head"], n, fmt(r["accuracy"]), fmt(r["balanced_accuracy"]), mean]
        lines.append("| " + " | ".join(cells) + " |")
    # the gate: mean over both heads and CV seeds 0-9 (one clip is 0.02 of one seed's accuracy)
    emb = float(np.mean([gtzan[("musicnn-msd embedding (200)", h)] for h in HEADS]))
    mfcc = float(np.mean([gtzan[("MFCC statistics (40)", h)] for h in HEADS]))
    ratios = []
    for data, split in (
        ("gtzan-mini", "5-fold CV over clips, seed 0"),
        ("groove-styles", "official"),
        ("groove-styles", "performer-disjoint"),
    ):
        key = "accuracy" if data == "gtzan-mini" else "balanced_accuracy"
        sel = {(r["features"], r["head"]): r[key] for r in rows if r["data"] == data and r["split"] == split and r[key] is not None}
        for head in HEADS:
            e, h, m = (sel[(f, head)] for f in ("musicnn-msd embedding (200)", "hand-crafted 93", "MFCC statistics (40)"))
            ratios.append(f"{data} {split.split(',')[0]}, {head}: embedding / hand-crafted = {e / h:.2f}, embedding / MFCC = {e / m:.2f}")
    text = "\n".join(lines)
    print("\n" + text + "\n")
    print("ratios (same run, same heads; gtzan-mini: accuracy, groove: balanced accuracy):")
    for line in ratios:
        print("  " + line)
    print(CAVEAT)
    wall = time.time() - t0
    print(f"wall time {wall / 60:.1f} min; {len(log)} CLI calls")
    if args.md:
        args.md.write_text(text + "\n\n" + "\n".join(f"- {r}" for r in ratios) + f"\n\n{CAVEAT}\n")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "ratios": ratios, "commands": log, "wall_seconds": wall}, indent=2))
    ok = emb > mfcc
    verdict = "beats" if ok else "DOES NOT BEAT"
    print(f"gtzan-mini, mean over logreg/svm and CV seeds 0-9: musicnn-msd embedding {emb:.3f} {verdict} MFCC statistics {mfcc:.3f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
