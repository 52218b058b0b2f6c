"""Few-shot genre transfer on gtzan-mini: musicnn embeddings + logistic regression vs MFCC statistics.

50 real GTZAN clips (10 genres x 5, 30 s, 22.05 kHz; ``shared/data/gtzan-mini``). Features
per clip:

* ``musicnn-msd`` embedding: the MSD tagger's 200-d penultimate layer, mean over the clip's
  ten 3-s patches (:func:`genre_cli.pretrained.embed.embed_files`);
* ``musicnn-mtt`` embedding: the same with the MagnaTagATune tagger;
* ``musicnn-msd`` tags: its 50 clip-mean tag likelihoods;
* MFCC-20 mean + std: ``librosa.feature.mfcc`` (22.05 kHz, librosa defaults), mean and
  standard deviation over frames (40-d).

Classifier: ``StandardScaler`` + ``LogisticRegression(C=1, max_iter=5000)``; stratified
5-fold cross-validation with ``shuffle=True, random_state=0`` (clip level: each clip is one
sample, so no clip is split across folds), then the mean over seeds 0..9 as a steadier figure.

Caveat printed with the numbers: gtzan-mini holds the first five clips of each genre, which
often share an artist (GTZAN is ordered by artist/album): cross-validation here puts the same
artist in train and test folds, so these are optimistic, same-artist figures, not the
artist-filtered GTZAN accuracy (``bench/transfer.py`` is the full benchmark: window level, with hand-crafted features and groove-styles).

Exit status 1 if the musicnn-msd embedding does not beat the MFCC statistics.

Usage::

    PYTHONPATH=$PWD python bench/musicnn_transfer.py [--folder ../shared/data/gtzan-mini]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from genre_cli.audio import is_audio_path, load  # noqa: E402
from genre_cli.pretrained import load_musicnn  # noqa: E402
from genre_cli.pretrained.embed import embed_files  # noqa: E402

DATA = REPO.parent / "shared" / "data"


def mfcc_stats(paths: list[Path]) -> np.ndarray:
    import librosa

    out = []
    for p in paths:
        y, sr = load(p, sr=22050)
        m = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20)
        out.append(np.concatenate([m.mean(axis=1), m.std(axis=1)]))
    return np.asarray(out)


def musicnn_features(paths: list[Path], name: str) -> tuple[np.ndarray, np.ndarray]:
    model = load_musicnn(name)
    embs, tags = [], []
    for res in embed_files(model, paths):
        if not hasattr(res, "embedding"):
            raise SystemExit(res.reason)
        embs.append(res.mean_embedding)
        tags.append(res.mean_likelihoods)
    return np.asarray(embs), np.asarray(tags)


def cv_accuracy(X: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    return cross_val_score(clf, X, y, cv=StratifiedKFold(5, shuffle=True, random_state=seed))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--folder", type=Path, default=DATA / "gtzan-mini")
    args = ap.parse_args()
    paths = sorted(p for p in args.folder.rglob("*") if p.is_file() and is_audio_path(p))
    if not paths:
        raise SystemExit(f"no audio under {args.folder}")
    y = np.array([p.parent.name for p in paths])
    genres, counts = np.unique(y, return_counts=True)
    print(f"{len(paths)} clips, {len(genres)} genres ({', '.join(f'{g} {c}' for g, c in zip(genres, counts))})")
    t0 = time.perf_counter()
    msd_emb, msd_tags = musicnn_features(paths, "msd")
    mtt_emb, _ = musicnn_features(paths, "mtt")
    t1 = time.perf_counter()
    mfcc = mfcc_stats(paths)
    t2 = time.perf_counter()
    print(f"features: musicnn (both models) {t1 - t0:.1f} s, MFCC {t2 - t1:.1f} s")
    rows = {
        "musicnn-msd embedding (200-d, patch mean)": msd_emb,
        "musicnn-mtt embedding (200-d, patch mean)": mtt_emb,
        "musicnn-msd tag likelihoods (50-d, mean)": msd_tags,
        "MFCC-20 mean+std (40-d)": mfcc,
    }
    print("\nlogistic regression, stratified 5-fold CV, clip-level accuracy (chance 0.10):")
    print(f"{'features':45s} {'seed 0':>16s} {'mean of seeds 0-9':>18s}")
    res = {}
    for name, X in rows.items():
        a0 = cv_accuracy(X, y, 0)
        many = np.array([cv_accuracy(X, y, s).mean() for s in range(10)])
        res[name] = a0.mean()
        print(f"{name:45s} {a0.mean():.3f} +- {a0.std():.3f}   {many.mean():.3f} (range {many.min():.2f}-{many.max():.2f})")
    print(
        "\ncaveat: gtzan-mini is the first 5 clips per genre, which often share an artist; these CV folds mix "
        "artists across train and test, so the figures are optimistic (same-artist), not artist-filtered accuracy."
    )
    ok = res["musicnn-msd embedding (200-d, patch mean)"] > res["MFCC-20 mean+std (40-d)"]
    print("OK" if ok else "FAILED: the MSD embedding does not beat MFCC statistics")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
