"""evaluate on an external test set whose labels are a subset of the model's, in another order."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf

from conftest import genre, synth, write_folder

SR = 16000


def _external(root: Path, labels: tuple[str, ...], rng) -> Path:
    """``root/<label>/ext_<label><i>.wav`` (names the model never saw) with a table putting all in the test split."""
    rows = []
    for label in labels:
        (root / label).mkdir(parents=True)
        for i in range(3):
            name = f"{label}/ext_{label}{i}.wav"
            sf.write(root / name, synth(label, 2.0, SR, rng), SR)
            rows.append({"path": name, "style": label, "split": "test"})
    with open(root / "tracks.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "style", "split"])
        w.writeheader()
        w.writerows(rows)
    return root / "tracks.csv"


def _features(root: Path, table: Path | None, out: Path) -> Path:
    extra = ["--labels", table, "--label-column", "style"] if table else []
    assert genre("fetch", "folder", "--from", root, *extra, "-o", out / "idx.h5").exit_code == 0
    assert genre("segment", out / "idx.h5", "--seconds", "1", "-o", out / "seg.h5").exit_code == 0
    r = genre("featurize", out / "seg.h5", "--handcrafted", "--jobs", "1", "-o", out / "feat.h5")
    assert r.exit_code == 0, r.stderr
    return out / "feat.h5"


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("subset")
    rng = np.random.default_rng(11)
    train_feat = _features(write_folder(tmp / "music", per_label=6, seconds=2.0, sr=SR, rng=rng), None, tmp)
    model = tmp / "model.h5"
    assert genre("train", train_feat, "--model", "logreg", "-o", model).exit_code == 0
    ext = tmp / "ext"
    ext.mkdir()
    sub_feat = _features(ext / "music", _external(ext / "music", ("noise", "low"), rng), ext)
    return {"model": model, "sub": sub_feat, "tmp": tmp}


def _reorder(src: Path, dst: Path, order: list[str]) -> Path:
    """A copy of features ``src`` whose label list is ``order`` (label indices remapped)."""
    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "a") as f:
        old = json.loads(f.attrs["labels"])
        lut = np.array([order.index(lab) for lab in old])
        f.attrs["labels"] = json.dumps(order)
        for table in ("segments", "tracks"):
            f[table]["label"][...] = lut[f[table]["label"][()]]
    return dst


def test_a_test_set_with_two_of_the_three_labels_is_scored_over_those(setup, tmp_path):
    r = genre("evaluate", setup["model"], setup["sub"], "--json", "--no-plots", "-o", tmp_path / "ev.h5")
    assert r.exit_code == 0, r.stderr
    rep = json.loads(r.stdout)[0]
    assert rep["labels"] == ["high", "low", "noise"]  # the model's labels
    assert rep["labels_absent"] == ["high"] and rep["n_tracks"] == 6
    for level in ("segment", "track"):
        m = rep[level]
        assert m["per_class"]["high"]["support"] == 0 and m["per_class"]["low"]["support"] > 0
        assert sorted(m["classes_present"]) == ["low", "noise"]
        assert m["confusion"][0] == [0, 0, 0]  # no true "high"
        assert m["accuracy"] > 0.8  # low tones and noise bursts are easy: the labels were matched by name, not index
    table = genre("evaluate", setup["model"], setup["sub"], "--no-plots", "-o", tmp_path / "ev2.h5")
    text = " ".join(table.stderr.split())
    assert "the test split has no track of high (1 of the model's 3 labels)" in text
    assert "cover the 2 labels present" in text


def test_label_order_does_not_matter(setup, tmp_path):
    a = json.loads(genre("evaluate", setup["model"], setup["sub"], "--json", "--no-plots", "-o", tmp_path / "a.h5").stdout)[0]
    other = _reorder(setup["sub"], tmp_path / "reordered.h5", ["noise", "low"])
    r = genre("evaluate", setup["model"], other, "--json", "--no-plots", "-o", tmp_path / "b.h5")
    assert r.exit_code == 0, r.stderr
    b = json.loads(r.stdout)[0]
    for level in ("segment", "track"):
        assert a[level]["confusion"] == b[level]["confusion"] and a[level]["accuracy"] == b[level]["accuracy"]


def test_a_label_the_model_does_not_know_is_refused(setup, tmp_path):
    other = tmp_path / "jazz.h5"
    other.write_bytes(setup["sub"].read_bytes())
    with h5py.File(other, "a") as f:
        f.attrs["labels"] = json.dumps([{"noise": "jazz"}.get(lab, lab) for lab in json.loads(f.attrs["labels"])])
    r = genre("evaluate", setup["model"], other, "--no-plots", "-o", tmp_path / "ev.h5")
    assert r.exit_code == 2, r.stderr
    assert "labels that" in r.stderr and "does not know: jazz (" in r.stderr and "the model knows high, low, noise" in r.stderr
    assert not (tmp_path / "ev.h5").exists()
