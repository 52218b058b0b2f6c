"""`genre featurize --table`: the Kaggle GTZAN table with the artist-filtered split."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from conftest import SHARED_DATA, genre

KAGGLE = SHARED_DATA / "gtzan" / "features_30_sec.csv"


@pytest.mark.skipif(not KAGGLE.exists(), reason="shared GTZAN table absent")
def test_kaggle_table_gets_artist_filtered_split_and_trains(tmp_path):
    feat = tmp_path / "k.h5"
    r = genre("featurize", "--table", KAGGLE, "-o", feat)
    assert r.exit_code == 0, r.stderr
    assert "artist-filtered" in r.stderr and "70 rows are in no split" in r.stderr
    with h5py.File(feat) as f:
        assert f["features/table"].shape == (1000, 57)
        cols = json.loads(f["features/table"].attrs["columns"])
        split = f["segments/split"].asstr()[()]
        x = f["features/table"][()]
        mean = f["norm/table/mean"][()]
    assert cols[0] == "chroma_stft_mean" and cols[-1] == "mfcc20_var" and "tempo" in cols
    assert [int(np.sum(split == s)) for s in ("train", "validation", "test", "")] == [443, 197, 290, 70]
    np.testing.assert_allclose(mean, x[split == "train"].mean(0), rtol=1e-4)  # statistics of the train split only
    model = tmp_path / "m.h5"
    assert genre("train", feat, "--model", "logreg", "-o", model).exit_code == 0
    rep = json.loads(genre("evaluate", model, feat, "--json", "--no-plots", "-o", tmp_path / "eval.h5").stdout)[0]
    assert rep["n_tracks"] == 290 and rep["split"] == "test"
    assert 0.35 < rep["track"]["accuracy"] < 0.70  # literature range for this split: 41-54 %


@pytest.mark.skipif(not KAGGLE.exists(), reason="shared GTZAN table absent")
def test_random_table_split_warns_and_is_seeded(tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    r = genre("featurize", "--table", KAGGLE, "--split-mode", "random", "--seed", "3", "-o", a)
    assert r.exit_code == 0 and "inflate" in r.stderr
    genre("featurize", "--table", KAGGLE, "--split-mode", "random", "--seed", "3", "-o", b)
    with h5py.File(a) as fa, h5py.File(b) as fb:
        sa, sb = fa["segments/split"].asstr()[()], fb["segments/split"].asstr()[()]
        labels = fa["segments/label"][()]
    assert (sa == sb).all() and int(np.sum(sa == "test")) == 200
    for lab in np.unique(labels):  # stratified: 20 % of each genre
        assert int(np.sum((labels == lab) & (sa == "test"))) == 20


def test_table_errors_are_bad_input(tmp_path):
    bad = tmp_path / "t.csv"
    bad.write_text("filename,f1,label\na.wav,1.0,x\nb.wav,oops,y\n")
    r = genre("featurize", "--table", bad, "--split-mode", "random", "-o", tmp_path / "o.h5")
    assert r.exit_code == 2 and "'oops' is not a number" in r.stderr
    own = tmp_path / "s.csv"  # the table's own split, folds drawn with --seed: allowed (the seed draws the folds)
    own.write_text("filename,f1,label,split\n" + "".join(f"{i}.wav,{i},{'xy'[i % 2]},{'train' if i < 8 else 'test'}\n" for i in range(12)))
    r = genre("featurize", "--table", own, "--folds", "2", "--seed", "1", "-o", tmp_path / "f.h5")
    assert r.exit_code == 0, r.stderr
    assert "8 train, 4 test" in r.stderr and "{" not in r.stderr  # counts as words, not a Python dict
    nan = tmp_path / "n.csv"
    nan.write_text("filename,f1,f2,label\na.wav,1.0,2.0,x\nb.wav,1.0,nan,y\nc.wav,inf,1.0,y\n")
    r = genre("featurize", "--table", nan, "--split-mode", "random", "-o", tmp_path / "o.h5")
    assert r.exit_code == 2 and "row 3, column 'f2': 'nan' is not a finite number (2 such cells in all)" in " ".join(r.stderr.split())
    ok = tmp_path / "u.csv"
    ok.write_text("filename,f1,label\na.wav,1.0,x\nb.wav,2.0,y\n")
    r = genre("featurize", "--table", ok, "-o", tmp_path / "o.h5")
    assert r.exit_code == 2 and "no split column" in r.stderr
    assert not (tmp_path / "o.h5").exists()


@pytest.mark.skipif(not KAGGLE.exists(), reason="shared GTZAN table absent")
def test_kaggle_table_with_folds_cross_validates(tmp_path):
    feat = tmp_path / "gt.h5"
    r = genre("featurize", "--table", KAGGLE, "--folds", "3", "-o", feat)
    assert r.exit_code == 0, r.stderr
    assert "folds: 3 (stratified by label)" in r.stderr and "an artist can be in several folds" in r.stderr.replace("\n", " ")
    with h5py.File(feat) as f:
        fold, split = f["tracks/fold"][()], f["tracks/split"].asstr()[()]
        assert json.loads(f.attrs["provenance"])["folds"] == 3
    assert set(fold[split == ""]) == {-1}  # the 70 clips outside the artist-filtered split are in no fold
    assert sorted(set(fold[split != ""])) == [0, 1, 2] and abs(int(np.sum(fold == 0)) - 310) <= 10
    r = genre("cv", feat, "--model", "logreg", "-o", tmp_path / "cv.h5")
    assert r.exit_code == 0, r.stderr
    assert "3-fold cross-validation" in r.stderr


def test_table_folds_and_random_split_keep_a_group_together(tmp_path):
    rng = np.random.default_rng(0)
    table = tmp_path / "t.csv"
    lines = ["filename,f1,f2,artist,label"]
    for i in range(48):
        label = "ab"[i % 2]
        lines.append(f"t{i}.wav,{rng.normal() + (i % 2)},{rng.normal()},artist{i // 4},{label}")
    table.write_text("\n".join(lines) + "\n")
    feat = tmp_path / "f.h5"
    r = genre("featurize", "--table", table, "--split-mode", "random", "--group-by", "artist", "--folds", "3", "-o", feat)
    assert r.exit_code == 0, r.stderr
    assert "folds: 3 (stratified by label, no artist in two folds)" in r.stderr
    with h5py.File(feat) as f:
        group, split, fold = f["tracks/group"].asstr()[()], f["tracks/split"].asstr()[()], f["tracks/fold"][()]
        assert f["features/table"].shape == (48, 2)  # the artist column is not a feature
        prov = json.loads(f.attrs["provenance"])
    assert prov["group_by"] == "artist" and prov["group_aware"] and "grouped by 'artist'" in prov["split_method"]
    assert set(fold) == {0, 1, 2}
    for g in set(group):
        assert len(set(split[group == g])) == 1 and len(set(fold[group == g])) == 1, g
    r = genre("featurize", "--table", table, "--split-mode", "random", "--group-by", "artsit", "-o", tmp_path / "g.h5")
    assert r.exit_code == 2 and "artsit" in r.stderr and "artist" in r.stderr
    r = genre("featurize", "--table", table, "--split-mode", "random", "--folds", "1", "-o", tmp_path / "h.h5")
    assert r.exit_code == 2 and "--folds" in r.stderr


def test_options_a_table_import_would_ignore_are_refused(tmp_path):
    """--val-fraction (--test-fraction, --seed) without --split-mode random, feature options with
    --table and table options without it did nothing: exit 2, nothing written."""
    table = tmp_path / "t.csv"
    rows = "".join(f"{lab}{i}.wav,{i}.0,{lab},{'train' if i < 3 else 'test'}\n" for lab in "xy" for i in range(4))
    table.write_text("filename,f1,label,split\n" + rows)
    out = tmp_path / "o.h5"
    for argv, said in (
        (["--table", table, "--val-fraction", "0.1"], "--val-fraction 0.1 only applies with --split-mode random"),
        (["--table", table, "--seed", "3", "--split-mode", "official"], "--seed 3 only applies with --split-mode random"),
        (["--table", table, "--mel", "64"], "--mel 64: feature options compute features from SEGMENTS"),
        (["--table", table, "--float16"], "--float16: feature options"),
        ([tmp_path / "seg.h5", "--mel", "64", "--val-fraction", "0.1"], "--val-fraction 0.1: table options apply to --table CSV only"),
    ):
        r = genre("featurize", *argv, "-o", out)
        assert r.exit_code == 2 and said in " ".join(r.stderr.split()), (argv, r.stderr)
        assert not out.exists()
    r = genre("featurize", "--table", table, "-o", out)  # the table's own split: no option to refuse
    assert r.exit_code == 0, r.stderr
    r = genre("featurize", "--table", table, "--split-mode", "random", "--val-fraction", "0.25", "-o", tmp_path / "r.h5")
    assert r.exit_code == 0 and "validation 0.25" in r.stderr, r.stderr
