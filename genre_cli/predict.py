"""``predict``: classify audio files with a model artifact; streams one result per file.

The model file holds everything needed (segment and feature parameters, normalisation
statistics, weights), so nothing else is read. Decoding and featurizing run in worker
threads (``jobs``); inference runs in the caller's thread with the model loaded once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genre_cli.audio import is_audio_path
from genre_cli.errors import AudioError, GenreError
from genre_cli.inference import Classifier, aggregate_tracks, load_classifier
from genre_cli.parallel import ordered_map
from genre_cli.segment import SegmentConfig, window_starts

FEATURE_CHUNK = 64


@dataclass
class Prediction:
    """Whole-file result: ``proba`` [shape=(n_classes,)], per-window ``(start_s, proba)`` list."""

    path: Path
    duration: float
    labels: list[str]
    proba: np.ndarray
    windows: list[tuple[float, np.ndarray]] = field(default_factory=list)

    def top(self, k: int = 1) -> list[tuple[str, float]]:
        order = np.argsort(-self.proba)[:k]
        return [(self.labels[i], float(self.proba[i])) for i in order]


@dataclass
class Failure:
    """A file that could not be classified, and why."""

    path: Path
    reason: str


@dataclass
class WalkStats:
    """Counts from walking the inputs (files that are not audio are ignored, not errors)."""

    ignored: int = 0
    missing: list[str] = field(default_factory=list)


def iter_inputs(paths: Iterable[str], stats: WalkStats) -> Iterator[Path]:
    """Expand files and folders (recursive, audio by extension); explicit files always pass.

    Folders are walked in sorted order without following symlinked directories (no loops).
    """
    for raw in paths:
        raw = raw.rstrip("\n")
        if not raw:
            continue
        p = Path(raw)
        if p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p, followlinks=False):
                dirnames.sort()
                for name in sorted(filenames):
                    fp = Path(dirpath) / name
                    if is_audio_path(fp):
                        yield fp
                    else:
                        stats.ignored += 1
        else:
            yield p  # explicit file: tried even with an odd extension; errors are reported per file


def windows_for(clf: Classifier) -> SegmentConfig:
    """The model's window length and hop, covering the whole file (short files padded)."""
    cfg = SegmentConfig.from_params(clf.segment_config)
    return SegmentConfig(sr=cfg.sr, seconds=cfg.seconds, hop=cfg.hop, frames=cfg.frames, frame_hop=cfg.frame_hop, policy="fixed", last="pad")


def _featurize_file(path: Path, clf: Classifier, seg: SegmentConfig):
    from genre_cli.audio import load
    from genre_cli.features import FeatureConfig, compute

    try:
        y, sr = load(path, sr=seg.sr)
    except AudioError as exc:
        return path, None, None, exc.message
    except GenreError as exc:
        return path, None, None, str(exc)
    except OSError as exc:
        return path, None, None, f"{path}: {exc.strerror or exc}"
    win = seg.win
    spans = window_starts(len(y), seg)
    if not spans:
        return path, None, None, f"{path}: no audio samples"
    fcfg = FeatureConfig.from_params(clf.feature_config)
    feats: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(spans), FEATURE_CHUNK):
        block = np.zeros((len(spans[i : i + FEATURE_CHUNK]), win), dtype=np.float32)
        for j, (s, n) in enumerate(spans[i : i + FEATURE_CHUNK]):
            block[j, :n] = y[s : s + n]
        out = compute(block, fcfg)
        for name in set(clf.inputs.values()):
            feats.setdefault(name, []).append(out[name])
    starts = np.array([s / sr for s, _ in spans])
    return path, {k: np.concatenate(v) for k, v in feats.items()}, (starts, len(y) / sr), ""


def run(
    model_path: str | Path,
    inputs: Iterable[Path],
    *,
    jobs: int = 2,
    device: str = "auto",
    aggregate: str = "mean",
    timeline: bool = False,
) -> Iterator[Prediction | Failure]:
    """Classify each input file, yielding results in input order as soon as each is done.

    Raises
    ------
    GenreError
        Only for an unusable model file; per-file problems are yielded as :class:`Failure`.
    """
    clf = load_classifier(model_path, device=device)
    seg = windows_for(clf)
    for path, feats, extra, reason in ordered_map(lambda p: _featurize_file(p, clf, seg), inputs, jobs=jobs):
        if feats is None:
            yield Failure(path, reason)
            continue
        starts, duration = extra
        try:
            proba = clf.predict_proba(feats)
        except GenreError as exc:
            yield Failure(path, str(exc))
            continue
        _, tp = aggregate_tracks(proba, np.zeros(len(proba), dtype=np.int64), method=aggregate)
        wins = [(float(s), p) for s, p in zip(starts, proba)] if timeline else []
        yield Prediction(path, float(duration), clf.labels, tp[0], wins)
