"""bench/gtzan.sh runs end to end on a fake GTZAN-layout archive and writes an honest report.

The archive mimics the original ``genres.tar.gz`` layout (``genres/<genre>/<genre>.000NN.wav``)
with generated audio: 10 genres x 3 clips of 4 s, named after clips of the packaged
artist-filtered split lists so that train, validation and test all have tracks. The recipe runs
in QUICK + BATCH mode (1 epoch, tiny models and mel bands, one Python process).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gtzan.sh"
LISTS = REPO / "genre_cli" / "data" / "gtzan"
SR = 22050


def _pick_clips() -> dict[str, list[str]]:
    """For each genre, one clip from each of the train, validation and test lists."""
    out: dict[str, list[str]] = {}
    for name in ("train_filtered.txt", "valid_filtered.txt", "test_filtered.txt"):
        seen: set[str] = set()
        for line in (LISTS / name).read_text().split():
            genre = line.split("/")[0]
            if genre not in seen:
                seen.add(genre)
                out.setdefault(genre, []).append(line.split("/")[-1])
    return out


def _clip(genre_idx: int, k: int, seconds: float = 4.0) -> np.ndarray:
    rng = np.random.default_rng(100 * genre_idx + k)
    t = np.arange(int(SR * seconds)) / SR
    f0 = 110.0 * 2 ** (genre_idx / 4)  # one pitch per genre, plus a genre-specific pulse
    pulse = (np.sin(2 * np.pi * (1 + genre_idx) * t) > 0.6).astype(np.float32)
    y = 0.4 * np.sin(2 * np.pi * f0 * t) * (0.5 + 0.5 * pulse) + 0.05 * rng.standard_normal(len(t))
    return y.astype(np.float32)


@pytest.fixture(scope="module")
def fake_archive(tmp_path_factory) -> Path:
    import soundfile as sf

    base = tmp_path_factory.mktemp("gtzan-src")
    clips = _pick_clips()
    assert len(clips) == 10 and all(len(v) == 3 for v in clips.values())
    for gi, (genre, names) in enumerate(sorted(clips.items())):
        d = base / "genres" / genre
        d.mkdir(parents=True)
        for k, name in enumerate(names):
            sf.write(d / name, _clip(gi, k), SR, subtype="PCM_16")
    archive = base / "genres.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(base / "genres", arcname="genres")
    shutil.rmtree(base / "genres")
    return archive


def test_recipe_runs_end_to_end_on_fake_archive(fake_archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = dict(
        os.environ,
        GTZAN_QUICK="1",
        GTZAN_BATCH="1",
        GTZAN_DEVICE="cpu",
        GTZAN_RANDOM_K="1",
        PYTHONPATH=str(REPO),
        OMP_NUM_THREADS="1",
        PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    )
    # Keep the test short: every recipe's segmenting/featurizing runs, with one or two models each.
    env["GTZAN_MODELS"] = os.environ.get("GTZAN_TEST_MODELS", "svm cnn-mlp resnet18 cnn6 lstm cnn3 dupconv")
    t0 = time.perf_counter()
    p = subprocess.run(["bash", str(SCRIPT), str(fake_archive), str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    report = (out / "report.md").read_text()
    assert "artist-filtered" in report and "track" in report.lower()
    assert "QUICK" in report
    data = json.loads((out / "report.json").read_text())
    assert data["level"] == "track" and "artist-filtered" in data["split"]
    models = {r["model"] for r in data["rows"]}
    assert {"svm", "cnn-mlp", "resnet18", "cnn6", "lstm", "cnn3", "dupconv"} <= models
    for r in data["rows"]:
        assert 0.0 <= r["accuracy"][0] <= 1.0 and r["n_tracks"] == 10  # one test clip per genre
    # every step was a real `genre` command, queued with explicit outputs
    cmds = (out / "commands.txt").read_text()
    assert "fetch gtzan" in cmds and "--split test" in cmds
    print(f"recipe took {time.perf_counter() - t0:.1f} s")


def test_recipe_refuses_a_missing_archive(tmp_path: Path) -> None:
    p = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "nope.tar.gz"), str(tmp_path / "o")], cwd=REPO, capture_output=True, text=True)
    assert p.returncode == 2 and "never downloads" in p.stderr
