"""``genre cv``: k-fold cross-validation over the index's folds (genre_cli/cv.py).

The data: 3 labels x 6 tracks of synthetic audio, six performers who each play one track of
every label, fetched with ``--group-by performer --folds 3``: each fold holds two performers,
so group-disjoint folds can be perfectly stratified (two tracks of each label per fold).
"""

from __future__ import annotations

import csv
import json
import shutil
import statistics
from pathlib import Path

import h5py
import numpy as np
import pytest

from genre_cli import cv
from genre_cli.datasets.folder import assign_folds
from genre_cli.errors import InputError, UsageError
from genre_cli.formats import cv as cv_format
from genre_cli.formats import features as feat_format
from genre_cli.formats import model as model_format
from genre_cli.training.config import TrainConfig

from conftest import genre, write_folder

LABELS = ("low", "high", "noise")


@pytest.fixture(scope="module")
def feats(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("cv")
    root = write_folder(tmp / "music", per_label=6, seconds=2.0, sr=16000, rng=np.random.default_rng(3))
    table = tmp / "tracks.csv"
    with open(table, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "style", "performer"])
        w.writeheader()
        for label in LABELS:
            for i in range(6):
                w.writerow({"path": f"{label}/{label}{i}.wav", "style": label, "performer": f"p{i}"})
    r = genre(
        "fetch", "folder", "--from", root, "--labels", table, "--label-column", "style", "--group-by", "performer",
        "--folds", "3", "--jobs", "1", "-o", tmp / "idx.h5",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert genre("segment", tmp / "idx.h5", "--seconds", "1", "--jobs", "1", "-o", tmp / "seg.h5").exit_code == 0
    r = genre("featurize", tmp / "seg.h5", "--handcrafted", "--jobs", "1", "-o", tmp / "feat.h5")
    assert r.exit_code == 0, r.stderr
    return tmp / "feat.h5"


def _copy(src: Path, dst: Path, **columns) -> Path:
    """A copy of a features file with some /tracks columns replaced (and /segments' copies of them)."""
    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as f:
        track_of_segment = f["segments/track"][()]
        for name, values in columns.items():
            values = np.asarray(values)
            for table, v in (("tracks", values), ("segments", values[track_of_segment])):
                del f[f"{table}/{name}"]
                if v.dtype.kind in "OU":
                    f.create_dataset(f"{table}/{name}", data=v.astype(object), dtype=h5py.string_dtype("utf-8"))
                else:
                    f.create_dataset(f"{table}/{name}", data=v)
    return dst


LOGREG = TrainConfig(model="logreg", device="cpu")


def test_folds_are_group_disjoint_and_stratified(feats, tmp_path):
    res = cv.run(feats, models=[LOGREG], out=tmp_path / "cv.h5")
    rep = res.summary["report"]
    assert rep["group_disjoint"] and rep["group_column"] == "performer" and rep["n_folds"] == 3
    assert rep["fold_label_counts"] == {str(k): dict.fromkeys(LABELS, 2) for k in range(3)}  # stratified: 2 per label per fold
    f = feat_format.read(feats)
    fold, group = f.tracks["fold"], f.tracks["group"].astype(str)
    groups = [set(group[fold == k]) for k in range(3)]
    assert all(len(g) == 2 for g in groups) and not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    tested = [set(r["n_test_tracks"] for r in rep["models"][0]["folds"])]
    assert tested == [{6}]  # every fold was scored on its 6 tracks, the 12 others trained on
    assert [r["n_train_tracks"] for r in rep["models"][0]["folds"]] == [12, 12, 12]


def test_assign_folds_many_groups_stratified_and_group_disjoint():
    """15 performers, each playing 4 tracks of one label (5 per label), 5 folds: one performer
    of every label per fold."""
    labels = np.repeat(np.array(LABELS, dtype=object), 20)
    groups = np.array([f"{lab}-p{i // 4}" for lab in LABELS for i in range(20)], dtype=object)
    fold = assign_folds(labels, groups=groups, k=5, seed=1)
    for g in set(groups):
        assert len(set(fold[groups == g])) == 1, g
    for k in range(5):
        assert [int(np.sum((fold == k) & (labels == lab))) for lab in LABELS] == [4, 4, 4]


def test_a_model_trained_under_cv_never_sees_its_test_fold(feats, tmp_path, monkeypatch):
    import genre_cli.train

    seen: list[dict] = []
    real = genre_cli.train.run

    def spy(path, **kw):
        f = feat_format.read(path)
        train = f.segments["split"] == "train"
        seen.append(
            {
                "test_fold": set(f.segments["fold"][f.segments["split"] == "test"].tolist()),
                "train_folds": set(f.segments["fold"][train].tolist()),
                "train_tracks": set(f.segments["track_id"][train].astype(str)),
                "norm": f.norm["handcrafted"],
                "rows": np.flatnonzero(train),
            }
        )
        return real(path, **kw)

    monkeypatch.setattr(genre_cli.train, "run", spy)
    res = cv.run(feats, models=[LOGREG, TrainConfig(model="mlp", epochs=1, batch_size=8, device="cpu")], out=tmp_path / "cv.h5")
    full = feat_format.read(feats)
    fold, tid, group = full.tracks["fold"], full.tracks["track_id"].astype(str), full.tracks["group"].astype(str)
    assert len(seen) == 6  # 2 models x 3 folds
    for call in seen:
        (k,) = call["test_fold"]
        assert call["train_folds"] == {0, 1, 2} - {k}
        assert call["train_tracks"] == set(tid[fold != k]) and not call["train_tracks"] & set(tid[fold == k])
        x = full.load("handcrafted", call["rows"]).astype(np.float64)  # normalised with the training folds only
        np.testing.assert_allclose(call["norm"][0], x.mean(0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(call["norm"][1], np.where(x.std(0) < 1e-8, 1.0, x.std(0)), rtol=1e-4, atol=1e-5)
    for m in res.summary["report"]["models"]:
        for r in m["folds"]:
            saw = model_format.seen(r["model_path"])  # what the saved model records it was trained on
            k = r["fold"]
            assert saw["train"] == set(tid[fold != k]) and not saw["train"] & set(tid[fold == k])
            assert not saw["train_groups"] & set(group[fold == k]) and not saw["validation"]
            assert r["leakage"]["tracks"] == 0 and r["leakage"]["group_tracks"] == 0


def test_mean_and_std_over_folds(feats, tmp_path):
    res = cv.run(feats, models=[LOGREG], out=tmp_path / "cv.h5")
    m = res.summary["report"]["models"][0]
    from sklearn.metrics import balanced_accuracy_score

    with h5py.File(res.path, "r") as f:  # recompute each fold's score from the stored track predictions
        per_fold = [
            balanced_accuracy_score(f[f"model0/fold{k}/track_label"][()], f[f"model0/fold{k}/track_proba"][()].argmax(1)) for k in range(3)
        ]
    assert [r["track"]["balanced_accuracy"] for r in m["folds"]] == pytest.approx(per_fold)
    bal = m["summary"]["track"]["balanced_accuracy"]
    assert bal["mean"] == pytest.approx(statistics.fmean(per_fold)) and bal["std"] == pytest.approx(statistics.stdev(per_fold))
    s = cv.summarize([{"track": dict.fromkeys(cv.SCORES, v), "segment": {"balanced_accuracy": v}} for v in (0.5, 0.7, 0.9)])
    assert s["track"]["accuracy"]["mean"] == pytest.approx(0.7) and s["track"]["accuracy"]["std"] == pytest.approx(0.2)
    one = cv.summarize([{"track": dict.fromkeys(cv.SCORES, 0.4), "segment": {"balanced_accuracy": 0.4}}])
    assert one["track"]["macro_f1"] == {"mean": 0.4, "std": None, "values": [0.4]} and one["note"] == cv.ONE_FOLD
    assert json.loads(res.path.with_suffix(".json").read_text()) == cv_format.read(res.path)


def test_up_to_date_skip_force_and_dry_run(feats, tmp_path, monkeypatch):
    import genre_cli.train

    calls = []
    real = genre_cli.train.run
    monkeypatch.setattr(genre_cli.train, "run", lambda path, **kw: calls.append(path) or real(path, **kw))
    out = tmp_path / "cv.h5"
    assert cv.run(feats, models=[LOGREG], out=out, dry_run=True).status == "would run" and not out.exists()
    first = cv.run(feats, models=[LOGREG], out=out)
    assert first.ran and len(calls) == 3
    again = cv.run(feats, models=[LOGREG], out=out)
    assert again.status == "skipped" and len(calls) == 3 and again.summary["report"] == first.summary["report"]
    out.unlink()  # the report is gone, the fold models are not: they are reused
    redo = cv.run(feats, models=[LOGREG], out=out)
    assert redo.ran and [r["status"] for r in redo.summary["report"]["models"][0]["folds"]] == ["skipped"] * 3
    forced = cv.run(feats, models=[LOGREG], out=out, force=True)
    assert forced.ran and [r["status"] for r in forced.summary["report"]["models"][0]["folds"]] == ["ran"] * 3
    other = cv.run(feats, models=[LOGREG.replace(seed=1)], out=out)  # other settings: not up to date
    assert other.ran


def test_cli_prints_mean_std_and_names_data_split_and_level(feats, tmp_path):
    r = genre("cv", feats, "--model", "logreg", "--model", "naive-bayes", "--device", "cpu", "-o", tmp_path / "cv.h5")
    assert r.exit_code == 0, r.stderr
    err = " ".join(r.stderr.split())
    assert "3-fold cross-validation" in err and "stratified by label, no performer in two folds" in err and "track level" in err
    assert "mean ± std over folds" in err and "logreg" in err and "naive-bayes" in err
    rep = cv_format.read(tmp_path / "cv.h5")
    m = rep["models"][0]["summary"]["track"]["balanced_accuracy"]
    assert f"{m['mean']:.3f} ± {m['std']:.3f}" in err
    assert r.stdout.strip() == str(tmp_path / "cv.h5")
    with h5py.File(rep["models"][0]["folds"][0]["model_path"]) as f:  # no --seed: the fold models' seed is the default
        assert json.loads(f.attrs["train_sources"])["seed"] == "default"


def test_no_folds_is_refused_with_a_hint(feats, tmp_path):
    f = feat_format.read(feats)
    nofolds = _copy(feats, tmp_path / "nofolds.h5", fold=np.full(len(f.tracks["fold"]), -1))
    with pytest.raises(InputError, match="no cross-validation folds") as e:
        cv.run(nofolds, models=[LOGREG], out=tmp_path / "cv.h5")
    assert "--folds K" in e.value.hint
    r = genre("cv", nofolds, "--model", "logreg", "-o", tmp_path / "cv.h5")
    assert r.exit_code == 2 and "--folds K" in r.stderr and not (tmp_path / "cv.h5").exists()


def test_a_fold_track_without_label_and_unknown_folds_are_refused(feats, tmp_path):
    f = feat_format.read(feats)
    label = f.tracks["label"].copy()
    label[0] = -1
    bad = _copy(feats, tmp_path / "nolabel.h5", label=label)
    with pytest.raises(InputError, match="1 tracks in folds have no label"):
        cv.run(bad, models=[LOGREG], out=tmp_path / "cv.h5")
    with pytest.raises(UsageError, match="fold.s. 7 not in"):
        cv.run(feats, models=[LOGREG], folds=[0, 7], out=tmp_path / "cv.h5")
    with pytest.raises(UsageError, match="one distinct name per model"):
        cv.run(feats, models=[LOGREG, LOGREG.replace(seed=1)], labels=["a", "a"], out=tmp_path / "cv.h5")
    with pytest.raises(UsageError, match="unknown model"):
        cv.run(feats, models=[TrainConfig(model="nosuchmodel")], out=tmp_path / "cv.h5")
    assert not list(tmp_path.glob("cv*"))


def test_folds_sharing_groups_are_warned_and_reported(feats, tmp_path):
    f = feat_format.read(feats)
    j = np.arange(len(f.tracks["fold"]))
    fold = (j + j // 6) % 3  # by track: every performer is in several folds
    shared = _copy(feats, tmp_path / "shared.h5", fold=fold)
    notices = []
    res = cv.run(shared, models=[LOGREG], out=tmp_path / "cv.h5", on_notice=notices.append)
    assert any("not performer-disjoint although the index knows performers" in n for n in notices), notices
    rep = res.summary["report"]
    assert not rep["group_disjoint"] and rep["groups_known"] and "NOT performer-disjoint" in rep["split_method"]
    assert all(r["leakage"]["group_tracks"] > 0 for r in rep["models"][0]["folds"])  # reported, not refused
    nogroups = _copy(feats, tmp_path / "nogroups.h5", fold=fold, group=np.array([""] * len(fold), dtype=object))
    res = cv.run(nogroups, models=[LOGREG], out=tmp_path / "cv2.h5")
    assert any("no groups (performer, artist) are known" in w for w in res.warnings)


def test_epoch_selection_without_a_validation_split_is_warned(feats, tmp_path):
    res = cv.run(feats, models=[TrainConfig(model="mlp", select="best", patience=3), LOGREG], out=tmp_path / "cv.h5", dry_run=True)
    assert res.status == "would run" and not (tmp_path / "cv.h5").exists()
    assert any("no validation split" in w and "mlp: --select best, --patience" in w for w in res.warnings), res.warnings
    assert not any("no validation split" in w for w in cv.run(feats, models=[LOGREG], out=tmp_path / "cv.h5", dry_run=True).warnings)


def test_one_fold_has_no_spread(feats, tmp_path):
    """The standard deviation of one fold is undefined: printed as the mean alone, null in the report, with a note."""
    r = genre("cv", feats, "--model", "logreg", "--fold", "1", "-o", tmp_path / "cv.h5")
    assert r.exit_code == 0, r.stderr
    rep = json.loads((tmp_path / "cv.json").read_text())
    s = rep["models"][0]["summary"]
    assert s["n_folds"] == 1 and s["track"]["balanced_accuracy"]["std"] is None and s["note"] == cv.ONE_FOLD
    err = " ".join(r.stderr.split())
    assert f"{s['track']['balanced_accuracy']['mean']:.3f}" in err and "±" not in err and "one fold: no spread" in err


def test_every_models_options_are_checked_before_any_model_trains(feats, tmp_path, monkeypatch):
    import genre_cli.train

    trained = []
    real = genre_cli.train.run
    monkeypatch.setattr(genre_cli.train, "run", lambda path, **kw: trained.append(kw["config"].model) or real(path, **kw))
    r = genre("cv", feats, "--model", "svm", "--model", "knn", "--set", "kernel=linear", "-o", tmp_path / "cv.h5")
    assert r.exit_code == 2 and "model 'knn' has no option(s) ['kernel']" in r.stderr, r.stderr
    assert trained == [] and not (tmp_path / "cv.h5").exists() and not (tmp_path / "cv-folds").exists()
    with pytest.raises(UsageError, match="--input nope: model 'logreg' has no such input slot; its inputs: vector"):
        cv.run(feats, models=[LOGREG, TrainConfig(model="logreg", features={"nope": "mel"})], out=tmp_path / "cv.h5")
    assert trained == []
