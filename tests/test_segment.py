"""segment stage: window policies, per-segment metadata, stored audio, bad audio."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf

from genre_cli.errors import UsageError
from genre_cli.formats.segments import AUDIO_SCALE, read_windows
from genre_cli.formats.segments import read as load_segments
from genre_cli.segment import run
from genre_cli.windows import SegmentConfig, window_starts

from conftest import genre, synth, write_folder

SR = 16000


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Path:
    """3 labels x 4 tracks of 4 s at 16 kHz, indexed by `genre fetch folder`."""
    tmp = tmp_path_factory.mktemp("seg")
    root = write_folder(tmp / "music", per_label=4, seconds=4.0, sr=SR, rng=np.random.default_rng(1))
    r = genre("fetch", "folder", "--from", root, "-o", tmp / "idx.h5")
    assert r.exit_code == 0, r.stderr
    return tmp / "idx.h5"


# ----------------------------------------------------------------------------- window policies


def test_fixed_windows_without_overlap_drop_the_last_partial():
    cfg = SegmentConfig(sr=10, seconds=3.0)
    assert window_starts(100, cfg) == [(0, 30), (30, 30), (60, 30)]  # 90..100 dropped


def test_fixed_windows_pad_keeps_the_last_partial_window():
    cfg = SegmentConfig(sr=10, seconds=3.0, last="pad")
    assert window_starts(100, cfg) == [(0, 30), (30, 30), (60, 30), (90, 10)]
    assert window_starts(90, cfg) == [(0, 30), (30, 30), (60, 30)]  # nothing left over
    assert window_starts(12, cfg) == [(0, 12)]  # shorter than a window: one padded window
    assert window_starts(12, SegmentConfig(sr=10, seconds=3.0)) == []


def test_hop_gives_overlapping_windows():
    cfg = SegmentConfig(sr=10, seconds=3.0, hop=1.5)
    w = window_starts(100, cfg)
    assert [s for s, _ in w] == list(range(0, 71, 15))
    assert all(n == 30 for _, n in w)
    padded = window_starts(100, SegmentConfig(sr=10, seconds=3.0, hop=1.5, last="pad"))
    assert padded[-1] == (75, 25) and padded[:-1] == w  # the next start on the hop grid, zero-padded


def test_first_n_windows():
    cfg = SegmentConfig(sr=10, seconds=5.0, policy="first", count=10)
    assert window_starts(1000, cfg) == [(50 * i, 50) for i in range(10)]
    assert len(window_starts(120, cfg)) == 2  # fewer when the track is short


def test_frames_window_length_gives_exactly_that_many_frames():
    cfg = SegmentConfig(frames=128, frame_hop=512)
    assert cfg.win == 127 * 512
    assert 1 + cfg.win // 512 == 128  # centred STFT frame count


def test_random_windows_are_non_overlapping_inside_and_seeded():
    cfg = SegmentConfig(sr=100, seconds=3.0, policy="random", count=5, seed=1)
    n = 3000
    for tid in ("a", "b", "c", "d"):
        w = window_starts(n, cfg, track_id=tid)
        assert len(w) == 5
        starts = np.array([s for s, _ in w])
        assert np.all(np.diff(starts) >= 300)  # non-overlapping
        assert starts.min() >= 0 and starts.max() + 300 <= n  # inside the track
        assert window_starts(n, cfg, track_id=tid) == w  # reproducible
    a = window_starts(n, cfg, track_id="a")
    assert window_starts(n, SegmentConfig(sr=100, seconds=3.0, policy="random", count=5, seed=2), track_id="a") != a
    assert window_starts(n, cfg, track_id="b") != a  # positions differ per track
    # a track with room for only 2 windows gives 2, still non-overlapping
    w = window_starts(700, cfg, track_id="a")
    assert len(w) == 2 and w[1][0] - w[0][0] >= 300 and w[1][0] + 300 <= 700


def test_bad_configs_are_usage_errors():
    with pytest.raises(UsageError, match="--hop"):
        SegmentConfig(hop=0)
    with pytest.raises(UsageError, match="window count"):
        SegmentConfig(policy="random", count=0)
    with pytest.raises(UsageError, match="--last"):
        SegmentConfig(last="keep")


# ----------------------------------------------------------------------------- the stage


@pytest.mark.parametrize("compress", [True, False])
def test_stage_stores_audio_and_metadata_per_segment(index, tmp_path, compress):
    res = run(
        index,
        config=SegmentConfig(sr=SR, seconds=1.0, hop=0.5),
        out=tmp_path / "s.h5",
        jobs=2,
        compress=compress,
        audio_dtype="int16",
        show_progress=False,
    )
    assert res.ran and res.summary["n_tracks"] == 12 and res.summary["n_skipped"] == 0
    segs = load_segments(res.path)
    seg, tr = segs.segments, segs.tracks
    assert len(seg["track"]) == 12 * 7  # (4 s - 1 s) / 0.5 s + 1
    for k in ("track_id", "label", "group", "split", "fold"):
        assert np.array_equal(seg[k], tr[k][seg["track"]]), k
    assert set(tr["split"]) >= {"train", "test"}
    with h5py.File(res.path) as f:
        assert ("32001" in f["audio"]._filters) is compress and f["audio"].dtype == np.int16  # as asked
        # the stored audio is the decoded file, to int16 precision
        i = 5
        y_ref, _ = sf.read(Path(str(index.parent / "music")) / tr["path"][i], dtype="float32")
        o, n = tr["offset"][i], tr["n_samples"][i]
        assert n == len(y_ref) and o % (1 << 16) == 0
        np.testing.assert_allclose(f["audio"][o : o + n] * AUDIO_SCALE, y_ref, atol=1.0 / 32767)
        # windows read back = slices of the track
        rows = np.flatnonzero(seg["track"] == i)
        w = read_windows(f["audio"], segs, rows)
        np.testing.assert_allclose(w[1], y_ref[8000:24000], atol=1.0 / 32767)
        # a sparse batch (windows of tracks far apart) reads the same values
        sparse = np.array([0, len(seg["track"]) - 1])
        ws = read_windows(f["audio"], segs, sparse)
        dense = np.concatenate([read_windows(f["audio"], segs, np.array([r])) for r in sparse])
        assert np.array_equal(ws, dense)


def test_bad_audio_is_skipped_with_a_reason(tmp_path):
    root = tmp_path / "bad"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir(parents=True)
    rng = np.random.default_rng(0)
    sf.write(root / "a" / "good.wav", synth("low", 2.0, SR, rng), SR)
    sf.write(root / "b" / "silent.wav", np.zeros(2 * SR, np.float32), SR)  # silence is valid audio
    (root / "a" / "empty.wav").write_bytes(b"")
    (root / "b" / "garbage.wav").write_bytes(b"RIFF this is not audio at all" * 10)
    sf.write(root / "a" / "short.wav", synth("low", 0.3, SR, rng), SR)
    nan = synth("high", 2.0, SR, rng)
    nan[100] = np.nan
    sf.write(root / "b" / "nan.wav", nan, SR, subtype="FLOAT")
    assert genre("fetch", "folder", "--from", root, "-o", tmp_path / "i.h5").exit_code == 0
    r = genre("segment", tmp_path / "i.h5", "--sr", SR, "--seconds", "1", "-o", tmp_path / "s.h5", "--jobs", "1")
    assert r.exit_code == 0, r.stderr
    assert "4 tracks skipped" in r.stderr and "skipped" in r.stderr
    segs = load_segments(tmp_path / "s.h5")
    reasons = {Path(p).name: r for p, r in zip(segs.skipped["path"], segs.skipped["reason"])}
    assert set(reasons) == {"empty.wav", "garbage.wav", "short.wav", "nan.wav"}
    assert "empty" in reasons["empty.wav"]
    assert "not decodable" in reasons["garbage.wav"] or "corrupt" in reasons["garbage.wav"]
    assert "shorter than one window" in reasons["short.wav"]
    assert "NaN" in reasons["nan.wav"]
    assert sorted(Path(p).name for p in segs.tracks["path"]) == ["good.wav", "silent.wav"]
    assert len(segs.segments["track"]) == 4


def test_cli_policies(index, tmp_path):
    r = genre("segment", index, "--sr", SR, "--seconds", "0.5", "--random", "3", "--seed", "7", "-o", tmp_path / "r.h5")
    assert r.exit_code == 0, r.stderr
    segs = load_segments(tmp_path / "r.h5")
    assert np.all(np.bincount(segs.segments["track"]) == 3) and segs.config.policy == "random"
    r = genre("segment", index, "--sr", SR, "--seconds", "1", "--first", "2", "-o", tmp_path / "f.h5")
    assert r.exit_code == 0 and len(load_segments(tmp_path / "f.h5").segments["track"]) == 24
    r = genre("segment", index, "--sr", SR, "--frames", "32", "--frame-hop", "256", "--no-compress", "-o", tmp_path / "fr.h5")
    segs = load_segments(tmp_path / "fr.h5")
    assert r.exit_code == 0 and segs.win == 31 * 256 and np.all(segs.segments["length"] == 31 * 256)
    r = genre("segment", index, "--random", "2", "--first", "2")
    assert r.exit_code == 2 and "exclusive" in r.stderr


def test_options_that_others_make_pointless_are_refused_when_given(index, tmp_path):
    """--seconds with --frames and --frame-hop without --frames did nothing but change the
    fingerprint: refused (exit 2), nothing written. Their defaults (what `genre run` passes) are fine."""
    for argv, said in (
        (["--frames", "128", "--seconds", "5"], "--frames sets the window length (128 STFT frames); drop --seconds 5"),
        (["--frame-hop", "256"], "--frame-hop 256 only applies to --frames windows"),
    ):
        r = genre("segment", index, "--sr", SR, *argv, "-o", tmp_path / "x.h5")
        assert r.exit_code == 2 and said in " ".join(r.stderr.split()), r.stderr
        assert not (tmp_path / "x.h5").exists()
    defaults = {o.name: o.default for o in SegmentConfig.cli_options()}
    assert SegmentConfig.from_cli(defaults | {"frames": 32}).win == 31 * 512  # --frames alone, the rest at defaults
    # --hop with --random is kept (it is the hop of predict's grid) and said so
    r = genre("segment", index, "--sr", SR, "--seconds", "1", "--random", "2", "--hop", "0.5", "-o", tmp_path / "r.h5")
    assert r.exit_code == 0, r.stderr
    assert "--hop 0.5 is the hop of the windows `genre predict` classifies a whole file with" in " ".join(r.stderr.split())
    assert load_segments(tmp_path / "r.h5").config.grid().hop == 0.5


def test_tracks_giving_fewer_random_windows_than_asked_are_counted(index, tmp_path):
    # 4 s tracks hold three non-overlapping 1.2 s windows, not five
    r = genre("segment", index, "--sr", SR, "--seconds", "1.2", "--random", "5", "-o", tmp_path / "r.h5")
    assert r.exit_code == 0, r.stderr
    err = " ".join(r.stderr.split())
    assert "warning: 12 of 12 tracks are too short for 5 non-overlapping 1.2 s windows and gave fewer (as many as fit)" in err
    assert np.all(np.bincount(load_segments(tmp_path / "r.h5").segments["track"]) == 3)
    r = genre("segment", index, "--sr", SR, "--seconds", "1", "--random", "3", "-o", tmp_path / "ok.h5")
    assert r.exit_code == 0 and "too short" not in r.stderr
    r = genre("segment", index, "--sr", SR, "--seconds", "1", "--first", "6", "-o", tmp_path / "f.h5")
    assert "12 of 12 tracks have fewer than 6 windows of 1 s and gave all they have" in " ".join(r.stderr.split())


# float16 stores sample * 2**14: 11 significant bits (relative error <= 2**-11) for every
# sample above 3.7e-9 in magnitude, quiet ones included (unscaled, those below 6.1e-5 would be
# float16 subnormals with fewer bits)
@pytest.mark.parametrize("dtype,rtol,atol,scale", [("float32", 0.0, 0.0, 1.0), ("float16", 2.0**-11, 4e-9, 2.0**-14)])
def test_float_audio_storage(index, tmp_path, dtype, rtol, atol, scale):
    res = run(index, config=SegmentConfig(sr=SR, seconds=1.0), out=tmp_path / "s.h5", jobs=1, audio_dtype=dtype, show_progress=False)
    segs = load_segments(res.path)
    assert segs.audio_scale == scale
    with h5py.File(res.path) as f:
        assert f["audio"].dtype == np.dtype(dtype)
        y_ref, _ = sf.read(Path(str(index.parent / "music")) / segs.tracks["path"][0], dtype="float32")
        w = read_windows(f["audio"], segs, np.array([1]))[0]
    ref = y_ref[SR : 2 * SR]
    np.testing.assert_allclose(w, ref, atol=atol, rtol=rtol)
    quiet = (np.abs(ref) < 6e-5) & (ref != 0)
    if dtype == "float16" and quiet.any():
        np.testing.assert_allclose(w[quiet], ref[quiet], rtol=2.0**-11, atol=4e-9)


def test_default_audio_storage_is_float32(index, tmp_path):
    res = run(index, config=SegmentConfig(sr=SR, seconds=1.0), out=tmp_path / "d.h5", jobs=1, show_progress=False)
    with h5py.File(res.path) as f:
        assert f["audio"].dtype == np.float32 and float(f.attrs["audio_scale"]) == 1.0


@pytest.mark.parametrize("dtype,limit", [("float16", 65504.0 / 2**14), ("int16", 1.0), ("float32", None)])
def test_overshooting_float_audio_is_scaled_to_fit_the_storage(tmp_path, dtype, limit):
    # a float WAV may hold samples beyond [-1, 1]; the stored dtype must not overflow or clip
    root = tmp_path / "music" / "loud"
    root.mkdir(parents=True)
    y = (5.0 * np.sin(2 * np.pi * 220 * np.arange(2 * SR) / SR)).astype(np.float32)
    y[::97] = 1e-6  # quiet samples keep their relative precision too
    sf.write(root / "loud.wav", y, SR, subtype="FLOAT")
    r = genre("fetch", "folder", "--from", tmp_path / "music", "-o", tmp_path / "idx.h5")
    assert r.exit_code == 0, r.stderr
    res = run(
        tmp_path / "idx.h5", config=SegmentConfig(sr=SR, seconds=1.0), out=tmp_path / "s.h5", jobs=1, audio_dtype=dtype, show_progress=False
    )
    segs = load_segments(res.path)
    with h5py.File(res.path) as f:
        w = read_windows(f["audio"], segs, np.array([0, 1])).reshape(-1)
    assert np.isfinite(w).all()
    expect = y if limit is None else y * np.float32(limit / np.abs(y).max())  # same shape, peak at the limit
    tol = {"float16": dict(rtol=2.0**-11, atol=4e-9), "int16": dict(rtol=0, atol=1.0 / 32767), "float32": dict(rtol=0, atol=0)}[dtype]
    np.testing.assert_allclose(w, expect, **tol)


@pytest.mark.parametrize("channels", [1, 2, 3, 6])
def test_downmix_equals_channel_mean(channels):
    from genre_cli.audio import downmix

    data = np.random.default_rng(channels).standard_normal((1001, channels)).astype(np.float32)
    np.testing.assert_array_equal(downmix(data), data.mean(axis=1, dtype=np.float32))
    assert downmix(data[:, 0]).shape == (1001,)
