"""The ``train`` stage: paper defaults, resume, reproducibility, DDP, persistence, safety.

Features artifacts are generated directly (no audio decoding): 3 classes whose class lifts its own
band of bins / vector entries, 4 segments per track, imbalanced train split.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from genre_cli import artifacts
from genre_cli.cli import app
from genre_cli.errors import ArtifactError, DeviceError, UsageError
from genre_cli.training import augment

torch = pytest.importorskip("torch")

from genre_cli import train as tr  # noqa: E402
from genre_cli.formats import checkpoint  # noqa: E402
from genre_cli.inference import aggregate_tracks, load_classifier  # noqa: E402
from genre_cli.training import config as tc  # noqa: E402
from genre_cli.training import loop  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LABELS = ["a", "b", "c"]
SHAPES = {"mel": (16, 12), "handcrafted": (10,), "mfcc_frames": (8, 6)}
#: tracks per (label, split): train is imbalanced (a: 6, b: 3, c: 2)
TRACKS = {"train": (6, 3, 2), "validation": (2, 2, 2), "test": (1, 1, 1)}
SEGS = 4


def make_features(path, names=("mel", "handcrafted"), seed=0) -> Path:
    """A complete ``featurize`` artifact with separable classes (see module docstring)."""
    rng = np.random.default_rng(seed)
    tracks = {k: [] for k in ("track_id", "path", "label", "group", "split", "fold")}
    for split, counts in TRACKS.items():
        for c, n in enumerate(counts):
            for i in range(n):
                tracks["track_id"].append(f"{split}-{LABELS[c]}{i}")
                tracks["path"].append(f"{LABELS[c]}/{split}{i}.wav")
                tracks["label"].append(c)
                tracks["group"].append(f"g{len(tracks['group']) % 5}")
                tracks["split"].append(split)
                tracks["fold"].append(-1)
    tr_idx = np.repeat(np.arange(len(tracks["track_id"])), SEGS)
    y = np.asarray(tracks["label"])[tr_idx]
    feats = {}
    for name in names:
        shape = SHAPES[name]
        x = 0.5 * rng.standard_normal((len(y), *shape)).astype(np.float32)
        w = shape[-1] // 3
        for c in range(3):
            x[y == c, ..., c * w : (c + 1) * w] += 1.0
        feats[name] = x
    path = Path(path)
    with artifacts.write_artifact(
        path,
        stage="featurize",
        params={"names": list(names), "seed": seed},
        upstream={},
        attrs={"dataset": "synthetic", "labels": LABELS, "feature_config": {"sr": 16000}, "segment_config": {"seconds": 1.0}},
    ) as f:
        g, ng = f.create_group("features"), f.create_group("norm")
        train = np.asarray(tracks["split"])[tr_idx] == "train"
        for name, x in feats.items():
            g.create_dataset(name, data=x, chunks=(16, *x.shape[1:]))
            flat = x[train].reshape(-1, x.shape[-1])
            ng.create_group(name)
            ng[name].create_dataset("mean", data=flat.mean(0))
            ng[name].create_dataset("std", data=flat.std(0) + 1e-6)
        seg = {"track": tr_idx, "start": np.zeros(len(y), np.int64), "length": np.full(len(y), 16000)}
        seg |= {k: np.asarray(v, dtype=object if isinstance(v[0], str) else None)[tr_idx] for k, v in tracks.items() if k != "path"}
        artifacts.write_table(f, "segments", seg)
        artifacts.write_table(f, "tracks", tracks)
    return path


@pytest.fixture(scope="module")
def feat(tmp_path_factory) -> Path:
    return make_features(tmp_path_factory.mktemp("feat") / "feat.h5", names=("mel", "handcrafted", "mfcc_frames"))


def _cfg(**kw) -> tc.TrainConfig:
    base = {"model": "mlp", "epochs": 2, "device": "cpu", "patience": 50}
    if kw.get("model", "mlp") == "mlp":
        base["model_config"] = {"hidden": 64}  # small and fast; same code path
    return tc.TrainConfig(**(base | kw))


def _train(feat, out, **kw):
    on_epoch = kw.pop("on_epoch", None)
    return tr.run(feat, config=_cfg(**kw), out=out, show_progress=False, on_epoch=on_epoch)


def _weights(path) -> dict[str, np.ndarray]:
    with h5py.File(path) as f:
        return {k: v[()] for k, v in f["weights"].items()}


def _inputs(feat, rows_split="validation"):
    from genre_cli.formats.features import read

    fe = read(feat)
    rows = np.flatnonzero(fe.segments["split"] == rows_split)
    return {n: fe.load(n, rows) for n in fe.names}, fe.segments["label"][rows], fe.segments["track_id"][rows]


# -- inputs and defaults -------------------------------------------------------------------------
def test_feature_mismatch_names_the_featurize_flags(tmp_path):
    only_mel = make_features(tmp_path / "mel.h5", names=("mel",))
    with pytest.raises(UsageError) as exc:
        _train(only_mel, tmp_path / "m.h5", model="cnn-mlp")
    assert "vector" in str(exc.value) and "--handcrafted" in exc.value.hint
    only_vec = make_features(tmp_path / "vec.h5", names=("handcrafted",))
    with pytest.raises(UsageError) as exc:
        _train(only_vec, tmp_path / "m.h5", model="lstm")
    assert "spectrogram" in str(exc.value) and "--mel 128" in exc.value.hint and "--mfcc-frames" in exc.value.hint
    r = CliRunner().invoke(app, ["train", str(only_vec), "--model", "lstm", "--device", "cpu"])
    assert r.exit_code == 2 and "--mfcc-frames" in r.stderr


def test_paper_defaults_apply_and_flags_override():
    from genre_cli.models import model_info

    info = model_info("dupconv")
    hp, src = tc.resolve_hparams(tc.TrainConfig(model="dupconv", paper=True), info, declares_l2=True)
    assert (hp["optimizer"], hp["lr"], hp["batch_size"], hp["weight_decay"]) == ("adadelta", 1.0, 50, 0.0)
    assert src["optimizer"] == src["lr"] == src["batch_size"] == "paper" and src["epochs"] == "plain"
    assert (hp["schedule"], hp["ema"], hp["select"], hp["mixup"], hp["specaugment"]) == ("constant", 0.0, "best", 0.0, False)
    hp, src = tc.resolve_hparams(tc.TrainConfig(model="dupconv", paper=True, optimizer="adam", batch_size=8), info, declares_l2=True)
    assert (hp["optimizer"], hp["lr"], hp["batch_size"]) == ("adam", 1e-3, 8)  # the paper's lr belongs to Adadelta
    assert src["optimizer"] == "flag" and src["lr"] == "plain"
    hp, _ = tc.resolve_hparams(tc.TrainConfig(model="dupconv", paper=True, lr=0.5), info, declares_l2=True)
    assert (hp["optimizer"], hp["lr"]) == ("adadelta", 0.5)
    hp, src = tc.resolve_hparams(tc.TrainConfig(model="resnet18", paper=True), model_info("resnet18"))  # the paper states nothing
    assert (hp["optimizer"], hp["lr"], hp["batch_size"], hp["epochs"], hp["weight_decay"]) == ("adamw", 1e-3, 32, 30, 1e-4)
    assert set(src.values()) == {"plain", "default"}  # the seed was not given either
    hp, src = tc.resolve_hparams(tc.TrainConfig(model="cnn6", paper=True, epochs=3), model_info("cnn6"))  # Schrader et al. 2021
    assert (hp["lr"], hp["batch_size"], hp["epochs"]) == (1e-3, 100, 3) and src["batch_size"] == "paper" and src["epochs"] == "flag"
    with pytest.raises(UsageError, match="unknown optimizer"):
        tc.resolve_hparams(tc.TrainConfig(optimizer="rmsprop"), model_info("cnn6"))


def test_the_recipe_is_the_default_for_every_torch_model_and_flags_override_it():
    from genre_cli.models import list_models, model_info
    from genre_cli.training import recipe

    for name in list_models():
        info = model_info(name)
        if info["kind"] != "torch":
            continue
        hp, src = tc.resolve_hparams(tc.TrainConfig(model=name), info, declares_l2=name in ("dupconv", "rescat", "mlp"))
        # no paper value leaks into the default; only the model's own, measured recipe adjustments
        assert {k: hp[k] for k in recipe.KEYS} == recipe.RECIPE | (info.get("recipe") or {}), name
        assert {src[k] for k in recipe.KEYS} == {"recipe"} and src["seed"] == "default"
    # the slow-converging Yang & Zhang networks get more epochs; --paper and flags still win
    for name in ("dupconv", "rescat"):
        assert tc.resolve_hparams(tc.TrainConfig(model=name), model_info(name), declares_l2=True)[0]["epochs"] == 90
        assert tc.resolve_hparams(tc.TrainConfig(model=name, epochs=5), model_info(name), declares_l2=True)[0]["epochs"] == 5
        assert tc.resolve_hparams(tc.TrainConfig(model=name, paper=True), model_info(name), declares_l2=True)[0]["epochs"] == 30
    assert tc.resolve_hparams(tc.TrainConfig(model="cnn6"), model_info("cnn6"))[0]["epochs"] == recipe.RECIPE["epochs"]
    # an explicit lr goes to the recipe's AdamW (it used to reach the paper's Adadelta: 1.0 -> 0.003, no learning)
    hp, src = tc.resolve_hparams(tc.TrainConfig(model="dupconv", lr=3e-3), model_info("dupconv"), declares_l2=True)
    assert (hp["optimizer"], hp["lr"], src["lr"], src["optimizer"]) == ("adamw", 3e-3, "flag", "recipe")
    hp, src = tc.resolve_hparams(tc.TrainConfig(model="cnn6", optimizer="sgd", mixup=0.0, select="best"), model_info("cnn6"))
    assert (hp["optimizer"], hp["lr"], hp["mixup"], hp["select"]) == ("sgd", 1e-2, 0.0, "best")
    assert src["lr"] == "recipe" and src["mixup"] == src["select"] == "flag"
    for bad in ({"schedule": "step"}, {"select": "worst"}, {"ema": 1.0}, {"time_shift": 1.5}, {"class_weights": "inverse"}):
        with pytest.raises(UsageError):
            tc.resolve_hparams(tc.TrainConfig(model="cnn6", **bad), model_info("cnn6"))


def test_defaults_resolve_the_same_whatever_the_device():
    from genre_cli.models import model_info

    got = {dev: tc.resolve_hparams(tc.TrainConfig(model="cnn6", device=dev), model_info("cnn6")) for dev in ("cpu", "cuda", "auto")}
    assert got["cpu"] == got["cuda"] == got["auto"]


def test_auto_class_weights_follow_the_imbalance():
    from genre_cli.training import recipe

    assert recipe.auto_class_weights([130, 6, 40])[0] == "balanced"
    assert recipe.auto_class_weights([50, 45, 40])[0] == "none"
    assert recipe.auto_class_weights([50, 0, 0])[0] == "none"


def test_paper_defaults_reach_the_artifact_and_the_optimizer(feat, tmp_path):
    from genre_cli.models import build_model

    small = {"filters": 8, "dense": [8, 4]}
    r = tr.run(
        feat,
        config=tc.TrainConfig(model="dupconv", model_config=small, epochs=1, paper=True, device="cpu"),
        out=tmp_path / "d.h5",
        show_progress=False,
    )
    with h5py.File(r.path) as f:
        hp = artifacts.get_json_attr(f, "train", {})
        src = artifacts.get_json_attr(f, "train_sources", {})
    assert hp["optimizer"] == "adadelta" and hp["lr"] == 1.0 and hp["batch_size"] == 50 and src["optimizer"] == "paper"
    # per-layer L2 as coupled weight decay 2*lambda (Adadelta), exact Keras L2 as a loss term with AdamW
    model = build_model("dupconv", n_classes=3, input_shapes={"spectrogram": (16, 12)}, **small)
    opt, penalty = loop.make_optimizer(model, hp)
    assert not penalty and sorted(g["weight_decay"] for g in opt.param_groups) == [0.0, 0.02, 0.04]
    opt, penalty = loop.make_optimizer(model, hp | {"optimizer": "adamw", "weight_decay": 1e-4})
    assert penalty and sorted(g["weight_decay"] for g in opt.param_groups) == [0.0, 1e-4]
    r2 = tr.run(
        feat,
        config=tc.TrainConfig(model="dupconv", model_config=small, epochs=1, lr=0.5, device="cpu"),
        out=tmp_path / "d2.h5",
        show_progress=False,
    )
    assert r2.fingerprint != r.fingerprint and r2.summary["train"]["lr"] == 0.5


# -- reproducibility and resume ------------------------------------------------------------------
def test_same_seed_same_weights_other_seed_differs(feat, tmp_path):
    a = _train(feat, tmp_path / "a.h5", seed=3, mixup=0.2)
    b = _train(feat, tmp_path / "b.h5", seed=3, mixup=0.2)
    c = _train(feat, tmp_path / "c.h5", seed=4, mixup=0.2)
    wa, wb, wc = _weights(a.path), _weights(b.path), _weights(c.path)
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert any(not np.array_equal(wa[k], wc[k]) for k in wa)


class _Stop(Exception):
    pass


def test_resume_ends_with_the_same_weights_as_an_uninterrupted_run(feat, tmp_path):
    kw = {"epochs": 4, "seed": 1, "mixup": 0.4, "batch_size": 8}
    straight = _train(feat, tmp_path / "straight.h5", **kw)

    out = tmp_path / "resumed.h5"

    def interrupt(rec):
        if rec["epoch"] == 2:
            raise _Stop

    with pytest.raises(_Stop):
        _train(feat, out, on_epoch=interrupt, **kw)
    ckpt = checkpoint.path_for(out)
    assert ckpt.exists() and not out.exists()
    with h5py.File(ckpt) as f:
        assert int(f.attrs["epoch"]) == 2 and {"model", "optimizer", "rng"} <= set(f)
    seen = []
    r = _train(feat, out, resume=True, on_epoch=lambda rec: seen.append(rec["epoch"]), **kw)
    assert r.summary["resumed_from"] == 2 and seen == [3, 4]
    assert not ckpt.exists()  # removed after the final write
    ws, wr = _weights(straight.path), _weights(out)
    assert ws.keys() == wr.keys() and all(np.array_equal(ws[k], wr[k]) for k in ws)
    with h5py.File(straight.path) as f1, h5py.File(out) as f2:
        h1, h2 = artifacts.get_json_attr(f1, "history", []), artifacts.get_json_attr(f2, "history", [])
    assert [x["loss"] for x in h1] == [x["loss"] for x in h2]


def test_checkpoint_of_other_settings_is_not_resumed(feat, tmp_path):
    out = tmp_path / "m.h5"

    def interrupt(rec):
        raise _Stop

    with pytest.raises(_Stop):
        _train(feat, out, on_epoch=interrupt, lr=0.01)
    r = _train(feat, out, resume=True, lr=0.02)
    assert r.summary["resumed_from"] is None and any("not resumed" in w for w in r.warnings)


# -- losses and augmentation ---------------------------------------------------------------------
def test_balanced_class_weights_change_the_loss(feat, tmp_path):
    y = np.array([0] * 6 + [1] * 3 + [2] * 1)
    w = loop.class_weights(y, 4)
    assert np.allclose(w[:3], [10 / 18, 10 / 9, 10 / 3]) and w[3] == 0
    plain = _train(feat, tmp_path / "p.h5", epochs=1, class_weights="none")
    weighted = _train(feat, tmp_path / "w.h5", epochs=1, class_weights="balanced")
    assert plain.fingerprint != weighted.fingerprint
    assert plain.summary["train"]["class_weights"] == "none" and weighted.summary["train"]["class_weights"] == "balanced"
    with h5py.File(plain.path) as f1, h5py.File(weighted.path) as f2:
        l1, l2 = artifacts.get_json_attr(f1, "history", [])[0]["loss"], artifacts.get_json_attr(f2, "history", [])[0]["loss"]
    assert l1 != pytest.approx(l2, rel=1e-4)


def test_specaugment_masks_and_mixup_run(feat, tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.ones(8, 40, 20)
    m = augment.spec_augment(x, g)
    assert m.shape == x.shape and (m == 0).any() and (m == 1).any()
    assert (m == 0).float().mean() < 0.6
    r = tr.run(
        feat,
        config=tc.TrainConfig(
            model="cnn6",
            model_config={"filters": [4, 8]},
            epochs=2,
            device="cpu",
            specaugment=True,
            mixup=0.3,
            label_smoothing=0.1,
            patience=5,
        ),
        out=tmp_path / "aug.h5",
        show_progress=False,
    )
    with h5py.File(r.path) as f:
        hist = artifacts.get_json_attr(f, "history", [])
    assert len(hist) == 2 and all(np.isfinite(h["loss"]) and 0 <= h["val_track_accuracy"] <= 1 for h in hist)


def test_streaming_from_hdf5_trains(feat, tmp_path):
    r = _train(feat, tmp_path / "s.h5", stream=True, epochs=3, batch_size=8)
    assert r.summary["stream"] is True and r.summary["val_track_accuracy"] is not None
    with h5py.File(r.path) as f:
        assert bool(f.attrs["stream"]) and len(artifacts.get_json_attr(f, "history", [])) == 3


# -- artifacts and persistence -------------------------------------------------------------------
@pytest.mark.parametrize("model", ["mlp", "logreg", "random-forest"])
def test_save_load_gives_the_training_time_predictions(feat, tmp_path, model):
    kw = {"model_config": {"n_estimators": 10}} if model == "random-forest" else {}
    r = _train(feat, tmp_path / "m.h5", model=model, epochs=3, seed=7, **kw)
    alone = tmp_path / "elsewhere" / "model.h5"  # predict needs nothing but this file
    alone.parent.mkdir()
    shutil.move(r.path, alone)
    x, y, tracks = _inputs(feat)
    clf = load_classifier(alone)
    p = clf.predict_proba(x)
    assert p.shape == (len(y), 3) and np.allclose(p.sum(1), 1, atol=1e-5)
    keys, tp = aggregate_tracks(p, tracks)
    ty = np.array([y[tracks == k][0] for k in keys])
    with h5py.File(alone) as f:
        hist = artifacts.get_json_attr(f, "history", [])
        best = next(h for h in hist if h["epoch"] == int(f.attrs["best_epoch"]))
        hp = artifacts.get_json_attr(f, "train", {})
        cfg = artifacts.get_json_attr(f, "model_config", {})
        assert f.attrs["features_fingerprint"] == artifacts.read_meta(feat).fingerprint
        assert float(f.attrs["wall_seconds"]) > 0 and f.attrs["device"] == "cpu"
        assert "train" in f["splits"] and "validation_groups" in f["splits"] and "mean" in f["norm/handcrafted"]
    assert float(np.mean(tp.argmax(1) == ty)) == best["val_track_accuracy"]
    assert float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-9))) == pytest.approx(best["val_loss"], abs=1e-6)
    assert hp["seed"] == 7
    if model == "random-forest":
        assert cfg["random_state"] == 7


def test_pickle_payload_in_a_model_file_is_never_executed(feat, tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    payload = np.frombuffer(pickle.dumps(Evil()), np.uint8)
    sk = _train(feat, tmp_path / "sk.h5", model="logreg").path
    with h5py.File(sk, "r+") as f:
        del f["weights/skops"]
        f["weights"].create_dataset("skops", data=payload)
    th = _train(feat, tmp_path / "th.h5", epochs=1).path
    with h5py.File(th, "r+") as f:
        key = next(iter(f["weights"]))
        del f[f"weights/{key}"]
        ds = f["weights"].create_dataset(key, data=np.void(payload.tobytes()))
        ds.attrs["torch_dtype"], ds.attrs["shape"] = "float32", []
    for path in (sk, th):
        with pytest.raises(ArtifactError):
            load_classifier(path)
    assert not marker.exists()


def test_which_feature_fills_each_input_is_said_and_a_missing_paper_feature_warned(tmp_path):
    only_mel = make_features(tmp_path / "mel.h5", names=("mel",))
    r = CliRunner().invoke(
        app, ["train", str(only_mel), "--model", "lstm", "--epochs", "1", "--device", "cpu", "-o", str(tmp_path / "l.h5")]
    )
    assert r.exit_code == 0, r.stderr
    warning = (
        "warning: lstm's paper (Schrader et al. 2021) feeds its spectrogram input with mfcc_frames, which mel.h5 does not have: "
        "training on mel instead; `genre featurize SEGMENTS --mfcc-frames 30x30` makes mfcc_frames"
    )
    assert warning in r.stderr and r.stderr.index(warning) < r.stderr.index("epoch   1")  # said before training starts
    assert r.stderr.count(warning) == 1
    assert "inputs: spectrogram = mel (16 x 12; the paper used mfcc_frames)" in r.stderr
    info = CliRunner().invoke(app, ["info", str(tmp_path / "l.h5")])
    assert "inputs: spectrogram = mel (16 x 12)" in info.stdout
    # chosen with --input: said, not warned
    r = CliRunner().invoke(
        app,
        [
            "train",
            str(only_mel),
            "--model",
            "lstm",
            "--input",
            "spectrogram=mel",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "-o",
            str(tmp_path / "i.h5"),
        ],
    )
    assert r.exit_code == 0 and "warning" not in r.stderr and "the paper used mfcc_frames" in r.stderr
    # the paper's feature is there: no warning, no note
    both = make_features(tmp_path / "both.h5", names=("mel", "mfcc_frames"))
    r = CliRunner().invoke(app, ["train", str(both), "--model", "lstm", "--epochs", "1", "--device", "cpu", "-o", str(tmp_path / "b.h5")])
    assert r.exit_code == 0 and "warning" not in r.stderr and "inputs: spectrogram = mfcc_frames (8 x 6)" in r.stderr
    # as a library call (no on_notice): the warning is in the result
    res = _train(only_mel, tmp_path / "lib.h5", model="lstm", epochs=1)
    assert any("feeds its spectrogram input with mfcc_frames" in w for w in res.warnings)
    assert res.summary["inputs"] == {"spectrogram": "mel"} and res.summary["paper_inputs"] == {"spectrogram": "mfcc_frames"}


# -- devices and the command line ----------------------------------------------------------------
def test_cuda_without_a_gpu_is_exit_2(feat, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(DeviceError, match="no CUDA device"):
        _train(feat, tmp_path / "m.h5", device="cuda:0")
    with pytest.raises(UsageError, match="needs a CUDA device"):
        _train(feat, tmp_path / "m.h5", amp="fp16")
    runner = CliRunner()
    for extra in (["--device", "cuda"], ["--device", "cuda:1"], ["--device", "cpu", "--amp", "bf16"]):
        r = runner.invoke(app, ["train", str(feat), "--model", "mlp", "--epochs", "1", "-o", str(tmp_path / "c.h5"), *extra])
        assert r.exit_code == 2, (extra, r.stderr)
    assert not (tmp_path / "c.h5").exists()


def test_cli_train_and_list_models(feat, tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["train", "--list-models"])
    assert r.exit_code == 0
    for needle in (
        "dupconv",
        "Yang & Zhang 2019",
        "optimizer=adadelta",
        "sklearn",
        "torch",
        "spectrogram",
        "mfcc_frames",
        "recipe changes",
    ):
        assert needle in r.stdout, needle
    rows = {line.split("\t")[0]: line.split("\t") for line in r.stdout.splitlines()}
    assert rows["dupconv"][6] == rows["rescat"][6] == "epochs=90" and rows["cnn6"][6] == "-"  # the recipe-changes column
    out = tmp_path / "cli.h5"
    r = runner.invoke(
        app,
        [
            "train",
            str(feat),
            "--model",
            "mlp",
            "--epochs",
            "2",
            "--device",
            "cpu",
            "--optimizer",
            "sgd",
            "--class-weights",
            "balanced",
            "--label-smoothing",
            "0.1",
            "-o",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == str(out) and "samples/s" in r.stderr and "validation track accuracy" in r.stderr
    with h5py.File(out) as f:
        hp = artifacts.get_json_attr(f, "train", {})
    assert (hp["optimizer"], hp["lr"], hp["class_weights"], hp["label_smoothing"]) == ("sgd", 1e-2, "balanced", 0.1)


def test_ddp_on_cpu_with_gloo(feat, tmp_path):
    out = tmp_path / "ddp.h5"
    env = os.environ | {"PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "genre_cli",
        "train",
        str(feat),
        "--model",
        "mlp",
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--device",
        "cpu",
        "-o",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == str(out)  # rank 0 alone reports
    assert not checkpoint.path_for(out).exists() and not list(tmp_path.glob(".*tmp*"))
    with h5py.File(out) as f:
        assert int(f.attrs["world_size"]) == 2 and f.attrs["complete"]
        hist = artifacts.get_json_attr(f, "history", [])
    assert len(hist) == 3
    assert hist[0]["samples_per_s"] > 0
    # all-reduced: both ranks' shards counted (train split: 11 tracks x 4 segments = 44 → padded to 2 x 22)
    x, y, _ = _inputs(feat)
    p = load_classifier(out).predict_proba(x)
    assert np.allclose(p.sum(1), 1, atol=1e-5) and np.all(np.isfinite(p))
    assert np.mean(p.argmax(1) == y) > 1 / 3  # better than chance on separable data


def test_info_says_which_settings_were_used_and_where_each_came_from(feat, tmp_path):
    from genre_cli.describe import describe

    r = _train(feat, tmp_path / "m.h5", epochs=1, mixup=0.0)
    d = describe(r.path)["training"]
    assert d["train"]["mixup"] == 0.0 and d["sources"]["mixup"] == "flag" and d["sources"]["schedule"] == "recipe"
    assert d["train"]["class_weights"] in ("balanced", "none") and "auto ->" in d["notes"]["class_weights"]
    out = CliRunner().invoke(app, ["info", str(r.path)])
    assert out.exit_code == 0 and "training settings" in out.stdout and "schedule cosine (recipe)" in out.stdout
    assert "mixup 0.0 (flag)" in out.stdout


def test_cli_summary_names_how_the_weights_were_kept(feat, tmp_path):
    """The recipe keeps the last (averaged) weights: the summary must not call them the "best epoch"."""
    runner = CliRunner()
    r = runner.invoke(app, ["train", str(feat), "--model", "mlp", "--epochs", "2", "--device", "cpu", "-o", str(tmp_path / "a.h5")])
    assert r.exit_code == 0, r.stderr
    assert "kept the last weights (epoch 2/2, averaged)" in r.stderr and "best epoch" not in r.stderr
    r = runner.invoke(
        app,
        ["train", str(feat), "--model", "mlp", "--epochs", "2", "--select", "best", "--device", "cpu", "-o", str(tmp_path / "b.h5")],
    )
    assert r.exit_code == 0, r.stderr
    assert "best epoch " in r.stderr and "kept the last weights" not in r.stderr


def _without_validation(feat, dst) -> Path:
    """A copy of ``feat`` whose validation tracks are test tracks: no validation split."""
    shutil.copyfile(feat, dst)
    with h5py.File(dst, "r+") as f:
        for table in ("segments", "tracks"):
            split = f[f"{table}/split"][()].astype(str)
            del f[f"{table}/split"]
            relabelled = np.where(split == "validation", "test", split).astype(object)
            f.create_dataset(f"{table}/split", data=relabelled, dtype=h5py.string_dtype())
    return dst


def test_select_best_and_patience_without_a_validation_split_are_said_not_dropped(feat, tmp_path):
    noval = _without_validation(feat, tmp_path / "noval.h5")
    runner = CliRunner()
    argv = ["train", str(noval), "--model", "mlp", "--epochs", "2", "--select", "best", "--patience", "1", "--device", "cpu"]
    r = runner.invoke(app, [*argv, "-o", str(tmp_path / "m.h5")])
    assert r.exit_code == 0, r.stderr
    err = " ".join(r.stderr.split())
    assert "warning: noval.h5: no validation split: --select best needs one" in err and "the last weights are kept" in err
    assert "warning: noval.h5: no validation split: --patience 1 needs one to stop early; all 2 epochs run" in err
    assert "select: last (no validation split; --select best needs one)" in err
    assert "patience: 0 (no validation split; --patience 1 needs one)" in err
    assert "kept the last weights (epoch 2/2" in err and "best epoch 2/2" not in err
    assert ", patience 0, " in err and ", select last, " in err  # the settings line says what ran
    with h5py.File(tmp_path / "m.h5") as f:
        hp, notes = artifacts.get_json_attr(f, "train", {}), artifacts.get_json_attr(f, "train_notes", {})
    assert (hp["select"], hp["patience"]) == ("last", 0) and "--select best needs one" in notes["select"]
    again = runner.invoke(app, [*argv, "-o", str(tmp_path / "m.h5")])  # up to date: still said
    assert again.exit_code == 0 and "up to date" in again.stderr and "--select best needs one" in again.stderr
    # the recipe (select last, patience 0) needs no validation split: nothing to say; with one, --select best applies
    quiet = runner.invoke(app, ["train", str(noval), "--model", "mlp", "--epochs", "1", "--device", "cpu", "-o", str(tmp_path / "q.h5")])
    assert quiet.exit_code == 0 and "no validation split" not in quiet.stderr
    r = _train(feat, tmp_path / "b.h5", select="best", patience=1)
    assert r.summary["train"]["select"] == "best" and not any("no validation split" in w for w in r.warnings)


def test_the_seed_is_said_to_come_from_a_flag_only_when_one_was_given(feat, tmp_path):
    runner = CliRunner()
    base = ["train", str(feat), "--epochs", "1", "--device", "cpu"]
    for model in ("mlp", "logreg"):
        r = runner.invoke(app, [*base, "--model", model, "-o", str(tmp_path / f"{model}.h5")])
        assert r.exit_code == 0, r.stderr
        assert "seed 0 (default)" in r.stderr
        info = runner.invoke(app, ["info", str(tmp_path / f"{model}.h5")])
        assert "seed 0 (default)" in info.stdout and "seed 0 (flag)" not in info.stdout, info.stdout
        r = runner.invoke(app, [*base, "--model", model, "--seed", "0", "-o", str(tmp_path / f"{model}-flag.h5")])
        assert r.exit_code == 0 and "seed 0 (flag)" in runner.invoke(app, ["info", str(tmp_path / f"{model}-flag.h5")]).stdout
    # no seed and --seed 0 train the same model (the fingerprint holds the seed used)
    assert tc.TrainConfig().to_params() == tc.TrainConfig(seed=0).to_params() and tc.TrainConfig().seed_value == 0
    hp, src = tc.resolve_hparams(tc.TrainConfig(model="mlp"), {"kind": "torch"})
    assert (hp["seed"], src["seed"]) == (0, "default")
    assert tc.resolve_hparams(tc.TrainConfig(model="mlp", seed=3), {"kind": "torch"})[1]["seed"] == "flag"


def test_an_sklearn_model_warns_of_every_ignored_option_also_when_up_to_date(feat, tmp_path):
    runner = CliRunner()
    out = tmp_path / "svm.h5"
    r = runner.invoke(app, ["train", str(feat), "--model", "svm", "-o", str(out)])
    assert r.exit_code == 0 and "ignored" not in r.stderr
    for flag, name in ((["--stream"], "stream"), (["--no-stream"], "stream"), (["--epochs", "3"], "epochs"), (["--paper"], "paper")):
        r = runner.invoke(app, ["train", str(feat), "--model", "svm", *flag, "-o", str(out)])  # the model is up to date
        assert r.exit_code == 0 and "up to date" in r.stderr, r.stderr
        assert f"warning: svm is an sklearn model: {name} ignored" in r.stderr, (flag, r.stderr)
    r = tr.run(feat, config=tc.TrainConfig(model="svm", stream=True), out=out, show_progress=False)  # no on_notice: in the result
    assert r.status == "skipped" and r.warnings == ["svm is an sklearn model: stream ignored"]


def test_an_input_slot_the_model_does_not_have_is_refused(feat, tmp_path):
    r = CliRunner().invoke(app, ["train", str(feat), "--model", "mlp", "--input", "spectrogram=mel", "-o", str(tmp_path / "m.h5")])
    assert r.exit_code == 2 and "--input spectrogram: model 'mlp' has no such input slot; its inputs: vector" in r.stderr, r.stderr
    assert not (tmp_path / "m.h5").exists()
