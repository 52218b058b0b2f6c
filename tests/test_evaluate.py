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

from conftest import SHARED_DATA, genre, write_folder, write_labels_table

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


# ----------------------------------------------------------------------------- the same audio under other track ids


def _flat_copy(official, root: Path, *, label_of=lambda label: label) -> Path:
    """The official fixture's clips in one flat folder (ids ``low0`` instead of ``low/low0``),
    labelled ``label_of(label)`` by a table, all in the test split."""
    root.mkdir(parents=True)
    lines = ["path,style,split,performer"]
    for label in LABELS:
        for wav in sorted((official["music"] / label).glob("*.wav")):
            shutil.copy(wav, root / wav.name)
            lines.append(f"{wav.name},{label_of(label)},test,q")
    (root / "tracks.csv").write_text("\n".join(lines) + "\n")
    return _chain(root, root / "tracks.csv", root.parent / f"{root.name}-work")


def test_the_same_tracks_under_another_id_scheme_are_refused(official, tmp_path):
    feat = _flat_copy(official, tmp_path / "flat")
    assert "low0" in set(feat_format.read(feat).tracks["track_id"])  # not low/low0, as the model records it
    r = genre("evaluate", official["model"], feat, "--out", tmp_path / "e.h5", "--no-plots")
    assert r.exit_code == 2
    # 4 train + 1 validation clips per label are the model's; the 3 test clips are not
    assert "was trained/validated on 15 of the 18 evaluated tracks" in r.stderr, r.stderr
    assert "15 of them under another track id, matched by label and name: high0 = high/high0" in r.stderr
    r = genre("evaluate", official["model"], feat, "--allow-leakage", "--json", "--out", tmp_path / "e.h5", "--no-plots")
    leak = json.loads(r.stdout)[0]["leakage"]
    assert leak["tracks"] == 15 and leak["renamed_tracks"] == 15 and ["low0", "low/low0"] in leak["renamed"] and leak["allowed"]


def test_a_name_match_needs_the_label_to_match(official, tmp_path):
    """Two collections may both hold a ``low0.wav``: under another label it is another track."""
    swap = {"low": "high", "high": "noise", "noise": "low"}
    feat = _flat_copy(official, tmp_path / "other", label_of=swap.get)
    r = genre("evaluate", official["model"], feat, "--json", "--out", tmp_path / "e.h5", "--no-plots")
    assert r.exit_code == 0, r.stderr
    leak = json.loads(r.stdout)[0]["leakage"]
    assert leak["tracks"] == 0 and leak["renamed_tracks"] == 0 and leak["name_tracks"] == 0


def test_model_files_without_seen_labels(official, tmp_path):
    """Files written before seen labels were recorded: the label comes from a ``LABEL/...`` id,
    and a name match of a track whose label is unknown is reported, not refused."""
    feat = _flat_copy(official, tmp_path / "flat")
    old = tmp_path / "old.h5"
    shutil.copy(official["model"], old)
    with h5py.File(old, "r+") as f:
        for split in ("train", "validation"):
            del f[f"splits/{split}_labels"]
    r = genre("evaluate", old, feat, "--out", tmp_path / "e.h5", "--no-plots")
    assert r.exit_code == 2 and "15 of them under another track id" in r.stderr  # low/low0: label low
    with h5py.File(old, "r+") as f:  # ids that do not name the label: set/low0
        for split in ("train", "validation"):
            ids = ["set/" + t.rsplit("/", 1)[-1] for t in f[f"splits/{split}"].asstr()[()]]
            del f[f"splits/{split}"]
            f.create_dataset(f"splits/{split}", data=ids, dtype=h5py.string_dtype())
    r = genre("evaluate", old, feat, "--json", "--out", tmp_path / "e2.h5", "--no-plots")
    assert r.exit_code == 0, r.stderr
    leak = json.loads(r.stdout)[0]["leakage"]
    assert leak["tracks"] == 0 and leak["name_tracks"] == 15
    assert "15 of 18 evaluated tracks have the name of a track the model was trained/validated on" in leak["note"]
    assert "high0 ~ set/high0" in leak["note"]


def test_track_name():
    assert ev.track_name("blues/blues.00000") == ev.track_name("blues.00000") == "blues.00000"
    assert ev.track_name("rock/live/01.wav") == ev.track_name("01") == "01"  # an audio extension goes, .00000 stays
    assert ev.track_name("a\\b.flac") == "b"


GTZAN_MINI = SHARED_DATA / "gtzan-mini" / "genres"


