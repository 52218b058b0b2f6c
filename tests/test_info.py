"""``genre info``: what it says about built-in models, sources, cv reports and wrong arguments."""

from __future__ import annotations

import json

import h5py
import numpy as np

from genre_cli.describe import _cv_folds

from conftest import genre, write_folder


def test_builtin_model_says_its_own_split_and_does_not_call_build_files_missing():
    r = genre("info", "genres")
    assert r.exit_code == 0, r.stderr
    out = r.stdout
    assert "split: the shipped model is trained on all 50 clips" in out
    assert "split: official" not in out  # the build's table split, which contradicted the card
    assert "(not shipped: a file of the build" in out and "(missing)" not in out


def test_an_index_source_folder_is_a_source_not_an_unreadable_artifact(tmp_path):
    root = write_folder(tmp_path / "music", per_label=2, seconds=1.0, sr=8000, rng=np.random.default_rng(0))
    assert genre("fetch", "folder", "--from", root, "-o", tmp_path / "idx.h5").exit_code == 0
    r = genre("info", tmp_path / "idx.h5")
    assert r.exit_code == 0 and f"  source: {root} (source)" in r.stdout, r.stdout
    assert "unreadable" not in r.stdout and "? " not in r.stdout


def test_wrong_arguments_are_usage_errors(tmp_path):
    r = genre("info", tmp_path)
    assert r.exit_code == 2 and "a directory, not an artifact" in r.stderr
    r = genre("info", "nope")
    assert r.exit_code == 2 and "no such file 'nope'" in r.stderr and "genre artifact" in r.stderr
    assert "genre train" not in r.stderr  # info takes any artifact, not only models


def test_a_cv_report_describes_its_folds(tmp_path):
    report = {"split_method": "3-fold cross-validation, stratified by label, no drummer in two folds", "group_disjoint": True, "n_folds": 3}
    with h5py.File(tmp_path / "cv.h5", "w") as f:
        f.attrs["report"] = json.dumps(report)
        assert _cv_folds(f) == {"split_method": report["split_method"], "group_aware": True, "folds": 3}
        f.attrs["report"] = "{}"
        assert _cv_folds(f) is None


def test_relative_upstream_paths_are_found_from_the_artifacts_folder(tmp_path, monkeypatch):
    root = write_folder(tmp_path / "music", per_label=2, seconds=1.0, sr=8000, rng=np.random.default_rng(0))
    monkeypatch.chdir(tmp_path)
    assert genre("fetch", "folder", "--from", "music", "-o", "idx.h5").exit_code == 0
    assert genre("segment", "idx.h5", "--seconds", "0.5", "-o", "seg.h5").exit_code == 0
    monkeypatch.chdir(root)  # elsewhere: "idx.h5" is not here, but beside seg.h5
    r = genre("info", tmp_path / "seg.h5")
    assert r.exit_code == 0 and f"index: fetch {tmp_path / 'idx.h5'} (matches)" in r.stdout, r.stdout


def test_a_closed_pipe_ends_quietly_with_exit_0(tmp_path):
    """`genre info genres | head -1`, `genre models | head -1`, `genre predict ... | head -1`: a
    reader that has gone is no error; exit 0."""
    import subprocess
    import sys

    import soundfile as sf

    from conftest import synth

    clip = tmp_path / "clip.wav"
    sf.write(clip, synth("noise", 3.5, 16000, np.random.default_rng(1)), 16000)
    for args in (["info", "genres"], ["models"], ["predict", "genres", str(clip), "--device", "cpu"]):
        p = subprocess.Popen([sys.executable, "-m", "genre_cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdout.close()  # closed before genre writes anything (it takes ~1 s to start): its first write hits a closed pipe
        err = p.stderr.read().decode()
        assert p.wait(timeout=120) == 0 and "Error" not in err and "error" not in err, (args, p.returncode, err)
