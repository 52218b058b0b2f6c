"""Shared fixtures and helpers: generated audio datasets (no network, no committed binaries),
and :func:`genre`, the command line run in-process."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_DATA = SHARED / "data"


def genre(*args, input: str | None = None):
    """Run ``genre ARGS`` in-process (typer's CliRunner); an uncaught exception fails the test."""
    from typer.testing import CliRunner

    from genre_cli.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def synth(kind: str, seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A short signal whose class is easy to hear: low tone, high tone or noise bursts."""
    t = np.arange(int(seconds * sr)) / sr
    if kind == "low":
        f0 = rng.uniform(180, 260)
        y = 0.5 * np.sin(2 * np.pi * f0 * t)
    elif kind == "high":
        f0 = rng.uniform(2500, 3500)
        y = 0.5 * np.sin(2 * np.pi * f0 * t)
    else:
        y = 0.3 * rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 4 * t) > 0)
    return (y + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def write_folder(root: Path, *, per_label: int, seconds: float, sr: int, rng: np.random.Generator) -> Path:
    """Write a folder-per-label dataset ``root/<label>/<label><i>.wav`` of :func:`synth`
    signals: labels low, high, noise, ``per_label`` tracks each. Returns ``root``."""
    for label in ("low", "high", "noise"):
        (root / label).mkdir(parents=True)
        for i in range(per_label):
            sf.write(root / label / f"{label}{i}.wav", synth(label, seconds, sr, rng), sr)
    return root


def write_labels_table(root: Path, *, splits: tuple[str, ...]) -> Path:
    """``root/tracks.csv`` for a :func:`write_folder` dataset: columns path, style (the label),
    split (``splits[i]`` for track ``i`` of each label) and performer (``p0``/``p1`` alternating)."""
    rows = []
    for label in ("low", "high", "noise"):
        for i, split in enumerate(splits):
            rows.append({"path": f"{label}/{label}{i}.wav", "style": label, "split": split, "performer": f"p{i % 2}"})
    table = root / "tracks.csv"
    with open(table, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return table


def train_tiny_model(base: Path) -> Path:
    """A tiny cnn6 (16-band log-mel, 1 s windows at a 0.5 s hop, 22.05 kHz, 1 epoch) on a
    :func:`write_folder` dataset (labels low, high, noise; 4 tracks each of 2 s at 16 kHz)
    written under ``base``. Returns the model file."""
    from genre_cli import featurize, fetch, segment, train
    from genre_cli.datasets import FetchOptions
    from genre_cli.features import FeatureConfig
    from genre_cli.training.config import TrainConfig
    from genre_cli.windows import SegmentConfig

    write_folder(base / "music", per_label=4, seconds=2.0, sr=16000, rng=np.random.default_rng(0))
    idx = fetch.run("folder", source=str(base / "music"), options=FetchOptions(jobs=1, progress=False), out=base / "idx.h5")
    seg = segment.run(idx.path, config=SegmentConfig(seconds=1.0, hop=0.5), out=base / "seg.h5", jobs=1, show_progress=False)
    feat = featurize.run(seg.path, config=FeatureConfig(mel=16), out=base / "feat.h5", jobs=1, show_progress=False)
    return train.run(feat.path, config=TrainConfig(model="cnn6", epochs=1, device="cpu"), out=base / "model.h5", show_progress=False).path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """:func:`train_tiny_model`, trained once per test session."""
    return train_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture
def audio_folder(tmp_path: Path, rng) -> Path:
    """folder-per-label dataset: 3 labels x 6 tracks of 4 s at 16 kHz, plus a non-audio file."""
    root = write_folder(tmp_path / "music", per_label=6, seconds=4.0, sr=16000, rng=rng)
    (root / "low" / "cover.jpg").write_bytes(b"\xff\xd8not really a jpeg")
    return root
