"""A label with no training example: sklearn outputs are mapped onto the full label list.

An sklearn estimator's ``predict_proba`` has one column per label *seen in training*
(``classes_``). Here ``high`` (label index 0) is only in the test split, so the seen classes
are ``[1, 2]`` (low, noise): reading their columns as ``[0, 1]`` would call every low track
"high" — or crash on the validation metrics. Every sklearn model goes through train,
evaluate and predict on real generated audio, and the right label must come out.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from genre_cli.inference import sklearn_proba

from conftest import genre, write_folder

SKLEARN = ("logreg", "svm", "naive-bayes", "knn", "random-forest")


@pytest.fixture(scope="module")
def features(tmp_path_factory) -> tuple[Path, Path]:
    """Features of low/high/noise clips where ``high`` exists only in the test split."""
    tmp = tmp_path_factory.mktemp("absent")
    root = write_folder(tmp / "music", per_label=6, seconds=2.0, sr=22050, rng=np.random.default_rng(0))
    rows = []
    for label in ("high", "low", "noise"):
        for i in range(6):
            split = "test" if label == "high" else ("train", "train", "train", "validation", "test", "test")[i]
            rows.append({"path": f"{label}/{label}{i}.wav", "label": label, "split": split})
    table = tmp / "labels.csv"
    with open(table, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "label", "split"])
        w.writeheader()
        w.writerows(rows)
    w = tmp / "w"
    r = genre("fetch", "folder", "--from", root, "--labels", table, "-o", w / "idx.h5", "--jobs", "1")
    assert r.exit_code == 0, r.stderr
    assert "train split has no track of high" in r.stderr.replace("\n", " ")
    r = genre("segment", w / "idx.h5", "--seconds", "1", "-o", w / "seg.h5", "--jobs", "1")
    assert r.exit_code == 0, r.stderr
    r = genre("featurize", w / "seg.h5", "--handcrafted", "-o", w / "feat.h5", "--jobs", "1")
    assert r.exit_code == 0, r.stderr
    return w / "feat.h5", root


@pytest.mark.parametrize("model", SKLEARN)
def test_sklearn_model_with_a_label_absent_from_training(features, tmp_path, model):
    feat, root = features
    r = genre("train", feat, "--model", model, "-o", tmp_path / "m.h5")
    assert r.exit_code == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "no segment of high" in r.stderr.replace("\n", " ") and "probability 0" in r.stderr.replace("\n", " ")

    r = genre("evaluate", tmp_path / "m.h5", feat, "--json", "--no-plots", "-o", tmp_path / "ev.h5")
    assert r.exit_code == 0, r.stderr
    rep = json.loads(r.stdout)[0]
    assert rep["labels"] == ["high", "low", "noise"]
    assert rep["labels_untrained"] == {"high": 6}  # the 6 high test tracks: a label never trained on
    r = genre("evaluate", tmp_path / "m.h5", feat, "--no-plots", "-o", tmp_path / "ev.h5")
    assert "6 of the 10 evaluated tracks have a label the model saw no training track of: high (6)" in " ".join(r.stderr.split())
    track = rep["track"]["per_class"]
    assert track["low"]["recall"] == 1.0 and track["noise"]["recall"] == 1.0  # columns not shifted
    assert track["high"]["recall"] == 0.0  # never seen: never predicted
    assert all(row[0] == 0 for row in rep["track"]["confusion"][1:])  # nothing predicted as high

    files = [root / "low" / "low5.wav", root / "noise" / "noise5.wav", root / "high" / "high0.wav"]
    r = genre("predict", tmp_path / "m.h5", *files, "--format", "jsonl", "--top-k", "3", "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["genre"] for x in recs[:2]] == ["low", "noise"]
    for x in recs:
        assert set(x["probabilities"]) == {"high", "low", "noise"}
        assert x["probabilities"]["high"] == 0.0
        assert sum(x["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


def test_sklearn_proba_places_columns_by_classes():
    class Fake:
        classes_ = np.array([1, 3])

        def predict_proba(self, x):
            return np.array([[0.2, 0.8], [0.9, 0.1]])

    p = sklearn_proba(Fake(), np.zeros((2, 4)), 4)
    assert p.shape == (2, 4) and p.dtype == np.float32
    np.testing.assert_allclose(p, [[0, 0.2, 0, 0.8], [0, 0.9, 0, 0.1]], atol=1e-7)

    class Margin:
        classes_ = np.array([0, 2])

        def decision_function(self, x):  # binary: margin of classes_[1]
            return np.array([3.0, -3.0])

    p = sklearn_proba(Margin(), np.zeros((2, 4)), 3)
    assert p.argmax(1).tolist() == [2, 0] and p[:, 1].tolist() == [0.0, 0.0]


def test_model_classes_outside_the_labels_are_a_clear_error():
    from genre_cli.errors import ArtifactError

    class Bad:
        classes_ = np.array([0, 5])

        def predict_proba(self, x):
            return np.full((len(x), 2), 0.5)

    with pytest.raises(ArtifactError, match="not indices of its 3 labels"):
        sklearn_proba(Bad(), np.zeros((1, 2)), 3)


def test_train_split_with_one_label_is_refused(tmp_path):
    from tests.test_train import make_features

    feat = make_features(tmp_path / "f.h5")
    import h5py

    with h5py.File(feat, "r+") as f:  # relabel every train segment as label 0
        lab, split = f["segments/label"][()], f["segments/split"].asstr()[()]
        lab[split == "train"] = 0
        f["segments/label"][...] = lab
    r = genre("train", feat, "--model", "logreg", "-o", tmp_path / "m.h5")
    assert r.exit_code == 2 and "only one label" in r.stderr
