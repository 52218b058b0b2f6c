#!/usr/bin/env python
"""K-fold cross-validation of models on a features artifact whose index has folds (``fetch --folds K``).

A stop-gap driver until ``genre`` has a cross-validation command: for each fold k it writes a
small features artifact that *links* to the original features (HDF5 external link, no copy) and
relabels the splits — fold k is ``test``, every other fold ``train`` (no validation split: the
default recipe keeps the last, averaged weights and needs none) — with normalisation statistics
recomputed on the training folds only. Then it trains each model with :func:`genre_cli.train.run`
and scores it on fold k with :func:`genre_cli.evaluate.evaluate_model` (which also checks that no
test track or group was seen in training). Folds from ``fetch --group-by`` are group-disjoint
(e.g. performer-disjoint for groove-styles' drummers).

Prints one JSON line per (model, fold) and a table of mean +- std (over folds) of track-level
balanced accuracy, accuracy and macro-F1; ``--json`` writes everything with the commands'
settings. Exit status 1 when a run failed.

Example (groove-styles, 5 performer-disjoint folds)::

    genre fetch folder --from ../shared/data/groove-styles --labels ../shared/data/groove-styles/tracks.csv \\
        --label-column style --group-by drummer --folds 5 -o groove5.h5
    genre segment groove5.h5 --seconds 3 --hop 3 -o seg.h5
    genre featurize seg.h5 --mel 128 --handcrafted -o feat.h5
    PYTHONPATH=. python bench/folds.py feat.h5 --models svm cnn6 --workdir /tmp/folds --json folds.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

import h5py
import numpy as np

from genre_cli import artifacts
from genre_cli.formats.features import read as load_features


def fold_features(src: Path, fold: int, dst: Path) -> Path:
    """A features artifact for fold ``fold``: test = that fold, train = the others (linked features)."""
    fe = load_features(src)
    seg_fold = np.asarray(fe.segments["fold"])
    if np.all(seg_fold < 0):
        raise SystemExit(f"{src}: no folds in the index (fetch with --folds K)")
    train = (seg_fold >= 0) & (seg_fold != fold)
    seg = dict(fe.segments)
    seg["split"] = np.where(seg_fold == fold, "test", np.where(train, "train", "")).astype(object)
    groups = np.asarray(fe.segments["group"]).astype(str)
    shared = sorted(set(groups[train]) & set(groups[seg_fold == fold]) - {""})
    if shared:
        raise SystemExit(f"{src}: fold {fold} shares groups with the other folds: {shared[:5]}")
    trk = dict(fe.tracks)
    trk["split"] = np.where(np.asarray(trk["fold"]) == fold, "test", np.where(np.asarray(trk["fold"]) >= 0, "train", "")).astype(object)
    if dst.exists() and artifacts.is_up_to_date(dst, _fp(fe, fold)):
        return dst
    rows = np.flatnonzero(train)
    with artifacts.write_artifact(
        dst,
        stage="featurize",
        params={"folds_of": fe.meta.fingerprint, "test_fold": fold},
        upstream={"features": (fe.meta.fingerprint, src)},
        attrs={"dataset": fe.dataset, "labels": fe.labels, "feature_config": fe.feature_config, "segment_config": fe.segment_config},
    ) as f:
        f["features"] = h5py.ExternalLink(str(Path(src).resolve()), "/features")
        ng = f.create_group("norm")
        ng.attrs["split"] = "train"
        for name in fe.names:
            mean, std = _stats(fe, name, rows)
            g = ng.create_group(name)
            g.create_dataset("mean", data=mean)
            g.create_dataset("std", data=std)
        artifacts.write_table(f, "segments", seg)
        artifacts.write_table(f, "tracks", trk)
    return dst


def _fp(fe, fold: int) -> str:
    from genre_cli.stage import planned_fingerprint

    return planned_fingerprint(
        "featurize", {"folds_of": fe.meta.fingerprint, "test_fold": fold}, {"features": (fe.meta.fingerprint, fe.path)}
    )


def _stats(fe, name: str, rows: np.ndarray, block: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Per-last-axis mean and population std over ``rows`` (and frames), float64 accumulation."""
    s = s2 = None
    n = 0
    for i in range(0, len(rows), block):
        x = fe.load(name, rows[i : i + block]).astype(np.float64)
        x = x.reshape(-1, x.shape[-1])
        s = x.sum(0) if s is None else s + x.sum(0)
        s2 = (x**2).sum(0) if s2 is None else s2 + (x**2).sum(0)
        n += len(x)
    mean = s / n
    std = np.sqrt(np.maximum(s2 / n - mean**2, 0.0))
    return mean.astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32)


