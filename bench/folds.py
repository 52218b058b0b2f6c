#!/usr/bin/env python
"""K-fold cross-validation with different settings per model in one report: ``genre cv`` with model specs.

``genre cv FEATURES --model A --model B`` gives every model the same training options; this
driver takes one spec per model instead (the form docs/training.md's cross-validation table
was measured with) and runs :func:`genre_cli.cv.run` on them — same folds, same report.

Example (groove-styles, 5 performer-disjoint folds)::

    genre fetch folder --from ../shared/data/groove-styles --labels ../shared/data/groove-styles/tracks.csv \\
        --label-column style --group-by drummer --folds 5 -o groove5.h5
    genre segment groove5.h5 --seconds 3 --hop 3 -o seg.h5
    genre featurize seg.h5 --mel 128 --handcrafted -o feat.h5
    PYTHONPATH=. python bench/folds.py feat.h5 --models svm 'svm:svm-C10#{"C": 10.0}' --workdir /tmp/folds --json folds.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


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
    ap.add_argument("--folds", type=int, nargs="*", default=None, help="only these test folds (default: all)")
    ap.add_argument("--workdir", type=Path, required=True, help="the report (cv.h5) and its fold models go here")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--json", type=Path, default=None, help="write the report here too")
    args = ap.parse_args(argv)
    import torch

    from genre_cli import cv
    from genre_cli.cli import print_cv
    from genre_cli.training.config import TrainConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    specs = [parse_spec(s) for s in args.models]
    configs = [TrainConfig(model=name, model_config=mc, seed=args.seed, device="cpu", **kw) for name, _, kw, mc in specs]
    result = cv.run(
        args.features,
        models=configs,
        labels=[label for _, label, _, _ in specs],
        folds=args.folds,
        out=args.workdir / "cv.h5",
        on_fold=lambda rec: print(json.dumps({k: rec[k] for k in ("model", "fold", "track", "seconds", "n_test_tracks")}), flush=True),
        on_notice=lambda text: print(f"warning: {text}", file=sys.stderr),
    )
    print_cv(result.summary["report"])
    if args.json:
        args.json.write_text(json.dumps(result.summary["report"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
