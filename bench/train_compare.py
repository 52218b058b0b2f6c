#!/usr/bin/env python
"""Training speed of this checkout against another source tree, in one run (same machine load).

Trains ``--model`` for two epochs on a stratified subset of a features artifact (as
``bench/train.py`` makes it) in fresh subprocesses, alternating the two code versions
``--rounds`` times, and prints the second epoch's samples/s for each (median and all runs) with
the load average. The other tree is any directory holding a ``genre_cli`` package, e.g.
``git archive cfdd3a8 genre_cli | tar -x -C /tmp/old``.

    PYTHONPATH=$PWD python bench/train_compare.py FEAT.h5 --old /tmp/old --limit 2048 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE = r"""
import json, sys, torch
torch.set_num_threads(int(sys.argv[4]))
from genre_cli.train import TrainConfig, run
kw = json.loads(sys.argv[3])
h = []
run(sys.argv[1], config=TrainConfig(epochs=2, batch_size=32, patience=5, device="cpu", **kw), out=sys.argv[2], force=True,
    show_progress=False, on_epoch=lambda r: h.append(r["samples_per_s"]))
print(h[-1])
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("features", type=Path)
    ap.add_argument("--old", type=Path, required=True, help="source tree with the other genre_cli")
    ap.add_argument("--model", default="cnn6")
    ap.add_argument("--limit", type=int, default=2048, help="training segments (default 2048)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "bench"))
    from train import subset  # bench/train.py

    variants = [
        (f"other ({args.old})", args.old, {"model": args.model}),
        ("this checkout, --paper (plain loop)", ROOT, {"model": args.model, "paper": True}),
        ("this checkout, default recipe", ROOT, {"model": args.model}),
    ]
    res: dict[str, list[float]] = {v[0]: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="train-compare-") as tmp:
        feat = subset(args.features, Path(tmp) / "subset.h5", args.limit)
        for _ in range(args.rounds):
            for name, path, kw in variants:
                env = dict(os.environ, PYTHONPATH=str(path), OMP_NUM_THREADS=str(args.threads))
                out = subprocess.run(
                    [sys.executable, "-c", CODE, str(feat), str(Path(tmp) / "m.h5"), json.dumps(kw), str(args.threads)],
                    env=env,
                    capture_output=True,
                    text=True,
                    cwd=tmp,
                    check=False,
                )
                if out.returncode:
                    sys.stderr.write(out.stderr[-3000:])
                    return 1
                res[name].append(float(out.stdout.strip().splitlines()[-1]))
                print(f"# {name}: {res[name][-1]:.0f} samples/s (load average {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
    print(f"{args.model}, {args.limit} training segments of {args.features}, batch 32, {args.threads} thread(s), epoch 2")
    for name, v in res.items():
        print(f"{name}: median {statistics.median(v):.0f} samples/s ({', '.join(f'{x:.0f}' for x in v)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
