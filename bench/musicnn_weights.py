"""Check that the shipped musicnn weight files equal a fresh conversion of the musicnn wheel.

Downloads ``musicnn==0.1.0`` with pip (``pip download --no-deps``; network needed) unless
``--wheel`` is given, converts both taggers into a temporary folder with
:func:`genre_cli.pretrained.convert.convert` (sha256 checked) and compares every tensor of
``genre_cli/data/pretrained/musicnn-{msd,mtt}.h5`` with the fresh files bit for bit, plus
the descriptive attributes (tags, model config, pre-processing, source, licence).

Exit status 1 on any difference (or when the wheel cannot be had), 0 when equal.

Usage::

    PYTHONPATH=$PWD python bench/musicnn_weights.py [--wheel musicnn-0.1.0-py3-none-any.whl]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from genre_cli.errors import GenreError  # noqa: E402
from genre_cli.pretrained.convert import convert  # noqa: E402
from genre_cli.pretrained.variants import VARIANTS  # noqa: E402
from genre_cli.pretrained.weights import shipped_path  # noqa: E402

#: Root attributes that describe the model (the others record when/where the file was made).
DESCRIPTIVE = (
    "name",
    "model",
    "variant",
    "output",
    "labels",
    "model_config",
    "input_shapes",
    "preprocessing",
    "dataset",
    "source",
    "license",
    "license_text",
    "copyright",
    "citation",
    "n_values",
    "params",
)


def compare(shipped: Path, fresh: Path) -> list[str]:
    """Differences between two weight files (empty when equal)."""
    diffs = []
    with h5py.File(shipped, "r") as a, h5py.File(fresh, "r") as b:
        for k in DESCRIPTIVE:
            va, vb = a.attrs.get(k), b.attrs.get(k)
            if str(va) != str(vb):
                diffs.append(f"attribute {k}: shipped {str(va)[:80]!r} != fresh {str(vb)[:80]!r}")
        ka, kb = set(a["weights"]), set(b["weights"])
        if ka != kb:
            diffs.append(f"tensors differ: only shipped {sorted(ka - kb)[:5]}, only fresh {sorted(kb - ka)[:5]}")
        for k in sorted(ka & kb):
            x, y = a["weights"][k][()], b["weights"][k][()]
            if x.dtype != y.dtype or x.shape != y.shape:
                diffs.append(f"{k}: {x.dtype}{x.shape} != {y.dtype}{y.shape}")
            elif x.tobytes() != y.tobytes():
                diffs.append(f"{k}: values differ (max |diff| {np.abs(x.astype(np.float64) - y).max():.3g})")
    return diffs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheel", type=Path, help="the musicnn 0.1.0 wheel (default: pip download it)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="genre-musicnn-check-") as tmp:
        t0 = time.perf_counter()
        try:
            fresh = convert(args.wheel, tmp)
        except GenreError as exc:
            print(f"FAIL: cannot convert the wheel: {exc}")
            return 1
        print(f"converted {', '.join(VARIANTS[k].name for k in fresh)} in {time.perf_counter() - t0:.1f} s")
        failed = False
        for key, path in fresh.items():
            shipped = shipped_path(key)
            if not shipped.is_file():
                print(f"FAIL {VARIANTS[key].name}: shipped file {shipped} is missing")
                failed = True
                continue
            diffs = compare(shipped, path)
            with h5py.File(shipped, "r") as f:
                n = len(f["weights"])
            if diffs:
                failed = True
                print(f"FAIL {VARIANTS[key].name}: {len(diffs)} difference(s)")
                for d in diffs[:20]:
                    print("   ", d)
            else:
                print(f"ok   {VARIANTS[key].name}: {n} tensors bit-equal, attributes equal ({shipped})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