@pytest.mark.skipif(not GTZAN_MINI.is_dir(), reason="shared gtzan-mini data absent (it lives beside the checkout)")
def test_builtin_genres_model_refused_on_its_own_gtzan_mini_clips_fetched_as_gtzan(tmp_path):
    """The shipped ``genres`` model was trained on gtzan-mini fetched with ``folder`` (ids
    ``blues/blues.00000``); fetched with ``gtzan`` the same clips are ``blues.00000``."""
    src = tmp_path / "genres"
    for genre_name in ("blues", "classical", "jazz"):
        (src / genre_name).mkdir(parents=True)
        for clip in sorted((GTZAN_MINI / genre_name).iterdir())[:2]:
            shutil.copy(clip, src / genre_name / clip.name)
    assert genre("fetch", "gtzan", "--from", src, "-o", tmp_path / "gm.h5").exit_code == 0
    assert genre("segment", tmp_path / "gm.h5", "--first", "1", "-o", tmp_path / "gm-seg.h5").exit_code == 0
    r = genre("featurize", tmp_path / "gm-seg.h5", "--embedding", "musicnn-msd", "-o", tmp_path / "gm-emb.h5")
    assert r.exit_code == 0, r.stderr
    n = len(set(feat_format.read(tmp_path / "gm-emb.h5").tracks["track_id"]))
    assert n >= 4
    r = genre("evaluate", "genres", tmp_path / "gm-emb.h5", "--split", "all", "--no-plots", "-o", tmp_path / "e.h5")
    assert r.exit_code == 2
    assert f"was trained/validated on {n} of the {n} evaluated tracks ({n} of them under another track id" in r.stderr, r.stderr
    assert "blues.00000 = blues/blues.00000" in r.stderr


# ----------------------------------------------------------------------------- feature parameters


def _featurize_official(official, tmp_path: Path, name: str, **cfg) -> Path:
    seg = official["base"] / "w" / "seg.h5"
    return featurize.run(seg, config=FeatureConfig(**cfg), out=tmp_path / f"{name}.h5", jobs=1, show_progress=False).path


@pytest.mark.parametrize(
    ("cfg", "named"),
    [
        ({"mel": 16, "db": False}, "db (--power): model True, features False"),
        ({"mel": 16, "fmax": 5000.0}, "fmax (--fmax): model 11025 Hz, features 5000 Hz"),
        ({"mel": 16, "n_fft": 1024}, "n_fft (--n-fft): model 2048, features 1024"),
    ],
)
def test_features_made_with_other_parameters_are_refused(official, tmp_path, cfg, named):
    feat = _featurize_official(official, tmp_path, "other", **cfg)
    assert feat_format.read(feat).shapes["mel"] == feat_format.read(official["feat"]).shapes["mel"]  # the shape cannot tell
    r = genre("evaluate", official["model"], feat, "--out", tmp_path / "e.h5", "--no-plots")
    assert r.exit_code == 2
    assert "was computed with other parameters than the mel features" in r.stderr and named in r.stderr, r.stderr
    assert "genre featurize SEGMENTS --mel 16" in r.stderr
    assert r.stderr.count(": model ") == 1  # only the parameter that differs


def test_unrelated_options_do_not_count(official, tmp_path):
    """More features in the file (MFCCs from another number of mel bands) leave the mel values the model reads as they are."""
    feat = _featurize_official(official, tmp_path, "more", mel=16, mfcc=13, mfcc_mels=64)
    r = genre("evaluate", official["model"], feat, "--json", "--out", tmp_path / "e.h5", "--no-plots")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)[0]["n_tracks"] == 3


def test_vector_features_of_another_window_length_are_refused(official, tmp_path):
    """Statistics over 1-s windows are other numbers than over the 0.5-s windows trained on (same shape)."""
    idx = official["base"] / "w" / "idx.h5"
    feats = {}
    for seconds in (0.5, 1.0):
        seg = segment.run(idx, config=SegmentConfig(seconds=seconds), out=tmp_path / f"seg{seconds}.h5", jobs=1, show_progress=False)
        cfg = FeatureConfig(handcrafted=True)
        feats[seconds] = featurize.run(seg.path, config=cfg, out=tmp_path / f"hc{seconds}.h5", jobs=1, show_progress=False).path
    model = train.run(feats[0.5], config=TrainConfig(model="logreg", seed=0), out=tmp_path / "m.h5", show_progress=False).path
    assert genre("evaluate", model, feats[0.5], "--out", tmp_path / "e.h5", "--no-plots").exit_code == 0
    r = genre("evaluate", model, feats[1.0], "--out", tmp_path / "e.h5", "--no-plots")
    assert r.exit_code == 2
    assert "window (genre segment --seconds): model 0.5 s, features 1 s" in r.stderr, r.stderr
    assert "genre segment INDEX --sr 22050 --seconds 0.5, then genre featurize SEGMENTS --handcrafted" in r.stderr


def test_one_name_in_two_folders_of_one_dataset_is_two_tracks(tmp_path):
    """Groove MIDI's layout: drummer1/.../10_soul.ogg and drummer7/.../10_soul.ogg are two
    performances. Within one dataset (one id scheme) only exact ids are leakage: a split that
    puts one on each side is not refused."""
    import soundfile as sf

    from conftest import synth

    rng = np.random.default_rng(4)
    root, rows = tmp_path / "music", ["path,style,split"]
    for label in ("low", "high"):
        for player, split in (("p1", "train"), ("p2", "test"), ("p3", "validation")):
            (root / label / player).mkdir(parents=True)
            for i in range(2):
                sf.write(root / label / player / f"groove{i}.wav", synth(label, 2.0, 8000, rng), 8000)
                rows.append(f"{label}/{player}/groove{i}.wav,{label},{split}")
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    w = ["--workdir", tmp_path / "w"]
    r = genre("run", "--dataset", "folder", "--from", root, "--labels", tmp_path / "t.csv", "--label-column", "style", "--seconds", "1", *w)
    assert r.exit_code == 0, r.stderr
    assert "track-level accuracy" in r.stdout and "4 tracks" in r.stdout
