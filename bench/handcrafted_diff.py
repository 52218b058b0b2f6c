"""Which handcrafted columns differ from the papers' librosa calls, on a few real windows.

Light diagnostic for bench/featurize.py's "library on (a)'s float audio vs (a)" value: draws
``--windows-per-file`` random 3 s windows from ``--files`` random tracks (soundfile, float32),
computes the 93 statistics with :func:`bench.featurize.seeds_features` and with the library,
and prints the worst columns (|diff| / max |value| of the column over the windows) with the
window where each peaks. The library computes these statistics from a float64 FFT rounded to
complex64, as librosa does; ``--float32-stft`` reruns it with the float32 FFT the
time x feature matrices use, to show what that rounding does to them (spectral contrast).

Usage::

    PYTHONPATH=$PWD python bench/handcrafted_diff.py [--files 20] [--windows-per-file 4] [--float32-stft]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.featurize import DEFAULT_DATA, SR, WIN, pick_files, seeds_features  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--windows-per-file", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--float32-stft", action="store_true", help="vector statistics from the float32 FFT")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    import soundfile as sf

    from genre_cli.features import FeatureConfig, column_names, compute, spectral

    if args.float32_stft:
        fast = spectral.stft
        spectral.stft = lambda y, n_fft, hop, workers=1, precise=False: fast(y, n_fft, hop, workers, precise=False)
    files = pick_files(args.data.resolve(), None)
    rng = np.random.default_rng(args.seed)
    wins, where = [], []
    for i in sorted(rng.choice(len(files), min(args.files, len(files)), replace=False)):
        y, sr = sf.read(files[i][1], dtype="float32")
        starts = list(range(0, len(y) - WIN + 1, WIN))
        if sr != SR or y.ndim != 1 or not starts:
            continue
        for s in rng.choice(starts, min(args.windows_per_file, len(starts)), replace=False):
            wins.append(y[s : s + WIN])
            where.append(f"{files[i][0]}/{files[i][1].name}@{s}")
    y = np.stack(wins)
    ref = np.stack([seeds_features(w, SR)[1] for w in y])
    lib = compute(y, FeatureConfig(handcrafted=True))["handcrafted"].astype(np.float64)
    rel = np.abs(lib - ref) / np.maximum(np.abs(ref).max(axis=0), 1e-12)
    cols = column_names("handcrafted", FeatureConfig(handcrafted=True))
    print(f"{len(y)} windows; handcrafted max rel {rel.max():.3g}{' (float32 STFT)' if args.float32_stft else ''}")
    for j in np.argsort(-rel.max(axis=0))[:8]:
        i = int(rel[:, j].argmax())
        print(f"  {cols[j]:26s} {rel[i, j]:.3g}  library {lib[i, j]:.6g}  librosa {ref[i, j]:.6g}  {where[i]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
