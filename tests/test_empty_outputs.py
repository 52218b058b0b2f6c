"""Producing nothing is an error (exit 2) with the reason, and leaves no artifact behind."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import genre, write_folder


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict[str, Path]:
    """3 labels x 2 tracks of 4 s: index and 1 s segments."""
    tmp = tmp_path_factory.mktemp("empty")
    root = write_folder(tmp / "music", per_label=2, seconds=4.0, sr=16000, rng=np.random.default_rng(3))
    idx, seg = tmp / "idx.h5", tmp / "seg.h5"
    assert genre("fetch", "folder", "--from", root, "-o", idx).exit_code == 0
    assert genre("segment", idx, "--seconds", "1", "-o", seg).exit_code == 0
    return {"root": root, "idx": idx, "seg": seg}


def _nothing_left(folder: Path, out: Path) -> None:
    assert not out.exists()
    assert not [p.name for p in folder.iterdir() if p.name.startswith(f".{out.name}")]  # no temp file, no lock


def test_segment_windows_longer_than_every_track(chain, tmp_path):
    out = tmp_path / "seg.h5"
    r = genre("segment", chain["idx"], "--seconds", "100", "-o", out)
    assert r.exit_code == 2, r.stderr
    assert "all 6 tracks are shorter than one window (100 s); nothing was written" in r.stderr
    assert "use --last pad" in r.stderr
    _nothing_left(tmp_path, out)
    r = genre("segment", chain["idx"], "--seconds", "100", "--last", "pad", "-o", out)  # the hint works
    assert r.exit_code == 0 and "6 segments" in r.stderr


def test_run_stops_at_the_empty_stage(chain, tmp_path):
    r = genre("run", "--dataset", "folder", "--from", chain["root"], "--seconds", "100", "--workdir", tmp_path / "w")
    assert r.exit_code == 2 and "all 6 tracks are shorter than one window" in r.stderr
    assert "✓ fetch" in r.stderr and "✓ segment" not in r.stderr and "featurize" not in r.stderr


def test_featurize_refuses_a_segments_file_without_segments(chain, tmp_path):
    seg = tmp_path / "empty-seg.h5"  # as an older genre wrote it: complete, 0 segments
    seg.write_bytes(chain["seg"].read_bytes())
    with h5py.File(seg, "a") as f:
        for col in list(f["segments"]):
            dtype = f["segments"][col].dtype
            del f["segments"][col]
            f["segments"].create_dataset(col, shape=(0,), dtype=dtype)
    out = tmp_path / "feat.h5"
    r = genre("featurize", seg, "--mel", "8", "-o", out)
    assert r.exit_code == 2, r.stderr
    assert "no segments to featurize" in r.stderr and "nothing was written" in r.stderr
    _nothing_left(tmp_path, out)


def test_fetch_of_a_folder_without_audio(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no audio here")
    out = tmp_path / "idx.h5"
    r = genre("fetch", "folder", "--from", empty, "-o", out)
    assert r.exit_code == 2, r.stderr
    assert "no audio files found (1 other files skipped); nothing was written" in r.stderr
    _nothing_left(tmp_path, out)


def test_fetch_of_a_folder_whose_audio_is_all_unusable(tmp_path):
    bad = tmp_path / "bad" / "lab"
    bad.mkdir(parents=True)
    (bad / "a.wav").write_bytes(b"not audio")
    (bad / "b.ogg").write_bytes(b"")
    out = tmp_path / "idx.h5"
    r = genre("fetch", "folder", "--from", bad.parent, "-o", out)
    assert r.exit_code == 2, r.stderr
    assert "none of the 2 audio files can be used" in r.stderr and "nothing was written" in r.stderr
    _nothing_left(tmp_path, out)


@pytest.mark.parametrize(
    "text, message",
    [("filename,f1,label\n", "has a header but no rows"), ("filename,label,split\na.wav,x,train\n", "no feature columns")],
)
def test_feature_table_without_rows_or_columns(tmp_path, text, message):
    table = tmp_path / "t.csv"
    table.write_text(text)
    out = tmp_path / "feat.h5"
    r = genre("featurize", "--table", table, "--split-mode", "random", "-o", out)
    assert r.exit_code == 2 and message in r.stderr, r.stderr
    _nothing_left(tmp_path, out)
