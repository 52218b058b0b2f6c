"""Benchmark ``genre train`` over the whole model zoo: parameters, seconds per epoch, samples/s.

Each registered model is trained with its resolved defaults (the paper's batch size / optimizer
where the registry states them) for ``--epochs`` epochs on a stratified subset of ``--limit``
training segments (+ ``--limit // 4`` validation segments) of a features artifact, through the real
:func:`genre_cli.train.run` loop. Seconds per epoch and samples/s are the training part of each
epoch (validation excluded), taken from the artifact's history; the first epoch is dropped when
more than one ran (warm-up). On CUDA (when present) the run is repeated on the GPU.

``--layouts`` also trains every model with 2-D convolutions in the default (contiguous) memory
layout, in the same run and on the same subset, and prints the speed-up of ``channels_last`` (what
training uses) over it. The machine load (1-minute load average, before and after) is printed with
the table: on shared machines, compare only numbers taken under similar load.

Exit status 1 when any model cannot complete an epoch.

Reference features (groove-styles, 3 s windows; ``mel`` 128, ``handcrafted``, ``mfcc`` 20,
``mfcc_frames`` 30x30)::

    genre fetch folder --from ../shared/data/groove-styles --labels ../shared/data/groove-styles/tracks.csv \\
        --label-column style --group-by drummer -o idx.h5
    genre segment idx.h5 --seconds 3 -o seg.h5
    python -c "from genre_cli.featurize import run; from genre_cli.features import FeatureConfig; \\
        run('seg.h5', config=FeatureConfig(mel=128, handcrafted=True, mfcc=20, mfcc_frames=(30, 30)), out='feat.h5')"
    PYTHONPATH=. python bench/train.py feat.h5 --limit 256 --epochs 2
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import h5py
import numpy as np

from genre_cli import artifacts
from genre_cli.formats.features import read as load_features
from genre_cli.models import build_model, list_models, model_info
from genre_cli.train import run
from genre_cli.training import loop as train_loop
from genre_cli.training.config import TrainConfig


def subset(src: Path, dst: Path, limit: int, seed: int = 0) -> Path:
    """A features artifact with ``limit`` train and ``limit // 4`` validation segments (stratified)."""
    fe = load_features(src)
    rng = np.random.default_rng(seed)
    keep = []
    for split, n in (("train", limit), ("validation", max(2, limit // 4))):
        rows = np.flatnonzero(fe.segments["split"] == split)
        keep.append(np.sort(rng.choice(rows, size=min(n, len(rows)), replace=False)))
    rows = np.sort(np.concatenate(keep))
    with artifacts.write_artifact(
        dst,
        stage="featurize",
        params={"subset_of": fe.meta.fingerprint, "limit": limit, "seed": seed},
        upstream={"features": (fe.meta.fingerprint, src)},
        attrs={"dataset": fe.dataset, "labels": fe.labels, "feature_config": fe.feature_config, "segment_config": fe.segment_config},
    ) as f:
        g, ng = f.create_group("features"), f.create_group("norm")
        for name in fe.names:
            g.create_dataset(name, data=fe.load(name, rows))
            ng.create_group(name)
            ng[name].create_dataset("mean", data=fe.norm[name][0])
            ng[name].create_dataset("std", data=fe.norm[name][1])
        artifacts.write_table(f, "segments", {k: v[rows] for k, v in fe.segments.items()})
        artifacts.write_table(f, "tracks", fe.tracks)
    return dst


def n_params(name: str, feat: Path) -> int | None:
    info = model_info(name)
    if info["kind"] != "torch":
        return None
    with h5py.File(feat) as f:
        shapes = {k: f["features"][k].shape[1:] for k in f["features"]}
    pref = info["features"]
    model = build_model(name, n_classes=len(load_features(feat).labels), input_shapes={s: shapes[pref[s]] for s in info["inputs"]})
    return sum(p.numel() for p in model.parameters())


def bench_one(name: str, feat: Path, epochs: int, device: str, workdir: Path, *, channels_last: bool = True) -> dict:
    t0 = time.perf_counter()
    old, train_loop.CHANNELS_LAST = train_loop.CHANNELS_LAST, channels_last
    try:
        r = run(
            feat,
            config=TrainConfig(model=name, epochs=epochs, patience=epochs + 1, device=device),
            out=workdir / f"{name}-{device}.h5",
            force=True,
            show_progress=False,
        )
    finally:
        train_loop.CHANNELS_LAST = old
    with h5py.File(r.path) as f:
        hist = artifacts.get_json_attr(f, "history", [])
    timed = hist[1:] if len(hist) > 1 else hist
    secs = [h.get("seconds") for h in timed if h.get("seconds") is not None]
    sps = [h.get("samples_per_s") for h in timed if h.get("samples_per_s") is not None]
    return {
        "s_epoch": float(np.mean(secs)) if secs else time.perf_counter() - t0,
        "samples_s": float(np.mean(sps)) if sps else None,
        "batch": r.summary["train"].get("batch_size", "-"),
        "optimizer": r.summary["train"].get("optimizer", "-"),
        "val": r.summary.get("val_track_accuracy"),
        "n_train": r.summary["n_train"],
    }


def _has_conv2d(name: str, feat: Path, uses_conv2d) -> bool:
    info = model_info(name)
    with h5py.File(feat) as f:
        shapes = {k: f["features"][k].shape[1:] for k in f["features"]}
    model = build_model(
        name, n_classes=len(load_features(feat).labels), input_shapes={s: shapes[info["features"][s]] for s in info["inputs"]}
    )
    return uses_conv2d(model)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("features", type=Path, help="features artifact (see module docstring)")
    ap.add_argument("--limit", type=int, default=256, help="training segments per model (default 256)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs per model (default 2; the first is warm-up when > 1)")
    ap.add_argument("--models", nargs="*", default=None, help="subset of registered models (default: all)")
    ap.add_argument("--no-cuda", action="store_true", help="skip the CUDA pass even when a GPU is present")
    ap.add_argument("--layouts", action="store_true", help="also train conv models in the contiguous layout (CPU) and print the ratio")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args(argv)
    import torch

    from genre_cli.models.base import uses_conv2d

    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() and not args.no_cuda else [])
    names = args.models or list_models()
    rows, failed = [], []
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        feat = subset(args.features, Path(tmp) / "subset.h5", args.limit)
        for name in names:
            row = {"model": name, "kind": model_info(name)["kind"], "params": n_params(name, feat)}
            runs = [(dev, True) for dev in devices]
            if args.layouts and row["kind"] == "torch" and _has_conv2d(name, feat, uses_conv2d):
                runs.insert(0, ("cpu", False))
            for dev, cl in runs:
                key = dev if cl else "cpu-contiguous"
                try:
                    row[key] = bench_one(name, feat, args.epochs, dev, Path(tmp), channels_last=cl)
                except Exception as exc:  # noqa: BLE001 — report every model, fail at the end
                    failed.append(f"{name} on {key}: {type(exc).__name__}: {exc}")
                    traceback.print_exc(file=sys.stderr)
                    row[key] = None
            rows.append(row)
            c = row.get("cpu") or {}
            print(f"# {name}: {c.get('s_epoch', float('nan')):.2f} s/epoch on cpu", file=sys.stderr, flush=True)
    print(
        f"features: {args.features} (subset: {args.limit} train segments), epochs: {args.epochs}, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}, {os.cpu_count()} CPUs, load average (1 min) {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after"
    )
    head = ["model", "kind", "params", "batch", "optimizer", "cpu s/epoch", "cpu samples/s"]
    head += ["contiguous samples/s", "channels_last speed-up"] if args.layouts else []
    head += ["cuda samples/s"] if "cuda" in devices else []
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        c = row.get("cpu") or {}
        cells = [
            row["model"],
            row["kind"],
            f"{row['params']:,}" if row["params"] else "-",
            str(c.get("batch", "-")),
            str(c.get("optimizer", "-")),
            f"{c['s_epoch']:.2f}" if c else "FAILED",
            f"{c['samples_s']:.0f}" if c.get("samples_s") else "-",
        ]
        if args.layouts:
            k = row.get("cpu-contiguous")
            if k and k.get("samples_s") and c.get("samples_s"):
                cells += [f"{k['samples_s']:.0f}", f"{c['samples_s'] / k['samples_s']:.2f}x"]
            else:
                cells += ["-", "-"]
        if "cuda" in devices:
            g = row.get("cuda") or {}
            cells.append(f"{g['samples_s']:.0f}" if g.get("samples_s") else ("FAILED" if not g else "-"))
        print("| " + " | ".join(cells) + " |")
    for msg in failed:
        print(f"FAILED: {msg}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