def parse_spec(spec: str) -> tuple[str, str, dict, dict]:
    """``NAME[:LABEL][?json-train-settings][#json-model-options]`` -> (model, label, train kwargs, model config)."""
    model_cfg, train_kw = {}, {}
    if "#" in spec:
        spec, m = spec.split("#", 1)
        model_cfg = json.loads(m)
    if "?" in spec:
        spec, t = spec.split("?", 1)
        train_kw = json.loads(t)
    name, _, label = spec.partition(":")
    return name, label or name, train_kw, model_cfg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("features", type=Path, help="features artifact of an index fetched with --folds K")
    ap.add_argument(
        "--models",
        nargs="+",
        required=True,
        help='model specs: NAME[:LABEL][?{"epochs": 10}][#{"width": 16}] (train settings / model options as JSON)',
    )
    ap.add_argument("--folds", type=int, nargs="*", default=None, help="only these folds (default: all)")
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--json", type=Path, default=None, help="write all results here")
    args = ap.parse_args(argv)
    import torch

    from genre_cli.evaluate import evaluate_model
    from genre_cli.train import TrainConfig, run

    if args.threads:
        torch.set_num_threads(args.threads)
    fe = load_features(args.features)
    folds = args.folds if args.folds else sorted(int(k) for k in set(fe.segments["fold"]) if k >= 0)
    args.workdir.mkdir(parents=True, exist_ok=True)
    results, failed = [], []
    print(
        f"# {args.features}: folds {folds}, load average {os.getloadavg()[0]:.2f}, torch threads {torch.get_num_threads()}",
        file=sys.stderr,
        flush=True,
    )
    for spec in args.models:
        name, label, train_kw, model_cfg = parse_spec(spec)
        for k in folds:
            ff = fold_features(args.features, k, args.workdir / f"fold{k}.h5")
            feats = load_features(ff)
            cfg = TrainConfig(model=name, model_config=model_cfg, seed=args.seed, device="cpu", **train_kw)
            t0 = time.perf_counter()
            try:
                r = run(ff, config=cfg, out=args.workdir / f"{label.replace('/', '_')}-fold{k}.h5", show_progress=False)
                rep = evaluate_model(r.path, feats, split="test")
            except Exception as exc:  # noqa: BLE001 — report every run, fail at the end
                failed.append(f"{label} fold {k}: {type(exc).__name__}: {exc}")
                traceback.print_exc(file=sys.stderr)
                continue
            row = {
                "model": label,
                "name": name,
                "fold": k,
                "train": r.summary.get("train") if r.ran else None,
                "model_config": model_cfg,
                "train_seconds": round(time.perf_counter() - t0, 1),
                "n_test_tracks": rep["n_tracks"],
                "classes_present": rep["track"]["classes_present"],
                "track_balanced_accuracy": rep["track"]["balanced_accuracy"],
                "track_accuracy": rep["track"]["accuracy"],
                "track_macro_f1": rep["track"]["macro_f1"],
                "segment_balanced_accuracy": rep["segment"]["balanced_accuracy"],
                "leakage": rep["leakage"],
                "load_average": round(os.getloadavg()[0], 2),
            }
            results.append(row)
            print(json.dumps(row), flush=True)
    by_model: dict[str, list[dict]] = {}
    for row in results:
        by_model.setdefault(row["model"], []).append(row)
    print(f"\n{args.features}, folds {folds} (test = one fold, train = the others), track level, mean +- std over folds")
    print("| model | folds | balanced acc. | accuracy | macro-F1 | train s |")
    print("|---|---|---|---|---|---|")

    def ms(rows: list[dict], key: str) -> str:
        v = [r[key] * 100 for r in rows]
        return f"{statistics.mean(v):.1f} +- {statistics.stdev(v) if len(v) > 1 else 0.0:.1f}"

    for label, rows in by_model.items():
        cells = [label, str(len(rows)), ms(rows, "track_balanced_accuracy"), ms(rows, "track_accuracy"), ms(rows, "track_macro_f1")]
        print("| " + " | ".join(cells) + f" | {sum(r['train_seconds'] for r in rows):.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"features": str(args.features), "folds": folds, "results": results, "failed": failed}, indent=1))
    for msg in failed:
        print(f"FAILED: {msg}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
