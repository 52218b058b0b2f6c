"""``genre evaluate``: metrics equal sklearn's, aggregation, leakage policy, plots, reports."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from genre_cli import evaluate as ev
from genre_cli import featurize, fetch, segment, train
from genre_cli.datasets import FetchOptions
from genre_cli.errors import InputError
from genre_cli.features import FeatureConfig
from genre_cli.formats import features as feat_format
from genre_cli.inference import aggregate_tracks, load_classifier
from genre_cli.training.config import TrainConfig
from genre_cli.windows import SegmentConfig

from conftest import genre, write_folder, write_labels_table

LABELS = ("low", "high", "noise")


def _table_dataset(root: Path) -> Path:
    """3 labels x 6 tracks of 2 s; official split 4/1/1 per label; performers p0/p1 on every side."""
    write_folder(root, per_label=6, seconds=2.0, sr=16000, rng=np.random.default_rng(1))
    return write_labels_table(root, splits=("train",) * 4 + ("validation", "test"))


def _chain(root: Path, table: Path, work: Path, **opts) -> Path:
    idx = fetch.run(
        "folder",
        source=str(root),
        options=FetchOptions(labels_csv=table, label_column="style", group_by="performer", jobs=1, progress=False, **opts),
        out=work / "idx.h5",
    )
    seg = segment.run(idx.path, config=SegmentConfig(seconds=0.5, hop=0.5), out=work / "seg.h5", jobs=1, show_progress=False)
    return featurize.run(seg.path, config=FeatureConfig(mel=16), out=work / "feat.h5", jobs=1, show_progress=False).path


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """Features of an official (not performer-disjoint) split and a tiny model trained on it."""
    base = tmp_path_factory.mktemp("evaluate")
    table = _table_dataset(base / "music")
    feat = _chain(base / "music", table, base / "w")
    model = train.run(
        feat, config=TrainConfig(model="cnn6", epochs=3, device="cpu", seed=0), out=base / "w" / "model.h5", show_progress=False
    ).path
    return {"base": base, "music": base / "music", "table": table, "feat": feat, "model": model}


def test_numbers_equal_sklearn_on_the_same_predictions(official, tmp_path):
    from sklearn import metrics as M

    res = ev.run([official["model"]], official["feat"], out=tmp_path / "eval.h5")
    rep = res.summary["reports"][0]
    assert rep["dataset"] == "music" and rep["split"] == "test" and rep["n_tracks"] == 3 and rep["n_segments"] == 12
    # the predictions, recomputed independently of evaluate
    feats = feat_format.read(official["feat"])
    rows = np.flatnonzero(feats.segments["split"] == "test")
    clf = load_classifier(official["model"], device="cpu")
    proba = clf.predict_proba({"mel": feats.load("mel", rows)})
    y = feats.segments["label"][rows]
    tracks = feats.segments["track_id"][rows]
    keys = sorted(set(tracks))
    tp = np.stack([proba[tracks == k].mean(0) for k in keys])
    ty = np.array([y[tracks == k][0] for k in keys])
    with h5py.File(res.path) as f:
        np.testing.assert_allclose(f["model0/segment_proba"][()], proba, atol=1e-6)
        np.testing.assert_allclose(f["model0/track_proba"][()], tp, atol=1e-6)
        assert list(f["model0/track_id"].asstr()[()]) == keys
    for level, yt, p in (("segment", y, proba), ("track", ty, tp)):
        m, pred = rep[level], p.argmax(1)
        present = np.unique(yt)
        assert m["accuracy"] == pytest.approx(M.accuracy_score(yt, pred))
        assert m["balanced_accuracy"] == pytest.approx(M.balanced_accuracy_score(yt, pred))
        assert m["macro_f1"] == pytest.approx(M.f1_score(yt, pred, labels=present, average="macro", zero_division=0))
        assert m["macro_precision"] == pytest.approx(M.precision_score(yt, pred, labels=present, average="macro", zero_division=0))
        assert m["auc"] == pytest.approx(M.roc_auc_score(yt, p, multi_class="ovr"))
        assert m["confusion"] == M.confusion_matrix(yt, pred, labels=[0, 1, 2]).tolist()
        f1 = M.f1_score(yt, pred, labels=[0, 1, 2], average=None, zero_division=0)
        assert [m["per_class"][lab]["f1"] for lab in rep["labels"]] == pytest.approx(list(f1))
        assert m["per_class"][rep["labels"][0]]["auc"] == pytest.approx(M.roc_auc_score(yt == 0, p[:, 0]))
    assert json.loads(res.path.with_suffix(".json").read_text())[0]["track"]["accuracy"] == rep["track"]["accuracy"]


def test_mean_and_vote_aggregation_differ_where_they_should():
    proba = np.array([[0.4, 0.6], [0.4, 0.6], [1.0, 0.0], [0.9, 0.1]])
    track = np.array(["a", "a", "a", "b"])
    keys, mean = aggregate_tracks(proba, track, method="mean")
    assert list(keys) == ["a", "b"]
    np.testing.assert_allclose(mean[0], [0.6, 0.4], atol=1e-6)
    _, vote = aggregate_tracks(proba, track, method="vote")
    assert mean[0].argmax() == 0 and vote[0].argmax() == 1  # 2 of 3 windows vote class 1
    np.testing.assert_allclose(vote[0], [1 / 3, 2 / 3], atol=1e-4)
    # summing (Yang & Zhang 2019) instead of averaging never changes the decision
    assert (proba[:3].sum(0)).argmax() == mean[0].argmax()


def test_vote_report_uses_vote(official, tmp_path):
    rep = ev.run([official["model"]], official["feat"], aggregate="vote", out=tmp_path / "v.h5").summary["reports"][0]
    assert rep["aggregate"] == "vote" and "vote" in rep["aggregate_note"]
    with h5py.File(tmp_path / "v.h5") as f:
        seg_proba = f["model0/segment_proba"][()]
        tracks = f["model0/segment_track"].asstr()[()]
        keys = f["model0/track_id"].asstr()[()]
        labels = f["model0/track_label"][()]
        track_proba = f["model0/track_proba"][()]
    seg_pred = seg_proba.argmax(1)
    _, expected = aggregate_tracks(seg_proba, tracks, method="vote")
    np.testing.assert_allclose(track_proba, expected, atol=1e-6)
    for k, row in zip(keys, track_proba):  # the winner has the most segment votes
        votes = np.bincount(seg_pred[tracks == k], minlength=3)
        assert votes[row.argmax()] == votes.max()
    assert rep["track"]["accuracy"] == pytest.approx(np.mean(track_proba.argmax(1) == labels))


def test_track_leakage_refused_and_allow_leakage_flagged(official, tmp_path):
    r = genre("evaluate", official["model"], official["feat"], "--split", "train", "--out", tmp_path / "e.h5", "--no-plots")
    assert r.exit_code == 2
    assert "was trained/validated on 12 of the 12 evaluated tracks" in r.stderr and "--allow-leakage" in r.stderr
    r = genre(
        "evaluate", official["model"], official["feat"], "--split", "train", "--allow-leakage", "--out", tmp_path / "e.h5", "--no-plots"
    )
    assert r.exit_code == 0, r.stderr
    assert "LEAKAGE ALLOWED" in r.stderr and "inflated" in r.stderr
    r = genre(
        "evaluate",
        official["model"],
        official["feat"],
        "--split",
        "train",
        "--allow-leakage",
        "--out",
        tmp_path / "e.h5",
        "--json",
        "--no-plots",
    )
    rep = json.loads(r.stdout)[0]
    assert rep["leakage"]["allowed"] is True and rep["leakage"]["tracks"] == 12


def test_group_overlap_on_an_official_split_is_reported_not_refused(official, tmp_path):
    r = genre("evaluate", official["model"], official["feat"], "--json", "--out", tmp_path / "e.h5", "--no-plots")
    assert r.exit_code == 0, r.stderr
    rep = json.loads(r.stdout)[0]
    leak = rep["leakage"]
    assert leak["tracks"] == 0 and leak["group_tracks"] == 3 and leak["groups"] == ["p1"]
    assert leak["group_policy"] == "report" and leak["allowed"] is False and not leak["group_disjoint"]
    assert rep["split_method"].startswith("official")
    r = genre("evaluate", official["model"], official["feat"], "--out", tmp_path / "e.h5", "--no-plots")
    assert "3 of 3 evaluated tracks share a performer" in r.stderr and "not performer-disjoint" in r.stderr


def test_group_overlap_on_a_group_aware_split_is_refused(official, tmp_path):
    feats = feat_format.read(official["feat"])
    prov = feats.provenance  # recorded by fetch, carried forward by segment and featurize
    assert prov.group_by == "performer" and prov.group_aware is False and prov.index
    aware = dataclasses.replace(prov, group_aware=True, split_method="random, stratified by label, grouped by 'performer' (seed 0)")
    with pytest.raises(InputError, match="share a performer .* although this split was made performer-disjoint"):
        ev.evaluate_model(official["model"], feats, split="test", provenance=aware)
    rep = ev.evaluate_model(official["model"], feats, split="test", provenance=aware, allow_leakage=True)
    assert rep["leakage"]["allowed"] is True and rep["leakage"]["group_policy"] == "refuse"
    # a real group-aware index is recognised through the provenance its features carry
    feat2 = _chain(official["music"], official["table"], tmp_path / "w2", split="random")
    prov2 = feat_format.read(feat2).provenance
    assert prov2.group_aware is True and "grouped by 'performer'" in prov2.split_method


def test_cli_tables_plots_and_two_models(official, tmp_path):
    m2 = tmp_path / "second.h5"
    shutil.copy(official["model"], m2)  # a second model file (same weights: only the table layout matters here)
    plots = tmp_path / "plots"
    r = genre("evaluate", official["model"], m2, official["feat"], "--out", tmp_path / "e.h5", "--plots", plots)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == str(tmp_path / "e.h5")
    assert "music · split test (official" in r.stderr and "3 tracks / 12 segments" in r.stderr
    assert r.stderr.count("per class") == 4 and "track-level confusion" in r.stderr
    names = sorted(p.name for p in plots.iterdir())
    assert names == sorted(f"{s}-{k}.png" for s in ("model", "second") for k in ("confusion-track", "confusion-segment", "history"))
    for p in plots.iterdir():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000
    r = genre("evaluate", official["model"], official["feat"], "--out", tmp_path / "d.h5")  # default: next to the report
    assert (tmp_path / "d-plots" / "model-confusion-track.png").is_file()


def test_validation_split_is_a_tuning_score_not_leakage(official, tmp_path):
    r = genre("evaluate", official["model"], official["feat"], "--split", "validation", "--out", tmp_path / "v.h5", "--json", "--no-plots")
    assert r.exit_code == 0, r.stderr
    leak = json.loads(r.stdout)[0]["leakage"]
    assert leak["tracks"] == 0 and leak["selection_tracks"] > 0 and not leak["allowed"]
    assert "tuning score, not a test score" in leak["note"]
