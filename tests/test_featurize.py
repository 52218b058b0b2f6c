"""featurize stage: determinism across --jobs, train-only statistics, storage, CLI forms."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf

from genre_cli import featurize
from genre_cli.features import FeatureConfig, compute
from genre_cli.formats import features as feat_format
from genre_cli.formats import segments as seg_format

from conftest import genre, synth, write_folder

SR = 16000


@pytest.fixture(scope="module")
def segs(tmp_path_factory) -> Path:
    """3 labels x 4 tracks of 4 s at 16 kHz cut into 1 s windows at 0.5 s hop: 84 segments."""
    tmp = tmp_path_factory.mktemp("feat")
    root = write_folder(tmp / "music", per_label=4, seconds=4.0, sr=SR, rng=np.random.default_rng(2))
    assert genre("fetch", "folder", "--from", root, "-o", tmp / "idx.h5").exit_code == 0
    r = genre("segment", tmp / "idx.h5", "--sr", SR, "--seconds", "1", "--hop", "0.5", "--jobs", "1", "-o", tmp / "seg.h5")
    assert r.exit_code == 0, r.stderr
    return tmp / "seg.h5"


def _read(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path) as f:
        out = {}
        f.visititems(lambda k, v: out.__setitem__(k, v[()]) if isinstance(v, h5py.Dataset) else None)
        return out


def test_jobs_1_and_2_are_bit_identical(segs, tmp_path):
    cfg = FeatureConfig(mel=32, handcrafted=True, mfcc=13, deltas=True)
    assert featurize.work_rows(cfg, 16000) == 64  # 84 segments: two units of work
    r1 = featurize.run(segs, config=cfg, out=tmp_path / "j1.h5", jobs=1, show_progress=False)
    r2 = featurize.run(segs, config=cfg, out=tmp_path / "j2.h5", jobs=2, show_progress=False)
    a, b = _read(r1.path), _read(r2.path)
    assert a.keys() == b.keys() and {"features/mel", "features/handcrafted", "features/mfcc", "norm/mel/mean"} <= a.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert a["features/mel"].shape == (84, 32, 32) and a["features/mfcc"].shape == (84, 32, 39)
    assert r1.summary["n_segments"] == 84 and r1.summary["norm_split"] == "train"


def test_features_equal_the_library_on_the_decoded_windows(segs, tmp_path):
    cfg = FeatureConfig(mel=32, handcrafted=True)
    res = featurize.run(segs, config=cfg, out=tmp_path / "f.h5", jobs=1, show_progress=False)
    s = seg_format.read(segs)
    rows = np.array([0, 7, 50, 83])
    with h5py.File(segs) as f:
        y = seg_format.read_windows(f["audio"], s, rows)
    ref = compute(y, FeatureConfig.from_params({**cfg.to_params(), "sr": SR}))
    feats = feat_format.read(res.path)
    for name in ("mel", "handcrafted"):  # equal up to float32 rounding (BLAS blocks differ with batch size)
        np.testing.assert_allclose(feats.load(name, rows), ref[name], rtol=1e-5, atol=1e-4, err_msg=name)
    for k in ("track_id", "label", "group", "split"):
        assert np.array_equal(feats.segments[k], s.segments[k]), k


def test_norm_stats_are_over_the_train_split_only(segs, tmp_path):
    res = featurize.run(segs, config=FeatureConfig(mel=16, handcrafted=True), out=tmp_path / "n.h5", jobs=1, show_progress=False)
    feats = feat_format.read(res.path)
    train = np.flatnonzero(feats.segments["split"] == "train")
    assert 0 < len(train) < 84
    for name in ("mel", "handcrafted"):
        x = feats.load(name, train).astype(np.float64)
        flat = x.reshape(-1, x.shape[-1])
        mean, std = feats.norm[name]
        np.testing.assert_allclose(mean, flat.mean(0), rtol=1e-5, atol=1e-4)
        ref_std = flat.std(0)
        ref_std[ref_std < 1e-8] = 1.0
        np.testing.assert_allclose(std, ref_std, rtol=1e-4, atol=1e-5)
        everything = feats.load(name).astype(np.float64).reshape(-1, x.shape[-1]).mean(0)
        assert not np.allclose(mean, everything, rtol=1e-3)  # other splits really were left out
    with h5py.File(res.path) as f:
        assert f["norm"].attrs["split"] == "train"


def test_float16_storage(segs, tmp_path):
    cfg = FeatureConfig(mel=16)
    r32 = featurize.run(segs, config=cfg, out=tmp_path / "32.h5", jobs=1, show_progress=False)
    r16 = featurize.run(segs, config=cfg, out=tmp_path / "16.h5", jobs=1, float16=True, show_progress=False)
    with h5py.File(r16.path) as f16, h5py.File(r32.path) as f32:
        assert f16["features/mel"].dtype == np.float16 and f32["features/mel"].dtype == np.float32
        a, b = f16["features/mel"][()].astype(np.float32), f32["features/mel"][()]
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=0.05)
        assert f16["norm/mel/mean"].dtype == np.float32
        np.testing.assert_array_equal(f16["norm/mel/mean"][()], f32["norm/mel/mean"][()])  # from float32 values


def test_frames_segments_give_exactly_that_many_frames(segs, tmp_path):
    idx = Path(segs).parent / "idx.h5"
    r = genre("segment", idx, "--sr", SR, "--frames", "20", "--frame-hop", "256", "-o", tmp_path / "fr.h5")
    assert r.exit_code == 0, r.stderr
    r = genre(
        "featurize", tmp_path / "fr.h5", "--mel", "16", "--n-fft", "512", "--hop-length", "256", "--jobs", "1", "-o", tmp_path / "f.h5"
    )
    assert r.exit_code == 0, r.stderr
    with h5py.File(tmp_path / "f.h5") as f:
        assert f["features/mel"].shape[1:] == (20, 16)


def test_work_rows_bound_memory_and_ignore_jobs():
    small = FeatureConfig(mel=128)
    big = FeatureConfig(stft=True, n_fft=4096)
    assert featurize.work_rows(small, 66150) == featurize.CHUNK
    rows = featurize.work_rows(big, 30 * 22050)  # 30 s windows, 4096-point STFT: ~13 MB of audio + output each
    assert 1 <= rows <= 5


def test_cli_forms(segs, tmp_path):
    out = tmp_path / "feat.h5"
    r = genre("featurize", segs, "--mel", "128", "--handcrafted", "--mfcc", "20", "--jobs", "2", "-o", out)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == str(out)
    assert "mel (84, 32, 128)" in r.stderr and "handcrafted (84, 93)" in r.stderr and "mfcc (84, 32, 20)" in r.stderr
    assert "train split" in r.stderr
    r = genre("featurize", segs, "--mel", "128", "--handcrafted", "--mfcc", "20", "--jobs", "2", "-o", out)
    assert r.exit_code == 0 and "up to date" in r.stderr

    r = genre("segment", Path(segs).parent / "idx.h5", "--sr", SR, "--seconds", "2", "--first", "1", "-o", tmp_path / "s2.h5")
    assert r.exit_code == 0
    r = genre("featurize", tmp_path / "s2.h5", "--kaggle", "-o", tmp_path / "k.h5")
    assert r.exit_code == 0, r.stderr
    with h5py.File(tmp_path / "k.h5") as f:
        assert f["features/kaggle"].shape == (12, 57)

    r = genre(
        "featurize",
        segs,
        "--mfcc-frames",
        "8x10",
        "--stft",
        "--n-fft",
        "256",
        "--power",
        "--top-db",
        "80",
        "--float16",
        "--jobs",
        "1",
        "-o",
        tmp_path / "m.h5",
    )
    assert r.exit_code == 0, r.stderr
    with h5py.File(tmp_path / "m.h5") as f:
        assert f["features/mfcc_frames"].shape == (84, 8, 10) and f["features/stft"].shape[2] == 129
        assert f["features/stft"].dtype == np.float16 and f["features/stft"][()].min() >= 0  # linear magnitude
    r = genre("featurize", segs, "--mfcc-frames", "30", "-o", tmp_path / "x.h5")
    assert r.exit_code == 2 and "STEPSxN" in r.stderr
    r = genre("featurize", segs, "-o", tmp_path / "x.h5")
    assert r.exit_code == 2 and "no feature selected" in r.stderr


def test_a_small_n_fft_is_refused_only_for_mfccs_and_says_which_flag_to_change(segs, tmp_path):
    """MFCCs are computed from 128 mel bands (--mfcc-mels): --n-fft 128 (65 bins) is fine for a
    32-band log-mel, and refused for MFCCs with the flags that fix it."""
    r = genre("featurize", segs, "--n-fft", "128", "--mel", "32", "--jobs", "1", "-o", tmp_path / "mel.h5")
    assert r.exit_code == 0, r.stderr
    with h5py.File(tmp_path / "mel.h5") as f:
        assert f["features/mel"].shape[2] == 32
    for flags in (["--mfcc", "13"], ["--handcrafted"], ["--mfcc-frames", "4x13"]):
        r = genre("featurize", segs, "--n-fft", "128", *flags, "-o", tmp_path / "x.h5")
        err = " ".join(r.stderr.split())
        assert r.exit_code == 2 and f"{flags[0]} computes MFCCs from 128 mel bands" in err, err
        assert "65 frequency bins of --n-fft 128" in err and "--n-fft 256 or more, or --mfcc-mels 65 or fewer" in err
        assert not (tmp_path / "x.h5").exists()
    r = genre("featurize", segs, "--n-fft", "128", "--mfcc", "13", "--mfcc-mels", "40", "--jobs", "1", "-o", tmp_path / "m.h5")
    assert r.exit_code == 0, r.stderr
    with h5py.File(tmp_path / "m.h5") as f:
        assert f["features/mfcc"].shape[2] == 13


def test_workers_start_when_main_is_not_importable(tmp_path):
    """`python -` (a script on stdin) cannot be re-imported by spawned children: featurize --jobs 2 still works."""
    import os
    import subprocess
    import sys

    root = tmp_path / "m"
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            sf.write(root / label / f"{label}{i}.wav", synth("low" if label == "a" else "noise", 8.0, 8000, np.random.default_rng(i)), 8000)
    code = (
        "from genre_cli.cli import app\n"
        f"for argv in (['fetch', 'folder', '--from', {str(root)!r}, '-o', 'i.h5'], ['segment', 'i.h5', '--seconds', '0.5', '--sr', "
        "'8000', '-o', 's.h5'],"
        " ['featurize', 's.h5', '--mel', '16', '--n-fft', '256', '--hop-length', '128', '--jobs', '2', '-o', 'f.h5']):\n"
        "    try:\n        app(argv)\n    except SystemExit as e:\n        assert e.code == 0, (argv, e.code)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-"], input=code, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "f.h5").exists()
